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

TEST(UptimeConfigTest, ReadsDependenciesAndFindsEachEntitysEntry) {
  UptimeConfig c;
  ASSERT_TRUE(parse(R"(uptime:
  dependency_grace: 3m
  dependency_wait: 45s
  dependencies:
    - device: core-router
    - device: branch-router
      parents: [core-router]
    - device: 10.9.0.7
      parents: [branch-router, core-router]
    - segment: branch-lan
      parents: [branch-router]
    - site: branch-library
      parents: [branch-router]
)",
                    c));
  EXPECT_EQ(c.dependency_grace, std::chrono::minutes(3));
  EXPECT_EQ(c.dependency_wait, std::chrono::seconds(45));
  ASSERT_EQ(c.dependencies.size(), 5u);
  using K = DependencySpec::Kind;
  const auto* d = find_dependency(c.dependencies, K::kDevice, "branch-router", "10.9.0.1", "");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->parents, std::vector<std::string>{"core-router"});
  // By address when the name has no entry.
  d = find_dependency(c.dependencies, K::kDevice, "ups-1", "10.9.0.7", "branch-library");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->parents.size(), 2u);
  // By site for a device without an entry of its own; never for the parent itself.
  d = find_dependency(c.dependencies, K::kDevice, "branch-ap", "10.9.0.9", "branch-library");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->name, "branch-library");
  EXPECT_EQ(find_dependency(c.dependencies, K::kDevice, "other", "10.1.1.1", "city-hall"), nullptr);
  d = find_dependency(c.dependencies, K::kSegment, "branch-lan", "", "");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->parents, std::vector<std::string>{"branch-router"});
  // A declared root has an entry and no parents (it does not take its site's).
  d = find_dependency(c.dependencies, K::kDevice, "core-router", "", "branch-library");
  ASSERT_NE(d, nullptr);
  EXPECT_TRUE(d->parents.empty());
}

TEST(UptimeConfigTest, RejectsADependencyCycleWithFileAndLine) {
  UptimeConfig c;
  const Status s = parse(R"(uptime:
  dependencies:
    - device: a
      parents: [c]
    - device: b
      parents: [a]
    - device: c
      parents: [b]
)",
                         c);
  ASSERT_FALSE(s);
  const std::string& m = s.message();
  // One cycle, reported once, at the `parents` key of the entry that closes it.
  EXPECT_NE(m.find("dependency cycle: a -> c -> b -> a"), std::string::npos) << m;
  // a -> c -> b, and b's parent a closes it: line 6.
  EXPECT_NE(m.find("test.yaml:6:"), std::string::npos) << m;
  EXPECT_NE(m.find("uptime.dependencies[1].parents"), std::string::npos) << m;
  EXPECT_EQ(m.find("cycle", m.find("cycle") + 1), std::string::npos) << m;
}

TEST(UptimeConfigTest, RejectsUnknownParentsDuplicatesAndBadEntries) {
  UptimeConfig c;
  const Status s = parse(R"(uptime:
  dependencies:
    - device: a
      parents: [nowhere]
    - device: a
    - segment: s
      site: x
    - device: self
      parents: [self]
    - site: lib
      parents: [a]
      parent: [a]
    - device: ap
      parents: ["a[ge-0/0/2]"]
)",
                         c);
  ASSERT_FALSE(s);
  const std::string& m = s.message();
  EXPECT_NE(m.find("test.yaml:4:"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown parent 'nowhere'"), std::string::npos) << m;
  EXPECT_NE(m.find("device 'a' has two entries"), std::string::npos) << m;
  EXPECT_NE(m.find("exactly one of device, segment or site"), std::string::npos) << m;
  EXPECT_NE(m.find("names itself as its parent"), std::string::npos) << m;
  EXPECT_NE(m.find("uptime.dependencies[4].parent: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("'a[ge-0/0/2]': interfaces cannot be parents"), std::string::npos) << m;
}

}  // namespace
}  // namespace citywatch::collector::uptime
