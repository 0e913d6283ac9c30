#include "collector/uptime/time_zone.h"

#include <gtest/gtest.h>

namespace citywatch::collector::uptime {
namespace {

std::int64_t utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

TimeZone zone(const char* name) {
  TimeZone z;
  const Status s = TimeZone::load(name, z);
  if (!s) ADD_FAILURE() << s.message();
  return z;
}

TEST(CivilTest, DaysAndWeekdays) {
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(2000, 3, 1), 11017);
  EXPECT_EQ(civil_from_days(11017), (CivilTime{2000, 3, 1, 0, 0, 0}));
  EXPECT_EQ(weekday_from_days(days_from_civil(2024, 1, 1)), 0);    // a Monday
  EXPECT_EQ(weekday_from_days(days_from_civil(1969, 12, 28)), 6);  // a Sunday
  EXPECT_EQ(days_in_month(2024, 2), 29);
  EXPECT_EQ(days_in_month(2100, 2), 28);
}

TEST(CivilTest, Parse) {
  CivilTime c;
  ASSERT_TRUE(parse_civil("2025-03-30 02:30", c));
  EXPECT_EQ(c, (CivilTime{2025, 3, 30, 2, 30, 0}));
  ASSERT_TRUE(parse_civil("2025-03-30T02:30:15", c));
  EXPECT_EQ(c.second, 15);
  ASSERT_TRUE(parse_civil("2025-02-28", c));
  EXPECT_FALSE(parse_civil("2025-02-29", c));
  EXPECT_FALSE(parse_civil("2025-03-30 24:00", c));
  EXPECT_FALSE(parse_civil("2025-03-30 02:30x", c));
  EXPECT_FALSE(parse_civil("yesterday", c));
}

TEST(TimeZoneTest, RejectsUnknownAndPathLikeNames) {
  TimeZone z;
  EXPECT_FALSE(TimeZone::load("Mars/Olympus_Mons", z));
  EXPECT_FALSE(TimeZone::load("../../etc/passwd", z));
  EXPECT_FALSE(TimeZone::load("/etc/passwd", z));
  EXPECT_TRUE(TimeZone::load("UTC", z));
  EXPECT_EQ(z.offset_at(utc(2025, 7, 1)), 0);
}

TEST(TimeZoneTest, ADirectoryIsRefusedNotThrown) {
  // config_fuzz found this: reading a directory threw and ended the collector.
  TimeZone z;
  const Status s = TimeZone::load("Europe", z);
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("is a directory"), std::string::npos) << s.message();
}

TEST(TimeZoneTest, BerlinOffsets) {
  const TimeZone z = zone("Europe/Berlin");
  EXPECT_EQ(z.offset_at(utc(2025, 1, 15)), 3600);
  EXPECT_EQ(z.offset_at(utc(2025, 7, 1)), 7200);
  // The switch is at 01:00 UTC on the last Sunday of March.
  EXPECT_EQ(z.offset_at(utc(2025, 3, 30, 0, 59, 59)), 3600);
  EXPECT_EQ(z.offset_at(utc(2025, 3, 30, 1, 0, 0)), 7200);
  EXPECT_EQ(z.to_local(utc(2025, 3, 30, 1, 0, 0)), (CivilTime{2025, 3, 30, 3, 0, 0}));
}

TEST(TimeZoneTest, SpringForwardGapMovesForward) {
  const TimeZone z = zone("Europe/Berlin");
  EXPECT_EQ(z.to_utc({2025, 3, 30, 1, 59, 0}), utc(2025, 3, 30, 0, 59));
  // 02:30 does not exist on that day: it is read as 03:30 CEST.
  EXPECT_EQ(z.to_utc({2025, 3, 30, 2, 30, 0}), utc(2025, 3, 30, 1, 30));
  EXPECT_EQ(z.to_utc({2025, 3, 30, 3, 0, 0}), utc(2025, 3, 30, 1, 0));
  // The local day is 23 hours long.
  EXPECT_EQ(z.to_utc({2025, 3, 31, 0, 0, 0}) - z.to_utc({2025, 3, 30, 0, 0, 0}), 23 * 3600);
  const TimeZone ny = zone("America/New_York");
  EXPECT_EQ(ny.to_utc({2025, 3, 9, 2, 30, 0}), utc(2025, 3, 9, 7, 30));
}

TEST(TimeZoneTest, FallBackOverlapTakesTheEarlierInstant) {
  const TimeZone z = zone("Europe/Berlin");
  EXPECT_EQ(z.to_utc({2025, 10, 26, 2, 30, 0}), utc(2025, 10, 26, 0, 30));  // still CEST
  EXPECT_EQ(z.to_local(utc(2025, 10, 26, 1, 30)), (CivilTime{2025, 10, 26, 2, 30, 0}));  // CET
  EXPECT_EQ(z.to_utc({2025, 10, 27, 0, 0, 0}) - z.to_utc({2025, 10, 26, 0, 0, 0}), 25 * 3600);
}

TEST(TimeZoneTest, SouthernHemisphereAndHalfHourZones) {
  const TimeZone syd = zone("Australia/Sydney");
  EXPECT_EQ(syd.offset_at(utc(2025, 1, 15)), 11 * 3600);  // summer (AEDT)
  EXPECT_EQ(syd.offset_at(utc(2025, 7, 15)), 10 * 3600);
  const TimeZone kolkata = zone("Asia/Kolkata");
  EXPECT_EQ(kolkata.to_utc({2025, 6, 1, 0, 0, 0}), utc(2025, 5, 31, 18, 30));
}

}  // namespace
}  // namespace citywatch::collector::uptime
