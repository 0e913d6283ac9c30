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

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "collector/alerts/alert.h"
#include "common/heavy_hitters.h"

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

  // An alert began firing (+1 firing for its severity and category; its source, the `src`
  // key label, counted among the top alerting sources of the hour) or resolved (-1).
  void on_firing(const Alert& a, std::int64_t wall_ns);
  void on_resolved(const Alert& a);
  // A firing alert's rule was reloaded: moves it between firing series if its severity or
  // category changed.
  void on_rule_changed(const RuleInfo& from, const RuleInfo& to);
  void on_suppressed(const std::string& rule);
  // The rule's `category` label, else "none": a few values per rule pack.
  static std::string category(const RuleInfo& rule);
  // Top alerting sources, as exported (for tests): window "current" or "previous".
  std::vector<std::pair<std::string, std::uint64_t>> top_sources(bool previous) const;
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
  prometheus::Family<prometheus::Gauge>& firing_;
  prometheus::Counter& evicted_;
  prometheus::Family<prometheus::Gauge>& top_sources_;
  // Alerts raised per source in the current and the previous hour of the collector's clock:
  // Space-Saving over 256 sources, top 10 exported (at most 20 series).
  void export_sources();
  // Counts a state change in citywatch_alerts_total; returns the alert's firing series.
  prometheus::Gauge& count(const Alert& a, const char* state);
  std::int64_t hour_ = -1;
  HeavyHitters<std::string> sources_{256};
  std::vector<std::pair<std::string, std::uint64_t>> previous_;
  std::vector<prometheus::Gauge*> source_gauges_;
};

}  // namespace citywatch::collector
