#include "collector/alerts/alert_metrics.h"

namespace citywatch::collector {

AlertMetrics::AlertMetrics(prometheus::Registry& r)
    : alerts_(prometheus::BuildCounter()
                  .Name("citywatch_alerts_total")
                  .Help("Alert state changes by rule, severity and state (firing, resolved)")
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
                  .Help("Alerts firing now")
                  .Register(r)
                  .Add({})),
      evicted_(prometheus::BuildCounter()
                   .Name("citywatch_alerts_evicted_total")
                   .Help("Firing alerts dropped because alerts.max_active was reached")
                   .Register(r)
                   .Add({})) {}

void AlertMetrics::on_alert(const std::string& rule, const std::string& severity,
                            const char* state) {
  alerts_.Add({{"rule", rule}, {"severity", severity}, {"state", state}}).Increment();
}

void AlertMetrics::on_suppressed(const std::string& rule) {
  suppressed_.Add({{"rule", rule}}).Increment();
}

SinkCounters AlertMetrics::sink(const std::string& name) {
  return {&sink_sent_.Add({{"sink", name}}), &sink_failures_.Add({{"sink", name}}),
          &sink_dropped_.Add({{"sink", name}}), &sink_queue_.Add({{"sink", name}})};
}

}  // namespace citywatch::collector
