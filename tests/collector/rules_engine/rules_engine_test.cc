#include "collector/rules_engine/rules_engine.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>

#include "collector/rules_engine/rules_service.h"
#include "tests/collector/rules_engine/test_records.h"

namespace citywatch::collector {
namespace {

using namespace citywatch::collector::testing;

class Sink : public AlertSink {
 public:
  void deliver(const Alert& a, AlertEvent e, std::int64_t) override {
    events.push_back(std::string(to_string(e)) + " " + a.rule->name + " " + a.key + " " +
                     format_number(a.value));
  }
  std::vector<std::string> events;
};

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("rules-test-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = path_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

struct Fixture {
  explicit Fixture(const std::string& yaml)
      : metrics(registry),
        lifecycle(metrics),
        engine(lifecycle, registry, [this] { return wall; }) {
    lifecycle.add_sink(&sink);
    const std::string f = dir.write("rules.yaml", yaml);
    auto set = std::make_shared<RuleSet>();
    status = load_rule_set({f}, *set);
    if (status.is_ok()) engine.load(set);
  }
  void feed(const Record& r) { engine.consume_records(std::span<const Record>(&r, 1)); }
  TempDir dir;
  std::int64_t wall = kT0;
  prometheus::Registry registry;
  AlertMetrics metrics;
  AlertLifecycle lifecycle;
  RulesEngine engine;
  Sink sink;
  Status status;
};

const char* kScanRule = R"(rules:
  - name: scan
    kind: distinct
    description: d
    runbook: r
    where: syn_only
    except: src in [10.9.9.9]
    group_by: [src, dst]
    field: dst_port
    threshold: 10
    window: 10s
    hold_down: 30s
)";

TEST(RulesEngine, DistinctCountsOnEventTimeWindows) {
  Fixture f(kScanRule);
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  // 9 ports, then 9 more 60 s later: never 10 within 10 s of event time.
  for (int p = 0; p < 9; ++p)
    f.feed(flow(kT0 + p * kMs, "10.0.0.1", "10.0.0.2", 1, 100 + p, 6, kSyn, 1, 40));
  for (int p = 0; p < 9; ++p)
    f.feed(flow(kT0 + 60 * kSec + p * kMs, "10.0.0.1", "10.0.0.2", 1, 200 + p, 6, kSyn, 1, 40));
  EXPECT_TRUE(f.sink.events.empty());
  // One more within the second burst's window: 10 ports.
  f.feed(flow(kT0 + 61 * kSec, "10.0.0.1", "10.0.0.2", 1, 300, 6, kSyn, 1, 40));
  ASSERT_EQ(f.sink.events.size(), 1u);
  EXPECT_EQ(f.sink.events[0], "firing scan src=10.0.0.1,dst=10.0.0.2 10");
  // An allowlisted source never counts.
  for (int p = 0; p < 50; ++p)
    f.feed(flow(kT0 + p * kMs, "10.9.9.9", "10.0.0.2", 1, p, 6, kSyn, 1, 40));
  EXPECT_EQ(f.sink.events.size(), 1u);
}

// A failed probe as the agent's packet events report it (oriented as its SYN).
Record probe(std::int64_t t, const std::string& src, const std::string& dst, int dport) {
  Record r = packet(t, PacketEventKind::kTcpProbeFailed, src, dst);
  auto& p = std::get<PacketEvent>(r.body);
  p.protocol = 6;
  p.dst_port = static_cast<std::uint16_t>(dport);
  p.flags = packet_event_flags::kTcpRejected;
  return r;
}

const char* kScanFromBoth = R"(rules:
  - name: scan
    kind: distinct
    description: d
    runbook: r
    where: syn_only
    except: src in [10.9.9.9]
    group_by: [src, dst]
    field: dst_port
    threshold: 10
    window: 10s
    hold_down: 30s
    also:
      record: packet
      where: event == 'tcp_probe_failed'
)";

TEST(RulesEngine, AlsoFeedsOneStateFromPacketsAndFlows) {
  Fixture f(kScanFromBoth);
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  // Packet events report ports 0-9 as they are refused: the alert fires from them alone.
  for (int p = 0; p < 10; ++p) f.feed(probe(kT0 + p * kMs, "10.0.0.1", "10.0.0.2", p));
  ASSERT_EQ(f.sink.events.size(), 1u);
  EXPECT_EQ(f.sink.events[0], "firing scan src=10.0.0.1,dst=10.0.0.2 10");
  // Two seconds later the flows of the same probes end (the agent's meter saw them too):
  // within the window, the same ports are not new values.
  for (int p = 0; p < 10; ++p)
    f.feed(flow(kT0 + 2 * kSec + p * kMs, "10.0.0.1", "10.0.0.2", 1, p, 6, kSyn, 1, 40));
  const Alert* a = f.lifecycle.find("scan", "src=10.0.0.1,dst=10.0.0.2");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->value, 10);  // each probe counted once, whichever way it was seen
  // New ports from flows (an exporter saw them) grow the same alert.
  for (int p = 10; p < 15; ++p)
    f.feed(flow(kT0 + 3 * kSec + p * kMs, "10.0.0.1", "10.0.0.2", 1, p, 6, kSyn, 1, 40));
  EXPECT_EQ(a->value, 15);
  EXPECT_EQ(f.lifecycle.firing(), 1u);
  // The rule's except applies to packet events too.
  for (int p = 0; p < 50; ++p) f.feed(probe(kT0 + p * kMs, "10.9.9.9", "10.0.0.2", p));
  EXPECT_EQ(f.lifecycle.firing(), 1u);
}

TEST(RulesEngine, AlsoNeedsAnotherRecordKindAndMatchingFields) {
  auto load = [](const std::string& also) {
    TempDir dir;
    const std::string f = dir.write("r.yaml", std::string(R"(rules:
  - name: scan
    kind: distinct
    description: d
    runbook: r
    where: syn_only
    group_by: [src, bytes]
    field: dst_port
    threshold: 10
    window: 10s
    also:
)") + also);
    RuleSet set;
    return load_rule_set({f}, set).message();
  };
  EXPECT_NE(load("      record: flow\n").find("is the rule's own record kind"), std::string::npos);
  EXPECT_NE(load("      record: packet\n").find("field 'bytes' has no counterpart in packet"),
            std::string::npos);
  EXPECT_NE(load("      record: packet\n      where: nope == 1\n").find("also.where"),
            std::string::npos);
}

TEST(RulesEngine, AlertFiresOnceRefreshesAndResolvesAfterHoldDown) {
  Fixture f(kScanRule);
  for (int p = 0; p < 500; ++p)
    f.feed(flow(kT0 + p * 10 * kMs, "10.0.0.1", "10.0.0.2", 1, p, 6, kSyn, 1, 40));
  ASSERT_EQ(f.sink.events.size(), 1u);
  const Alert* a = f.lifecycle.find("scan", "src=10.0.0.1,dst=10.0.0.2");
  ASSERT_NE(a, nullptr);
  EXPECT_GE(a->value, 100);  // refreshed with the larger count
  EXPECT_EQ(a->examples.size(), 5u);
  // The event clock is at kT0 + 5 s; wall time passes with no traffic: resolved after 30 s.
  f.lifecycle.tick(kT0 + 20 * kSec);
  EXPECT_EQ(f.lifecycle.firing(), 1u);
  f.lifecycle.tick(kT0 + 36 * kSec);
  EXPECT_EQ(f.lifecycle.firing(), 0u);
  EXPECT_EQ(f.sink.events.back().rfind("resolved scan", 0), 0u);
}

// A scan over in well under a second (signals are at most one a second of event time)
// still reports its full extent once the batch is done: 253 hosts, not the threshold.
TEST(RulesEngine, EvidenceHeldBackWithinASecondIsSentAtTheEndOfTheBatch) {
  Fixture f(R"(rules:
  - name: sweep
    kind: distinct
    description: d
    runbook: r
    where: syn_only
    group_by: [src, dst_port]
    field: dst
    threshold: 25
    window: 5m
)");
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  std::vector<Record> batch;
  for (int h = 1; h <= 253; ++h)
    batch.push_back(flow(kT0 + h * kMs, "203.0.113.9", "10.1.2." + std::to_string(h), 40000, 445, 6,
                         kSyn, 1, 40));
  f.engine.consume_records(std::span<const Record>(batch.data(), batch.size()));
  const Alert* a = f.lifecycle.find("sweep", "src=203.0.113.9,dst_port=445");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->value, 253);
  EXPECT_EQ(a->examples.size(), 5u);
  EXPECT_EQ(a->last_event_ns, kT0 + 253 * kMs);
  ASSERT_EQ(f.sink.events.size(), 1u);  // one firing event; the growth went to the alert
  EXPECT_EQ(f.sink.events[0], "firing sweep src=203.0.113.9,dst_port=445 25");
}

// Live, through the engine: a scan's flows arrive 60 s after they end (an exporter's inactive
// timeout), longer than the rule's 30 s hold-down, while packet events keep the event clock
// at the present. One alert, firing while the flows come and resolved 30 s after the last of
// them arrived; measured from event time alone it resolved and fired again every few seconds.
TEST(RulesEngine, LateFlowsKeepOneAlertUntilAHoldDownAfterTheLastArrived) {
  Fixture f(kScanRule);
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  int port = 0;
  for (int s = 0; s <= 120; ++s) {
    f.wall = kT0 + s * kSec;
    std::vector<Record> batch{packet(f.wall, PacketEventKind::kDnsQuery, "10.0.0.7", "10.0.0.53")};
    if (s < 60)
      for (int i = 0; i < 3; ++i, ++port)
        batch.push_back(flow(f.wall - 60 * kSec, "10.0.0.1", "10.0.0.2", 1, port, 6, kSyn, 1, 40));
    f.engine.consume_records(std::span<const Record>(batch.data(), batch.size()));
    f.lifecycle.tick(f.wall);
    // Fires with the 10th port (the 4th second); the last flows arrive at +59 s.
    if (s >= 4 && s < 59 + 30) {
      ASSERT_EQ(f.lifecycle.firing(), 1u) << "at +" << s << " s";
    }
  }
  EXPECT_EQ(f.lifecycle.firing(), 0u);
  ASSERT_EQ(f.sink.events.size(), 2u);
  EXPECT_EQ(f.sink.events[0].rfind("firing scan src=10.0.0.1,dst=10.0.0.2", 0), 0u);
  EXPECT_EQ(f.sink.events[1].rfind("resolved scan src=10.0.0.1,dst=10.0.0.2", 0), 0u);
}

// A signal held back to the end of its batch keeps its record's arrival: a clock moved on
// later in the same batch does not make the evidence look late and hold the alert open.
TEST(RulesEngine, HeldBackEvidenceKeepsItsOwnArrival) {
  Fixture f(kScanRule);
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  std::vector<Record> batch;
  for (int p = 0; p < 12; ++p)  // fires at the 10th port; the 11th and 12th are held back
    batch.push_back(flow(kT0 + p * kMs, "10.0.0.1", "10.0.0.2", 1, p, 6, kSyn, 1, 40));
  // Later in the same batch (same agent and segment), a record 200 s ahead.
  batch.push_back(packet(kT0 + 200 * kSec, PacketEventKind::kDnsQuery, "10.0.0.7", "10.0.0.53"));
  batch.back().segment.assign("city-hall");
  f.engine.consume_records(std::span<const Record>(batch.data(), batch.size()));
  const Alert* a = f.lifecycle.find("scan", "src=10.0.0.1,dst=10.0.0.2");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->value, 12);           // the held-back growth was sent
  EXPECT_EQ(a->last_arrival_ns, 0);  // on time when it arrived
  f.lifecycle.tick(f.wall);  // the clock is 200 s past the evidence: quiet for its hold-down
  EXPECT_EQ(f.lifecycle.firing(), 0u);
}

TEST(RulesEngine, ReplayIsIndependentOfArrivalTime) {
  std::vector<std::string> runs[2];
  for (int run = 0; run < 2; ++run) {
    Fixture f(kScanRule);
    f.wall = run == 0 ? kT0 : kT0 + 1000 * kSec;  // live vs replayed much later
    for (int p = 0; p < 40; ++p)
      f.feed(flow(kT0 + p * kSec, "10.0.0.1", "10.0.0.2", 1, p, 6, kSyn, 1, 40));
    runs[run] = f.sink.events;
  }
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_FALSE(runs[0].empty());
}

TEST(RulesEngine, StateIsBoundedAndEvictionsCounted) {
  Fixture f(R"(rules:
  - name: m
    kind: threshold
    description: d
    runbook: r
    group_by: [src]
    threshold: 1000
    window: 1h
    max_keys: 100
)");
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  for (int i = 0; i < 1000; ++i)
    f.feed(flow(kT0 + i, "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256),
                "10.0.0.2", 1, 80));
  EXPECT_LE(f.engine.keys(), 100u);
  EXPECT_EQ(f.engine.evictions(), 900u);
}

TEST(RulesEngine, ExpressionLanguage) {
  Fixture f(R"(lists:
  - name: nets
    file: nets.txt
rules:
  - name: m
    kind: match
    description: d
    runbook: r
    where: "(dst in @nets or dst in 192.168.0.0/16) and not dst_port in [22, 23] and bytes >= 100 && protocol != udp"
    group_by: [dst]
)");
  // nets.txt is written after the fixture's first load attempt; load again with it present.
  f.dir.write("nets.txt", "10.0.0.0/8\n");
  auto set = std::make_shared<RuleSet>();
  ASSERT_TRUE(load_rule_set({f.dir.path() + "/rules.yaml"}, *set).is_ok());
  f.engine.load(set);
  f.feed(flow(kT0, "1.1.1.1", "10.0.0.1", 1, 80, 6, kAck, 1, 100));      // fires
  f.feed(flow(kT0, "1.1.1.1", "192.168.1.1", 1, 443, 6, kAck, 1, 500));  // fires
  f.feed(flow(kT0, "1.1.1.1", "10.0.0.3", 1, 22, 6, kAck, 1, 500));      // port excluded
  f.feed(flow(kT0, "1.1.1.1", "10.0.0.4", 1, 80, 6, kAck, 1, 99));       // too small
  f.feed(flow(kT0, "1.1.1.1", "10.0.0.5", 1, 80, 17, 0, 1, 500));        // udp
  f.feed(flow(kT0, "1.1.1.1", "172.16.0.1", 1, 80, 6, kAck, 1, 500));    // not in the sets
  ASSERT_EQ(f.sink.events.size(), 2u);
  EXPECT_EQ(f.sink.events[0], "firing m dst=10.0.0.1 1");
  EXPECT_EQ(f.sink.events[1], "firing m dst=192.168.1.1 1");
}

TEST(RulesEngine, ErrorsNameFileLineAndKey) {
  Fixture f(R"(rules:
  - name: m
    kind: threshold
    description: d
    runbook: r
    where: dst_port >= 'x'
    group_by: [srcip]
    threshold: 5
    window: 1m
    list: nope
  - name: m
    kind: sometimes
    description: d
    runbook: r
)");
  ASSERT_FALSE(f.status.is_ok());
  const std::string& m = f.status.message();
  const std::string file = f.dir.path() + "/rules.yaml";
  EXPECT_NE(m.find(file + ":6:"), std::string::npos) << m;  // where: bad constant
  EXPECT_NE(m.find(file + ":7:"), std::string::npos) << m;  // unknown group_by field
  EXPECT_NE(m.find("unknown field 'srcip'"), std::string::npos) << m;
  EXPECT_NE(m.find("defined twice"), std::string::npos) << m;
  EXPECT_NE(m.find("expected match, threshold"), std::string::npos) << m;
  EXPECT_NE(m.find("list: and fields: are for kind: list"), std::string::npos) << m;
}

// A list rule with conversation: true raises one alert for both directions between an
// internal host and a listed address, and the alert names the list, the entry the address
// matched and the feed's reference (issue 13).
TEST(RulesEngine, ListConversationIsOneAlertNamingTheEntry) {
  TempDir feed;
  const std::string drop = feed.write("drop.txt", "; Spamhaus DROP\n198.51.100.0/24 ; SBL1234\n");
  Fixture f(R"(lists:
  - name: drop
    file: )" +
            drop + R"(
    format: spamhaus_drop
rules:
  - name: listed
    kind: list
    description: d
    runbook: r
    summary: "{peer} and {listed}: {list} {list_entry} {list_reference}"
    list: drop
    fields: [src, dst]
    conversation: true
)");
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  f.feed(flow(kT0, "10.0.0.5", "198.51.100.7", 40000, 443));
  f.feed(flow(kT0 + 20 * kSec, "198.51.100.7", "10.0.0.5", 443, 40000));  // the reply
  f.feed(flow(kT0 + 40 * kSec, "198.51.100.7", "10.0.0.5", 443, 40001));  // it calls back
  ASSERT_EQ(f.lifecycle.firing(), 1u);
  ASSERT_EQ(f.sink.events.size(), 1u) << f.sink.events.back();
  EXPECT_EQ(f.sink.events[0], "firing listed listed=198.51.100.7,peer=10.0.0.5 1");
  const Alert* a = f.lifecycle.find("listed", "listed=198.51.100.7,peer=10.0.0.5");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->summary(), "10.0.0.5 and 198.51.100.7: drop 198.51.100.0/24 SBL1234");
  EXPECT_EQ(
      a->details,
      (Labels{{"list", "drop"}, {"list_entry", "198.51.100.0/24"}, {"list_reference", "SBL1234"}}));
  // Another internal host talking to the same listed address is its own conversation.
  f.feed(flow(kT0 + 50 * kSec, "10.0.0.6", "198.51.100.7", 40000, 443));
  EXPECT_EQ(f.lifecycle.firing(), 2u);
}

TEST(RulesEngine, ConversationNeedsTwoFieldsAndAListRule) {
  Fixture f(R"(rules:
  - name: a
    kind: match
    description: d
    runbook: r
    conversation: true
)");
  ASSERT_FALSE(f.status.is_ok());
  EXPECT_NE(f.status.message().find("only a list rule takes conversation"), std::string::npos)
      << f.status.message();
  TempDir feed;
  const std::string list = feed.write("l.txt", "192.0.2.1\n");
  Fixture g(R"(lists:
  - name: l
    file: )" +
            list + R"(
rules:
  - name: b
    kind: list
    description: d
    runbook: r
    list: l
    fields: [src, dst, exporter]
    group_by: [src]
    conversation: true
)");
  ASSERT_FALSE(g.status.is_ok());
  EXPECT_NE(g.status.message().find("needs exactly two fields"), std::string::npos)
      << g.status.message();
  EXPECT_NE(g.status.message().find("no group_by"), std::string::npos) << g.status.message();
}

// Threshold groups: the first group whose networks hold the destination sets the limit;
// the alert says which group and which threshold applied.
TEST(RulesEngine, ThresholdGroupsSetTheLimitByNetwork) {
  Fixture f(R"(rules:
  - name: flood
    kind: rate
    description: d
    runbook: r
    group_by: [dst]
    field: packets
    window: 10s
    threshold: 5000
    thresholds:
      - {name: plc, networks: [10.20.0.0/24], threshold: 100}
      - {name: wide, networks: [10.0.0.0/8], threshold: 50000}
)");
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  f.feed(flow(kT0, "203.0.113.5", "10.20.0.5", 1, 9, 17, 0, 2000, 100000));   // 200 pps > 100
  f.feed(flow(kT0, "203.0.113.5", "10.30.0.5", 1, 9, 17, 0, 60000, 100000));  // 6000 < 50000
  f.feed(flow(kT0, "203.0.113.5", "192.0.2.5", 1, 9, 17, 0, 60000, 100000));  // 6000 > 5000
  ASSERT_EQ(f.lifecycle.firing(), 2u);
  const Alert* plc = f.lifecycle.find("flood", "dst=10.20.0.5");
  ASSERT_NE(plc, nullptr);
  EXPECT_EQ(plc->threshold, 100);
  EXPECT_EQ(plc->details, (Labels{{"threshold_group", "plc"}}));
  const Alert* other = f.lifecycle.find("flood", "dst=192.0.2.5");
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->threshold, 5000);
  EXPECT_TRUE(other->details.empty());

  Fixture bad(R"(rules:
  - name: m
    kind: match
    description: d
    runbook: r
    thresholds:
      - {name: g, networks: [10.0.0.0/8], list: x, threshold: 1}
)");
  ASSERT_FALSE(bad.status.is_ok());
  EXPECT_NE(bad.status.message().find("only threshold and rate rules take threshold groups"),
            std::string::npos)
      << bad.status.message();
  EXPECT_NE(bad.status.message().find("either list: or networks:"), std::string::npos)
      << bad.status.message();
}

// A flow's packets were sent over its life: a rate rule counts only the share inside its
// window. Ten camera streams of 150 packets/s for 59 s end together: 1,500 packets/s, not
// 88,500 packets in one 10 s window (8,850/s). A flood of 6,000 packets/s for 59 s still
// fires, with its real rate. The corpus case nvr_camera_streams.
TEST(RulesEngine, RateRulesSpreadALongFlowOverItsLife) {
  Fixture f(R"(rules:
  - name: udp_flood
    kind: rate
    description: d
    runbook: r
    group_by: [dst]
    field: packets
    window: 10s
    threshold: 5000
)");
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  for (int cam = 0; cam < 10; ++cam) {
    Record r = flow(kT0 + 60 * kSec, "10.40.0." + std::to_string(10 + cam), "10.40.0.2", 5004, 5004,
                    17, 0, 150 * 59, 150 * 59 * 1200);
    std::get<FlowRecord>(r.body).start_ns = kT0 + kSec;
    f.feed(r);
  }
  EXPECT_EQ(f.lifecycle.firing(), 0u);
  Record flood = flow(kT0 + 60 * kSec, "203.0.113.5", "10.40.0.3", 1, 9, 17, 0, 6000 * 59, 1);
  std::get<FlowRecord>(flood.body).start_ns = kT0 + kSec;
  f.feed(flood);
  ASSERT_EQ(f.lifecycle.firing(), 1u);
  const Alert* a = f.lifecycle.find("udp_flood", "dst=10.40.0.3");
  ASSERT_NE(a, nullptr);
  EXPECT_NEAR(a->value, 6000, 1);
}

TEST(RulesService, BrokenReloadKeepsTheRunningRules) {
  TempDir dir;
  dir.write("scan.yaml", kScanRule);
  boost::asio::io_context io;
  prometheus::Registry registry;
  RulesConfig rc;
  rc.files = {dir.path()};
  RulesService service(io, registry, rc, AlertsConfig{});
  ASSERT_TRUE(service.start().is_ok());
  const std::string version = service.engine().rules()->version;
  dir.write("scan.yaml", std::string(kScanRule) + "    bogus_key: 1\n");
  EXPECT_FALSE(service.reload());
  ASSERT_NE(service.engine().rules(), nullptr);
  EXPECT_EQ(service.engine().rules()->version, version);
  // The old rules still work.
  for (int p = 0; p < 20; ++p) {
    const Record r = flow(kT0 + p * kMs, "10.0.0.1", "10.0.0.2", 1, p, 6, kSyn, 1, 40);
    service.engine().consume_records(std::span<const Record>(&r, 1));
  }
  EXPECT_EQ(service.alerts().firing(), 1u);
  // A good file is taken.
  dir.write("scan.yaml", std::string(kScanRule) + "    max_keys: 50\n");
  EXPECT_TRUE(service.reload());
  EXPECT_NE(service.engine().rules()->version, version);
  service.stop();
}

// A list file that changes is reloaded without SIGHUP (the tick calls reload_if_changed every
// 5 s; integration.rules_feeds covers that on the real collector); a broken one is rejected
// once (the old list stays) and not retried until it changes again.
TEST(RulesService, ReloadsAListWhenItsFileChanges) {
  TempDir dir;
  const std::string list = dir.write("feed.txt", "192.0.2.0/24\n");
  dir.write("rules.yaml", R"(lists:
  - name: feed
    file: feed.txt
rules:
  - name: listed
    kind: list
    description: d
    runbook: r
    list: feed
    fields: [dst]
)");
  boost::asio::io_context io;
  prometheus::Registry registry;
  RulesConfig rc;
  rc.files = {dir.path()};
  RulesService service(io, registry, rc, AlertsConfig{});
  ASSERT_TRUE(service.start().is_ok());
  const auto entries = [&] { return service.engine().rules()->lists.at("feed")->entries(); };
  const auto reloads = [&](const char* result) {
    for (const auto& fam : registry.Collect())
      if (fam.name == "citywatch_rules_reloads_total")
        for (const auto& m : fam.metric)
          if (m.label[0].value == result) return m.counter.value;
    return -1.0;
  };
  EXPECT_EQ(entries(), 1u);
  service.reload_if_changed();  // nothing changed: no reload
  EXPECT_EQ(reloads("ok"), 1);
  std::ofstream(list) << "192.0.2.0/24\n198.51.100.0/24\n2001:db8::/32\n";
  service.reload_if_changed();
  EXPECT_EQ(entries(), 3u);
  EXPECT_EQ(reloads("ok"), 2);
  std::ofstream(list) << "192.0.2.0/24\nnot-an-address\n";
  service.reload_if_changed();
  service.reload_if_changed();
  EXPECT_EQ(entries(), 3u) << "the old list stays";
  EXPECT_EQ(reloads("rejected"), 1) << "a broken file is not retried until it changes";
  service.stop();
}

TEST(Fields, DnsDerivedFields) {
  const Record r =
      packet(kT0, PacketEventKind::kDnsQuery, "10.0.0.1", "10.0.0.2",
             "q1.exfil-0001aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.city.example");
  const RecordRef ref(r);
  const EvalInput in{&ref, nullptr};
  EXPECT_EQ(find_field(RuleSource::kPacket, "dns.domain")->get(in).str, "city.example");
  EXPECT_EQ(find_field(RuleSource::kPacket, "dns.subdomain")->get(in).str,
            "q1.exfil-0001aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(find_field(RuleSource::kPacket, "dns.max_label_len")->get(in).num, 56);
  EXPECT_EQ(find_field(RuleSource::kPacket, "dns.labels")->get(in).num, 4);
  const Record w =
      packet(kT0, PacketEventKind::kDnsQuery, "10.0.0.1", "10.0.0.2", "www.city.example");
  const RecordRef wref(w);
  const EvalInput win{&wref, nullptr};
  EXPECT_LT(find_field(RuleSource::kPacket, "dns.entropy")->get(win).num, 2.0);
  EXPECT_EQ(format_value(find_field(RuleSource::kPacket, "mac")->get(win)), "02:00:00:00:00:01");
}

}  // namespace
}  // namespace citywatch::collector
