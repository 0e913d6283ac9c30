// The municipal rule pack (rules/*.yaml): every rule fires on its attack and stays quiet on
// normal traffic. The whole pack is loaded for every case, and the quiet cases assert that
// no rule at all fires.
#include <gtest/gtest.h>

#include <prometheus/registry.h>
#include <functional>
#include <map>
#include <set>

#include "collector/alerts/alert_lifecycle.h"
#include "collector/rules_engine/rules_config.h"
#include "collector/rules_engine/rules_engine.h"
#include "tests/collector/rules_engine/test_records.h"

namespace citywatch::collector {
namespace {

using namespace citywatch::collector::testing;

class RecordingSink : public AlertSink {
 public:
  void deliver(const Alert& a, AlertEvent e, std::int64_t) override {
    if (e == AlertEvent::kFiring) {
      ++fired[a.rule->name];
      last_summary[a.rule->name] = a.summary();
    }
    if (e == AlertEvent::kResolved) ++resolved[a.rule->name];
  }
  int total() const {
    int n = 0;
    for (const auto& [k, v] : fired) n += v;
    return n;
  }
  std::map<std::string, int> fired, resolved;
  std::map<std::string, std::string> last_summary;
};

struct Input {
  std::vector<Record> records;
  std::vector<SessionEvent> sessions;  // evaluated after the records
};

struct Harness {
  Harness()
      : metrics(registry), lifecycle(metrics), engine(lifecycle, registry, [] { return kT0; }) {
    lifecycle.add_sink(&sink);
    auto set = std::make_shared<RuleSet>();
    const Status s =
        load_rule_set(expand_rule_paths({std::string(CITYWATCH_SOURCE_DIR) + "/rules"}), *set);
    EXPECT_TRUE(s.is_ok()) << s.message();
    engine.load(set);
  }
  void run(const Input& in) {
    for (const Record& r : in.records) engine.consume_records(std::span<const Record>(&r, 1));
    for (const SessionEvent& e : in.sessions)
      engine.on_agent_session(std::string(e.agent), std::string(e.segment), e.connected, e.time_ns);
  }
  prometheus::Registry registry;
  AlertMetrics metrics;
  AlertLifecycle lifecycle;
  RulesEngine engine;
  RecordingSink sink;
};

std::vector<Record> syn_scan(const std::string& src, const std::string& dst, int ports) {
  std::vector<Record> v;
  for (int p = 1; p <= ports; ++p)
    v.push_back(flow(kT0 + p * kMs, src, dst, 50000, p, 6, kSyn | kRst, 2, 84));
  return v;
}
std::vector<Record> logins(int port, int n, const std::string& src = "10.99.1.10") {
  std::vector<Record> v;
  for (int i = 0; i < n; ++i)
    v.push_back(flow(kT0 + i * 5 * kSec, src, "10.99.1.20", 40000 + i, port));
  return v;
}
std::vector<Record> normal_traffic() {
  std::vector<Record> v;
  for (int i = 0; i < 21; ++i)  // HTTP downloads
    v.push_back(flow(kT0 + i * 100 * kMs, "10.99.1.10", "10.99.1.20", 41000 + i, 8080, 6,
                     kSyn | kAck | kPsh | kFin, 60, 70000));
  for (const char* n : {"www.city.example", "payroll.city.example", "mail.city.example"})
    v.push_back(packet(kT0 + kSec, PacketEventKind::kDnsQuery, "10.99.1.10", "10.99.1.1", n));
  v.push_back(flow(kT0 + 2 * kSec, "10.99.1.10", "10.99.1.1", 40000, 53, 17, 0, 1, 80));
  v.push_back(flow(kT0 + 3 * kSec, "10.99.1.10", "10.99.1.20", 40001, 22, 6));  // one SSH session
  v.push_back(flow(kT0 + 3 * kSec, "10.99.1.10", "10.99.1.20", 40002, 8080, 6, kSyn, 1,
                   60));  // one lost SYN
  return v;
}
std::vector<Record> dns(int n, const std::function<std::string(int)>& name) {
  std::vector<Record> v;
  for (int i = 0; i < n; ++i)
    v.push_back(
        packet(kT0 + i * 20 * kMs, PacketEventKind::kDnsQuery, "10.99.1.10", "10.99.1.1", name(i)));
  return v;
}
std::vector<Record> iface_series(std::uint64_t octets_per_s, std::uint64_t errors_per_s,
                                 bool out = false) {
  std::vector<Record> v;
  for (int i = 0; i < 3; ++i) {
    const std::uint64_t o = static_cast<std::uint64_t>(i) * 60 * octets_per_s;
    v.push_back(iface(kT0 + i * 60 * kSec, out ? 0 : o, out ? o : 0,
                      static_cast<std::uint64_t>(i) * 60 * errors_per_s));
  }
  return v;
}

struct Case {
  std::string rule;
  std::function<Input()> fire;
  std::function<Input()> quiet;
  int alerts = 1;  // distinct keys the attack should raise, each once
};

// Test names carry the rule; without this gtest prints the parameter's raw bytes (pointers
// included), which makes ctest's test list differ from build to build.
void PrintTo(const Case& c, std::ostream* os) { *os << c.rule; }

std::vector<Case> cases() {
  using PE = PacketEventKind;
  const std::array<std::uint8_t, 6> mac_a{2, 0, 0, 0, 0, 0xa}, mac_b{2, 0, 0, 0, 0, 0xb};
  return {
      {"port_scan_vertical",
       [] {
         return Input{syn_scan("10.99.1.10", "10.99.1.20", 100), {}};
       },
       [] {
         return Input{syn_scan("10.99.1.10", "10.99.1.20", 5), {}};
       }},
      {"port_scan_horizontal",
       [] {
         Input in;
         for (int h = 1; h <= 30; ++h)
           in.records.push_back(flow(kT0 + h * kMs, "10.0.9.9", "10.0.1." + std::to_string(h),
                                     50000, 445, 6, kSyn, 1, 60));
         return in;
       },
       [] {
         Input in;
         for (int h = 1; h <= 10; ++h)
           in.records.push_back(flow(kT0 + h * kMs, "10.0.9.9", "10.0.1." + std::to_string(h),
                                     50000, 445, 6, kSyn, 1, 60));
         return in;
       }},
      {"ssh_password_guessing",
       [] {
         return Input{logins(22, 12), {}};
       },
       [] {
         return Input{logins(22, 2), {}};
       }},
      {"rdp_password_guessing",
       [] {
         return Input{logins(3389, 8), {}};
       },
       [] {
         return Input{logins(3389, 2), {}};
       }},
      {"telnet_password_guessing",
       [] {
         return Input{logins(23, 8), {}};
       },
       [] {
         return Input{logins(23, 1), {}};
       }},
      {"udp_flood",
       [] {  // 60,000 packets in 10 s: 6,000 pps > 5,000
         return Input{{flow(kT0, "203.0.113.5", "10.0.0.9", 40000, 9999, 17, 0, 60000, 6000000)},
                      {}};
       },
       [] {  // 2,000 pps
         return Input{{flow(kT0, "203.0.113.5", "10.0.0.9", 40000, 9999, 17, 0, 20000, 2000000)},
                      {}};
       }},
      {"icmp_flood",
       [] {
         return Input{{flow(kT0, "203.0.113.5", "10.0.0.9", 0, 0, 1, 0, 20000, 1680000)}, {}};
       },
       [] {
         return Input{{flow(kT0, "203.0.113.5", "10.0.0.9", 0, 0, 1, 0, 5000, 420000)}, {}};
       }},
      {"syn_flood",
       [] {
         Input in;
         for (int i = 0; i < 1500; ++i)
           in.records.push_back(flow(kT0 + i * kMs, "10.99.1.10", "10.99.1.20", 1024 + i, 8080, 6,
                                     kSyn | kRst, 2, 80));
         return in;
       },
       [] {
         Input in;
         for (int i = 0; i < 100; ++i)
           in.records.push_back(
               flow(kT0 + i * kMs, "10.99.1.10", "10.99.1.20", 1024 + i, 8080, 6, kSyn, 1, 40));
         return in;
       }},
      {"volumetric_flood_pps",
       [] {
         Input in;
         for (int i = 0; i < 10; ++i)
           in.records.push_back(flow(kT0 + i * kSec, "198.18.0." + std::to_string(i), "10.0.0.80",
                                     1234, 80, 17, 0, 30000, 30000 * 60));
         return in;
       },
       [] {
         Input in;
         for (int i = 0; i < 10; ++i)
           in.records.push_back(flow(kT0 + i * kSec, "10.0.0.9", "10.0.0.80", 1234 + i, 443, 6,
                                     kSyn | kAck | kFin, 100, 100000));
         return in;
       }},
      {"volumetric_flood_bps",
       [] {
         Input in;
         for (int i = 0; i < 10; ++i)
           in.records.push_back(flow(kT0 + i * kSec, "198.18.0.1", "10.0.0.80", 1234 + i, 443, 6,
                                     kAck, 1000, 200000000));
         return in;
       },
       [] {
         Input in;
         for (int i = 0; i < 10; ++i)
           in.records.push_back(flow(kT0 + i * kSec, "10.0.0.9", "10.0.0.80", 1234 + i, 443, 6,
                                     kAck, 1000, 1000000));
         return in;
       }},
      {"udp_amplification_source",
       [] {
         Input in;
         for (int i = 0; i < 20; ++i)
           in.records.push_back(
               flow(kT0 + i * kSec, "10.0.0.53", "203.0.113.9", 53, 3000 + i, 17, 0, 700, 1000000));
         return in;
       },
       [] {
         Input in;
         for (int i = 0; i < 20; ++i)
           in.records.push_back(flow(kT0 + i * kSec, "10.0.0.53", "10.0.3." + std::to_string(i), 53,
                                     3000 + i, 17, 0, 1, 300));
         return in;
       }},
      {"blocklisted_address",
       [] {
         // Both directions of the first conversation: one alert for it (issue 13).
         return Input{{flow(kT0, "10.0.0.5", "192.0.2.44", 40000, 443),
                       flow(kT0 + kSec, "192.0.2.44", "10.0.0.5", 443, 40000),
                       flow(kT0, "2001:db8:bad::7", "fd00::5", 443, 40000)},
                      {}};
       },
       [] {
         return Input{{flow(kT0, "10.0.0.5", "192.0.3.1", 40000, 443),
                       flow(kT0, "2001:db8:bae::7", "fd00::5", 443, 40000)},
                      {}};
       },
       2},
      {"cleartext_admin_from_outside",
       [] {
         return Input{{flow(kT0, "203.0.113.7", "10.0.0.1", 40000, 23)}, {}};
       },
       [] {
         return Input{{flow(kT0, "10.0.0.2", "10.0.0.1", 40000, 23),
                       flow(kT0, "203.0.113.7", "10.0.0.1", 40000, 23, 6, kSyn, 1, 60)},
                      {}};
       }},
      {"snmp_from_outside",
       [] {
         return Input{{flow(kT0, "203.0.113.7", "10.0.0.1", 40000, 161, 17, 0, 1, 80)}, {}};
       },
       [] {
         return Input{{flow(kT0, "10.0.0.9", "10.0.0.1", 40000, 161, 17, 0, 1, 80)}, {}};
       }},
      {"smb_rdp_exposed",
       [] {
         return Input{{flow(kT0, "198.18.0.1", "10.0.0.20", 40000, 445)}, {}};
       },
       [] {
         return Input{{flow(kT0, "10.0.0.21", "10.0.0.20", 40000, 445)}, {}};
       }},
      {"dns_tunnel_long_labels",
       [] {
         return Input{
             dns(15,
                 [](int i) {
                   return "q" + std::to_string(i) +
                          ".exfil-0001aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.city.example";
                 }),
             {}};
       },
       [] {
         // A load balancer's name (4.47 bits a character) looked up 15 times as its TTL
         // runs out: one name, not a tunnel.
         auto v = normal_traffic();
         const auto elb = dns(15, [](int) {
           return std::string("my-load-balancer-1234567890.us-west-2.elb.amazonaws.com");
         });
         v.insert(v.end(), elb.begin(), elb.end());
         return Input{v, {}};
       }},
      {"dns_tunnel_many_subdomains",
       [] {
         return Input{dns(150, [](int i) { return "h" + std::to_string(i * 7919) + ".t.example"; }),
                      {}};
       },
       [] {
         return Input{
             dns(20, [](int i) { return "host" + std::to_string(i % 5) + ".city.example"; }), {}};
       }},
      {"new_mac_on_segment",
       [mac_a, mac_b] {
         return Input{
             {packet(kT0, PE::kArpBinding, "10.0.0.1", "10.0.0.2", "", mac_a),
              packet(kT0 + 25 * 3600 * kSec, PE::kArpBinding, "10.0.0.3", "10.0.0.2", "", mac_b)},
             {}};
       },
       [mac_a] {
         return Input{
             {packet(kT0, PE::kArpBinding, "10.0.0.1", "10.0.0.2", "", mac_a),
              packet(kT0 + 25 * 3600 * kSec, PE::kArpBinding, "10.0.0.1", "10.0.0.2", "", mac_a)},
             {}};
       }},
      {"arp_spoofing",
       [mac_a, mac_b] {
         return Input{{packet(kT0, PE::kArpBinding, "10.0.0.1", "10.0.0.2", "", mac_a),
                       packet(kT0 + kSec, PE::kArpBinding, "10.0.0.1", "10.0.0.2", "", mac_b)},
                      {}};
       },
       [mac_a] {
         return Input{{packet(kT0, PE::kArpBinding, "10.0.0.1", "10.0.0.2", "", mac_a),
                       packet(kT0 + kSec, PE::kArpBinding, "10.0.0.1", "10.0.0.2", "", mac_a)},
                      {}};
       }},
      {"arp_gratuitous_takeover",
       [mac_a, mac_b] {
         // The agent flags a gratuitous ARP that moved the address (prev_mac is the old MAC).
         Record r = packet(kT0, PE::kArpBinding, "10.0.0.1", "10.0.0.1", "", mac_b,
                           packet_event_flags::kArpGratuitous | packet_event_flags::kArpChanged |
                               packet_event_flags::kArpReply);
         std::get<PacketEvent>(r.body).prev_mac = mac_a;
         return Input{{r}, {}};
       },
       [mac_a] {
         // The owner announcing itself (gratuitous, unchanged) is no takeover.
         return Input{{packet(kT0, PE::kArpBinding, "10.0.0.1", "10.0.0.1", "", mac_a,
                              packet_event_flags::kArpGratuitous | packet_event_flags::kArpNew)},
                      {}};
       }},
      {"arp_reply_flood",
       [mac_b] {
         // Three seconds of 60 replies each, as the agent reports them: 180 in 10 s.
         Input in;
         for (int s = 0; s < 3; ++s) {
           Record r = packet(kT0 + s * kSec, PE::kArpReplyFlood, "10.0.0.1", "10.0.0.9", "", mac_b);
           std::get<PacketEvent>(r.body).count = 60;
           in.records.push_back(r);
         }
         return in;
       },
       [mac_b] {
         // One busy second is no flood.
         Record r = packet(kT0, PE::kArpReplyFlood, "10.0.0.1", "10.0.0.9", "", mac_b);
         std::get<PacketEvent>(r.body).count = 60;
         return Input{{r}, {}};
       }},
      {"interface_down",
       [] {
         return Input{{iface(kT0, 0, 0, 0, 1, 1), iface(kT0 + kSec, 0, 0, 0, 1, 2)}, {}};
       },
       [] {
         return Input{{iface(kT0, 0, 0, 0, 2, 2), iface(kT0 + kSec, 0, 0, 0, 1, 1)}, {}};
       }},
      {"device_unreachable",
       [] {
         return Input{
             {device(kT0, true), device(kT0 + kSec, false, 1), device(kT0 + 2 * kSec, false, 2)},
             {}};
       },
       [] {
         return Input{
             {device(kT0, true), device(kT0 + kSec, false, 1), device(kT0 + 2 * kSec, true)}, {}};
       }},
      {"device_rebooted",
       [] {
         return Input{{device(kT0, true, 0, SnmpEvent::kReboot, 50)}, {}};
       },
       [] {
         return Input{
             {device(kT0, true, 0, SnmpEvent::kNone), device(kT0 + kSec, true, 0, SnmpEvent::kUp)},
             {}};
       }},
      {"interface_error_rate",
       [] {
         return Input{iface_series(1000, 10), {}};
       },
       [] {
         return Input{iface_series(1000, 0), {}};
       }},
      {"link_saturation_in",
       [] {
         return Input{iface_series(120000000, 0), {}};
       },
       [] {
         return Input{iface_series(12000000, 0), {}};
       }},
      {"link_saturation_out",
       [] {
         return Input{iface_series(120000000, 0, true), {}};
       },
       [] {
         return Input{iface_series(12000000, 0, true), {}};
       }},
      {"agent_disconnected",
       [] {
         return Input{
             {},
             {{"agent-1", "city-hall", true, kT0}, {"agent-1", "city-hall", false, kT0 + kSec}}};
       },
       [] {
         return Input{{}, {{"agent-1", "city-hall", true, kT0}}};
       }},
  };
}

TEST(RulePack, EveryRuleHasACase) {
  Harness h;
  std::set<std::string> covered;
  for (const Case& c : cases()) covered.insert(c.rule);
  for (const auto& r : h.engine.rules()->rules)
    EXPECT_TRUE(covered.count(r->info->name)) << "rule " << r->info->name << " has no test case";
  EXPECT_EQ(covered.size(), h.engine.rules()->rules.size());
}

class RulePackCase : public ::testing::TestWithParam<Case> {};

TEST_P(RulePackCase, FiresOnItsAttack) {
  Harness h;
  h.run(GetParam().fire());
  EXPECT_EQ(h.sink.fired[GetParam().rule], GetParam().alerts)
      << "summary: " << h.sink.last_summary[GetParam().rule];
  EXPECT_FALSE(h.sink.last_summary[GetParam().rule].empty());
  EXPECT_EQ(h.sink.last_summary[GetParam().rule].find('{'), std::string::npos)
      << "unfilled template: " << h.sink.last_summary[GetParam().rule];
}

TEST_P(RulePackCase, QuietOnNormalTraffic) {
  Harness h;
  h.run(GetParam().quiet());
  h.run(Input{normal_traffic(), {}});
  EXPECT_EQ(h.sink.total(), 0) << "fired: " << [&] {
    std::string s;
    for (const auto& [k, v] : h.sink.fired) s += k + " ";
    return s;
  }();
}

INSTANTIATE_TEST_SUITE_P(Rules, RulePackCase, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.rule; });

TEST(RulePack, StateRulesResolveWhenHealthy) {
  Harness h;
  h.run(Input{{iface(kT0, 0, 0, 0, 1, 2), iface(kT0 + kSec, 0, 0, 0, 1, 1)},
              {{"agent-1", "city-hall", false, kT0}, {"agent-1", "city-hall", true, kT0 + kSec}}});
  EXPECT_EQ(h.sink.fired["interface_down"], 1);
  EXPECT_EQ(h.sink.resolved["interface_down"], 1);
  EXPECT_EQ(h.sink.fired["agent_disconnected"], 1);
  EXPECT_EQ(h.sink.resolved["agent_disconnected"], 1);
}

TEST(RulePack, ArpSpoofingNamesTheAddressesMacHistory) {
  Harness h;
  using PE = PacketEventKind;
  const std::array<std::uint8_t, 6> a{2, 0, 0, 0, 0, 0xa}, b{2, 0, 0, 0, 0, 0xb},
      c{2, 0, 0, 0, 0, 0xc};
  h.run(Input{{packet(kT0, PE::kArpBinding, "10.0.0.1", "10.0.0.2", "", a),
               packet(kT0 + kSec, PE::kArpBinding, "10.0.0.1", "10.0.0.2", "", b),
               packet(kT0 + 2 * kSec, PE::kArpBinding, "10.0.0.1", "10.0.0.2", "", c)},
              {}});
  EXPECT_EQ(h.sink.fired["arp_spoofing"], 2);
  EXPECT_EQ(h.sink.last_summary["arp_spoofing"],
            "10.0.0.1 moved to MAC 02:00:00:00:00:0c on segment water-plant (its MACs, oldest "
            "first: 02:00:00:00:00:0a, 02:00:00:00:00:0b, 02:00:00:00:00:0c)");
}

TEST(RulePack, KnownScannerIsAllowlisted) {
  // The allowlist file is empty in the shipped pack; an inline except proves the mechanism
  // in rules_engine_test. Here: a scan stays one alert however long it lasts.
  Harness h;
  auto scan = syn_scan("10.99.1.10", "10.99.1.20", 1024);
  h.run(Input{scan, {}});
  EXPECT_EQ(h.sink.fired["port_scan_vertical"], 1);
  EXPECT_EQ(h.sink.fired["syn_flood"], 0) << "a scan touches each port once; it is not a flood";
}

}  // namespace
}  // namespace citywatch::collector
