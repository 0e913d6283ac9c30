// CollectorMetrics: every Prometheus metric the collector exports, registered once.
//
// Flow traffic is labelled by segment, agent, exporter ("capture" for the agent's packet
// meter), IP protocol and direction; exported flows are also counted per exporter interface.
// Names follow Prometheus conventions (citywatch_ prefix, base units, _total counters);
// docs/metrics.md lists them. Labels are bounded: agent is the CN of a certificate the city
// issued, segment is what that agent declares (one per agent, checked for its alphabet),
// protocol is one of 256 values; there are no per-address labels. Label
// sets are resolved on first use and cached, so applying a batch costs a few map look-ups,
// not a registry walk.
//
// Thread-safety: apply_*/on_* are called from the ingest thread only; prometheus-cpp's
// counters are atomic, so the HTTP exposer threads may collect concurrently.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "collector/records/batch_summary.h"

namespace citywatch::collector {

class CollectorMetrics {
 public:
  explicit CollectorMetrics(prometheus::Registry& registry);

  // Adds a committed batch's totals (and, at start-up, the ledger's stored totals).
  void apply_flow_row(const std::string& segment, const std::string& agent, const FlowRow& row);
  void apply_interface_row(const std::string& segment, const std::string& agent,
                           const InterfaceRow& row);
  void apply_agent_totals(const std::string& agent, std::uint64_t batches,
                          const PerRecordKind<std::uint64_t>& records_by_kind);
  void apply_batch(const BatchSummary& b, const std::vector<FlowRow>& flows,
                   const std::vector<InterfaceRow>& interfaces);

  void on_duplicate_batch(const std::string& agent);
  void on_frame_rejected(const char* reason);
  void on_connection_rejected(const char* reason);
  void on_ledger_error();
  // How long one batch's ledger commit took (durable on disk or in PostgreSQL).
  void on_ledger_commit(double seconds) { commit_seconds_.Observe(seconds); }
  void on_agent_connected(const std::string& agent, double now_seconds);
  void on_agent_disconnected();
  void on_agent_seen(const std::string& agent, double now_seconds);
  void on_unknown_records(const std::string& agent, std::uint64_t n);

 private:
  struct FlowCounters {
    prometheus::Counter* flows;
    prometheus::Counter* packets;
    prometheus::Counter* bytes;
  };
  FlowCounters& flow_counters(const std::string& segment, const std::string& agent,
                              const FlowRow& row);

  prometheus::Family<prometheus::Counter>& flows_;
  prometheus::Family<prometheus::Counter>& packets_;
  prometheus::Family<prometheus::Counter>& bytes_;
  prometheus::Family<prometheus::Counter>& batches_;
  prometheus::Family<prometheus::Counter>& if_packets_;
  prometheus::Family<prometheus::Counter>& if_bytes_;
  prometheus::Family<prometheus::Counter>& duplicates_;
  prometheus::Family<prometheus::Counter>& records_;
  prometheus::Family<prometheus::Counter>& unknown_records_;
  prometheus::Family<prometheus::Counter>& frames_rejected_;
  prometheus::Counter& ledger_errors_;
  prometheus::Histogram& commit_seconds_;
  prometheus::Family<prometheus::Counter>& connections_rejected_;
  prometheus::Family<prometheus::Counter>& connections_;
  prometheus::Family<prometheus::Gauge>& last_seen_;
  prometheus::Gauge& connected_;
  // Label sets are resolved on first use; a batch then costs a map look-up per group.
  std::map<std::tuple<std::string, std::string, std::string, int, std::string>, FlowCounters>
      flow_cache_;
};

// The IANA protocol number as the `protocol` label: a name for the common ones, the number
// otherwise (still bounded: at most 256 values).
std::string protocol_label(int protocol);

}  // namespace citywatch::collector
