// IngestLedger: the collector's durable record of what it has accepted from each agent.
//
// It is what makes delivery exactly-once. For every agent it keeps the spool stream it is
// receiving and the highest batch sequence accepted in it, and it keeps the flow totals (flows,
// packets, bytes by segment, agent and IP protocol) and record counts. A batch's effect and its
// sequence are committed in one SQLite transaction (WAL) before the batch is acked, so a collector
// killed at any moment either has the whole batch or none of it; the agent resends what was not
// acked, and a resent batch at or below the stored sequence is recognised as a duplicate and not
// counted again. On start the totals are read back, so the exported counters continue where they
// stopped instead of resetting.
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

#include "common/record.h"
#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace citywatch::collector {

struct FlowTotals {
  std::uint64_t flows = 0;
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

// Flow traffic of one batch grouped by what its labels will be, still in binary form: the
// per-record work is a compare of a few bytes, and labels are made once per group.
struct FlowGroup {
  IpAddr exporter;  // unset (family kNone) for the agent's own packet meter
  std::uint8_t protocol = 0;
  FlowDirection direction = FlowDirection::kUnknown;
  FlowTotals totals;
};
struct InterfaceGroup {
  IpAddr exporter;
  std::uint32_t if_index = 0;
  bool input = true;  // traffic into the exporter on if_index (else out of it)
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

// What one batch adds: filled by the ingest session, committed by the ledger, then applied
// to the metrics.
struct BatchSummary {
  std::string agent;
  std::string segment;
  std::uint64_t stream = 0;
  std::uint64_t seq = 0;
  std::array<std::uint64_t, 6> records_by_kind{};  // indexed by RecordKind
  std::vector<FlowGroup> flows;
  std::vector<InterfaceGroup> interfaces;  // exported flows only: they name ifIndexes
  void clear();
  void add(const Record& r);
};

// The same traffic with its label values, as stored in the ledger and exported.
struct FlowRow {
  std::string exporter;  // address; "capture" for the packet meter; "other" past the cap
  int protocol = 0;
  std::string direction;  // "unknown", "ingress" or "egress"
  FlowTotals totals;
};
struct InterfaceRow {
  std::string exporter;
  std::string if_index;   // decimal, or "other" past the cap
  std::string direction;  // "in" or "out"
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

// Label bounds: an agent may report many exporters and an exporter many interfaces, but the
// series they make must stay finite. Past these caps traffic is still counted, as "other".
inline constexpr std::size_t kMaxExportersPerAgent = 64;
inline constexpr std::size_t kMaxInterfacesPerExporter = 512;

class IngestLedger {
 public:
  static Status open(const std::filesystem::path& file, std::unique_ptr<IngestLedger>& out);
  ~IngestLedger();
  IngestLedger(const IngestLedger&) = delete;
  IngestLedger& operator=(const IngestLedger&) = delete;

  // Highest sequence accepted from this agent's stream (0 if none, or if the agent has
  // started a new stream: its spool was recreated).
  std::uint64_t last_seq(const std::string& agent, std::uint64_t stream) const;

  // Durably records the batch's effect and sequence. On failure nothing is recorded and the
  // batch must not be acked. The rows committed (labels resolved and capped) are returned
  // for the metrics.
  Status commit(const BatchSummary& batch, std::vector<FlowRow>& flows,
                std::vector<InterfaceRow>& interfaces);

  // Visits the stored totals (start-up: seeding the counters).
  void for_each_flow_total(
      const std::function<void(const std::string& segment, const std::string& agent,
                               const FlowRow&)>& fn) const;
  void for_each_interface_total(
      const std::function<void(const std::string& segment, const std::string& agent,
                               const InterfaceRow&)>& fn) const;
  void for_each_agent(
      const std::function<void(const std::string& agent, std::uint64_t batches,
                               const std::array<std::uint64_t, 6>& records)>& fn) const;

 private:
  IngestLedger() = default;
  Status exec(const char* sql);
  std::string exporter_label(const std::string& agent, const IpAddr& exporter);
  std::string if_index_label(const std::string& agent, const std::string& exporter,
                             std::uint32_t if_index);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* upsert_flow_ = nullptr;
  sqlite3_stmt* upsert_agent_ = nullptr;
  sqlite3_stmt* upsert_interface_ = nullptr;
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
