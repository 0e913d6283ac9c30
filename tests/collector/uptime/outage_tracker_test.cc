#include "collector/uptime/outage_tracker.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <filesystem>

#include "tests/collector/uptime/uptime_test_support.h"
#include "tests/support/test_db.h"

namespace citywatch::collector::uptime {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

using testing::FakeClock;
using testing::kS;
using testing::kT0;

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

// A device of the branch topology the dependency tests use: 10.9.0.N named `name`.
Record dev(std::int64_t t, std::uint8_t n, const char* name, bool reachable) {
  Record r = base(t);
  DeviceStatus d;
  const std::uint8_t ip[4] = {10, 9, 0, n};
  d.device = IpAddr::v4(ip);
  d.target.assign(name);
  d.reachable = reachable;
  d.cause = reachable ? SnmpCause::kNone : SnmpCause::kTimeout;
  r.body = d;
  return r;
}

EntityRef ref(std::uint8_t n) {
  EntityRef e;
  e.kind = EntityRef::Kind::kDevice;
  e.segment = "seg-a";
  const std::uint8_t ip[4] = {10, 9, 0, n};
  e.addr = IpAddr::v4(ip);
  return e;
}

// Every tracker test runs on both store engines (SQLite, PostgreSQL).
class OutageTrackerTest : public ::testing::TestWithParam<store::Engine> {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '-');
    dir = std::filesystem::temp_directory_path() /
          ("citywatch-uptime-" + std::to_string(::getpid()) + "-" + name);
    ASSERT_TRUE(citywatch::testing::fresh_db(GetParam(), dir));
    open_store(store);
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
  void open_store(std::unique_ptr<OutageStore>& out) {
    std::unique_ptr<store::SqlDb> db;
    const Status s = citywatch::testing::open_db(GetParam(), dir / "uptime.sqlite", db);
    ASSERT_TRUE(s) << s.message();
    ASSERT_TRUE(OutageStore::open(std::move(db), out));
  }
  void restart() {
    tracker.reset();
    metrics.reset();
    store.reset();
    open_store(store);
    start();
  }
  void feed(const Record& r) { tracker->consume_records(std::span<const Record>(&r, 1)); }
  std::vector<OutageRow> all_outages() {
    std::vector<OutageRow> v;
    EXPECT_TRUE(store->load_outages(0, INT64_MAX, v));
    return v;
  }
  double metric(const std::string& name, const std::string& labels = "") {
    return testing::metric_sum(*registry, name, labels);
  }

  std::filesystem::path dir;
  UptimeConfig config;
  FakeClock clock;
  std::unique_ptr<OutageStore> store;
  std::shared_ptr<prometheus::Registry> registry;
  std::unique_ptr<UptimeMetrics> metrics;
  std::unique_ptr<OutageTracker> tracker;
};

TEST_P(OutageTrackerTest, OutageBoundariesAndUncertainty) {
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

TEST_P(OutageTrackerTest, ShortBlipIsAFlapNotAnOutage) {
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

TEST_P(OutageTrackerTest, OutageIsCountedOnceItReachesMinOutageWhileOpen) {
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

TEST_P(OutageTrackerTest, RestartKeepsTheOutageOpenAndWhole) {
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

TEST_P(OutageTrackerTest, AgentLostDarkensTheSegment) {
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

TEST_P(OutageTrackerTest, CollectorShutdownIsNotAnAgentLoss) {
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

TEST_P(OutageTrackerTest, InterfacesOnlyWhileAdministrativelyUp) {
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

TEST_P(OutageTrackerTest, LinkTrapsOpenAndCloseInterfaceOutages) {
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

// Link traps name their sender themselves: from devices no agent polls, the tracker follows
// the first 1024 interfaces and counts the rest, so spoofed traps cannot grow it without end.
// A polled device's interfaces are still followed after that.
TEST_P(OutageTrackerTest, LinkTrapsFromUnpolledDevicesAreBounded) {
  std::vector<Record> traps;
  for (int i = 0; i < 1500; ++i) {
    Record r = base(kT0);
    SnmpTrap t;
    const std::uint8_t ip[4] = {172, 16, static_cast<std::uint8_t>(i >> 8),
                                static_cast<std::uint8_t>(i)};
    t.device = IpAddr::v4(ip);
    t.kind = SnmpTrapKind::kLinkDown;
    t.if_index = 1;
    r.body = t;
    traps.push_back(r);
  }
  tracker->consume_records(traps);
  EXPECT_EQ(tracker->open_outage_count(), 1024u);
  EXPECT_EQ(metric("citywatch_uptime_entities_refused_total", "reason=\"unknown_device\""), 476);
  feed(device(kT0, true));  // core-sw, 10.0.0.1: polled
  Record down = base(kT0 + kS);
  SnmpTrap t;
  const std::uint8_t ip[4] = {10, 0, 0, 1};
  t.device = IpAddr::v4(ip);
  t.kind = SnmpTrapKind::kLinkDown;
  t.if_index = 7;
  down.body = t;
  feed(down);
  EXPECT_EQ(tracker->open_outage_count(), 1025u);
  EXPECT_EQ(metric("citywatch_uptime_entities_refused_total", "reason=\"unknown_device\""), 476);
}

TEST_P(OutageTrackerTest, LateRecordsAreCountedAndIgnored) {
  feed(device(kT0 + 100 * kS, false));
  feed(device(kT0 + 50 * kS, true));  // older than the outage's start
  EXPECT_EQ(tracker->late_records(), 1u);
  EXPECT_EQ(tracker->open_outage_count(), 1u);
  EXPECT_EQ(metric("citywatch_uptime_late_records_total"), 1);
}

TEST_P(OutageTrackerTest, MaintenanceTimeIsMarkedOnTheOutage) {
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

TEST_P(OutageTrackerTest, AvailabilityGaugePerSiteAndWindow) {
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
TEST_P(OutageTrackerTest, SegmentAvailabilityAndTargetGauges) {
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

// The branch: core-router (.1) <- branch-router (.2) <- switch (.3), ap (.4); segment
// branch-lan's agent behind the branch router.
class DependencyTest : public OutageTrackerTest {
 protected:
  void SetUp() override {
    OutageTrackerTest::SetUp();
    config.dependency_grace = std::chrono::seconds(120);
    config.dependency_wait = std::chrono::seconds(120);
    config.dependencies = {{DependencySpec::Kind::kDevice, "core-router", {}},
                           {DependencySpec::Kind::kDevice, "branch-router", {"core-router"}},
                           {DependencySpec::Kind::kDevice, "switch", {"branch-router"}},
                           {DependencySpec::Kind::kDevice, "ap", {"branch-router"}},
                           {DependencySpec::Kind::kSegment, "seg-a", {"branch-router"}}};
    restart();
  }
  void all(std::int64_t t, bool router_up, bool switch_up, bool ap_up) {
    feed(dev(t, 2, "branch-router", router_up));
    feed(dev(t, 3, "switch", switch_up));
    feed(dev(t, 4, "ap", ap_up));
  }
  const OutageRow* open(const char* addr) {
    return tracker->open_outage(std::string("device/seg-a/") + addr);
  }
};

TEST_P(DependencyTest, ChildrenOfADownParentAreAttachedToItsIncident) {
  all(kT0, true, true, true);
  feed(dev(kT0 + 60 * kS, 2, "branch-router", false));  // the root goes first
  feed(dev(kT0 + 61 * kS, 3, "switch", false));
  feed(dev(kT0 + 62 * kS, 4, "ap", false));
  tracker->on_agent_session("agent-1", "seg-a", true, kT0);
  tracker->on_agent_session("agent-1", "seg-a", false, kT0 + 63 * kS);
  const OutageRow* root = open("10.9.0.2");
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->root_outage_id, 0);
  EXPECT_EQ(open("10.9.0.3")->root_outage_id, root->id);
  EXPECT_EQ(open("10.9.0.4")->root_outage_id, root->id);
  EXPECT_EQ(tracker->open_outage("segment/agent-1")->root_outage_id, root->id);
  // The rules engine's view: children suppressed, the root names them.
  EXPECT_EQ(tracker->verdict(ref(3), kT0 + 70 * kS), DependencyView::Verdict::kSuppress);
  EXPECT_EQ(tracker->verdict(ref(2), kT0 + 70 * kS), DependencyView::Verdict::kAlert);
  Labels labels, details;
  tracker->describe(ref(2), labels, details);
  EXPECT_EQ(labels, (Labels{{"parents", "core-router"}}));
  EXPECT_EQ(details,
            (Labels{{"dependents", "3"}, {"dependent_names", "ap, segment seg-a, switch"}}));
  EXPECT_EQ(metric("citywatch_uptime_open_outages"), 1);
  EXPECT_EQ(metric("citywatch_uptime_open_dependent_outages"), 3);
  EXPECT_EQ(metric("citywatch_uptime_device_dependent", "device=\"switch\""), 1);
  EXPECT_EQ(metric("citywatch_uptime_agent_dependent"), 1);
  EXPECT_EQ(metric("citywatch_uptime_incident_dependents", "root=\"branch-router\""), 3);
  clock.now = kT0 + 200 * kS;
  tracker->tick();
  // One incident counted; the dependents apart.
  EXPECT_EQ(metric("citywatch_uptime_outages_total"), 1);
  EXPECT_EQ(metric("citywatch_uptime_dependent_outages_total"), 3);
  EXPECT_EQ(metric("citywatch_uptime_outage_seconds_total"), 140);
  EXPECT_EQ(metric("citywatch_uptime_dependent_outage_seconds_total"), 139 + 138 + 137);
  // All recover within the grace: the dependents stay attached, nothing of their own.
  all(kT0 + 300 * kS, true, true, true);
  tracker->on_agent_session("agent-1", "seg-a", true, kT0 + 305 * kS);
  clock.now = kT0 + 1000 * kS;
  tracker->tick();
  const auto v = all_outages();
  ASSERT_EQ(v.size(), 4u);
  int roots = 0;
  for (const OutageRow& o : v) roots += o.root_outage_id == 0 ? 1 : 0;
  EXPECT_EQ(roots, 1);
  EXPECT_EQ(metric("citywatch_uptime_open_outages"), 0);
  EXPECT_EQ(metric("citywatch_uptime_open_dependent_outages"), 0);
  EXPECT_EQ(metric("citywatch_uptime_incident_dependents"), 0);
  EXPECT_EQ(metric("citywatch_uptime_outage_seconds_total"), 240);
}

TEST_P(DependencyTest, AChildThatFailedFirstJoinsItsParentsIncident) {
  all(kT0, true, true, true);
  feed(dev(kT0 + 60 * kS, 3, "switch", false));  // polled before its parent in the round
  // Until the parent's next check the child's alert waits; then it is suppressed.
  EXPECT_EQ(tracker->verdict(ref(3), kT0 + 61 * kS), DependencyView::Verdict::kHold);
  feed(dev(kT0 + 61 * kS, 2, "branch-router", false));
  EXPECT_EQ(open("10.9.0.3")->root_outage_id, open("10.9.0.2")->id);
  EXPECT_EQ(tracker->verdict(ref(3), kT0 + 62 * kS), DependencyView::Verdict::kSuppress);
  // A child down since before its parent's last good check is its own incident.
  feed(dev(kT0 + 120 * kS, 4, "ap", true));
  all(kT0 + 200 * kS, true, true, true);
  feed(dev(kT0 + 300 * kS, 4, "ap", false));
  feed(dev(kT0 + 360 * kS, 2, "branch-router", true));
  EXPECT_EQ(tracker->verdict(ref(4), kT0 + 361 * kS), DependencyView::Verdict::kAlert);
  feed(dev(kT0 + 420 * kS, 2, "branch-router", false));
  EXPECT_EQ(open("10.9.0.4")->root_outage_id, 0);
}

TEST_P(DependencyTest, AChildStillDownAfterTheGraceBecomesItsOwnIncident) {
  all(kT0, true, true, true);
  all(kT0 + 60 * kS, false, false, false);
  const std::int64_t root_id = open("10.9.0.2")->id;
  feed(dev(kT0 + 400 * kS, 2, "branch-router", true));  // the root recovers at +400
  feed(dev(kT0 + 410 * kS, 4, "ap", true));             // the ap with it
  clock.now = kT0 + 500 * kS;                           // within the grace
  tracker->tick();
  EXPECT_EQ(open("10.9.0.3")->root_outage_id, root_id);
  EXPECT_EQ(tracker->verdict(ref(3), kT0 + 500 * kS), DependencyView::Verdict::kSuppress);
  clock.now = kT0 + 521 * kS;  // the grace is over: the switch is down on its own
  tracker->tick();
  const OutageRow* own = open("10.9.0.3");
  ASSERT_NE(own, nullptr);
  EXPECT_EQ(own->root_outage_id, 0);
  EXPECT_EQ(own->start_ns, kT0 + 400 * kS);
  EXPECT_EQ(tracker->verdict(ref(3), kT0 + 521 * kS), DependencyView::Verdict::kAlert);
  feed(dev(kT0 + 700 * kS, 3, "switch", true));
  std::vector<OutageRow> sw;
  for (const OutageRow& o : all_outages())
    if (o.start_ns >= kT0 + 60 * kS && o.cause == "snmp_timeout") sw.push_back(o);
  // Root, ap (dependent), switch dependent piece, switch's own piece.
  ASSERT_EQ(sw.size(), 4u);
  int own_pieces = 0, split_pieces = 0;
  for (const OutageRow& o : sw) {
    if (o.end_reason == "parent_up") {
      ++split_pieces;
      EXPECT_EQ(o.root_outage_id, root_id);
      EXPECT_EQ(o.end_ns, kT0 + 400 * kS);
    }
    if (o.root_outage_id == 0 && o.id != root_id) {
      ++own_pieces;
      EXPECT_EQ(o.end_ns, kT0 + 700 * kS);
    }
  }
  EXPECT_EQ(split_pieces, 1);
  EXPECT_EQ(own_pieces, 1);
  EXPECT_EQ(metric("citywatch_uptime_open_outages"), 0);
  EXPECT_EQ(metric("citywatch_uptime_open_dependent_outages"), 0);
}

TEST_P(DependencyTest, ChainsAttachToTheTopAndRedundantParentsMustAllBeDown) {
  config.dependencies.push_back({DependencySpec::Kind::kDevice, "ups", {"switch", "ap"}});
  restart();
  all(kT0, true, true, true);
  feed(dev(kT0, 1, "core-router", true));
  feed(dev(kT0, 5, "ups", true));
  // One of two redundant parents down: the ups is down on its own account.
  feed(dev(kT0 + 60 * kS, 3, "switch", false));
  feed(dev(kT0 + 61 * kS, 5, "ups", false));
  EXPECT_EQ(open("10.9.0.5")->root_outage_id, 0);
  feed(dev(kT0 + 62 * kS, 3, "switch", true));
  feed(dev(kT0 + 63 * kS, 5, "ups", true));
  // The core fails: branch router, switch, ap and ups all attach to the core's outage.
  feed(dev(kT0 + 120 * kS, 1, "core-router", false));
  all(kT0 + 121 * kS, false, false, false);
  feed(dev(kT0 + 122 * kS, 5, "ups", false));
  const std::int64_t core = open("10.9.0.1")->id;
  for (const char* a : {"10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5"})
    EXPECT_EQ(open(a)->root_outage_id, core) << a;
  Labels labels, details;
  tracker->describe(ref(1), labels, details);
  EXPECT_TRUE(labels.empty());
  EXPECT_EQ(details,
            (Labels{{"dependents", "4"}, {"dependent_names", "ap, branch-router, switch, ups"}}));
}

TEST_P(DependencyTest, ARestartKeepsDependentsAttached) {
  all(kT0, true, true, true);
  all(kT0 + 60 * kS, false, false, false);
  const std::int64_t root_id = open("10.9.0.2")->id;
  clock.now = kT0 + 100 * kS;
  restart();
  EXPECT_EQ(open("10.9.0.3")->root_outage_id, root_id);
  EXPECT_EQ(metric("citywatch_uptime_open_outages"), 1);
  EXPECT_EQ(metric("citywatch_uptime_open_dependent_outages"), 2);
  EXPECT_EQ(metric("citywatch_uptime_incident_dependents", "root=\"branch-router\""), 2);
  Labels labels, details;
  tracker->describe(ref(2), labels, details);
  EXPECT_EQ(details, (Labels{{"dependents", "2"}, {"dependent_names", "ap, switch"}}));
  // The root ends; a restart inside the grace still splits the one left down after it.
  feed(dev(kT0 + 200 * kS, 2, "branch-router", true));
  feed(dev(kT0 + 201 * kS, 4, "ap", true));
  clock.now = kT0 + 250 * kS;
  restart();
  clock.now = kT0 + 330 * kS;
  tracker->tick();
  ASSERT_NE(open("10.9.0.3"), nullptr);
  EXPECT_EQ(open("10.9.0.3")->root_outage_id, 0);
  EXPECT_EQ(open("10.9.0.3")->start_ns, kT0 + 200 * kS);
}

TEST_P(DependencyTest, ADependentParentReleasedAfterItsChildHoldsTheChild) {
  // core <- branch-router <- switch, failing children first: the switch, then the branch
  // router (the switch joins it), then the core (both join the core's incident, the
  // switch listed before the router). The core recovers, the two stay down: the router
  // becomes its own incident and the switch depends on it, not on the ended core.
  feed(dev(kT0, 1, "core-router", true));
  all(kT0, true, true, true);
  feed(dev(kT0 + 60 * kS, 3, "switch", false));
  feed(dev(kT0 + 61 * kS, 2, "branch-router", false));
  feed(dev(kT0 + 62 * kS, 1, "core-router", false));
  const std::int64_t core = open("10.9.0.1")->id;
  EXPECT_EQ(open("10.9.0.3")->root_outage_id, core);
  EXPECT_EQ(open("10.9.0.2")->root_outage_id, core);
  feed(dev(kT0 + 300 * kS, 1, "core-router", true));
  clock.now = kT0 + 300 * kS + 121 * kS;
  tracker->tick();
  const OutageRow* router = open("10.9.0.2");
  ASSERT_NE(router, nullptr);
  EXPECT_EQ(router->root_outage_id, 0);
  EXPECT_EQ(open("10.9.0.3")->root_outage_id, router->id);
  EXPECT_EQ(tracker->verdict(ref(3), kT0 + 421 * kS), DependencyView::Verdict::kSuppress);
  EXPECT_EQ(tracker->verdict(ref(2), kT0 + 421 * kS), DependencyView::Verdict::kAlert);
  EXPECT_EQ(metric("citywatch_uptime_open_outages"), 1);
  EXPECT_EQ(metric("citywatch_uptime_open_dependent_outages"), 1);
  // The router recovers, the switch does not: after the grace it alerts on its own.
  feed(dev(kT0 + 500 * kS, 2, "branch-router", true));
  clock.now = kT0 + 500 * kS + 121 * kS;
  tracker->tick();
  EXPECT_EQ(open("10.9.0.3")->root_outage_id, 0);
  EXPECT_EQ(tracker->verdict(ref(3), kT0 + 621 * kS), DependencyView::Verdict::kAlert);
  EXPECT_EQ(tracker->store_errors(), 0u);
}

TEST_P(DependencyTest, AShortRootWithDependentsIsAnIncidentNotAFlap) {
  all(kT0, true, true, true);
  all(kT0 + 60 * kS, false, false, false);
  all(kT0 + 90 * kS, true, true, true);  // 30 s: under min_outage (60 s)
  int roots = 0, flaps = 0;
  for (const OutageRow& o : all_outages()) {
    roots += o.root_outage_id == 0 ? 1 : 0;
    flaps += o.flap ? 1 : 0;
  }
  EXPECT_EQ(roots, 1);
  EXPECT_EQ(flaps, 2);  // the dependents' blips; the root that took them down stays
  EXPECT_EQ(metric("citywatch_uptime_outages_total"), 1);
}

TEST_P(DependencyTest, AChildThatFailedAfterItsRootRecoveredIsItsOwnOutage) {
  all(kT0, true, true, true);
  feed(dev(kT0 + 60 * kS, 2, "branch-router", false));
  // The switch's failure (agent clock +120) is seen before the router's recovery (+100),
  // from another agent's batch: attached while the root is open, after its real end.
  feed(dev(kT0 + 120 * kS, 3, "switch", false));
  const std::int64_t sw = open("10.9.0.3")->id;
  EXPECT_NE(open("10.9.0.3")->root_outage_id, 0);
  feed(dev(kT0 + 100 * kS, 2, "branch-router", true));
  clock.now = kT0 + 400 * kS;
  tracker->tick();
  ASSERT_NE(open("10.9.0.3"), nullptr);
  EXPECT_EQ(open("10.9.0.3")->id, sw);  // the same row, now its own incident
  EXPECT_EQ(open("10.9.0.3")->root_outage_id, 0);
  EXPECT_EQ(tracker->store_errors(), 0u);
  feed(dev(kT0 + 500 * kS, 3, "switch", true));
  for (const OutageRow& o : all_outages())
    if (o.id == sw) {
      EXPECT_EQ(o.end_ns, kT0 + 500 * kS);
    }
  EXPECT_EQ(metric("citywatch_uptime_open_outages"), 0);
  EXPECT_EQ(metric("citywatch_uptime_open_dependent_outages"), 0);
}

TEST_P(DependencyTest, AnOutageWaitingForItsParentIsNotCountedYet) {
  config.min_outage = std::chrono::seconds(10);
  restart();
  all(kT0, true, true, true);
  feed(dev(kT0 + 60 * kS, 3, "switch", false));
  clock.now = kT0 + 90 * kS;  // past min_outage, the router not checked since
  tracker->tick();
  EXPECT_EQ(metric("citywatch_uptime_outages_total"), 0);
  EXPECT_EQ(metric("citywatch_uptime_outage_seconds_total"), 0);
  feed(dev(kT0 + 95 * kS, 2, "branch-router", false));  // the router: down too
  clock.now = kT0 + 120 * kS;
  tracker->tick();
  EXPECT_EQ(metric("citywatch_uptime_outages_total"), 1);  // the router's
  EXPECT_EQ(metric("citywatch_uptime_dependent_outages_total"), 1);
  EXPECT_EQ(metric("citywatch_uptime_dependent_outage_seconds_total"), 60);
}

// A version-1 store (before dependencies and collector pairs) is migrated in place, on each
// engine, keeping its open outage.
TEST_P(OutageTrackerTest, MigratesAVersion1StoreInPlace) {
  tracker.reset();
  EntityRow e;
  e.key = "device/seg-a/10.0.0.1";
  e.device_name = "sw";
  ASSERT_TRUE(store->save_entity(e));
  OutageRow o;
  o.entity_id = e.id;
  o.cause = "snmp_timeout";
  o.start_ns = 5;
  ASSERT_TRUE(store->start_outage(e, o));
  // Back to version 1's shape: no root_outage_id, no pair tables.
  for (const char* sql : {"DROP VIEW outage_view", "DROP INDEX outages_by_root",
                          "ALTER TABLE outages DROP COLUMN root_outage_id",
                          "DROP TABLE agent_owners", "DROP TABLE collectors"})
    ASSERT_TRUE(store->db().exec(sql)) << sql;
  ASSERT_TRUE(store->db().set_schema_version("outages", 1));
  store.reset();
  open_store(store);
  ASSERT_TRUE(store);
  int version = 0;
  bool empty = true;
  ASSERT_TRUE(store->db().schema_version("outages", version, empty));
  EXPECT_EQ(version, 3);
  std::vector<OutageRow> v;
  ASSERT_TRUE(store->load_open_outages(v));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].root_outage_id, 0);
  EntityRow router;
  router.key = "device/seg-a/10.0.0.254";
  router.device_name = "router";
  ASSERT_TRUE(store->save_entity(router));
  OutageRow root;
  root.entity_id = router.id;
  root.cause = "unreachable";
  root.start_ns = 1;
  ASSERT_TRUE(store->start_outage(router, root));
  ASSERT_TRUE(store->attach(v[0].id, root.id));
  OutageRow attached;
  ASSERT_TRUE(store->load_outage(v[0].id, attached));
  EXPECT_EQ(attached.root_outage_id, root.id);
  AgentOwner owner;
  ASSERT_TRUE(store->claim_agent("agent-a", "collector-a", 7));
  ASSERT_TRUE(store->agent_owner("agent-a", owner));
  EXPECT_EQ(owner.collector, "collector-a");
}

INSTANTIATE_TEST_SUITE_P(Engines, OutageTrackerTest, citywatch::testing::kEngines,
                         citywatch::testing::engine_name);
INSTANTIATE_TEST_SUITE_P(Engines, DependencyTest, citywatch::testing::kEngines,
                         citywatch::testing::engine_name);

}  // namespace
}  // namespace citywatch::collector::uptime
