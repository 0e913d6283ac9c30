#include "collector/uptime/maintenance.h"

#include <gtest/gtest.h>

#include "collector/uptime/clock.h"

namespace citywatch::collector::uptime {
namespace {

constexpr std::int64_t kH = 3600 * kNsPerSecond;

std::int64_t utc_ns(int y, int mo, int d, int h = 0, int mi = 0) {
  return (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60) * kNsPerSecond;
}

std::shared_ptr<const TimeZone> berlin() {
  auto z = std::make_shared<TimeZone>();
  EXPECT_TRUE(TimeZone::load("Europe/Berlin", *z));
  return z;
}

TEST(MaintenanceTest, WeeklyWindowInLocalTime) {
  MaintenanceWindow w;
  w.name = "patch";
  w.repeat = MaintenanceWindow::Repeat::kWeekly;
  w.start = {2025, 1, 7, 22, 0, 0};  // a Tuesday
  w.weekdays = 1u << 1;
  w.duration_s = 7200;
  w.tz = berlin();
  std::vector<Interval> v;
  w.occurrences(utc_ns(2025, 1, 1), utc_ns(2025, 2, 1), v);
  ASSERT_EQ(v.size(), 4u);  // 7, 14, 21, 28 January
  EXPECT_EQ(v[0], (Interval{utc_ns(2025, 1, 7, 21), utc_ns(2025, 1, 7, 23)}));
  EXPECT_EQ(v[3], (Interval{utc_ns(2025, 1, 28, 21), utc_ns(2025, 1, 28, 23)}));
  // In July the same local 22:00 is 20:00 UTC.
  v.clear();
  w.occurrences(utc_ns(2025, 7, 1), utc_ns(2025, 7, 2), v);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0], (Interval{utc_ns(2025, 7, 1, 20), utc_ns(2025, 7, 1, 22)}));
}

TEST(MaintenanceTest, DailyWindowAcrossSpringForward) {
  MaintenanceWindow w;
  w.repeat = MaintenanceWindow::Repeat::kDaily;
  w.start = {2025, 3, 1, 1, 30, 0};
  w.duration_s = 3600;
  w.tz = berlin();
  std::vector<Interval> v;
  w.occurrences(utc_ns(2025, 3, 29), utc_ns(2025, 3, 31, 12), v);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].start_ns, utc_ns(2025, 3, 29, 0, 30));   // 01:30 CET
  EXPECT_EQ(v[1].start_ns, utc_ns(2025, 3, 30, 0, 30));   // 01:30 CET, before the switch
  EXPECT_EQ(v[2].start_ns, utc_ns(2025, 3, 30, 23, 30));  // 01:30 CEST
  // A window whose local start falls into the gap moves forward by the gap.
  w.start = {2025, 3, 1, 2, 30, 0};
  v.clear();
  w.occurrences(utc_ns(2025, 3, 30), utc_ns(2025, 3, 30, 12), v);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].start_ns, utc_ns(2025, 3, 30, 1, 30));  // 03:30 CEST
}

TEST(MaintenanceTest, MonthlySkipsShortMonthsAndHonoursUntil) {
  MaintenanceWindow w;
  w.repeat = MaintenanceWindow::Repeat::kMonthly;
  w.start = {2025, 1, 31, 23, 0, 0};
  w.duration_s = 3600;
  w.has_until = true;
  w.until = {2025, 5, 31, 0, 0, 0};
  std::vector<Interval> v;
  w.occurrences(utc_ns(2025, 1, 1), utc_ns(2026, 1, 1), v);
  ASSERT_EQ(v.size(), 3u);  // 31 Jan, 31 Mar, 31 May
  EXPECT_EQ(v[1].start_ns, utc_ns(2025, 3, 31, 23));
  EXPECT_EQ(v[2].start_ns, utc_ns(2025, 5, 31, 23));
}

TEST(MaintenanceTest, OverlappingWindowsAreMergedAndScoped) {
  MaintenanceWindow a, b, other;
  a.start = {2025, 6, 1, 10, 0, 0};
  a.duration_s = 2 * 3600;
  a.sites = {"city-hall"};
  b.start = {2025, 6, 1, 11, 0, 0};
  b.duration_s = 2 * 3600;
  b.devices = {"core-sw"};
  other.start = {2025, 6, 1, 0, 0, 0};
  other.duration_s = 24 * 3600;
  other.sites = {"library"};
  MaintenanceCalendar cal({a, b, other});
  std::vector<Interval> v;
  cal.intervals({"city-hall", "seg-a", "10.0.0.1", "core-sw"}, utc_ns(2025, 6, 1),
                utc_ns(2025, 6, 2), v);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0], (Interval{utc_ns(2025, 6, 1, 10), utc_ns(2025, 6, 1, 13)}));
  EXPECT_EQ(covered_ns(v, utc_ns(2025, 6, 1, 9), utc_ns(2025, 6, 1, 12, 30)), 2 * kH + kH / 2);
  // Only the site window applies to another device of the site.
  cal.intervals({"city-hall", "seg-a", "10.0.0.2", "printer"}, utc_ns(2025, 6, 1),
                utc_ns(2025, 6, 2), v);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0], (Interval{utc_ns(2025, 6, 1, 10), utc_ns(2025, 6, 1, 12)}));
  // Clipped to the range asked for.
  cal.intervals({"library", "seg-l", "", ""}, utc_ns(2025, 6, 1, 6), utc_ns(2025, 6, 1, 7), v);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0], (Interval{utc_ns(2025, 6, 1, 6), utc_ns(2025, 6, 1, 7)}));
}

TEST(MaintenanceTest, MergeIntervals) {
  std::vector<Interval> v{{5, 7}, {1, 3}, {3, 4}, {6, 9}, {10, 10}};
  merge_intervals(v);
  EXPECT_EQ(v, (std::vector<Interval>{{1, 4}, {5, 9}}));
  EXPECT_EQ(covered_ns(v, 0, 100), 7);
  EXPECT_EQ(covered_ns(v, 2, 6), 3);
}

}  // namespace
}  // namespace citywatch::collector::uptime
