// SnmpMetrics: records in, node_exporter-style series out.
#include "collector/metrics/snmp_metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <string_view>

namespace citywatch::collector {
namespace {

const prometheus::ClientMetric* find(const std::vector<prometheus::MetricFamily>& fams,
                                     const std::string& name, const std::string& label,
                                     const std::string& value) {
  for (const auto& f : fams)
    if (f.name == name)
      for (const auto& m : f.metric)
        for (const auto& l : m.label)
          if (l.name == label && l.value == value) return &m;
  return nullptr;
}

Record with(const auto& body, std::int64_t t = 1'000'000'000) {
  Record r;
  r.event_time_ns = t;
  r.segment.assign("seg");
  r.body = body;
  return r;
}

TEST(SnmpMetrics, InterfaceCountersAreTheSampleValues) {
  SnmpMetrics m;
  InterfaceSample s;
  s.target.assign("sw1");
  s.if_index = 3;
  s.if_name.assign("Gi0/3");
  s.in_octets = 123456789012ull;
  s.oper_status = 1;
  s.speed_bps = 1000000000;
  std::vector<Record> rs{with(s)};
  m.consume_records(rs);
  s.in_octets = 1000;  // after a reboot: a counter reset, never a spike
  s.oper_status = 2;
  s.event = SnmpEvent::kOperChange;
  rs = {with(s)};
  m.consume_records(rs);
  const auto fams = m.Collect();
  const auto* rx = find(fams, "citywatch_interface_receive_bytes_total", "ifname", "Gi0/3");
  ASSERT_NE(rx, nullptr);
  EXPECT_EQ(rx->counter.value, 1000);
  EXPECT_EQ(find(fams, "citywatch_interface_speed_bytes", "device", "sw1")->gauge.value, 125000000);
  EXPECT_EQ(find(fams, "citywatch_interface_up", "device", "sw1")->gauge.value, 0);
  EXPECT_EQ(find(fams, "citywatch_interface_oper_changes_total", "device", "sw1")->counter.value,
            1);
}

// Every interface metric carries site, segment, device, ifIndex, ifName and ifAlias; text
// from the device loses NULs and control characters (issue 12).
TEST(SnmpMetrics, InterfaceLabelsAreCleanAndCarryTheSite) {
  SnmpMetrics m;
  DeviceStatus d;
  d.target.assign("sw1");
  d.site.assign("Main Library");
  d.reachable = true;
  InterfaceSample s;
  s.target.assign("sw1");
  s.if_index = 3;
  s.if_name.assign(std::string_view("Gi0/3\0\0", 7));
  s.if_alias.assign(std::string_view("Uplink to\tMain Library\0", 24));
  std::vector<Record> rs{with(d), with(s)};
  m.consume_records(rs);
  const auto fams = m.Collect();
  const auto* rx = find(fams, "citywatch_interface_receive_bytes_total", "ifname", "Gi0/3");
  ASSERT_NE(rx, nullptr);
  std::map<std::string, std::string> l;
  for (const auto& x : rx->label) l[x.name] = x.value;
  EXPECT_EQ(l["ifalias"], "Uplink toMain Library");
  EXPECT_EQ(l["site"], "Main Library");
  EXPECT_EQ(l["segment"], "seg");
  EXPECT_EQ(l["device"], "sw1");
  EXPECT_EQ(l["ifindex"], "3");
}

TEST(SnmpMetrics, DeviceTransitionsRebootsAndTraps) {
  SnmpMetrics m;
  DeviceStatus d;
  d.target.assign("fw");
  d.event = SnmpEvent::kDown;
  d.cause = SnmpCause::kTimeout;
  DeviceStatus poll = d;
  poll.event = SnmpEvent::kNone;
  DeviceStatus reboot = d;
  reboot.event = SnmpEvent::kReboot;
  SnmpTrap t;
  t.target.assign("fw");
  t.kind = SnmpTrapKind::kLinkDown;
  t.if_index = 9;
  std::vector<Record> rs{with(d, 5'500'000'000), with(poll), with(reboot), with(t)};
  m.consume_records(rs);
  const auto fams = m.Collect();
  EXPECT_EQ(find(fams, "citywatch_snmp_device_up", "device", "fw")->gauge.value, 0);
  EXPECT_EQ(find(fams, "citywatch_snmp_device_transitions_total", "state", "down")->counter.value,
            1);
  EXPECT_EQ(find(fams, "citywatch_snmp_device_reboots_total", "device", "fw")->counter.value, 1);
  EXPECT_EQ(find(fams, "citywatch_snmp_polls_total", "result", "timeout")->counter.value, 1);
  EXPECT_EQ(find(fams, "citywatch_snmp_device_last_change_timestamp_seconds", "device", "fw")
                ->gauge.value,
            5.5);
  EXPECT_EQ(find(fams, "citywatch_snmp_traps_total", "ifindex", "9")->counter.value, 1);
}

TEST(SnmpMetrics, SeriesBeyondTheCapAreDroppedAndCounted) {
  SnmpMetrics m(2);
  std::vector<Record> rs;
  for (std::uint32_t i = 1; i <= 5; ++i) {
    InterfaceSample s;
    s.target.assign("sw");
    s.if_index = i;
    rs.push_back(with(s));
  }
  m.consume_records(rs);
  const auto fams = m.Collect();
  for (const auto& f : fams)
    if (f.name == "citywatch_snmp_series_dropped_total") {
      EXPECT_EQ(f.metric[0].counter.value, 3);
    }
}

}  // namespace
}  // namespace citywatch::collector
