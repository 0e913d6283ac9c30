#include "collector/report/report_builder.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <memory>

#include "collector/report/report_render.h"
#include "collector/uptime/clock.h"
#include "collector/uptime/targets.h"

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

// The collector's target gauges (uptime::compute_targets) show the outage minutes the report
// prints for the same period and baseline, site by site, with an open outage and a
// maintenance window in the mix.
TEST(TargetsTest, SameMinutesAsTheReport) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("citywatch-targets-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::unique_ptr<uptime::OutageStore> store;
  ASSERT_TRUE(uptime::OutageStore::open(dir / "uptime.sqlite", store));
  const uptime::TimeZone utc;
  const auto at = [&](int y, int mo, int d, int h) {
    return utc.to_utc(uptime::CivilTime{y, mo, d, h, 0, 0}) * uptime::kNsPerSecond;
  };
  std::vector<uptime::EntityRow> rows;
  for (const auto& [site, segment, name] : {std::tuple{"main-library", "lib-lan", "lib-sw1"},
                                            std::tuple{"main-library", "lib-lan", "lib-ap"},
                                            std::tuple{"city-hall", "hall-lan", "hall-core"}}) {
    uptime::EntityRow e;
    e.kind = uptime::EntityKind::kDevice;
    e.key = std::string("device/") + segment + "/" + name;
    e.agent = "a";
    e.site = site;
    e.segment = segment;
    e.device = "10.0.0.1";
    e.device_name = name;
    e.first_seen_ns = at(2024, 1, 1, 0);
    ASSERT_TRUE(store->save_entity(e));
    rows.push_back(e);
  }
  const auto outage = [&](const uptime::EntityRow& e, std::int64_t from, std::int64_t to) {
    uptime::OutageRow o;
    o.entity_id = e.id;
    o.cause = "snmp_timeout";
    o.start_ns = from;
    ASSERT_TRUE(store->start_outage(e, o));
    if (to == 0) return;  // left open
    o.end_ns = to;
    o.open = false;
    o.end_reason = "recovered";
    ASSERT_TRUE(store->end_outage(e, o));
  };
  outage(rows[0], at(2024, 3, 2, 1), at(2024, 3, 2, 3));    // baseline: 2 h
  outage(rows[1], at(2024, 3, 31, 23), at(2024, 4, 1, 1));  // baseline: clipped to 1 h
  outage(rows[2], at(2024, 3, 5, 0), at(2024, 3, 5, 1));
  outage(rows[0], at(2025, 3, 3, 2), at(2025, 3, 3, 3));  // period: 1 h, half in maintenance
  outage(rows[2], at(2025, 3, 20, 0), 0);                 // period: still open
  uptime::MaintenanceWindow w;
  w.name = "switch upgrade";
  w.sites = {"main-library"};
  w.start = {2025, 3, 3, 2, 30, 0};
  w.duration_s = 3600;
  w.tz = std::make_shared<uptime::TimeZone>();
  const uptime::MaintenanceCalendar calendar({w});

  ReportOptions o;
  ASSERT_TRUE(parse_period("2025-03", o.period));
  o.baseline = year_before(o.period);
  o.target_reduction_percent = 40;
  o.now_ns = at(2025, 3, 25, 0);
  Report r;
  ASSERT_TRUE(build_report(*store, calendar, o, r));
  uptime::TargetSpec spec;
  spec.period = "2025-03";
  spec.reduction_percent = 40;
  uptime::TargetFigures t;
  ASSERT_TRUE(uptime::compute_targets(*store, calendar, utc, spec, o.now_ns, t));
  EXPECT_EQ(t.baseline.label, "2024-03");
  ASSERT_EQ(t.sites.size(), r.sites.size());
  double target_minutes = 0;
  for (std::size_t i = 0; i < t.sites.size(); ++i) {
    SCOPED_TRACE(t.sites[i].site);
    EXPECT_EQ(t.sites[i].site, r.sites[i].name);
    EXPECT_EQ(t.sites[i].period_down_ns, r.sites[i].cur.down_ns);
    EXPECT_EQ(t.sites[i].baseline_down_ns, r.sites[i].base.down_ns);
    target_minutes += t.sites[i].target_down_ns / (60.0 * uptime::kNsPerSecond);
  }
  EXPECT_NEAR(target_minutes, r.target_minutes, 1e-6);
  // The figures are not trivial: 30 min outside maintenance + 5 days open; 2 h + 1 h + 1 h.
  EXPECT_EQ(r.city.cur.down_ns, (30 * 60 + 5 * 86400) * uptime::kNsPerSecond);
  EXPECT_EQ(r.city.base.down_ns, (2 * 3600 + 3600 + 3600) * uptime::kNsPerSecond);
  store.reset();
  std::filesystem::remove_all(dir);
}

// Names come from devices: a cell a spreadsheet would run as a formula is quoted with an
// apostrophe, a CR or LF never starts a row of its own (CSV) or ends a table row (Markdown).
TEST(RenderTest, DeviceNamesCannotInjectFormulasOrRows) {
  Report r;
  Line l;
  l.name = "=HYPERLINK(\"http://x\")";
  l.kind = "interface";
  l.site = "@site";
  l.segment = "seg\r\n+x";
  r.offenders.push_back(l);
  const std::string csv = render_csv(r);
  EXPECT_NE(csv.find(",\"'=HYPERLINK(\"\"http://x\"\")\","), std::string::npos) << csv;
  EXPECT_NE(csv.find(",'@site,"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",\"seg\r\n+x\","), std::string::npos) << csv;
  const std::string md = render_markdown(r);
  EXPECT_EQ(md.find("seg\r"), std::string::npos) << md;
  EXPECT_EQ(md.find("\n+x"), std::string::npos) << md;
}

}  // namespace
}  // namespace citywatch::collector::report
