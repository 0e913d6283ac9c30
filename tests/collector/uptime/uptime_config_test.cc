#include "collector/uptime/uptime_config.h"

#include <gtest/gtest.h>

namespace citywatch::collector::uptime {
namespace {

Status parse(const std::string& yaml, UptimeConfig& out) {
  ConfigReader reader = ConfigReader::from_string(yaml, "test.yaml", "");
  if (auto s = reader.status(); !s) return s;
  ConfigMap root = reader.root();
  ConfigMap m = root.map("uptime");
  read_uptime_config(m, out);
  root.done();
  return reader.status();
}

TEST(UptimeConfigTest, ReadsSitesWindowsAndMaintenance) {
  UptimeConfig c;
  const Status s = parse(R"(uptime:
  time_zone: Europe/Berlin
  min_outage: 2m
  slo: 99.95
  availability_windows: [1d, 7d]
  target: {period: 2026-Q2, baseline: 2025-Q2, reduction_percent: 30}
  sites:
    - name: city-hall
      segments: [seg-a, seg-b]
  maintenance:
    - name: patch-tuesday
      sites: [city-hall]
      start: "2025-01-07 22:00"
      repeat: weekly
      days: [tue, thu]
      duration: 2h
    - name: ups-swap
      devices: [ups-1]
      start: "2025-03-30 01:00"
      end: "2025-03-30 04:00"
)",
                         c);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(c.min_outage, std::chrono::minutes(2));
  EXPECT_DOUBLE_EQ(c.slo_percent, 99.95);
  EXPECT_EQ(c.target.period, "2026-Q2");
  EXPECT_EQ(c.target.baseline, "2025-Q2");
  EXPECT_DOUBLE_EQ(c.target.reduction_percent, 30);
  ASSERT_EQ(c.availability_windows.size(), 2u);
  EXPECT_EQ(window_label(c.availability_windows[1]), "7d");
  EXPECT_EQ(c.site_of("seg-b"), "city-hall");
  EXPECT_EQ(c.site_of("seg-x"), "seg-x");
  ASSERT_EQ(c.maintenance.size(), 2u);
  EXPECT_EQ(c.maintenance[0].weekdays, (1u << 1) | (1u << 3));
  EXPECT_EQ(c.maintenance[0].tz->name(), "Europe/Berlin");
  // 01:00 CET to 04:00 CEST across the spring-forward gap is two hours of elapsed time.
  EXPECT_EQ(c.maintenance[1].duration_s, 7200);
}

TEST(UptimeConfigTest, ReportsEveryProblemWithItsKey) {
  UptimeConfig c;
  const Status s = parse(R"(uptime:
  time_zone: Mars/Base
  slo: 100
  min_outag: 1m
  target: {period: last-year, baseline: 2025-Q5, reduction_percent: 100, goal: 1}
  sites:
    - name: a
      segments: [x]
    - name: b
      segments: [x]
  maintenance:
    - name: bad
      start: "2025-13-01 00:00"
      repeat: fortnightly
)",
                         c);
  ASSERT_FALSE(s);
  const std::string& m = s.message();
  EXPECT_NE(m.find("test.yaml:2:"), std::string::npos) << m;
  EXPECT_NE(m.find("uptime.time_zone"), std::string::npos) << m;
  EXPECT_NE(m.find("uptime.slo"), std::string::npos) << m;
  EXPECT_NE(m.find("uptime.min_outag: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("uptime.target.period"), std::string::npos) << m;
  EXPECT_NE(m.find("uptime.target.baseline"), std::string::npos) << m;
  EXPECT_NE(m.find("uptime.target.reduction_percent"), std::string::npos) << m;
  EXPECT_NE(m.find("uptime.target.goal: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("more than one site"), std::string::npos) << m;
  EXPECT_NE(m.find("uptime.maintenance[0].start"), std::string::npos) << m;
  EXPECT_NE(m.find("uptime.maintenance[0].repeat"), std::string::npos) << m;
  EXPECT_NE(m.find("uptime.maintenance[0].duration"), std::string::npos) << m;
}

}  // namespace
}  // namespace citywatch::collector::uptime
