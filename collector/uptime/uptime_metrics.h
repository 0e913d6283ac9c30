// UptimeMetrics: the uptime tracker's Prometheus metrics (docs/metrics.md, "Uptime").
//
// Labels are bounded: site and segment come from configuration and agent certificates, kind
// and cause are small enums, window is one of at most 8 configured windows. Per-device and
// per-interface `*_up` series are capped by uptime.max_devices and
// uptime.max_interface_series; entities past the cap are still tracked and stored, only not
// exported one by one, and are counted in citywatch_uptime_series_capped_total.
// Handles are resolved once per entity or site and cached by the caller.
//
// Thread-safety: called from the ingest thread only; prometheus-cpp metrics are atomic, so
// the exposer's threads may collect concurrently.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>

#include "collector/uptime/outage_store.h"
#include "collector/uptime/targets.h"
#include "collector/uptime/uptime_config.h"

namespace citywatch::collector::uptime {

class UptimeMetrics {
 public:
  // Per (site, kind) series.
  struct SiteSeries {
    prometheus::Counter* outage_seconds = nullptr;
    prometheus::Counter* monitored_seconds = nullptr;
    prometheus::Counter* flaps = nullptr;
    prometheus::Gauge* open = nullptr;
    // The same for outages attached to another entity's (docs/uptime.md, "Dependencies").
    prometheus::Counter* dependent_outage_seconds = nullptr;
    prometheus::Gauge* open_dependent = nullptr;
  };
  struct EntitySeries {
    prometheus::Gauge* up = nullptr;           // null past the cap
    prometheus::Gauge* maintenance = nullptr;  // devices only
    prometheus::Gauge* dependent = nullptr;    // devices and segments; null past the cap
  };

  UptimeMetrics(prometheus::Registry& registry, const UptimeConfig& config);

  SiteSeries* site(const std::string& site, EntityKind kind);
  EntitySeries entity(const EntityRow& e);
  // Removes the entity's series (another collector of a pair answers for it now).
  void remove_entity(const EntityRow& e, EntitySeries& s);
  // An outage reached min_outage: a root (an incident) or a dependent of another's outage.
  void outage(const std::string& site, EntityKind kind, const std::string& cause, bool dependent);
  // How many dependents the open outage of `root` (a declared parent) holds now.
  prometheus::Gauge* incident_dependents(const EntityRow& root, const std::string& root_name);
  void set_availability(const std::string& site, const std::string& window, double ratio);
  void set_segment_availability(const std::string& site, const std::string& segment,
                                const std::string& window, double ratio);
  // Outage time against the baseline and the reduction target (docs/uptime.md, "Targets").
  void set_targets(const TargetFigures& t, double reduction_percent);
  // Removes the figures read from the outage record (availability, segment availability,
  // targets): in a collector pair one collector exports them (docs/scaling.md).
  void clear_record_figures();
  void store_error() { store_errors_->Increment(); }
  void late_record() { late_->Increment(); }
  // An interface the tracker did not start to follow: `reason` unknown_device (a link trap
  // from a device no agent polls, beyond the first kMaxTrapOnlyInterfaces) or full (the
  // tracker holds kMaxEntities).
  void entity_refused(const char* reason) { refused_.Add({{"reason", reason}}).Increment(); }

 private:
  const UptimeConfig& config_;
  prometheus::Family<prometheus::Gauge>& device_up_;
  prometheus::Family<prometheus::Gauge>& interface_up_;
  prometheus::Family<prometheus::Gauge>& agent_up_;
  prometheus::Family<prometheus::Gauge>& device_maintenance_;
  prometheus::Family<prometheus::Counter>& outages_;
  prometheus::Family<prometheus::Counter>& dependent_outages_;
  prometheus::Family<prometheus::Counter>& dependent_seconds_;
  prometheus::Family<prometheus::Gauge>& open_dependent_;
  prometheus::Family<prometheus::Gauge>& device_dependent_;
  prometheus::Family<prometheus::Gauge>& agent_dependent_;
  prometheus::Family<prometheus::Gauge>& incident_dependents_;
  prometheus::Family<prometheus::Counter>& flaps_;
  prometheus::Family<prometheus::Counter>& outage_seconds_;
  prometheus::Family<prometheus::Counter>& monitored_seconds_;
  prometheus::Family<prometheus::Gauge>& segment_availability_;
  prometheus::Family<prometheus::Gauge>& period_outage_;
  prometheus::Family<prometheus::Gauge>& baseline_outage_;
  prometheus::Family<prometheus::Gauge>& target_outage_;
  prometheus::Family<prometheus::Gauge>& target_info_;
  prometheus::Gauge* target_info_series_ = nullptr;
  prometheus::Family<prometheus::Gauge>& open_;
  prometheus::Family<prometheus::Gauge>& availability_;
  prometheus::Family<prometheus::Counter>& capped_;
  prometheus::Counter* store_errors_;
  prometheus::Counter* late_;
  prometheus::Family<prometheus::Counter>& refused_;
  std::map<std::pair<std::string, EntityKind>, SiteSeries> sites_;
  std::set<std::pair<prometheus::Family<prometheus::Gauge>*, prometheus::Gauge*>> record_series_;
  prometheus::Gauge& record(prometheus::Family<prometheus::Gauge>& f,
                            const prometheus::Labels& labels);
  std::int64_t devices_exported_ = 0;
  std::int64_t interfaces_exported_ = 0;
};

}  // namespace citywatch::collector::uptime
