// Targets: outage time so far in the target period against the baseline period and the
// reduction target, per site (docs/uptime.md, "Targets"). The collector exports them as
// gauges for the Uptime dashboard; the arithmetic and the entities counted (devices and
// segments, not interfaces) are those of `citywatch report`, so both show the same minutes.
//
// Thread-safety: a pure computation over the store; call it from the store's thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "collector/uptime/availability.h"
#include "collector/uptime/maintenance.h"
#include "collector/uptime/outage_store.h"
#include "collector/uptime/period.h"
#include "collector/uptime/time_zone.h"
#include "collector/uptime/uptime_config.h"
#include "common/status.h"

namespace citywatch::collector::uptime {

struct SiteTarget {
  std::string site;
  std::int64_t period_down_ns = 0;    // outage time in the target period, up to now
  std::int64_t baseline_down_ns = 0;  // outage time in the whole baseline period
  double target_down_ns = 0;          // baseline × (1 - reduction)
};

struct TargetFigures {
  Period period;
  Period baseline;
  std::vector<SiteTarget> sites;  // by site name
};

// The target period in effect at now_ns (the current year, quarter or month for a rolling
// spec) and its baseline.
Status resolve_target_periods(const TargetSpec& spec, const TimeZone& tz, std::int64_t now_ns,
                              Period& period, Period& baseline);

Status compute_targets(const OutageStore& store, const MaintenanceCalendar& calendar,
                       const TimeZone& tz, const TargetSpec& spec, std::int64_t now_ns,
                       TargetFigures& out);

}  // namespace citywatch::collector::uptime
