#include "collector/alerts/alert_metrics.h"

namespace citywatch::collector {

AlertMetrics::AlertMetrics(prometheus::Registry& r)
    : alerts_(
          prometheus::BuildCounter()
              .Name("citywatch_alerts_total")
              .Help("Alert state changes by rule, severity, category, segment where first seen and "
                    "state (firing, resolved)")
              .Register(r)),
      suppressed_(
          prometheus::BuildCounter()
              .Name("citywatch_alerts_suppressed_total")
              .Help("Signals dropped by a rule's suppress_for window after its alert resolved")
              .Register(r)),
      sink_sent_(prometheus::BuildCounter()
                     .Name("citywatch_alert_sink_sent_total")
                     .Help("Alert notifications delivered, by sink")
                     .Register(r)),
      sink_failures_(prometheus::BuildCounter()
                         .Name("citywatch_alert_sink_failures_total")
                         .Help("Failed delivery attempts (each retry counts), by sink")
                         .Register(r)),
      sink_failure_reasons_(prometheus::BuildCounter()
                                .Name("citywatch_alert_sink_failure_reasons_total")
                                .Help("Failed delivery attempts, by sink and reason (resolve, "
                                      "connect, tls, write, read, timeout, unauthorized, "
                                      "http_status)")
                                .Register(r)),
      sink_dropped_(prometheus::BuildCounter()
                        .Name("citywatch_alert_sink_dropped_total")
                        .Help("Alert notifications given up (queue full or undeliverable), by sink")
                        .Register(r)),
      sink_queue_(prometheus::BuildGauge()
                      .Name("citywatch_alert_sink_queue_length")
                      .Help("Notifications waiting to be sent, by sink")
                      .Register(r)),
      firing_(prometheus::BuildGauge()
                  .Name("citywatch_alerts_firing")
                  .Help("Alerts firing now, by severity and category")
                  .Register(r)),
      evicted_(prometheus::BuildCounter()
                   .Name("citywatch_alerts_evicted_total")
                   .Help("Firing alerts dropped because alerts.max_active was reached")
                   .Register(r)
                   .Add({})),
      top_sources_(prometheus::BuildGauge()
                       .Name("citywatch_alert_top_sources")
                       .Help("Alerts raised by the 10 sources (src) that raised the most, in the "
                             "hour in progress (window=\"current\") and the last one "
                             "(\"previous\"), collector clock")
                       .Register(r)) {
  // Every severity's series exists from the start, so "nothing firing" reads 0, not absent.
  for (const char* sev : {"critical", "warning", "info"})
    firing_.Add({{"severity", sev}, {"category", "none"}});
}

std::string AlertMetrics::category(const RuleInfo& rule) {
  for (const auto& [k, v] : rule.labels)
    if (k == "category") return v;
  return "none";
}

prometheus::Gauge& AlertMetrics::count(const Alert& a, const char* state) {
  const std::string cat = category(*a.rule);
  std::string segment;
  for (const auto& [k, v] : a.where)
    if (k == "segment") segment = v;
  alerts_
      .Add({{"rule", a.rule->name},
            {"severity", a.rule->severity},
            {"category", cat},
            {"segment", segment},
            {"state", state}})
      .Increment();
  return firing_.Add({{"severity", a.rule->severity}, {"category", cat}});
}

void AlertMetrics::on_firing(const Alert& a, std::int64_t wall_ns) {
  count(a, "firing").Increment();
  std::string src;
  for (const auto& [k, v] : a.key_labels)
    if (k == "src") src = v;
  if (src.empty()) return;
  const std::int64_t hour = wall_ns / (std::int64_t{3600} * 1000000000);
  if (hour != hour_) {
    previous_.clear();
    if (hour_ >= 0 && hour == hour_ + 1)
      for (const auto& e : sources_.top(10)) previous_.emplace_back(e.key, e.count);
    sources_.clear();
    hour_ = hour;
  }
  sources_.add(src, 1);
  export_sources();
}

void AlertMetrics::on_resolved(const Alert& a) { count(a, "resolved").Decrement(); }

void AlertMetrics::on_rule_changed(const RuleInfo& from, const RuleInfo& to) {
  const std::string before = category(from), after = category(to);
  if (from.severity == to.severity && before == after) return;
  firing_.Add({{"severity", from.severity}, {"category", before}}).Decrement();
  firing_.Add({{"severity", to.severity}, {"category", after}}).Increment();
}

std::vector<std::pair<std::string, std::uint64_t>> AlertMetrics::top_sources(bool previous) const {
  if (previous) return previous_;
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (const auto& e : sources_.top(10)) out.emplace_back(e.key, e.count);
  return out;
}

void AlertMetrics::export_sources() {
  for (prometheus::Gauge* g : source_gauges_) top_sources_.Remove(g);
  source_gauges_.clear();
  for (const bool prev : {false, true}) {
    const auto list = top_sources(prev);
    for (std::size_t i = 0; i < list.size(); ++i) {
      prometheus::Gauge& g = top_sources_.Add({{"window", prev ? "previous" : "current"},
                                               {"rank", std::to_string(i + 1)},
                                               {"source", list[i].first}});
      g.Set(static_cast<double>(list[i].second));
      source_gauges_.push_back(&g);
    }
  }
}

void AlertMetrics::on_suppressed(const std::string& rule) {
  suppressed_.Add({{"rule", rule}}).Increment();
}

SinkCounters AlertMetrics::sink(const std::string& name) {
  return {&sink_sent_.Add({{"sink", name}}), &sink_failures_.Add({{"sink", name}}),
          &sink_dropped_.Add({{"sink", name}}), &sink_queue_.Add({{"sink", name}})};
}

}  // namespace citywatch::collector
