#include "collector/uptime/maintenance.h"

#include <algorithm>

#include "collector/uptime/clock.h"

namespace citywatch::collector::uptime {

void merge_intervals(std::vector<Interval>& v) {
  std::sort(v.begin(), v.end(),
            [](const Interval& a, const Interval& b) { return a.start_ns < b.start_ns; });
  std::size_t w = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i].end_ns <= v[i].start_ns) continue;
    if (w > 0 && v[i].start_ns <= v[w - 1].end_ns) {
      v[w - 1].end_ns = std::max(v[w - 1].end_ns, v[i].end_ns);
    } else {
      v[w++] = v[i];
    }
  }
  v.resize(w);
}

std::int64_t covered_ns(const std::vector<Interval>& merged, std::int64_t a, std::int64_t b) {
  std::int64_t sum = 0;
  for (const Interval& i : merged) {
    if (i.start_ns >= b) break;
    const std::int64_t s = std::max(a, i.start_ns);
    const std::int64_t e = std::min(b, i.end_ns);
    if (e > s) sum += e - s;
  }
  return sum;
}

namespace {

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return !s.empty() && std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

bool MaintenanceWindow::applies(const EntityScope& e) const {
  if (sites.empty() && segments.empty() && devices.empty()) return true;
  return contains(sites, e.site) || contains(segments, e.segment) || contains(devices, e.device) ||
         contains(devices, e.device_name);
}

void MaintenanceWindow::occurrences(std::int64_t from_ns, std::int64_t to_ns,
                                    std::vector<Interval>& out) const {
  const auto add = [&](std::int64_t start_s) {
    const std::int64_t s = start_s * kNsPerSecond;
    const std::int64_t e = s + duration_s * kNsPerSecond;
    if (e > from_ns && s < to_ns) out.push_back({std::max(s, from_ns), std::min(e, to_ns)});
  };
  if (repeat == Repeat::kOnce) {
    add(tz->to_utc(start));
    return;
  }
  // Local days that can hold a start whose window reaches into [from, to): one day of slack
  // either side covers any UTC offset.
  const std::int64_t first_day = days_from_civil(start.year, start.month, start.day);
  const std::int64_t last_day =
      has_until ? days_from_civil(until.year, until.month, until.day) : INT64_MAX;
  const auto local_day = [&](std::int64_t ns) {
    const CivilTime c = tz->to_local(ns / kNsPerSecond);
    return days_from_civil(c.year, c.month, c.day);
  };
  const std::int64_t lo = std::max(first_day, local_day(from_ns - duration_s * kNsPerSecond) - 1);
  const std::int64_t hi = std::min(last_day, local_day(to_ns) + 1);
  for (std::int64_t d = lo; d <= hi; ++d) {
    CivilTime c = civil_from_days(d);
    if (repeat == Repeat::kWeekly && !(weekdays & (1u << weekday_from_days(d)))) continue;
    if (repeat == Repeat::kMonthly && c.day != start.day) continue;
    c.hour = start.hour;
    c.minute = start.minute;
    c.second = start.second;
    add(tz->to_utc(c));
  }
}

void MaintenanceCalendar::intervals(const EntityScope& e, std::int64_t from_ns, std::int64_t to_ns,
                                    std::vector<Interval>& out) const {
  out.clear();
  for (const MaintenanceWindow& w : windows_)
    if (w.applies(e)) w.occurrences(from_ns, to_ns, out);
  merge_intervals(out);
}

}  // namespace citywatch::collector::uptime
