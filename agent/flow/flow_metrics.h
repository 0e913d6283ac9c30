// FlowMetrics: the agent's flow-listener health on its /metrics endpoint (docs/metrics.md):
// datagrams and kernel drops per listener, and per exporter datagrams, records, decode
// errors by reason, held/released data and last-seen time; template cache size.
//
// Exporter labels are bounded by FlowDecoder's exporter table (max_exporters, then
// "other"). Like AgentMetrics, the data path keeps plain integers; update() runs once a
// second on the io thread and advances the Prometheus counters by the difference.
//
// Ownership: the AgentRuntime. Thread-safety: update() on the io thread; prometheus-cpp
// metrics are atomic, so the exposer's threads may collect concurrently.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/flow/flow_decoder.h"
#include "agent/flow/flow_listener.h"

namespace citywatch::agent::flow {

class FlowMetrics {
 public:
  explicit FlowMetrics(prometheus::Registry& registry);
  void update(const std::vector<std::unique_ptr<FlowListener>>& listeners,
              const FlowDecoder& decoder);

 private:
  // A Prometheus counter fed from a cumulative integer kept elsewhere.
  struct Mirror {
    prometheus::Counter* counter = nullptr;
    std::uint64_t last = 0;
    void set(std::uint64_t total) {
      if (counter && total > last) counter->Increment(static_cast<double>(total - last));
      last = total;
    }
  };
  struct ListenerMetrics {
    Mirror datagrams, bytes, kernel_dropped, truncated;
    prometheus::Gauge* buffer = nullptr;
  };
  struct ExporterMetrics {
    Mirror datagrams, flows, interface_samples, held, released, header_not_ip, above_ceiling,
        rate_changes, not_learned;
    std::array<Mirror, kFlowErrorCount> errors;
    prometheus::Gauge* last_seen = nullptr;
  };

  prometheus::Family<prometheus::Counter>& datagrams_;
  prometheus::Family<prometheus::Counter>& bytes_;
  prometheus::Family<prometheus::Counter>& drops_;
  prometheus::Family<prometheus::Gauge>& buffer_;
  prometheus::Family<prometheus::Counter>& exporter_datagrams_;
  prometheus::Family<prometheus::Counter>& records_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Family<prometheus::Counter>& held_;
  prometheus::Family<prometheus::Counter>& not_ip_;
  prometheus::Family<prometheus::Gauge>& last_seen_;
  prometheus::Family<prometheus::Counter>& sampling_events_;
  prometheus::Family<prometheus::Gauge>& sampling_rate_;
  std::map<std::string, prometheus::Gauge*> rates_;  // by "exporter|domain|sampler"
  prometheus::Gauge& templates_;
  prometheus::Gauge& template_fields_;
  prometheus::Gauge& held_now_;
  Mirror evicted_share_, evicted_full_, sampling_evicted_;
  std::map<std::string, ListenerMetrics> listeners_;
  std::map<std::string, ExporterMetrics> exporters_;
};

}  // namespace citywatch::agent::flow
