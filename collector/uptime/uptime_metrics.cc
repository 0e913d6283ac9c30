#include "collector/uptime/uptime_metrics.h"

#include <cstdio>

namespace citywatch::collector::uptime {

UptimeMetrics::UptimeMetrics(prometheus::Registry& r, const UptimeConfig& config)
    : config_(config),
      device_up_(prometheus::BuildGauge()
                     .Name("citywatch_uptime_device_up")
                     .Help("1 when the device answered its last check, 0 while it is in an outage")
                     .Register(r)),
      interface_up_(prometheus::BuildGauge()
                        .Name("citywatch_uptime_interface_up")
                        .Help("1 when an administratively up interface is operationally up, 0 "
                              "while it is in an outage")
                        .Register(r)),
      agent_up_(prometheus::BuildGauge()
                    .Name("citywatch_uptime_agent_up")
                    .Help("1 while the segment's agent has a session with this collector, 0 "
                          "while the segment is dark")
                    .Register(r)),
      device_maintenance_(prometheus::BuildGauge()
                              .Name("citywatch_uptime_device_in_maintenance")
                              .Help("1 while a planned maintenance window covers the device")
                              .Register(r)),
      outages_(prometheus::BuildCounter()
                   .Name("citywatch_uptime_outages_total")
                   .Help("Incidents: outages (at least uptime.min_outage long) that depend on "
                         "no other outage, by site, entity kind and cause; counted once the "
                         "outage has lasted min_outage")
                   .Register(r)),
      dependent_outages_(prometheus::BuildCounter()
                             .Name("citywatch_uptime_dependent_outages_total")
                             .Help("Outages attached to the outage of an entity they depend on "
                                   "(uptime.dependencies), not counted as incidents")
                             .Register(r)),
      dependent_seconds_(prometheus::BuildCounter()
                             .Name("citywatch_uptime_dependent_outage_seconds_total")
                             .Help("Entity-seconds of dependent outage outside maintenance "
                                   "windows (not in citywatch_uptime_outage_seconds_total)")
                             .Register(r)),
      open_dependent_(prometheus::BuildGauge()
                          .Name("citywatch_uptime_open_dependent_outages")
                          .Help("Dependent outages in progress")
                          .Register(r)),
      device_dependent_(prometheus::BuildGauge()
                            .Name("citywatch_uptime_device_dependent")
                            .Help("1 while the device is down because an entity it depends on "
                                  "is down (its outage is attached to that one), else 0")
                            .Register(r)),
      agent_dependent_(prometheus::BuildGauge()
                           .Name("citywatch_uptime_agent_dependent")
                           .Help("1 while the segment is dark because an entity it depends on "
                                 "is down, else 0")
                           .Register(r)),
      incident_dependents_(prometheus::BuildGauge()
                               .Name("citywatch_uptime_incident_dependents")
                               .Help("Devices and segments whose outage is attached to the open "
                                     "outage of this root (0 while it has none)")
                               .Register(r)),
      flaps_(prometheus::BuildCounter()
                 .Name("citywatch_uptime_flaps_total")
                 .Help("Down/up blips shorter than uptime.min_outage (not outages)")
                 .Register(r)),
      outage_seconds_(prometheus::BuildCounter()
                          .Name("citywatch_uptime_outage_seconds_total")
                          .Help("Entity-seconds of incident outage (outages that depend on no "
                                "other) outside maintenance windows")
                          .Register(r)),
      monitored_seconds_(prometheus::BuildCounter()
                             .Name("citywatch_uptime_monitored_seconds_total")
                             .Help("Entity-seconds monitored outside maintenance windows (the "
                                   "denominator of availability)")
                             .Register(r)),
      segment_availability_(
          prometheus::BuildGauge()
              .Name("citywatch_uptime_segment_availability_ratio")
              .Help("Availability of the segment's devices and its agent over the trailing "
                    "window, from the outage store (maintenance excluded)")
              .Register(r)),
      period_outage_(prometheus::BuildGauge()
                         .Name("citywatch_uptime_period_outage_seconds")
                         .Help("Outage time of the site's devices and segments so far in the "
                               "target period (uptime.target, maintenance excluded)")
                         .Register(r)),
      baseline_outage_(prometheus::BuildGauge()
                           .Name("citywatch_uptime_baseline_outage_seconds")
                           .Help("Outage time of the site's devices and segments in the "
                                 "baseline period (uptime.target)")
                           .Register(r)),
      target_outage_(prometheus::BuildGauge()
                         .Name("citywatch_uptime_target_outage_seconds")
                         .Help("Most outage time the target period may have: the baseline's "
                               "less uptime.target.reduction_percent")
                         .Register(r)),
      target_info_(prometheus::BuildGauge()
                       .Name("citywatch_uptime_target_info")
                       .Help("The target period, its baseline and the reduction (always 1)")
                       .Register(r)),
      open_(prometheus::BuildGauge()
                .Name("citywatch_uptime_open_outages")
                .Help("Incidents in progress: open outages that depend on no other")
                .Register(r)),
      availability_(prometheus::BuildGauge()
                        .Name("citywatch_uptime_availability_ratio")
                        .Help("Availability of the site's devices and segments over the "
                              "trailing window, from the outage store (maintenance excluded)")
                        .Register(r)),
      capped_(prometheus::BuildCounter()
                  .Name("citywatch_uptime_series_capped_total")
                  .Help("Entities tracked but not exported one by one (uptime.max_devices, "
                        "uptime.max_interface_series)")
                  .Register(r)),
      store_errors_(&prometheus::BuildCounter()
                         .Name("citywatch_uptime_store_errors_total")
                         .Help("Outage store writes that failed (the journal has the reason)")
                         .Register(r)
                         .Add({})),
      late_(&prometheus::BuildCounter()
                 .Name("citywatch_uptime_late_records_total")
                 .Help("State records older than the entity's last state change, ignored")
                 .Register(r)
                 .Add({})),
      refused_(prometheus::BuildCounter()
                   .Name("citywatch_uptime_entities_refused_total")
                   .Help("Interfaces not tracked: unknown_device (link traps from devices no "
                         "agent polls, beyond the first 1024 such interfaces) or full (the "
                         "tracker's bound of entities reached)")
                   .Register(r)) {
  for (const char* reason : {"unknown_device", "full"}) refused_.Add({{"reason", reason}});
}

UptimeMetrics::SiteSeries* UptimeMetrics::site(const std::string& site, EntityKind kind) {
  auto [it, added] = sites_.try_emplace({site, kind});
  if (added) {
    const prometheus::Labels l{{"site", site}, {"kind", to_string(kind)}};
    it->second.outage_seconds = &outage_seconds_.Add(l);
    it->second.monitored_seconds = &monitored_seconds_.Add(l);
    it->second.flaps = &flaps_.Add(l);
    it->second.open = &open_.Add(l);
    it->second.dependent_outage_seconds = &dependent_seconds_.Add(l);
    it->second.open_dependent = &open_dependent_.Add(l);
  }
  return &it->second;
}

UptimeMetrics::EntitySeries UptimeMetrics::entity(const EntityRow& e) {
  EntitySeries s;
  switch (e.kind) {
    case EntityKind::kSegment:
      s.up = &agent_up_.Add({{"site", e.site}, {"segment", e.segment}, {"agent", e.agent}});
      s.dependent =
          &agent_dependent_.Add({{"site", e.site}, {"segment", e.segment}, {"agent", e.agent}});
      break;
    case EntityKind::kDevice:
      if (devices_exported_ >= config_.max_devices) {
        capped_.Add({{"kind", "device"}}).Increment();
        break;
      }
      ++devices_exported_;
      s.up = &device_up_.Add({{"site", e.site}, {"segment", e.segment}, {"device", e.device_name}});
      s.maintenance = &device_maintenance_.Add(
          {{"site", e.site}, {"segment", e.segment}, {"device", e.device_name}});
      s.dependent = &device_dependent_.Add(
          {{"site", e.site}, {"segment", e.segment}, {"device", e.device_name}});
      break;
    case EntityKind::kInterface:
      if (interfaces_exported_ >= config_.max_interface_series) {
        capped_.Add({{"kind", "interface"}}).Increment();
        break;
      }
      ++interfaces_exported_;
      s.up = &interface_up_.Add({{"site", e.site},
                                 {"segment", e.segment},
                                 {"device", e.device_name},
                                 {"interface", e.interface}});
      break;
  }
  return s;
}

void UptimeMetrics::remove_entity(const EntityRow& e, EntitySeries& s) {
  switch (e.kind) {
    case EntityKind::kSegment:
      if (s.up) agent_up_.Remove(s.up);
      if (s.dependent) agent_dependent_.Remove(s.dependent);
      break;
    case EntityKind::kDevice:
      if (s.up) --devices_exported_;
      if (s.up) device_up_.Remove(s.up);
      if (s.maintenance) device_maintenance_.Remove(s.maintenance);
      if (s.dependent) device_dependent_.Remove(s.dependent);
      break;
    case EntityKind::kInterface:
      if (s.up) --interfaces_exported_;
      if (s.up) interface_up_.Remove(s.up);
      break;
  }
  s = EntitySeries{};
}

void UptimeMetrics::outage(const std::string& site, EntityKind kind, const std::string& cause,
                           bool dependent) {
  (dependent ? dependent_outages_ : outages_)
      .Add({{"site", site}, {"kind", to_string(kind)}, {"cause", cause}})
      .Increment();
}

prometheus::Gauge* UptimeMetrics::incident_dependents(const EntityRow& root,
                                                      const std::string& root_name) {
  return &incident_dependents_.Add(
      {{"site", root.site}, {"segment", root.segment}, {"root", root_name}});
}

prometheus::Gauge& UptimeMetrics::record(prometheus::Family<prometheus::Gauge>& f,
                                         const prometheus::Labels& labels) {
  prometheus::Gauge& g = f.Add(labels);
  record_series_.emplace(&f, &g);
  return g;
}

void UptimeMetrics::clear_record_figures() {
  for (const auto& [family, gauge] : record_series_) family->Remove(gauge);
  record_series_.clear();
  if (target_info_series_ != nullptr) target_info_.Remove(target_info_series_);
  target_info_series_ = nullptr;
}

void UptimeMetrics::set_availability(const std::string& site, const std::string& window,
                                     double ratio) {
  record(availability_, {{"site", site}, {"window", window}}).Set(ratio);
}

void UptimeMetrics::set_segment_availability(const std::string& site, const std::string& segment,
                                             const std::string& window, double ratio) {
  record(segment_availability_, {{"site", site}, {"segment", segment}, {"window", window}})
      .Set(ratio);
}

void UptimeMetrics::set_targets(const TargetFigures& t, double reduction_percent) {
  char reduction[32];
  std::snprintf(reduction, sizeof reduction, "%g", reduction_percent);
  const prometheus::Labels info{
      {"period", t.period.label}, {"baseline", t.baseline.label}, {"reduction_percent", reduction}};
  // The period rolls over (a new year): the old info series goes, so exactly one is left.
  if (target_info_series_ != nullptr) target_info_.Remove(target_info_series_);
  target_info_series_ = &target_info_.Add(info);
  target_info_series_->Set(1);
  for (const SiteTarget& s : t.sites) {
    const prometheus::Labels l{{"site", s.site}};
    record(period_outage_, l).Set(static_cast<double>(s.period_down_ns) / 1e9);
    record(baseline_outage_, l).Set(static_cast<double>(s.baseline_down_ns) / 1e9);
    record(target_outage_, l).Set(s.target_down_ns / 1e9);
  }
}

}  // namespace citywatch::collector::uptime
