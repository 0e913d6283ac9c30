// AgentMetrics: the agent's own health metrics on its /metrics endpoint (docs/metrics.md).
//
// The data path keeps plain integer counters (no atomics, no locks per packet); once a
// second the runtime hands them here and the Prometheus counters are advanced by the
// difference. Operators see capture drops, decode errors, spool depth and the collector link
// without the hot path paying for it.
//
// Thread-safety: update calls come from the agent's io thread; prometheus-cpp metrics are
// atomic, so the exposer's threads may read concurrently.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <list>
#include <memory>
#include <string>

#include "agent/capture/flow_meter.h"
#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_events.h"
#include "agent/capture/packet_source.h"
#include "agent/forward/forwarder.h"
#include "agent/snmp/snmp_poller.h"
#include "agent/snmp/trap_receiver.h"
#include "agent/spool/spool.h"
#include "common/http/metrics_server.h"
#include "common/status.h"

namespace citywatch::agent {

// A Prometheus counter fed from a cumulative integer kept elsewhere.
class CounterMirror {
 public:
  CounterMirror() = default;
  explicit CounterMirror(prometheus::Counter& c) : counter_(&c) {}
  void set(std::uint64_t total) {
    if (counter_ && total > last_) counter_->Increment(static_cast<double>(total - last_));
    last_ = total;
  }

 private:
  prometheus::Counter* counter_ = nullptr;
  std::uint64_t last_ = 0;
};

class AgentMetrics {
 public:
  struct SourceMetrics {
    CounterMirror packets;
    CounterMirror kernel_dropped;
    CounterMirror interface_dropped;
  };

  AgentMetrics(const std::string& agent, const std::string& segment);

  // Starts the HTTP(S) endpoint (common/http/metrics_server.h); port 0 picks any. Returns
  // the bound port in port and the URL (for the log) in url.
  Status listen(const std::string& host, std::uint16_t& port, const http::WebConfig& web,
                std::string& url);

  SourceMetrics& add_source(const std::string& name);
  // For components that register their own families (agent/flow's FlowMetrics).
  prometheus::Registry& registry() { return *registry_; }
  void update(const DecodeCounters& decode, const FlowMeterStats& meter, const SpoolStats& spool,
              const ForwarderStats& forward, std::uint64_t records, std::uint64_t records_lost);
  // Packet events: produced and suppressed by kind, DNS payloads by decode result, tables.
  void update_packet_events(const PacketEventStats& events);
  // SNMP poller and trap receiver; either may be null (not configured). The families are
  // registered on the first call with one present.
  void update_snmp(const SnmpPoller::Stats* poller, const TrapReceiver::Stats* traps);
  // SIGHUP: a reload applied (ok) or refused (the running configuration stays).
  void count_reload(bool ok);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<http::MetricsServer> server_;
  prometheus::Family<prometheus::Counter>& packets_;
  prometheus::Family<prometheus::Counter>& drops_;
  std::list<SourceMetrics> sources_;  // stable addresses
  std::array<CounterMirror, kDecodeResultCount> decode_;
  CounterMirror flows_idle_, flows_active_, flows_tcp_, flows_evicted_, flows_flushed_;
  prometheus::Gauge* active_flows_;
  CounterMirror records_, records_lost_, spool_read_errors_, disk_reads_, reserve_used_,
      batches_appended_, batches_dropped_, corrupt_recovered_, segments_reused_;
  prometheus::Gauge* spool_bytes_;
  prometheus::Gauge* spool_spare_bytes_;
  prometheus::Gauge* spool_pending_;
  CounterMirror sent_, bytes_sent_, batch_bytes_, acks_, connect_attempts_, connect_failures_,
      refusals_, reencoded_, unpacked_;
  prometheus::Gauge* connected_;
  struct EventMetrics {
    std::array<CounterMirror, kPacketEventKinds> emitted, suppressed_budget, suppressed_rate;
    std::array<CounterMirror, kDnsResultCount> dns;
    CounterMirror arp_malformed, icmp_quote_truncated, key_evictions, arp_resets, mac_resets,
        probes_evicted;
  };
  std::unique_ptr<EventMetrics> events_;  // registered on first update
  struct SnmpMetrics {
    CounterMirror polls_ok, polls_failed, requests, timeouts, backoffs, reboots, rows_dropped,
        bad_values, malformed_answers, rounds, traps, informs, traps_bad_community, traps_malformed,
        traps_unknown_user, traps_wrong_engine, traps_bad_auth, traps_level_too_low,
        traps_decryption_error, traps_not_in_time_window, trap_kernel_dropped;
    prometheus::Gauge* in_flight;
    prometheus::Gauge* queued;
    prometheus::Gauge* devices_down;
  };
  std::unique_ptr<SnmpMetrics> snmp_;
  prometheus::Gauge& last_reload_ok_;
  prometheus::Counter* reloads_ok_ = nullptr;
  prometheus::Counter* reloads_rejected_ = nullptr;
};

}  // namespace citywatch::agent
