#include "collector/uptime/outage_tracker.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <filesystem>

namespace citywatch::collector::uptime {
namespace {

constexpr std::int64_t kS = kNsPerSecond;
constexpr std::int64_t kT0 = 1'750'000'000 * kS;

class FakeClock final : public Clock {
 public:
  std::int64_t now_ns() const override { return now; }
  std::int64_t now = kT0;
};

Record base(std::int64_t t, const char* agent = "agent-1", const char* segment = "seg-a") {
  Record r;
  r.event_time_ns = t;
  r.agent.assign(agent);
  r.segment.assign(segment);
  return r;
}

Record device(std::int64_t t, bool reachable, SnmpCause cause = SnmpCause::kTimeout) {
  Record r = base(t);
  DeviceStatus d;
  const std::uint8_t ip[4] = {10, 0, 0, 1};
  d.device = IpAddr::v4(ip);
  d.target.assign("core-sw");
  d.reachable = reachable;
  d.cause = reachable ? SnmpCause::kNone : cause;
  r.body = d;
  return r;
}

Record iface(std::int64_t t, std::uint8_t admin, std::uint8_t oper) {
  Record r = base(t);
  InterfaceSample s;
  const std::uint8_t ip[4] = {10, 0, 0, 1};
  s.device = IpAddr::v4(ip);
  s.if_index = 3;
  s.if_name.assign("ge-0/0/3");
  s.admin_status = admin;
  s.oper_status = oper;
  r.body = s;
  return r;
}

class OutageTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("citywatch-uptime-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    ASSERT_TRUE(OutageStore::open(dir / "uptime.sqlite", store));
    config.min_outage = std::chrono::seconds(60);
    config.agent_grace = std::chrono::seconds(60);
    start();
  }
  void TearDown() override {
    tracker.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  void start() {
    registry = std::make_shared<prometheus::Registry>();
    metrics = std::make_unique<UptimeMetrics>(*registry, config);
    tracker = std::make_unique<OutageTracker>(config, *store, clock, metrics.get());
    ASSERT_TRUE(tracker->load());
  }
  void restart() {
    tracker.reset();
    metrics.reset();
    store.reset();
    ASSERT_TRUE(OutageStore::open(dir / "uptime.sqlite", store));
    start();
  }
  void feed(const Record& r) { tracker->consume_records(std::span<const Record>(&r, 1)); }
  std::vector<OutageRow> all_outages() {
    std::vector<OutageRow> v;
    EXPECT_TRUE(store->load_outages(0, INT64_MAX, v));
    return v;
  }
  double metric(const std::string& name, const std::string& labels = "") {
    const std::string text = prometheus::TextSerializer().Serialize(registry->Collect());
    double sum = 0;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name, 0) != 0 || line[0] == '#') continue;
      const char next = line[name.size()];
      if (next != '{' && next != ' ') continue;
      if (!labels.empty() && line.find(labels) == std::string::npos) continue;
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
    return sum;
  }

  std::filesystem::path dir;
  UptimeConfig config;
  FakeClock clock;
  std::unique_ptr<OutageStore> store;
  std::shared_ptr<prometheus::Registry> registry;
  std::unique_ptr<UptimeMetrics> metrics;
  std::unique_ptr<OutageTracker> tracker;
};

TEST_F(OutageTrackerTest, OutageBoundariesAndUncertainty) {
  feed(device(kT0, true));
  feed(device(kT0 + 60 * kS, true));
  feed(device(kT0 + 120 * kS, false));  // first failed poll: the outage starts here
  feed(device(kT0 + 180 * kS, false));
  feed(device(kT0 + 240 * kS, false));
  feed(device(kT0 + 300 * kS, true));  // first good poll: it ends here
  const auto v = all_outages();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].start_ns, kT0 + 120 * kS);
  EXPECT_EQ(v[0].end_ns, kT0 + 300 * kS);
  EXPECT_EQ(v[0].start_uncertainty_ns, 60 * kS);  // since the last good poll
  EXPECT_EQ(v[0].end_uncertainty_ns, 60 * kS);    // since the last failed poll
  EXPECT_EQ(v[0].cause, "snmp_timeout");
  EXPECT_FALSE(v[0].flap);
  EXPECT_EQ(v[0].end_reason, "recovered");
  EXPECT_EQ(metric("citywatch_uptime_outages_total", "cause=\"snmp_timeout\""), 1);
  EXPECT_EQ(metric("citywatch_uptime_outage_seconds_total", "kind=\"device\""), 180);
  EXPECT_EQ(metric("citywatch_uptime_device_up", "device=\"core-sw\""), 1);
  const EntityRow* e = tracker->entity("device/seg-a/10.0.0.1");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->state, EntityState::kUp);
  EXPECT_EQ(e->device_name, "core-sw");
  EXPECT_EQ(e->site, "seg-a");  // no site configured: the segment is the site
}

TEST_F(OutageTrackerTest, ShortBlipIsAFlapNotAnOutage) {
  feed(device(kT0, true));
  feed(device(kT0 + 10 * kS, false, SnmpCause::kAuth));
  EXPECT_EQ(metric("citywatch_uptime_device_up"), 0);
  EXPECT_EQ(metric("citywatch_uptime_open_outages"), 1);
  feed(device(kT0 + 69 * kS, true));  // 59 s < min_outage
  const auto v = all_outages();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(v[0].flap);
  EXPECT_EQ(v[0].cause, "snmp_auth");
  EXPECT_EQ(metric("citywatch_uptime_flaps_total"), 1);
  EXPECT_EQ(metric("citywatch_uptime_outages_total"), 0);
  EXPECT_EQ(metric("citywatch_uptime_open_outages"), 0);
  // Exactly min_outage is an outage.
  feed(device(kT0 + 100 * kS, false));
  feed(device(kT0 + 160 * kS, true));
  EXPECT_FALSE(all_outages().back().flap);
  EXPECT_EQ(metric("citywatch_uptime_outages_total"), 1);
}

TEST_F(OutageTrackerTest, OutageIsCountedOnceItReachesMinOutageWhileOpen) {
  feed(device(kT0, false));
  clock.now = kT0 + 59 * kS;
  tracker->tick();
  EXPECT_EQ(metric("citywatch_uptime_outages_total"), 0);
  clock.now = kT0 + 61 * kS;
  tracker->tick();
  EXPECT_EQ(metric("citywatch_uptime_outages_total"), 1);
  EXPECT_EQ(metric("citywatch_uptime_outage_seconds_total"), 61);
  clock.now = kT0 + 90 * kS;
  tracker->tick();
  EXPECT_EQ(metric("citywatch_uptime_outage_seconds_total"), 90);
  EXPECT_EQ(metric("citywatch_uptime_monitored_seconds_total"), 90);
}

TEST_F(OutageTrackerTest, RestartKeepsTheOutageOpenAndWhole) {
  feed(device(kT0, true));
  feed(device(kT0 + 60 * kS, false));
  clock.now = kT0 + 300 * kS;
  restart();
  EXPECT_EQ(tracker->open_outage_count(), 1u);
  EXPECT_EQ(tracker->entity("device/seg-a/10.0.0.1")->state, EntityState::kDown);
  EXPECT_EQ(metric("citywatch_uptime_device_up"), 0);
  feed(device(kT0 + 320 * kS, false));  // still down: the same outage continues
  feed(device(kT0 + 380 * kS, true));
  const auto v = all_outages();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].start_ns, kT0 + 60 * kS);
  EXPECT_EQ(v[0].end_ns, kT0 + 380 * kS);
  EXPECT_EQ(tracker->open_outage_count(), 0u);
  // A third start finds nothing open and adds nothing.
  restart();
  EXPECT_EQ(tracker->open_outage_count(), 0u);
  EXPECT_EQ(all_outages().size(), 1u);
}

TEST_F(OutageTrackerTest, AgentLostDarkensTheSegment) {
  config.sites = {{"city-hall", {"seg-a", "seg-b"}}};
  restart();
  tracker->on_agent_session("agent-1", "seg-a", true, kT0);
  tracker->on_agent_session("agent-1", "seg-a", false, kT0 + 100 * kS);
  EXPECT_EQ(metric("citywatch_uptime_agent_up", "site=\"city-hall\""), 0);
  tracker->on_agent_session("agent-1", "seg-a", true, kT0 + 700 * kS);
  const auto v = all_outages();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].cause, "agent_lost");
  EXPECT_EQ(v[0].end_ns - v[0].start_ns, 600 * kS);
  EXPECT_EQ(v[0].end_reason, "agent_back");
  EXPECT_EQ(tracker->entity("segment/agent-1")->site, "city-hall");
  EXPECT_EQ(metric("citywatch_uptime_outages_total",
                   "cause=\"agent_lost\",kind=\"segment\",site=\"city-hall\""),
            1);
}

TEST_F(OutageTrackerTest, CollectorShutdownIsNotAnAgentLoss) {
  tracker->on_agent_session("agent-1", "seg-a", true, kT0);
  tracker->stop();
  tracker->on_agent_session("agent-1", "seg-a", false, kT0 + 5 * kS);
  EXPECT_TRUE(all_outages().empty());
  // After a restart the agent has agent_grace to come back ...
  clock.now = kT0 + 100 * kS;
  restart();
  clock.now = kT0 + 159 * kS;
  tracker->tick();
  EXPECT_TRUE(all_outages().empty());
  // ... and when it does not, its segment is dark from the collector's start.
  clock.now = kT0 + 160 * kS;
  tracker->tick();
  const auto v = all_outages();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].start_ns, kT0 + 100 * kS);
  EXPECT_EQ(v[0].cause, "agent_lost");
  EXPECT_TRUE(v[0].open);
}

TEST_F(OutageTrackerTest, InterfacesOnlyWhileAdministrativelyUp) {
  feed(iface(kT0, 2, 2));  // shut down: not monitored, not even created
  EXPECT_EQ(tracker->entity("interface/seg-a/10.0.0.1/3"), nullptr);
  feed(iface(kT0 + 60 * kS, 1, 1));
  feed(iface(kT0 + 120 * kS, 1, 2));
  EXPECT_EQ(metric("citywatch_uptime_interface_up", "interface=\"ge-0/0/3\""), 0);
  feed(iface(kT0 + 400 * kS, 2, 2));  // shut down during the outage: it ends there
  auto v = all_outages();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].cause, "oper_down");
  EXPECT_EQ(v[0].end_ns, kT0 + 400 * kS);
  EXPECT_EQ(v[0].end_reason, "admin_down");
  EXPECT_EQ(tracker->entity("interface/seg-a/10.0.0.1/3")->state, EntityState::kUnmonitored);
  feed(iface(kT0 + 500 * kS, 2, 2));
  EXPECT_EQ(all_outages().size(), 1u);
}

TEST_F(OutageTrackerTest, LinkTrapsOpenAndCloseInterfaceOutages) {
  Record down = base(kT0);
  SnmpTrap t;
  const std::uint8_t ip[4] = {10, 0, 0, 9};
  t.device = IpAddr::v4(ip);
  t.kind = SnmpTrapKind::kLinkDown;
  t.if_index = 7;
  down.body = t;
  feed(down);
  Record up = base(kT0 + 90 * kS);
  t.kind = SnmpTrapKind::kLinkUp;
  up.body = t;
  feed(up);
  const auto v = all_outages();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].cause, "trap");
  EXPECT_EQ(v[0].end_ns - v[0].start_ns, 90 * kS);
}

TEST_F(OutageTrackerTest, LateRecordsAreCountedAndIgnored) {
  feed(device(kT0 + 100 * kS, false));
  feed(device(kT0 + 50 * kS, true));  // older than the outage's start
  EXPECT_EQ(tracker->late_records(), 1u);
  EXPECT_EQ(tracker->open_outage_count(), 1u);
  EXPECT_EQ(metric("citywatch_uptime_late_records_total"), 1);
}

TEST_F(OutageTrackerTest, MaintenanceTimeIsMarkedOnTheOutage) {
  MaintenanceWindow w;
  w.name = "swap";
  w.devices = {"core-sw"};
  const CivilTime c = TimeZone().to_local(kT0 / kS + 100);
  w.start = c;
  w.duration_s = 120;
  config.maintenance = {w};
  restart();
  feed(device(kT0, false));
  feed(device(kT0 + 600 * kS, true));
  const auto v = all_outages();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].maintenance_ns, 120 * kS);
  EXPECT_EQ(metric("citywatch_uptime_outage_seconds_total"), 480);
}

TEST_F(OutageTrackerTest, AvailabilityGaugePerSiteAndWindow) {
  config.availability_windows = {std::chrono::hours(1)};
  restart();
  feed(device(kT0, true));
  feed(device(kT0 + 600 * kS, false));
  feed(device(kT0 + 960 * kS, true));  // 6 minutes down
  clock.now = kT0 + 3600 * kS;
  tracker->tick();
  EXPECT_DOUBLE_EQ(metric("citywatch_uptime_availability_ratio", "window=\"1h\""), 0.9);
}

// Segment availability and the target gauges (issue 12): outage time so far in the target
// period, in the baseline and the most the period may have.
TEST_F(OutageTrackerTest, SegmentAvailabilityAndTargetGauges) {
  config.availability_windows = {std::chrono::hours(1)};
  config.target.period = "year";  // the current year at the clock: 2025
  config.target.reduction_percent = 25;
  restart();
  const std::int64_t t2024 = kT0 - 365 * 86400 * kS;  // 2024-06-15
  feed(device(t2024, true));
  feed(device(t2024 + 600 * kS, false));
  feed(device(t2024 + 1200 * kS, true));  // 10 minutes down in the baseline
  feed(device(kT0, true));
  feed(device(kT0 + 600 * kS, false));
  feed(device(kT0 + 960 * kS, true));  // 6 minutes down this year
  clock.now = kT0 + 3600 * kS;
  tracker->tick();
  EXPECT_DOUBLE_EQ(
      metric("citywatch_uptime_segment_availability_ratio", "segment=\"seg-a\",site=\"seg-a\""),
      0.9);
  EXPECT_DOUBLE_EQ(metric("citywatch_uptime_period_outage_seconds", "site=\"seg-a\""), 360);
  EXPECT_DOUBLE_EQ(metric("citywatch_uptime_baseline_outage_seconds", "site=\"seg-a\""), 600);
  EXPECT_DOUBLE_EQ(metric("citywatch_uptime_target_outage_seconds", "site=\"seg-a\""), 450);
  EXPECT_DOUBLE_EQ(metric("citywatch_uptime_target_info",
                          "baseline=\"2024\",period=\"2025\",reduction_percent=\"25\""),
                   1);
  // A new year: the period rolls over and one info series is left.
  clock.now = kT0 + 200 * 86400 * kS;  // 2026-01-01
  tracker->tick();
  EXPECT_DOUBLE_EQ(metric("citywatch_uptime_target_info"), 1);
  EXPECT_DOUBLE_EQ(metric("citywatch_uptime_target_info", "period=\"2026\""), 1);
  EXPECT_DOUBLE_EQ(metric("citywatch_uptime_baseline_outage_seconds", "site=\"seg-a\""), 360);
}

}  // namespace
}  // namespace citywatch::collector::uptime
