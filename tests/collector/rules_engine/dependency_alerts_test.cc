// The shipped infrastructure rules with the real uptime tracker as their DependencyView, fed
// in the collector's order (tracker first, then the engine): a branch router down takes its
// switch, access point and segment with it, and exactly one alert goes out, naming them.
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <filesystem>

#include "collector/rules_engine/rules_engine.h"
#include "collector/uptime/outage_tracker.h"
#include "tests/collector/rules_engine/test_records.h"

namespace citywatch::collector {
namespace {

using namespace citywatch::collector::testing;

struct Event {
  std::string text;  // "firing device_unreachable target=...,device=..."
  Labels where;
  Labels details;
};

class Sink : public AlertSink {
 public:
  bool wants_updates() const override { return true; }
  void deliver(const Alert& a, AlertEvent e, std::int64_t) override {
    events.push_back(
        {std::string(to_string(e)) + " " + a.rule->name + " " + a.key, a.where, a.details});
  }
  std::vector<Event> events;
};

class FixedClock final : public uptime::Clock {
 public:
  std::int64_t now_ns() const override { return now; }
  std::int64_t now = kT0;
};

std::string value_of(const Labels& l, const std::string& k) {
  for (const auto& [name, v] : l)
    if (name == k) return v;
  return "";
}

class DependencyAlertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("citywatch-depalerts-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    using K = uptime::DependencySpec::Kind;
    config.min_outage = std::chrono::seconds(30);
    config.dependency_grace = std::chrono::seconds(60);
    config.dependencies = {{K::kDevice, "branch-router", {}},
                           {K::kSegment, "branch-lan", {"branch-router"}},
                           {K::kSite, "library", {"branch-router"}}};
    config.sites = {{"library", {"branch-lan"}}};
    ASSERT_TRUE(uptime::OutageStore::open(dir / "uptime.sqlite", store));
    tracker = std::make_unique<uptime::OutageTracker>(config, *store, clock, nullptr);
    ASSERT_TRUE(tracker->load());
    lifecycle.add_sink(&sink);
    auto set = std::make_shared<RuleSet>();
    ASSERT_TRUE(
        load_rule_set({std::string(CITYWATCH_SOURCE_DIR) + "/rules/infrastructure.yaml"}, *set));
    engine.load(set);
    engine.set_dependencies(tracker.get());
  }
  void TearDown() override {
    tracker.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  // A poll result for 10.20.0.N, in the collector's order: tracker, then rules.
  void poll(std::int64_t t, int n, const char* name, bool up, int failures) {
    Record r = device(t, up, failures);
    r.segment.assign("branch-lan");
    r.agent.assign("agent-lib");
    auto& d = std::get<DeviceStatus>(r.body);
    d.device = ip("10.20.0." + std::to_string(n));
    d.target.assign(name);
    d.cause = up ? SnmpCause::kNone : SnmpCause::kTimeout;
    tracker->consume_records(std::span<const Record>(&r, 1));
    engine.consume_records(std::span<const Record>(&r, 1));
  }
  void round(std::int64_t t, bool router, bool children, int failures) {
    poll(t, 1, "branch-router", router, router ? 0 : failures);
    poll(t, 2, "lib-switch", children, children ? 0 : failures);
    poll(t, 3, "lib-ap", children, children ? 0 : failures);
    poll(t, 4, "lib-ups", children, children ? 0 : failures);
  }
  std::vector<Event> firing(const std::string& rule) const {
    std::vector<Event> v;
    for (const Event& e : sink.events)
      if (e.text.rfind("firing " + rule, 0) == 0) v.push_back(e);
    return v;
  }

  std::filesystem::path dir;
  uptime::UptimeConfig config;
  FixedClock clock;
  std::unique_ptr<uptime::OutageStore> store;
  std::unique_ptr<uptime::OutageTracker> tracker;
  prometheus::Registry registry;
  AlertMetrics metrics{registry};
  AlertLifecycle lifecycle{metrics};
  std::int64_t wall = kT0;
  RulesEngine engine{lifecycle, registry, [this] { return wall; }};
  Sink sink;
};

TEST_F(DependencyAlertsTest, OneRootAlertNamesWhatItTookDown) {
  const std::int64_t s = 1'000'000'000;
  round(kT0, true, true, 0);
  // The uplink fails: every device fails two polls in a row, children first in the round.
  for (int i = 1; i <= 3; ++i) {
    const std::int64_t t = kT0 + i * 10 * s;
    poll(t, 2, "lib-switch", false, i);
    poll(t, 3, "lib-ap", false, i);
    poll(t, 1, "branch-router", false, i);
    poll(t, 4, "lib-ups", false, i);
  }
  const auto root = firing("device_unreachable");
  ASSERT_EQ(root.size(), 1u);
  EXPECT_NE(root[0].text.find("target=branch-router"), std::string::npos) << root[0].text;
  // By the root's next signal every child has joined it: the update names all three.
  std::string names;
  for (const Event& e : sink.events)
    if (e.text.find("device_unreachable target=branch-router") != std::string::npos)
      names = value_of(e.details, "dependent_names");
  EXPECT_EQ(names, "lib-ap, lib-switch, lib-ups");
  // The agent drops too (its uplink is the same router): no alert of its own.
  tracker->on_agent_session("agent-lib", "branch-lan", true, kT0);
  engine.on_agent_session("agent-lib", "branch-lan", true, kT0);
  tracker->on_agent_session("agent-lib", "branch-lan", false, kT0 + 35 * s);
  engine.on_agent_session("agent-lib", "branch-lan", false, kT0 + 35 * s);
  EXPECT_TRUE(firing("agent_disconnected").empty());
  // Everything recovers; later the switch alone goes down: it alerts on its own, with the
  // parents label Alertmanager inhibition can match.
  tracker->on_agent_session("agent-lib", "branch-lan", true, kT0 + 60 * s);
  engine.on_agent_session("agent-lib", "branch-lan", true, kT0 + 60 * s);
  round(kT0 + 60 * s, true, true, 0);
  clock.now = kT0 + 300 * s;
  tracker->tick();
  poll(kT0 + 400 * s, 1, "branch-router", true, 0);
  poll(kT0 + 400 * s, 2, "lib-switch", false, 1);
  poll(kT0 + 410 * s, 1, "branch-router", true, 0);
  poll(kT0 + 410 * s, 2, "lib-switch", false, 2);
  const auto all = firing("device_unreachable");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_NE(all[1].text.find("target=lib-switch"), std::string::npos) << all[1].text;
  EXPECT_EQ(value_of(all[1].where, "parents"), "branch-router");
  EXPECT_EQ(value_of(all[1].details, "dependents"), "");
}

TEST_F(DependencyAlertsTest, ALostAgentAlertsOnceItsParentIsSeenUpOrTheIncidentEnds) {
  const std::int64_t s = 1'000'000'000;
  const auto session = [&](bool connected, std::int64_t t) {
    tracker->on_agent_session("agent-lib", "branch-lan", connected, t);
    engine.on_agent_session("agent-lib", "branch-lan", connected, t);
  };
  round(kT0, true, true, 0);
  session(true, kT0);
  // The agent's host dies while its router is fine: one session event, then nothing. It
  // waits for the router's next poll, which is up: then it alerts.
  session(false, kT0 + 5 * s);
  EXPECT_TRUE(firing("agent_disconnected").empty());
  poll(kT0 + 10 * s, 1, "branch-router", true, 0);
  EXPECT_EQ(firing("agent_disconnected").size(), 1u);
  session(true, kT0 + 20 * s);
  // Now the router takes the segment down, recovers, and the agent stays away past the
  // grace: the segment becomes its own incident, and the held alert goes out on a tick.
  poll(kT0 + 30 * s, 1, "branch-router", false, 1);
  session(false, kT0 + 31 * s);
  poll(kT0 + 40 * s, 1, "branch-router", false, 2);
  poll(kT0 + 50 * s, 1, "branch-router", true, 0);
  engine.recheck_held();
  EXPECT_EQ(firing("agent_disconnected").size(), 1u);  // within the grace: still the root's
  clock.now = kT0 + 50 * s + config.dependency_grace.count() + s;
  tracker->tick();
  wall += 200 * s;
  engine.recheck_held();
  EXPECT_EQ(firing("agent_disconnected").size(), 2u);
}

TEST_F(DependencyAlertsTest, WithoutTheTrackerEveryDeviceAlerts) {
  engine.set_dependencies(nullptr);
  const std::int64_t s = 1'000'000'000;
  round(kT0, true, true, 0);
  round(kT0 + 10 * s, false, false, 1);
  round(kT0 + 20 * s, false, false, 2);
  EXPECT_EQ(firing("device_unreachable").size(), 4u);
}

}  // namespace
}  // namespace citywatch::collector
