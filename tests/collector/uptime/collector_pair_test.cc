// Two collectors on one store (docs/scaling.md, "Collector pairs"): an agent that fails over
// is not an outage, one gone from both is recorded once, a dead collector's agents are
// adopted. Each test runs on both engines: two connections to one SQLite file, or to one
// PostgreSQL database, as two collector processes would have.
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "collector/uptime/outage_tracker.h"
#include "tests/collector/uptime/uptime_test_support.h"
#include "tests/support/test_db.h"

namespace citywatch::collector::uptime {
namespace {

using testing::FakeClock;
using testing::kS;
using testing::kT0;

Record device(std::int64_t t, bool reachable) {
  Record r;
  r.event_time_ns = t;
  r.agent.assign("agent-1");
  r.segment.assign("seg-a");
  DeviceStatus d;
  const std::uint8_t ip[4] = {10, 0, 0, 1};
  d.device = IpAddr::v4(ip);
  d.target.assign("core-sw");
  d.reachable = reachable;
  d.cause = reachable ? SnmpCause::kNone : SnmpCause::kTimeout;
  r.body = d;
  return r;
}

class CollectorPairTest : public ::testing::TestWithParam<store::Engine> {
 protected:
  struct Collector {
    std::unique_ptr<OutageStore> store;
    std::shared_ptr<prometheus::Registry> registry;
    std::unique_ptr<UptimeMetrics> metrics;
    std::unique_ptr<OutageTracker> tracker;
  };

  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '-');
    dir = std::filesystem::temp_directory_path() /
          ("citywatch-pair-" + std::to_string(::getpid()) + "-" + name);
    ASSERT_TRUE(citywatch::testing::fresh_db(GetParam(), dir));
    config.min_outage = std::chrono::seconds(60);
    config.agent_grace = std::chrono::seconds(60);
    start(a, "collector-a");
    start(b, "collector-b");
  }
  void TearDown() override {
    a = {};
    b = {};
    std::filesystem::remove_all(dir);
  }
  void start(Collector& c, const std::string& id) {
    std::unique_ptr<store::SqlDb> db;
    const Status s = citywatch::testing::open_db(GetParam(), dir / "uptime.sqlite", db);
    ASSERT_TRUE(s) << s.message();
    ASSERT_TRUE(OutageStore::open(std::move(db), c.store));
    c.registry = std::make_shared<prometheus::Registry>();
    c.metrics = std::make_unique<UptimeMetrics>(*c.registry, config);
    c.tracker = std::make_unique<OutageTracker>(config, *c.store, clock, c.metrics.get(), id);
    ASSERT_TRUE(c.tracker->load());
  }
  // Both collectors tick once a second from the current time until `until`.
  void run_until(std::int64_t until, bool a_alive = true) {
    while (clock.now < until) {
      clock.now = std::min(until, clock.now + kS);
      if (a_alive && a.tracker) a.tracker->tick();
      b.tracker->tick();
    }
  }
  std::vector<OutageRow> outages() {
    std::vector<OutageRow> v;
    EXPECT_TRUE(a.store ? a.store->load_outages(0, INT64_MAX, v)
                        : b.store->load_outages(0, INT64_MAX, v));
    return v;
  }
  static double metric(const Collector& c, const std::string& name) {
    return testing::metric_sum(*c.registry, name);
  }
  static int series(const Collector& c, const std::string& name) {
    const std::string text = prometheus::TextSerializer().Serialize(c.registry->Collect());
    int n = 0;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
      if (line.rfind(name + "{", 0) == 0) ++n;
    return n;
  }
  static void feed(Collector& c, const Record& r) {
    c.tracker->consume_records(std::span<const Record>(&r, 1));
  }

  std::filesystem::path dir;
  UptimeConfig config;
  FakeClock clock;
  Collector a, b;
};

TEST_P(CollectorPairTest, AnAgentThatFailsOverWithinTheGraceIsNoOutage) {
  a.tracker->on_agent_session("agent-1", "seg-a", true, kT0);
  feed(a, device(kT0 + kS, true));
  EXPECT_EQ(metric(a, "citywatch_uptime_agent_up"), 1);
  run_until(kT0 + 30 * kS);
  a.tracker->on_agent_session("agent-1", "seg-a", false, clock.now);
  run_until(clock.now + 2 * kS);
  b.tracker->on_agent_session("agent-1", "seg-a", true, clock.now);
  feed(b, device(clock.now + kS, true));
  run_until(kT0 + 200 * kS);
  EXPECT_TRUE(outages().empty());
  EXPECT_FALSE(a.tracker->owns_agent("agent-1"));
  EXPECT_TRUE(b.tracker->owns_agent("agent-1"));
  // The series moved with the agent: the sum over both collectors counts it once.
  EXPECT_EQ(metric(a, "citywatch_uptime_agent_up"), 0);
  EXPECT_EQ(metric(b, "citywatch_uptime_agent_up"), 1);
  EXPECT_EQ(metric(a, "citywatch_uptime_device_up") + metric(b, "citywatch_uptime_device_up"), 1);
  // The figures read from the shared record come from one collector (the first by name).
  EXPECT_GT(series(a, "citywatch_uptime_segment_availability_ratio"), 0);
  EXPECT_EQ(series(b, "citywatch_uptime_segment_availability_ratio"), 0);
  EXPECT_EQ(series(b, "citywatch_uptime_availability"), 0);
}

TEST_P(CollectorPairTest, AnAgentGoneFromBothIsOneOutageClosedWhereverItReturns) {
  a.tracker->on_agent_session("agent-1", "seg-a", true, kT0);
  run_until(kT0 + 10 * kS);
  a.tracker->on_agent_session("agent-1", "seg-a", false, clock.now);
  run_until(kT0 + 300 * kS);
  auto v = outages();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].cause, "agent_lost");
  EXPECT_EQ(v[0].start_ns, kT0 + 10 * kS);  // from the disconnection, not the grace's end
  EXPECT_TRUE(v[0].open);
  EXPECT_EQ(
      metric(a, "citywatch_uptime_outages_total") + metric(b, "citywatch_uptime_outages_total"), 1);
  // It comes back to the other collector: that one closes the outage it did not open.
  b.tracker->on_agent_session("agent-1", "seg-a", true, clock.now);
  v = outages();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_FALSE(v[0].open);
  EXPECT_EQ(v[0].end_ns - v[0].start_ns, 290 * kS);
  EXPECT_EQ(v[0].end_reason, "agent_back");
  run_until(kT0 + 400 * kS);
  EXPECT_FALSE(a.tracker->owns_agent("agent-1"));
  EXPECT_EQ(outages().size(), 1u);
}

TEST_P(CollectorPairTest, ADeviceOutageOpenedByOneIsClosedByTheOther) {
  a.tracker->on_agent_session("agent-1", "seg-a", true, kT0);
  feed(a, device(kT0 + kS, true));
  run_until(kT0 + 60 * kS);
  feed(a, device(kT0 + 60 * kS, false));
  run_until(kT0 + 100 * kS);
  a.tracker->on_agent_session("agent-1", "seg-a", false, clock.now);
  b.tracker->on_agent_session("agent-1", "seg-a", true, clock.now + kS);
  feed(b, device(clock.now + 2 * kS, false));
  feed(b, device(clock.now + 60 * kS, true));
  const auto v = outages();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].cause, "snmp_timeout");
  EXPECT_EQ(v[0].start_ns, kT0 + 60 * kS);
  EXPECT_EQ(v[0].end_ns, kT0 + 160 * kS);
  EXPECT_FALSE(v[0].open);
}

TEST_P(CollectorPairTest, AKilledCollectorsAgentsAreAdoptedAndAnAgentGoneWithItRecordedOnce) {
  a.tracker->on_agent_session("agent-1", "seg-a", true, kT0);
  run_until(kT0 + 10 * kS);
  // Collector A dies (no stop(), no disconnect seen) and its agent with it.
  const std::int64_t last_beat = kT0 + 10 * kS;
  a.tracker.reset();
  run_until(kT0 + 300 * kS, /*a_alive=*/false);
  EXPECT_TRUE(b.tracker->owns_agent("agent-1"));
  const auto v = outages();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].cause, "agent_lost");
  EXPECT_TRUE(v[0].open);
  // Dark since A's last heartbeat at the latest (beats every 2 s).
  EXPECT_GE(v[0].start_ns, last_beat - 2 * kS);
  EXPECT_LE(v[0].start_ns, last_beat);
  EXPECT_EQ(metric(b, "citywatch_uptime_open_outages"), 1);
}

TEST_P(CollectorPairTest, ARestartedCollectorGivesItsAgentsTheGraceToComeBackAnywhere) {
  a.tracker->on_agent_session("agent-1", "seg-a", true, kT0);
  run_until(kT0 + 10 * kS);
  a.tracker->stop();
  a = {};
  start(a, "collector-a");  // restarted at kT0 + 10 s
  run_until(kT0 + 12 * kS);
  b.tracker->on_agent_session("agent-1", "seg-a", true, clock.now);
  run_until(kT0 + 200 * kS);
  EXPECT_TRUE(outages().empty());
  EXPECT_FALSE(a.tracker->owns_agent("agent-1"));
  EXPECT_TRUE(b.tracker->owns_agent("agent-1"));
}

// A half-open session that lingers after the agent reconnected to the same collector ends
// long after: the agent is still there, nothing is dark.
TEST_P(CollectorPairTest, ALeftoverSessionEndingIsNotALoss) {
  a.tracker->on_agent_session("agent-1", "seg-a", true, kT0);
  run_until(kT0 + 5 * kS);
  a.tracker->on_agent_session("agent-1", "seg-a", true, clock.now);  // the new session
  run_until(kT0 + 100 * kS);
  a.tracker->on_agent_session("agent-1", "seg-a", false, clock.now);  // the old one ends
  run_until(kT0 + 300 * kS);
  EXPECT_TRUE(outages().empty());
  EXPECT_TRUE(a.tracker->owns_agent("agent-1"));
  // Both sessions gone: now it is a loss, recorded once.
  a.tracker->on_agent_session("agent-1", "seg-a", false, clock.now);
  run_until(kT0 + 500 * kS);
  ASSERT_EQ(outages().size(), 1u);
  EXPECT_EQ(outages()[0].start_ns, kT0 + 300 * kS);
}

// An agent already dark in the record when its collector dies: the adopter keeps its outage
// open and answers for it (no second record, no lost series); it closes when the agent
// returns.
TEST_P(CollectorPairTest, AnAdoptedAgentAlreadyDarkStaysDarkOnce) {
  a.tracker->on_agent_session("agent-1", "seg-a", true, kT0);
  run_until(kT0 + 10 * kS);
  a.tracker->on_agent_session("agent-1", "seg-a", false, clock.now);
  run_until(kT0 + 100 * kS);
  ASSERT_EQ(outages().size(), 1u);
  a.tracker.reset();  // A dies; B adopts the dark agent
  run_until(kT0 + 300 * kS, /*a_alive=*/false);
  EXPECT_TRUE(b.tracker->owns_agent("agent-1"));
  auto v = outages();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(v[0].open);
  EXPECT_EQ(metric(b, "citywatch_uptime_open_outages"), 1);
  b.tracker->on_agent_session("agent-1", "seg-a", true, clock.now);
  v = outages();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_FALSE(v[0].open);
  EXPECT_EQ(v[0].end_reason, "agent_back");
}

INSTANTIATE_TEST_SUITE_P(Engines, CollectorPairTest, citywatch::testing::kEngines,
                         citywatch::testing::engine_name);

}  // namespace
}  // namespace citywatch::collector::uptime
