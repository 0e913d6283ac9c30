#include "collector/metrics/collector_metrics.h"

namespace citywatch::collector {

namespace {
constexpr const char* kKindNames[] = {
    "", "flow", "interface_sample", "device_status", "snmp_trap", "packet_event"};
}

std::string protocol_label(int protocol) {
  switch (protocol) {
    case 1:
      return "icmp";
    case 2:
      return "igmp";
    case 6:
      return "tcp";
    case 17:
      return "udp";
    case 41:
      return "ipv6";
    case 47:
      return "gre";
    case 50:
      return "esp";
    case 51:
      return "ah";
    case 58:
      return "icmpv6";
    case 89:
      return "ospf";
    case 103:
      return "pim";
    case 112:
      return "vrrp";
    case 132:
      return "sctp";
    default:
      return std::to_string(protocol);
  }
}

CollectorMetrics::CollectorMetrics(prometheus::Registry& r)
    : flows_(prometheus::BuildCounter()
                 .Name("citywatch_flows_total")
                 .Help("Flow records received, by segment, agent and IP protocol")
                 .Register(r)),
      packets_(prometheus::BuildCounter()
                   .Name("citywatch_flow_packets_total")
                   .Help("Packets carried by received flow records (sampling-scaled)")
                   .Register(r)),
      bytes_(prometheus::BuildCounter()
                 .Name("citywatch_flow_bytes_total")
                 .Help("Bytes (from the IP header on) carried by received flow records")
                 .Register(r)),
      batches_(prometheus::BuildCounter()
                   .Name("citywatch_collector_batches_received_total")
                   .Help("Batches accepted from each agent (durable across restarts)")
                   .Register(r)),
      if_packets_(prometheus::BuildCounter()
                      .Name("citywatch_flow_interface_packets_total")
                      .Help("Packets of exported flows by exporter interface (ifIndex) and "
                            "direction (in: the flow's input interface, out: its output)")
                      .Register(r)),
      if_bytes_(prometheus::BuildCounter()
                    .Name("citywatch_flow_interface_bytes_total")
                    .Help("Bytes of exported flows by exporter interface and direction")
                    .Register(r)),
      duplicates_(prometheus::BuildCounter()
                      .Name("citywatch_collector_batches_duplicate_total")
                      .Help("Batches received again after a reconnect and not counted twice")
                      .Register(r)),
      records_(prometheus::BuildCounter()
                   .Name("citywatch_collector_records_received_total")
                   .Help("Records accepted, by agent and record kind")
                   .Register(r)),
      unknown_records_(prometheus::BuildCounter()
                           .Name("citywatch_collector_records_unknown_kind_total")
                           .Help("Records of a kind this collector does not know, skipped")
                           .Register(r)),
      frames_rejected_(prometheus::BuildCounter()
                           .Name("citywatch_collector_frames_rejected_total")
                           .Help("Frames refused by the wire decoder, by reason")
                           .Register(r)),
      ledger_errors_(prometheus::BuildCounter()
                         .Name("citywatch_collector_ledger_errors_total")
                         .Help("Batches the ingest ledger could not commit (disk full, I/O "
                               "error): not acked, so the agent keeps and resends them")
                         .Register(r)
                         .Add({})),
      commit_seconds_(
          prometheus::BuildHistogram()
              .Name("citywatch_collector_ledger_commit_seconds")
              .Help("Time to commit one batch to the ingest ledger, durably (SQLite "
                    "fsync or PostgreSQL commit), before it is acked")
              .Register(r)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001,
                                                               0.0025, 0.005, 0.01, 0.025, 0.05,
                                                               0.1, 0.25, 0.5, 1, 2.5})),
      connections_rejected_(prometheus::BuildCounter()
                                .Name("citywatch_collector_connections_rejected_total")
                                .Help("Agent connections refused, by reason")
                                .Register(r)),
      connections_(prometheus::BuildCounter()
                       .Name("citywatch_collector_connections_total")
                       .Help("Agent sessions established")
                       .Register(r)),
      last_seen_(prometheus::BuildGauge()
                     .Name("citywatch_collector_agent_last_seen_timestamp_seconds")
                     .Help("When each agent last sent a frame, Unix time")
                     .Register(r)),
      connected_(prometheus::BuildGauge()
                     .Name("citywatch_collector_agents_connected")
                     .Help("Agents with an established session")
                     .Register(r)
                     .Add({})) {
  // Expose the reasons at zero from the start, so alerts on increase() see the first one.
  for (const char* reason :
       {"bad_magic", "bad_version", "bad_type", "too_large", "bad_checksum", "truncated",
        "trailing_bytes", "bad_record", "too_many_records", "bad_string", "decoded_too_large",
        "unexpected_frame", "not_zstd", "zstd_no_size", "zstd_too_large", "zstd_corrupt",
        "lz4_too_large", "lz4_corrupt"})
    frames_rejected_.Add({{"reason", reason}});
  for (const char* reason : {"no_client_certificate", "certificate_verify_failed", "tls_handshake",
                             "unknown_agent", "agent_id_mismatch", "protocol"})
    connections_rejected_.Add({{"reason", reason}});
}

CollectorMetrics::FlowCounters& CollectorMetrics::flow_counters(const std::string& segment,
                                                                const std::string& agent,
                                                                const FlowRow& row) {
  auto key = std::make_tuple(segment, agent, row.exporter, row.protocol, row.direction);
  auto it = flow_cache_.find(key);
  if (it != flow_cache_.end()) return it->second;
  const prometheus::Labels labels{{"segment", segment},
                                  {"agent", agent},
                                  {"exporter", row.exporter},
                                  {"protocol", protocol_label(row.protocol)},
                                  {"direction", row.direction}};
  FlowCounters c{&flows_.Add(labels), &packets_.Add(labels), &bytes_.Add(labels)};
  return flow_cache_.emplace(std::move(key), c).first->second;
}

void CollectorMetrics::apply_flow_row(const std::string& segment, const std::string& agent,
                                      const FlowRow& row) {
  FlowCounters& c = flow_counters(segment, agent, row);
  c.flows->Increment(static_cast<double>(row.totals.flows));
  c.packets->Increment(static_cast<double>(row.totals.packets));
  c.bytes->Increment(static_cast<double>(row.totals.bytes));
}

void CollectorMetrics::apply_interface_row(const std::string& segment, const std::string& agent,
                                           const InterfaceRow& row) {
  // Few exported-flow groups per batch, and the family caches label sets itself.
  const prometheus::Labels labels{{"segment", segment},
                                  {"agent", agent},
                                  {"exporter", row.exporter},
                                  {"if_index", row.if_index},
                                  {"direction", row.direction}};
  if_packets_.Add(labels).Increment(static_cast<double>(row.packets));
  if_bytes_.Add(labels).Increment(static_cast<double>(row.bytes));
}

void CollectorMetrics::apply_agent_totals(const std::string& agent, std::uint64_t batches,
                                          const PerRecordKind<std::uint64_t>& records) {
  batches_.Add({{"agent", agent}}).Increment(static_cast<double>(batches));
  for (std::size_t k = 1; k < records.size(); ++k)
    records_.Add({{"agent", agent}, {"kind", kKindNames[k]}})
        .Increment(static_cast<double>(records[k]));
}

void CollectorMetrics::apply_batch(const BatchSummary& b, const std::vector<FlowRow>& flows,
                                   const std::vector<InterfaceRow>& interfaces) {
  for (const FlowRow& r : flows) apply_flow_row(b.segment, b.agent, r);
  for (const InterfaceRow& r : interfaces) apply_interface_row(b.segment, b.agent, r);
  apply_agent_totals(b.agent, 1, b.records_by_kind);
}

void CollectorMetrics::on_duplicate_batch(const std::string& agent) {
  duplicates_.Add({{"agent", agent}}).Increment();
}
void CollectorMetrics::on_frame_rejected(const char* reason) {
  frames_rejected_.Add({{"reason", reason}}).Increment();
}
void CollectorMetrics::on_ledger_error() { ledger_errors_.Increment(); }
void CollectorMetrics::on_connection_rejected(const char* reason) {
  connections_rejected_.Add({{"reason", reason}}).Increment();
}
void CollectorMetrics::on_agent_connected(const std::string& agent, double now) {
  connected_.Increment();
  connections_.Add({{"agent", agent}}).Increment();
  last_seen_.Add({{"agent", agent}}).Set(now);
}
void CollectorMetrics::on_agent_disconnected() { connected_.Decrement(); }
void CollectorMetrics::on_agent_seen(const std::string& agent, double now) {
  last_seen_.Add({{"agent", agent}}).Set(now);
}
void CollectorMetrics::on_unknown_records(const std::string& agent, std::uint64_t n) {
  unknown_records_.Add({{"agent", agent}}).Increment(static_cast<double>(n));
}

}  // namespace citywatch::collector
