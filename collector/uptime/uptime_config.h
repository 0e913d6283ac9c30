// UptimeConfig: the collector configuration's `uptime:` section (docs/configuration.md):
// sites (which segments make up a site), the flap threshold, the agent grace period after a
// collector restart, the availability windows exported as metrics, the SLO, label bounds and
// the planned maintenance windows and the dependencies between devices, segments and sites.
// `citywatch report` reads the same section, so the collector and the report agree on sites and
// maintenance.
//
// Thread-safety: a plain value, built once at start-up.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "collector/uptime/dependencies.h"
#include "collector/uptime/maintenance.h"
#include "common/config_reader.h"

namespace citywatch::collector::uptime {

struct SiteSpec {
  std::string name;
  std::vector<std::string> segments;
};

// The outage-reduction target (docs/uptime.md, "Targets"): outage minutes in `period` at most
// (100 - reduction_percent) % of those in `baseline`.
struct TargetSpec {
  std::string period = "year";  // year, quarter, month (the current one) or a fixed period
  std::string baseline;         // a period; empty: the same period a year earlier
  double reduction_percent = 25;
};

struct UptimeConfig {
  bool enabled = true;
  std::string time_zone = "UTC";  // default zone of maintenance windows and reports
  std::chrono::nanoseconds min_outage = std::chrono::seconds(60);
  std::chrono::nanoseconds agent_grace = std::chrono::seconds(60);
  std::vector<std::chrono::nanoseconds> availability_windows = {
      std::chrono::hours(24), std::chrono::hours(24 * 7), std::chrono::hours(24 * 30)};
  double slo_percent = 99.9;
  TargetSpec target;
  std::int64_t max_devices = 4096;           // device series exported
  std::int64_t max_interface_series = 2048;  // interface series exported
  std::vector<SiteSpec> sites;
  std::vector<MaintenanceWindow> maintenance;
  // Root cause (docs/uptime.md, "Dependencies and root cause"): what each entity is reached
  // through; a dependent still down this long after its root ended becomes its own
  // incident; a child's alert waits at most this long for its parents' next check.
  std::vector<DependencySpec> dependencies;
  std::chrono::nanoseconds dependency_grace = std::chrono::minutes(2);
  std::chrono::nanoseconds dependency_wait = std::chrono::minutes(2);

  // The site a segment belongs to; a segment no site lists is its own site.
  const std::string& site_of(const std::string& segment) const;
};

// Reads `uptime:`; problems are recorded in the map's reader with file:line.
void read_uptime_config(ConfigMap& uptime, UptimeConfig& out);

// "30d" style label for a window ("1d", "7d", "12h", "90m", "45s").
std::string window_label(std::chrono::nanoseconds window);

}  // namespace citywatch::collector::uptime
