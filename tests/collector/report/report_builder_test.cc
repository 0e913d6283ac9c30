#include "collector/report/report_builder.h"

#include <gtest/gtest.h>

#include "collector/uptime/clock.h"

namespace citywatch::collector::report {
namespace {

TEST(PeriodTest, ParsesMonthsQuartersYearsAndRanges) {
  Period p;
  ASSERT_TRUE(parse_period("2025-03", p));
  EXPECT_EQ(p.from, (uptime::CivilTime{2025, 3, 1, 0, 0, 0}));
  EXPECT_EQ(p.to, (uptime::CivilTime{2025, 4, 1, 0, 0, 0}));
  ASSERT_TRUE(parse_period("2025-12", p));
  EXPECT_EQ(p.to, (uptime::CivilTime{2026, 1, 1, 0, 0, 0}));
  ASSERT_TRUE(parse_period("2025-Q4", p));
  EXPECT_EQ(p.from.month, 10);
  EXPECT_EQ(p.to, (uptime::CivilTime{2026, 1, 1, 0, 0, 0}));
  ASSERT_TRUE(parse_period("2024", p));
  EXPECT_EQ(year_before(p).label, "2023");
  ASSERT_TRUE(parse_period("2024-02-29..2024-03-10", p));
  const Period b = year_before(p);
  EXPECT_EQ(b.from, (uptime::CivilTime{2023, 3, 1, 0, 0, 0}));
  EXPECT_EQ(b.label, "2023-03-01..2023-03-10");
  EXPECT_EQ(year_before(Period{"2025-03", {2025, 3, 1}, {2025, 4, 1}}).label, "2024-03");
  EXPECT_FALSE(parse_period("2025-13", p));
  EXPECT_FALSE(parse_period("2025-Q5", p));
  EXPECT_FALSE(parse_period("2025-03-10..2025-03-01", p));
  EXPECT_FALSE(parse_period("March", p));
}

TEST(FormatTest, BudgetAndTimes) {
  uptime::Figures f;
  f.monitored_ns = 30LL * 86400 * uptime::kNsPerSecond;  // 43200 min
  f.down_ns = 20LL * 60 * uptime::kNsPerSecond;          // 20 min
  f.outages = 2;
  EXPECT_EQ(fmt_availability(f), "99.9537");
  EXPECT_EQ(fmt_mttr(f), "10.0");
  EXPECT_EQ(fmt_mtbf(f), "359.8");  // (720 h - 1/3 h) / 2
  // 99.9 % of 43200 min allows 43.2 min; 23.2 min (53.7 %) are left.
  EXPECT_EQ(fmt_budget(f, 99.9), "23.2 min (53.7 %)");
}

}  // namespace
}  // namespace citywatch::collector::report
