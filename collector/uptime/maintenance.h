// Planned maintenance windows: one-off or recurring (daily, weekly on chosen days, monthly on
// a day of the month), each in its own time zone and scoped to sites, segments or devices.
// Time inside a window is excluded from availability, and outages inside it are marked.
//
// A recurring window starts at the same local wall-clock time on each day it applies, so a
// "Tuesday 22:00" window stays at 22:00 across DST changes; its duration is elapsed time.
// A start that falls in a spring-forward gap moves forward (TimeZone::to_utc). Overlapping
// windows are merged, so overlapping time is excluded once.
//
// Thread-safety: immutable after construction; intervals() only reads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "collector/uptime/time_zone.h"

namespace citywatch::collector::uptime {

struct Interval {
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;  // exclusive
  friend bool operator==(const Interval&, const Interval&) = default;
};

// Sorts and merges overlapping or touching intervals in place.
void merge_intervals(std::vector<Interval>& v);
// Nanoseconds of [a, b) covered by the merged, sorted intervals.
std::int64_t covered_ns(const std::vector<Interval>& merged, std::int64_t a, std::int64_t b);

// What a window can be scoped to; empty strings match nothing.
struct EntityScope {
  std::string_view site;
  std::string_view segment;
  std::string_view device;       // address as text
  std::string_view device_name;  // sysName
};

struct MaintenanceWindow {
  enum class Repeat { kOnce, kDaily, kWeekly, kMonthly };
  std::string name;
  // Empty sites, segments and devices: the window applies to everything.
  std::vector<std::string> sites;
  std::vector<std::string> segments;
  std::vector<std::string> devices;  // address or sysName
  Repeat repeat = Repeat::kOnce;
  CivilTime start;              // local; for recurring windows the first day and the time
  std::int64_t duration_s = 0;  // elapsed seconds
  std::uint8_t weekdays = 0;    // kWeekly: bit 0 = Monday .. bit 6 = Sunday
  bool has_until = false;       // recurring: last day (local) a window may start
  CivilTime until;
  std::shared_ptr<const TimeZone> tz = std::make_shared<TimeZone>();

  bool applies(const EntityScope& e) const;
  // Appends this window's occurrences that intersect [from, to), clipped to it.
  void occurrences(std::int64_t from_ns, std::int64_t to_ns, std::vector<Interval>& out) const;
};

class MaintenanceCalendar {
 public:
  MaintenanceCalendar() = default;
  explicit MaintenanceCalendar(std::vector<MaintenanceWindow> windows)
      : windows_(std::move(windows)) {}

  // Merged maintenance time that applies to the entity within [from, to).
  void intervals(const EntityScope& e, std::int64_t from_ns, std::int64_t to_ns,
                 std::vector<Interval>& out) const;
  bool empty() const { return windows_.empty(); }
  const std::vector<MaintenanceWindow>& windows() const { return windows_; }

 private:
  std::vector<MaintenanceWindow> windows_;
};

}  // namespace citywatch::collector::uptime
