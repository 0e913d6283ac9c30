#include "collector/uptime/availability.h"

#include <gtest/gtest.h>

#include "collector/uptime/clock.h"

namespace citywatch::collector::uptime {
namespace {

constexpr std::int64_t kMin = 60 * kNsPerSecond;
constexpr std::int64_t kH = 60 * kMin;
constexpr std::int64_t kD = 24 * kH;
constexpr std::int64_t kP0 = 1'735'689'600 * kNsPerSecond;  // 2025-01-01 00:00 UTC

OutageRow closed(std::int64_t id, std::int64_t entity, std::int64_t s, std::int64_t e,
                 bool flap = false) {
  OutageRow o;
  o.id = id;
  o.entity_id = entity;
  o.start_ns = s;
  o.end_ns = e;
  o.open = false;
  o.flap = flap;
  return o;
}

class AvailabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EntityRow a;
    a.id = 1;
    a.kind = EntityKind::kDevice;
    a.site = "city-hall";
    a.device = "10.0.0.1";
    a.first_seen_ns = kP0 - 10 * kD;
    EntityRow b = a;
    b.id = 2;
    b.device = "10.0.0.2";
    b.first_seen_ns = kP0 + 15 * kD;  // joined mid-period
    entities = {a, b};
    outages = {
        closed(1, 1, kP0 - kH, kP0 + kH),                           // clipped at the start: 1 h
        closed(2, 1, kP0 + 5 * kD, kP0 + 5 * kD + kMin / 2, true),  // a flap
        closed(3, 1, kP0 + 10 * kD, kP0 + 10 * kD + 30 * kMin),     // 30 min
        closed(4, 2, kP0 + 20 * kD, kP0 + 20 * kD + 2 * kH),        // 2 h
    };
    OutageRow open;
    open.id = 5;
    open.entity_id = 1;
    open.start_ns = kP0 + 30 * kD - kH;  // open, clipped at the period's end: 1 h
    outages.push_back(open);
  }
  std::vector<EntityRow> entities;
  std::vector<OutageRow> outages;
};

TEST_F(AvailabilityTest, ClipsToThePeriodAndCountsOpenOutages) {
  std::vector<Figures> f;
  compute_figures(entities, outages, {}, kP0, kP0 + 30 * kD, kP0 + 30 * kD + 5 * kH, f);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].monitored_ns, 30 * kD);
  EXPECT_EQ(f[0].down_ns, 2 * kH + 30 * kMin);
  EXPECT_EQ(f[0].outages, 3);
  EXPECT_EQ(f[0].open_outages, 1);
  EXPECT_EQ(f[0].flaps, 1);
  EXPECT_DOUBLE_EQ(f[0].mttr_s(), 3000.0);                        // 2.5 h / 3
  EXPECT_DOUBLE_EQ(f[0].mtbf_s(), (720.0 - 2.5) * 3600.0 / 3.0);  // 861000 s
  EXPECT_DOUBLE_EQ(f[0].availability(), 1.0 - 2.5 / 720.0);
  EXPECT_EQ(f[1].monitored_ns, 15 * kD);  // monitored from first seen
  EXPECT_EQ(f[1].down_ns, 2 * kH);
  Figures all;
  all.add(f[0]);
  all.add(f[1]);
  EXPECT_DOUBLE_EQ(all.availability(), 1.0 - 4.5 / 1080.0);
  EXPECT_DOUBLE_EQ(all.mttr_s(), 4.5 * 3600 / 4);
}

TEST_F(AvailabilityTest, OpenOutageRunsUntilNow) {
  std::vector<Figures> f;
  // Evaluated 20 minutes into the open outage, inside the period.
  compute_figures(entities, outages, {}, kP0, kP0 + 30 * kD, kP0 + 30 * kD - 40 * kMin, f);
  EXPECT_EQ(f[0].down_ns, kH + 30 * kMin + 20 * kMin);
  EXPECT_EQ(f[0].monitored_ns, 30 * kD - 40 * kMin);
}

TEST_F(AvailabilityTest, MaintenanceIsExcludedAndOverlapsCountOnce) {
  MaintenanceWindow w1, w2;
  w1.start = {2025, 1, 11, 0, 0, 0};  // 00:00-00:20 UTC, overlaps outage 3's first 20 min
  w1.duration_s = 20 * 60;
  w2.start = {2025, 1, 11, 0, 10, 0};  // 00:10-01:10, overlapping w1 and the rest
  w2.duration_s = 3600;
  w2.devices = {"10.0.0.1"};
  const MaintenanceCalendar cal({w1, w2});
  std::vector<Figures> f;
  compute_figures(entities, outages, cal, kP0, kP0 + 30 * kD, kP0 + 30 * kD, f);
  // Outage 3 (00:00-00:30) lies inside the merged window 00:00-01:10: it does not count.
  EXPECT_EQ(f[0].down_ns, 2 * kH);
  EXPECT_EQ(f[0].outages, 2);
  EXPECT_EQ(f[0].maintenance_ns, 70 * kMin);
  EXPECT_EQ(f[0].monitored_ns, 30 * kD - 70 * kMin);
  // w2 is scoped to 10.0.0.1; device 2 sees only w1, which is before its first sighting.
  EXPECT_EQ(f[1].maintenance_ns, 0);
}

}  // namespace
}  // namespace citywatch::collector::uptime
