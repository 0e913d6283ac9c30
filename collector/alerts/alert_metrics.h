// AlertMetrics: the Prometheus metrics of alerting (docs/metrics.md): alerts by rule and
// state, alerts firing, suppressed signals, and per-sink sent / failed / dropped counts and
// queue length. Labels are bounded: rule names come from the loaded rule files, sinks from
// the config.
//
// Thread-safety: called from the io thread; prometheus-cpp counters are atomic, so the
// exposer may collect concurrently.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <string>

namespace citywatch::collector {

struct SinkCounters {
  prometheus::Counter* sent = nullptr;      // alerts delivered
  prometheus::Counter* failures = nullptr;  // failed attempts (each retry counts)
  prometheus::Counter* dropped = nullptr;   // given up: queue full or undeliverable
  prometheus::Gauge* queued = nullptr;
};

class AlertMetrics {
 public:
  explicit AlertMetrics(prometheus::Registry& registry);

  void on_alert(const std::string& rule, const std::string& severity, const char* state);
  void on_suppressed(const std::string& rule);
  void set_firing(double n) { firing_.Set(n); }
  void on_evicted() { evicted_.Increment(); }
  SinkCounters sink(const std::string& name);
  // Failed attempts of a sink by reason (connect, tls, unauthorized ...); a few fixed values.
  prometheus::Counter& sink_failure(const std::string& name, const std::string& reason) {
    return sink_failure_reasons_.Add({{"sink", name}, {"reason", reason}});
  }

 private:
  prometheus::Family<prometheus::Counter>& alerts_;
  prometheus::Family<prometheus::Counter>& suppressed_;
  prometheus::Family<prometheus::Counter>& sink_sent_;
  prometheus::Family<prometheus::Counter>& sink_failures_;
  prometheus::Family<prometheus::Counter>& sink_failure_reasons_;
  prometheus::Family<prometheus::Counter>& sink_dropped_;
  prometheus::Family<prometheus::Gauge>& sink_queue_;
  prometheus::Gauge& firing_;
  prometheus::Counter& evicted_;
};

}  // namespace citywatch::collector
