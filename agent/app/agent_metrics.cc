#include "agent/app/agent_metrics.h"

#include "common/version.h"

namespace citywatch::agent {

namespace {

prometheus::Counter& counter(prometheus::Registry& r, const char* name, const char* help,
                             const prometheus::Labels& labels = {}) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add(labels);
}
prometheus::Gauge& gauge(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

}  // namespace

AgentMetrics::AgentMetrics(const std::string& agent, const std::string& segment)
    : registry_(std::make_shared<prometheus::Registry>()),
      packets_(prometheus::BuildCounter()
                   .Name("citywatch_agent_packets_total")
                   .Help("Packets read from each capture source")
                   .Register(*registry_)),
      drops_(prometheus::BuildCounter()
                 .Name("citywatch_agent_packets_dropped_total")
                 .Help("Packets lost before the agent saw them (pcap_stats), by where")
                 .Register(*registry_)),
      last_reload_ok_(gauge(*registry_, "citywatch_agent_config_last_reload_successful",
                            "1 if the last SIGHUP reload was applied (or none was tried), 0 if "
                            "it was rejected")) {
  last_reload_ok_.Set(1);
  auto& reloads = prometheus::BuildCounter()
                      .Name("citywatch_agent_config_reloads_total")
                      .Help("SIGHUP reloads: ok (applied) or rejected (running config kept)")
                      .Register(*registry_);
  reloads_ok_ = &reloads.Add({{"result", "ok"}});
  reloads_rejected_ = &reloads.Add({{"result", "rejected"}});
  auto& r = *registry_;
  prometheus::BuildGauge()
      .Name("citywatch_build_info")
      .Help("Build of the running program; value is always 1")
      .Register(r)
      .Add({{"version", std::string(kVersion)}, {"component", "agent"}})
      .Set(1);
  prometheus::BuildGauge()
      .Name("citywatch_agent_info")
      .Help("This agent's identity; value is always 1")
      .Register(r)
      .Add({{"agent", agent}, {"segment", segment}})
      .Set(1);
  auto& decode = prometheus::BuildCounter()
                     .Name("citywatch_agent_packets_decoded_total")
                     .Help("Packets by decode result: ok, not_ip, or the reason they were dropped")
                     .Register(r);
  for (std::size_t i = 0; i < kDecodeResultCount; ++i)
    decode_[i] = CounterMirror(decode.Add({{"result", to_string(static_cast<DecodeResult>(i))}}));
  auto& flows = prometheus::BuildCounter()
                    .Name("citywatch_agent_flows_total")
                    .Help("Flows the meter finished, by why they ended")
                    .Register(r);
  flows_idle_ = CounterMirror(flows.Add({{"end", "idle_timeout"}}));
  flows_active_ = CounterMirror(flows.Add({{"end", "active_timeout"}}));
  flows_tcp_ = CounterMirror(flows.Add({{"end", "tcp_fin_rst"}}));
  flows_evicted_ = CounterMirror(flows.Add({{"end", "evicted_table_full"}}));
  flows_flushed_ = CounterMirror(flows.Add({{"end", "flushed"}}));
  active_flows_ = &gauge(r, "citywatch_agent_active_flows", "Flows in the meter's table");
  records_ = CounterMirror(counter(r, "citywatch_agent_records_total", "Records produced"));
  records_lost_ = CounterMirror(
      counter(r, "citywatch_agent_records_dropped_total",
              "Records lost: the spool could not store their batch (disk full, I/O error), or "
              "a capture thread's batch found 64 MiB already waiting for the main thread"));
  spool_read_errors_ = CounterMirror(
      counter(r, "citywatch_agent_spool_read_errors_total",
              "Spooled batches skipped because they failed their checksum when read back"));
  reserve_used_ = CounterMirror(
      counter(r, "citywatch_agent_spool_reserve_used_total",
              "Times the spool's file system was full and its reserve file made room for the "
              "ack cursor"));
  disk_reads_ = CounterMirror(
      counter(r, "citywatch_agent_spool_disk_reads_total",
              "Batches read back from the spool's files to be sent, not handed over from memory "
              "(after a restart or reconnect, or when sending fell 8 MiB behind)"));
  batches_appended_ = CounterMirror(
      counter(r, "citywatch_agent_spool_batches_appended_total", "Batches written to the spool"));
  batches_dropped_ =
      CounterMirror(counter(r, "citywatch_agent_spool_batches_dropped_total",
                            "Unsent batches deleted because the spool reached its size limit"));
  corrupt_recovered_ =
      CounterMirror(counter(r, "citywatch_agent_spool_corrupt_records_total",
                            "Spool records found torn or corrupt at start-up and skipped"));
  segments_reused_ = CounterMirror(
      counter(r, "citywatch_agent_spool_segments_reused_total",
              "Spool segments started in the file of an emptied one instead of a new file"));
  spool_bytes_ = &gauge(r, "citywatch_agent_spool_bytes", "Bytes of spool on disk");
  spool_spare_bytes_ =
      &gauge(r, "citywatch_agent_spool_spare_bytes",
             "Bytes of the emptied segment file the spool keeps for its next segment");
  spool_pending_ =
      &gauge(r, "citywatch_agent_spool_batches_pending", "Batches spooled and not yet acked");
  sent_ = CounterMirror(counter(r, "citywatch_agent_batches_sent_total",
                                "Batches sent to the collector (resends included)"));
  bytes_sent_ = CounterMirror(counter(r, "citywatch_agent_sent_bytes_total",
                                      "Frame bytes sent to the collector (compressed if so)"));
  batch_bytes_ = CounterMirror(
      counter(r, "citywatch_agent_sent_batch_bytes_total",
              "Payload bytes of the batches sent, before compression (batch.compression)"));
  acks_ = CounterMirror(counter(r, "citywatch_agent_acks_total", "Acks from the collector"));
  connect_attempts_ = CounterMirror(
      counter(r, "citywatch_agent_connect_attempts_total", "Connection attempts to collectors"));
  connect_failures_ = CounterMirror(
      counter(r, "citywatch_agent_connect_failures_total", "Connection attempts that failed"));
  refusals_ = CounterMirror(counter(r, "citywatch_agent_collector_refusals_total",
                                    "Sessions the collector refused (ERROR frames)"));
  reencoded_ = CounterMirror(
      counter(r, "citywatch_agent_batches_reencoded_total",
              "Compact batches re-encoded fixed for a collector that does not read them"));
  unpacked_ = CounterMirror(
      counter(r, "citywatch_agent_batches_unpacked_total",
              "Packed (lz4) batches unpacked for a collector that does not read them"));
  connected_ = &gauge(r, "citywatch_agent_collector_connected",
                      "1 while a session with a collector is established");
}

Status AgentMetrics::listen(const std::string& host, std::uint16_t& port,
                            const http::WebConfig& web, std::string& url) {
  http::MetricsServerOptions options;
  options.host = host;
  options.port = port;
  options.web = web;
  server_ = std::make_unique<http::MetricsServer>(std::move(options), *registry_);
  server_->add(registry_);
  if (auto s = server_->start(); !s) return s;
  port = server_->port();
  url = server_->url();
  return Status::ok();
}

AgentMetrics::SourceMetrics& AgentMetrics::add_source(const std::string& name) {
  SourceMetrics& m = sources_.emplace_back();
  m.packets = CounterMirror(packets_.Add({{"source", name}}));
  m.kernel_dropped = CounterMirror(drops_.Add({{"source", name}, {"where", "kernel"}}));
  m.interface_dropped = CounterMirror(drops_.Add({{"source", name}, {"where", "interface"}}));
  return m;
}

void AgentMetrics::update(const DecodeCounters& decode, const FlowMeterStats& meter,
                          const SpoolStats& spool, const ForwarderStats& forward,
                          std::uint64_t records, std::uint64_t records_lost) {
  for (std::size_t i = 0; i < kDecodeResultCount; ++i) decode_[i].set(decode.by_result[i]);
  flows_idle_.set(meter.flows_expired_idle);
  flows_active_.set(meter.flows_expired_active);
  flows_tcp_.set(meter.flows_ended_tcp);
  flows_evicted_.set(meter.flows_evicted);
  flows_flushed_.set(meter.flows_flushed);
  active_flows_->Set(static_cast<double>(meter.active_flows));
  records_.set(records);
  records_lost_.set(records_lost);
  spool_read_errors_.set(spool.read_errors);
  disk_reads_.set(spool.batches_read_from_disk);
  reserve_used_.set(spool.reserve_used);
  batches_appended_.set(spool.batches_appended);
  batches_dropped_.set(spool.batches_dropped_full);
  corrupt_recovered_.set(spool.corrupt_records_recovered);
  segments_reused_.set(spool.segments_reused);
  spool_bytes_->Set(static_cast<double>(spool.bytes));
  spool_spare_bytes_->Set(static_cast<double>(spool.spare_bytes));
  spool_pending_->Set(static_cast<double>(spool.batches_pending));
  sent_.set(forward.batches_sent);
  bytes_sent_.set(forward.bytes_sent);
  batch_bytes_.set(forward.batch_bytes);
  acks_.set(forward.acks);
  connect_attempts_.set(forward.connect_attempts);
  connect_failures_.set(forward.connect_failures);
  refusals_.set(forward.refusals);
  reencoded_.set(forward.batches_reencoded);
  unpacked_.set(forward.batches_unpacked);
  connected_->Set(forward.connected ? 1 : 0);
}

void AgentMetrics::update_packet_events(const PacketEventStats& ev) {
  if (!events_) {
    auto& r = *registry_;
    events_ = std::make_unique<EventMetrics>();
    auto& produced = prometheus::BuildCounter()
                         .Name("citywatch_agent_packet_events_total")
                         .Help("Packet events produced, by kind")
                         .Register(r);
    auto& suppressed =
        prometheus::BuildCounter()
            .Name("citywatch_agent_packet_events_suppressed_total")
            .Help(
                "Packet events not produced because a per-key budget or a per-kind rate "
                "limit was spent, by kind and reason")
            .Register(r);
    for (std::size_t k = 1; k < kPacketEventKinds; ++k) {
      const std::string kind = to_string(static_cast<PacketEventKind>(k));
      events_->emitted[k] = CounterMirror(produced.Add({{"kind", kind}}));
      events_->suppressed_budget[k] =
          CounterMirror(suppressed.Add({{"kind", kind}, {"reason", "key_budget"}}));
      events_->suppressed_rate[k] =
          CounterMirror(suppressed.Add({{"kind", kind}, {"reason", "rate_limit"}}));
    }
    auto& dns = prometheus::BuildCounter()
                    .Name("citywatch_agent_dns_messages_total")
                    .Help("DNS payloads seen by the packet-event extractor, by decode result")
                    .Register(r);
    for (std::size_t i = 0; i < kDnsResultCount; ++i)
      events_->dns[i] = CounterMirror(dns.Add({{"result", to_string(static_cast<DnsResult>(i))}}));
    events_->arp_malformed =
        CounterMirror(counter(r, "citywatch_agent_arp_malformed_total",
                              "ARP frames that are not Ethernet/IPv4 ARP or are cut short"));
    events_->icmp_quote_truncated =
        CounterMirror(counter(r, "citywatch_agent_icmp_quote_truncated_total",
                              "ICMP unreachable messages quoting too little to name a protocol"));
    events_->key_evictions = CounterMirror(
        counter(r, "citywatch_agent_packet_event_key_evictions_total",
                "Per-key budgets displaced by another key before their window ended"));
    auto& resets = prometheus::BuildCounter()
                       .Name("citywatch_agent_packet_event_table_resets_total")
                       .Help("Times a full ARP or MAC table was cleared to start over")
                       .Register(r);
    events_->arp_resets = CounterMirror(resets.Add({{"table", "arp"}}));
    events_->mac_resets = CounterMirror(resets.Add({{"table", "mac"}}));
    events_->probes_evicted = CounterMirror(
        counter(r, "citywatch_agent_tcp_probes_evicted_total",
                "TCP connection attempts pushed out of the full probe ring before their "
                "answer or timeout (not reported as failed)"));
  }
  for (std::size_t k = 1; k < kPacketEventKinds; ++k) {
    events_->emitted[k].set(ev.emitted[k]);
    events_->suppressed_budget[k].set(ev.suppressed_budget[k]);
    events_->suppressed_rate[k].set(ev.suppressed_rate[k]);
  }
  for (std::size_t i = 0; i < kDnsResultCount; ++i) events_->dns[i].set(ev.dns[i]);
  events_->arp_malformed.set(ev.arp_malformed);
  events_->icmp_quote_truncated.set(ev.icmp_quote_truncated);
  events_->key_evictions.set(ev.key_evictions);
  events_->arp_resets.set(ev.arp_table_resets);
  events_->mac_resets.set(ev.mac_table_resets);
  events_->probes_evicted.set(ev.probes_evicted);
}

void AgentMetrics::count_reload(bool ok) {
  (ok ? reloads_ok_ : reloads_rejected_)->Increment();
  last_reload_ok_.Set(ok ? 1 : 0);
}

void AgentMetrics::update_snmp(const SnmpPoller::Stats* poller, const TrapReceiver::Stats* traps) {
  if (!poller && !traps) return;
  if (!snmp_) {
    auto& r = *registry_;
    snmp_ = std::make_unique<SnmpMetrics>();
    auto& polls = prometheus::BuildCounter()
                      .Name("citywatch_agent_snmp_polls_total")
                      .Help("Device polls finished, by result")
                      .Register(r);
    snmp_->polls_ok = CounterMirror(polls.Add({{"result", "ok"}}));
    snmp_->polls_failed = CounterMirror(polls.Add({{"result", "failed"}}));
    snmp_->requests = CounterMirror(
        counter(r, "citywatch_agent_snmp_requests_total", "SNMP requests sent (GET and GETBULK)"));
    snmp_->timeouts = CounterMirror(counter(r, "citywatch_agent_snmp_timeouts_total",
                                            "Requests with no answer after every retry"));
    snmp_->backoffs =
        CounterMirror(counter(r, "citywatch_agent_snmp_backoffs_total",
                              "Times max-repetitions was halved after an error or too-big answer"));
    snmp_->reboots = CounterMirror(counter(r, "citywatch_agent_snmp_reboots_total",
                                           "Device reboots seen (sysUpTime went backwards)"));
    snmp_->rows_dropped =
        CounterMirror(counter(r, "citywatch_agent_snmp_rows_dropped_total",
                              "Interface rows dropped: more interfaces than the per-device cap"));
    snmp_->bad_values = CounterMirror(counter(r, "citywatch_agent_snmp_bad_values_total",
                                              "Varbinds of an unexpected type, ignored"));
    snmp_->malformed_answers = CounterMirror(
        counter(r, "citywatch_agent_snmp_malformed_answers_total",
                "Datagrams at the poller's sockets whose BER lengths do not fit, dropped unread"));
    snmp_->rounds = CounterMirror(counter(r, "citywatch_agent_snmp_rounds_total",
                                          "Rounds in which every device was polled once more"));
    auto& received = prometheus::BuildCounter()
                         .Name("citywatch_agent_snmp_traps_total")
                         .Help("Notifications received, by what became of them")
                         .Register(r);
    snmp_->traps = CounterMirror(received.Add({{"result", "accepted"}}));
    snmp_->traps_bad_community = CounterMirror(received.Add({{"result", "bad_community"}}));
    snmp_->traps_malformed = CounterMirror(received.Add({{"result", "malformed"}}));
    snmp_->traps_unknown_user = CounterMirror(received.Add({{"result", "unknown_user"}}));
    snmp_->traps_wrong_engine = CounterMirror(received.Add({{"result", "wrong_engine"}}));
    snmp_->traps_bad_auth = CounterMirror(received.Add({{"result", "bad_auth"}}));
    snmp_->traps_level_too_low =
        CounterMirror(received.Add({{"result", "security_level_too_low"}}));
    snmp_->traps_decryption_error = CounterMirror(received.Add({{"result", "decryption_error"}}));
    snmp_->traps_not_in_time_window =
        CounterMirror(received.Add({{"result", "not_in_time_window"}}));
    snmp_->trap_kernel_dropped = CounterMirror(
        counter(r, "citywatch_agent_snmp_trap_socket_dropped_total",
                "Trap datagrams the kernel dropped because the socket buffer was full"));
    snmp_->informs = CounterMirror(
        counter(r, "citywatch_agent_snmp_informs_total", "Informs received and acknowledged"));
    snmp_->in_flight =
        &gauge(r, "citywatch_agent_snmp_requests_in_flight", "SNMP requests awaiting an answer");
    snmp_->queued = &gauge(r, "citywatch_agent_snmp_polls_queued",
                           "Polls waiting for a free slot under the in-flight cap");
    snmp_->devices_down =
        &gauge(r, "citywatch_agent_snmp_devices_down", "Polled devices currently unreachable");
  }
  if (poller) {
    snmp_->polls_ok.set(poller->polls - poller->polls_failed);
    snmp_->polls_failed.set(poller->polls_failed);
    snmp_->requests.set(poller->requests);
    snmp_->timeouts.set(poller->timeouts);
    snmp_->backoffs.set(poller->backoffs);
    snmp_->reboots.set(poller->reboots);
    snmp_->rows_dropped.set(poller->rows_dropped);
    snmp_->bad_values.set(poller->bad_values);
    snmp_->malformed_answers.set(poller->malformed_answers);
    snmp_->rounds.set(poller->rounds_completed);
    snmp_->in_flight->Set(poller->in_flight);
    snmp_->queued->Set(poller->queued);
    snmp_->devices_down->Set(poller->devices_down);
  }
  if (traps) {
    snmp_->traps.set(traps->accepted);
    snmp_->traps_bad_community.set(traps->bad_community);
    snmp_->traps_malformed.set(traps->malformed);
    snmp_->traps_unknown_user.set(traps->unknown_user);
    snmp_->traps_wrong_engine.set(traps->wrong_engine);
    snmp_->traps_bad_auth.set(traps->bad_auth);
    snmp_->traps_level_too_low.set(traps->level_too_low);
    snmp_->traps_decryption_error.set(traps->decryption_error);
    snmp_->traps_not_in_time_window.set(traps->not_in_time_window);
    snmp_->trap_kernel_dropped.set(traps->kernel_dropped);
    snmp_->informs.set(traps->informs);
  }
}

}  // namespace citywatch::agent
