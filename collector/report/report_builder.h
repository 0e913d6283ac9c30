// ReportBuilder: the figures behind `citywatch report` (docs/uptime.md, "Reports").
//
// For a calendar period in a chosen time zone it computes, per city, site, segment and
// device: availability, outage count, outage minutes, MTTR, MTBF and the error budget left
// against the SLO, the same for a baseline period, the reduction target ("25 % fewer outage
// minutes than the baseline") with whether it is met and by how much, the worst offenders
// and the outage minutes per week. Headline figures (city, site, segment) cover devices and
// segments (agent lost); interfaces appear among the worst offenders. With dependencies
// (uptime.dependencies) the headline counts each incident once, at its root; the device
// table and the city's per-device line count every outage, and the incidents list names
// each root with what it took down. All arithmetic is
// uptime::compute_figures, the same the collector's availability gauges use.
//
// Thread-safety: none; a one-shot computation on the CLI's thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "collector/uptime/availability.h"
#include "collector/uptime/maintenance.h"
#include "collector/uptime/outage_store.h"
#include "collector/uptime/period.h"
#include "collector/uptime/time_zone.h"
#include "common/status.h"

namespace citywatch::collector::report {

using uptime::parse_period;
using uptime::Period;
using uptime::year_before;

struct ReportOptions {
  Period period;
  Period baseline;
  uptime::TimeZone tz;
  double slo_percent = 99.9;
  double target_reduction_percent = 25;  // fewer outage minutes than the baseline
  std::int64_t now_ns = 0;               // open outages run until here
  std::size_t offenders = 10;
};

struct Line {
  std::string name;
  std::string kind;  // for offenders: segment, device, interface
  std::string site;
  std::string segment;
  uptime::Figures cur;
  uptime::Figures base;
};

// An outage others depended on (docs/uptime.md, "Dependencies and root cause"): the root
// cause and what it took down, each counted once in the headline figures.
struct Incident {
  std::string root;  // the device's name, or "segment NAME (agent A)"
  std::string kind;  // device, segment
  std::string site;
  std::string segment;
  std::string cause;
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;   // 0 while open
  std::int64_t down_ns = 0;  // inside the period, maintenance excluded
  std::int64_t devices = 0;  // distinct devices and segments with outages attached to it
  std::int64_t segments = 0;
  std::int64_t dependent_down_ns = 0;  // their outage time inside the period
  std::vector<std::string> took_down;  // their names, sorted
};

struct Week {
  std::string label;  // local date of its first day
  std::int64_t from_ns = 0;
  std::int64_t to_ns = 0;
  std::int64_t down_ns = 0;
  double target_minutes = 0;  // the period's target, pro rata
};

struct Report {
  ReportOptions options;
  std::int64_t from_ns = 0, to_ns = 0, base_from_ns = 0, base_to_ns = 0;
  Line city;
  // The city counting every device's and segment's own outages, dependents included: what
  // the headline would say without root cause. Differs from `city` by the dependents.
  Line city_per_device;
  std::vector<Line> sites;
  std::vector<Line> segments;
  std::vector<Line> devices;  // per device: every outage of the device, dependent or not
  std::vector<Line> offenders;
  std::vector<Incident> incidents;  // roots with dependents, longest first
  std::vector<Week> weeks;
  std::int64_t interfaces = 0;
  // Target: outage minutes at most baseline × (1 - reduction).
  double target_minutes = 0;
  bool target_met = false;
};

Status build_report(const uptime::OutageStore& store, const uptime::MaintenanceCalendar& calendar,
                    const ReportOptions& options, Report& out);

// Shared number formats, so HTML, CSV and Markdown print identical figures.
double minutes(std::int64_t ns);
std::string fmt_availability(const uptime::Figures& f);  // percent, 4 decimals
std::string fmt_minutes(double m);                       // 1 decimal
std::string fmt_mttr(const uptime::Figures& f);          // minutes
std::string fmt_mtbf(const uptime::Figures& f);          // hours
double budget_left_minutes(const uptime::Figures& f, double slo_percent);
std::string fmt_budget(const uptime::Figures& f, double slo_percent);  // "12.3 min (45.6 %)"

}  // namespace citywatch::collector::report
