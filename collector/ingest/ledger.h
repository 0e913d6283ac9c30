// IngestLedger: the collector's durable record of what it has accepted from each agent.
//
// It is what makes delivery exactly-once. For every agent it keeps the spool stream it is
// receiving and the highest batch sequence accepted in it, and it keeps the flow totals (flows,
// packets, bytes by segment, agent and IP protocol) and record counts. A batch's effect and its
// sequence are committed in one transaction before the batch is acked, so a collector killed at
// any moment either has the whole batch or none of it; the agent resends what was not acked, and
// a resent batch at or below the stored sequence is recognised as a duplicate and not counted
// again. On start the totals are read back, so the exported counters continue where they
// stopped instead of resetting.
//
// Engines (collector/store/sql_db.h): a SQLite file (one collector) or a PostgreSQL database
// shared by a collector pair or more. There the stream positions are shared, so any collector
// can take over any agent: the commit takes the agent's lock, reads the position again and
// refuses a batch another collector has already committed (a collector that lost its agent
// but not its socket cannot count it twice). Totals are kept per collector (the `collector`
// key; empty on SQLite), each collector seeds and exports its own, so sums across
// collectors are exact.
//
// Thread-safety: none. One owner (the ingest server's I/O thread).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "collector/records/batch_summary.h"
#include "collector/store/sql_db.h"
#include "common/record.h"
#include "common/status.h"

namespace citywatch::collector {

class IngestLedger {
 public:
  // A SQLite ledger in this file.
  static Status open(const std::filesystem::path& file, std::unique_ptr<IngestLedger>& out);
  // A ledger in db (migrated to the current schema), keeping this collector's totals.
  static Status open(std::unique_ptr<store::SqlDb> db, const std::string& collector,
                     std::unique_ptr<IngestLedger>& out);
  ~IngestLedger();
  IngestLedger(const IngestLedger&) = delete;
  IngestLedger& operator=(const IngestLedger&) = delete;

  // Highest sequence accepted from this agent's stream (0 if none, or if the agent has
  // started a new stream: its spool was recreated).
  std::uint64_t last_seq(const std::string& agent, std::uint64_t stream) const;
  // Reads the agent's position from the database again (a session starts: another
  // collector of the pair may have moved it).
  Status refresh(const std::string& agent);

  // Durably records the batch's effect and sequence. On failure nothing is recorded and the
  // batch must not be acked. The rows committed (labels resolved and capped) are returned
  // for the metrics. duplicate: the stored position had already reached the batch (another
  // collector committed it); nothing was recorded and last_seq() has the position.
  Status commit(const BatchSummary& batch, std::vector<FlowRow>& flows,
                std::vector<InterfaceRow>& interfaces, bool& duplicate);
  Status commit(const BatchSummary& batch, std::vector<FlowRow>& flows,
                std::vector<InterfaceRow>& interfaces) {
    bool duplicate = false;
    return commit(batch, flows, interfaces, duplicate);
  }

  // Visits the stored totals (start-up: seeding the counters).
  void for_each_flow_total(
      const std::function<void(const std::string& segment, const std::string& agent,
                               const FlowRow&)>& fn) const;
  void for_each_interface_total(
      const std::function<void(const std::string& segment, const std::string& agent,
                               const InterfaceRow&)>& fn) const;
  void for_each_agent(
      const std::function<void(const std::string& agent, std::uint64_t batches,
                               const PerRecordKind<std::uint64_t>& records)>& fn) const;

  // The schema version the file had when open() migrated it, or 0 if it needed none.
  int migrated_from() const { return migrated_from_; }
  store::SqlDb& db() { return *db_; }

 private:
  IngestLedger() = default;
  Status migrate();
  Status load();
  std::string exporter_label(const std::string& agent, const IpAddr& exporter);
  std::string if_index_label(const std::string& agent, const std::string& exporter,
                             std::uint32_t if_index);

  std::unique_ptr<store::SqlDb> db_;
  std::string collector_;
  int migrated_from_ = 0;
  std::vector<store::SqlStatement> statements_;  // reused by commit()
  std::vector<store::SqlRows> results_;
  // Label values already in use, so caps hold across restarts.
  std::map<std::string, std::set<std::string>, std::less<>> exporters_;   // by agent
  std::map<std::string, std::set<std::string>, std::less<>> interfaces_;  // by agent/exporter
  struct Position {
    std::uint64_t stream = 0;
    std::uint64_t seq = 0;
  };
  std::map<std::string, Position, std::less<>> positions_;
};

}  // namespace citywatch::collector
