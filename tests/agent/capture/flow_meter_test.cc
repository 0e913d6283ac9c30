#include "agent/capture/flow_meter.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace citywatch::agent {
namespace {

constexpr std::int64_t kSec = 1'000'000'000;
constexpr std::uint8_t kTcp = 6, kUdp = 17;
constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;

DecodedPacket packet(std::uint8_t host, std::uint16_t sport, std::uint16_t dport,
                     std::uint8_t proto = kUdp, std::uint8_t flags = 0, std::uint32_t bytes = 100,
                     std::uint16_t vlan = 0) {
  DecodedPacket p;
  const std::uint8_t s[4] = {10, 0, 0, host}, d[4] = {10, 0, 1, 1};
  p.src = IpAddr::v4(s);
  p.dst = IpAddr::v4(d);
  p.ip_version = 4;
  p.protocol = proto;
  p.src_port = sport;
  p.dst_port = dport;
  p.tcp_flags = flags;
  p.ip_bytes = bytes;
  p.vlan = vlan;
  return p;
}

DecodedPacket reversed(DecodedPacket p) {
  std::swap(p.src, p.dst);
  std::swap(p.src_port, p.dst_port);
  return p;
}

struct Collector {
  std::vector<FlowRecord> flows;
  FlowMeter::Emit emit() {
    return [this](const FlowRecord& r) { flows.push_back(r); };
  }
};

FlowMeterConfig config(std::int64_t idle_s = 15, std::int64_t active_s = 60,
                       std::size_t max_flows = 1024) {
  FlowMeterConfig c;
  c.idle_timeout_ns = idle_s * kSec;
  c.active_timeout_ns = active_s * kSec;
  c.max_flows = max_flows;
  return c;
}

// Every created flow is accounted for exactly once.
void expect_balanced(const FlowMeterStats& s) {
  EXPECT_EQ(s.flows_created, s.flows_expired_idle + s.flows_expired_active + s.flows_ended_tcp +
                                 s.flows_evicted + s.flows_flushed + s.active_flows);
}

TEST(FlowMeter, EntryIsSmall) {
  // 40-byte key, 2 timestamps, 2 counters, hash, 4 list links, flags.
  EXPECT_EQ(FlowMeter::entry_size(), 96u);
  EXPECT_LE(FlowMeter::entry_size(), 128u);
}

TEST(FlowMeter, AggregatesPacketsOfOneFlow) {
  Collector c;
  FlowMeter m(config(), c.emit());
  m.add(packet(1, 1000, 80, kTcp, kSyn, 60, 7), 1 * kSec);
  m.add(packet(1, 1000, 80, kTcp, kAck, 1500, 7), 2 * kSec);
  m.add(packet(1, 1000, 80, kTcp, kAck | 0x08, 40, 7), 3 * kSec);
  EXPECT_TRUE(c.flows.empty());
  EXPECT_EQ(m.stats().active_flows, 1u);
  m.flush();
  ASSERT_EQ(c.flows.size(), 1u);
  const FlowRecord& r = c.flows[0];
  EXPECT_EQ(r.start_ns, 1 * kSec);
  EXPECT_EQ(r.end_ns, 3 * kSec);
  EXPECT_EQ(r.packets, 3u);
  EXPECT_EQ(r.bytes, 1600u);
  EXPECT_EQ(r.protocol, kTcp);
  EXPECT_EQ(r.src_port, 1000);
  EXPECT_EQ(r.dst_port, 80);
  EXPECT_EQ(r.tcp_flags, kSyn | kAck | 0x08);
  EXPECT_EQ(r.vlan, 7);
  EXPECT_EQ(r.src, packet(1, 0, 0).src);
  EXPECT_EQ(r.dst, packet(1, 0, 0).dst);
  EXPECT_EQ(r.source, FlowSource::kPacketMeter);
  EXPECT_EQ(r.sampling_rate, 1u);
  EXPECT_EQ(r.exporter.family, IpAddr::Family::kNone);
  EXPECT_EQ(m.stats().packets, 3u);
  EXPECT_EQ(m.stats().bytes, 1600u);
  EXPECT_EQ(m.stats().flows_flushed, 1u);
  EXPECT_EQ(m.stats().active_flows, 0u);
  expect_balanced(m.stats());
}

TEST(FlowMeter, KeyIsUnidirectionalAndIncludesVlanAndProtocol) {
  Collector c;
  FlowMeter m(config(), c.emit());
  const DecodedPacket a = packet(1, 1000, 53);
  m.add(a, 0);
  m.add(reversed(a), 0);
  m.add(packet(1, 1000, 53, kUdp, 0, 100, 5), 0);  // other VLAN
  m.add(packet(1, 1000, 53, kTcp), 0);             // other protocol
  m.add(packet(2, 1000, 53), 0);                   // other source
  m.add(a, 1);
  EXPECT_EQ(m.stats().flows_created, 5u);
  m.flush();
  EXPECT_EQ(c.flows.size(), 5u);
  EXPECT_EQ(c.flows[0].packets, 2u);

  // IPv4 and IPv6 addresses with equal leading bytes are different flows.
  DecodedPacket v6 = a;
  v6.src.family = v6.dst.family = IpAddr::Family::kV6;
  m.add(a, 2);
  m.add(v6, 2);
  EXPECT_EQ(m.stats().active_flows, 2u);
}

TEST(FlowMeter, IdleTimeoutOnAdvance) {
  Collector c;
  FlowMeter m(config(15), c.emit());
  m.add(packet(1, 1, 2), 0);
  m.add(packet(2, 1, 2), 5 * kSec);
  m.add(packet(1, 1, 2), 10 * kSec);  // refreshes flow 1
  m.advance(20 * kSec - 1);
  EXPECT_TRUE(c.flows.empty());
  m.advance(20 * kSec);  // flow 2 idle for 15 s
  ASSERT_EQ(c.flows.size(), 1u);
  EXPECT_EQ(c.flows[0].src, packet(2, 0, 0).src);
  m.advance(25 * kSec);
  ASSERT_EQ(c.flows.size(), 2u);
  EXPECT_EQ(c.flows[1].packets, 2u);
  EXPECT_EQ(c.flows[1].end_ns, 10 * kSec);
  EXPECT_EQ(m.stats().flows_expired_idle, 2u);
  EXPECT_EQ(m.stats().active_flows, 0u);
  expect_balanced(m.stats());
}

TEST(FlowMeter, IdleTimeoutOnAddWithoutAdvance) {
  Collector c;
  FlowMeter m(config(15), c.emit());
  m.add(packet(1, 1, 2), 0);
  m.add(packet(1, 1, 2), 16 * kSec);
  ASSERT_EQ(c.flows.size(), 1u);
  EXPECT_EQ(c.flows[0].packets, 1u);
  EXPECT_EQ(m.stats().flows_expired_idle, 1u);
  EXPECT_EQ(m.stats().flows_created, 2u);
  expect_balanced(m.stats());
}

TEST(FlowMeter, ActiveTimeoutSplitsLongFlows) {
  for (bool call_advance : {true, false}) {
    Collector c;
    FlowMeter m(config(15, 60), c.emit());
    for (std::int64_t t = 0; t <= 130; ++t) {
      if (call_advance) m.advance(t * kSec);
      m.add(packet(1, 1, 2, kUdp, 0, 10), t * kSec);
    }
    m.flush();
    ASSERT_EQ(c.flows.size(), 3u) << call_advance;
    EXPECT_EQ(c.flows[0].start_ns, 0);
    EXPECT_EQ(c.flows[0].end_ns, 59 * kSec);
    EXPECT_EQ(c.flows[0].packets, 60u);
    EXPECT_EQ(c.flows[1].start_ns, 60 * kSec);
    EXPECT_EQ(c.flows[1].packets, 60u);
    EXPECT_EQ(c.flows[2].packets, 11u);
    EXPECT_EQ(c.flows[2].bytes, 110u);
    EXPECT_EQ(m.stats().flows_expired_active, 2u);
    EXPECT_EQ(m.stats().flows_flushed, 1u);
    expect_balanced(m.stats());
  }
}

TEST(FlowMeter, TcpFinOrRstEndsTheFlow) {
  Collector c;
  FlowMeter m(config(), c.emit());
  m.add(packet(1, 4000, 80, kTcp, kSyn), 0);
  m.add(packet(1, 4000, 80, kTcp, kAck), 1);
  m.add(packet(1, 4000, 80, kTcp, kFin | kAck), 2);
  ASSERT_EQ(c.flows.size(), 1u);  // emitted at once, FIN packet included
  EXPECT_EQ(c.flows[0].packets, 3u);
  EXPECT_EQ(c.flows[0].tcp_flags, kSyn | kAck | kFin);
  EXPECT_EQ(m.stats().active_flows, 0u);

  m.add(packet(1, 4000, 80, kTcp, kAck), 3);  // the last ACK starts a new flow
  EXPECT_EQ(m.stats().active_flows, 1u);
  m.add(packet(1, 4000, 80, kTcp, kRst), 4);
  ASSERT_EQ(c.flows.size(), 2u);
  EXPECT_EQ(c.flows[1].packets, 2u);
  EXPECT_EQ(c.flows[1].tcp_flags, kAck | kRst);

  m.add(packet(2, 5000, 80, kTcp, kRst), 5);  // a lone RST is a one-packet flow
  EXPECT_EQ(c.flows.size(), 3u);
  m.add(packet(3, 53, 53, kUdp, kFin), 6);  // flags mean nothing outside TCP
  EXPECT_EQ(c.flows.size(), 3u);
  EXPECT_EQ(m.stats().flows_ended_tcp, 3u);
  EXPECT_EQ(m.stats().active_flows, 1u);
  expect_balanced(m.stats());
}

TEST(FlowMeter, EvictsLeastRecentlySeenWhenFull) {
  Collector c;
  FlowMeter m(config(15, 60, 4), c.emit());
  for (std::uint8_t h = 1; h <= 4; ++h) m.add(packet(h, 1, 2), h);
  m.add(packet(1, 1, 2), 10);  // flow 1 is now the most recent
  EXPECT_TRUE(c.flows.empty());
  m.add(packet(5, 1, 2), 11);  // evicts flow 2
  ASSERT_EQ(c.flows.size(), 1u);
  EXPECT_EQ(c.flows[0].src, packet(2, 0, 0).src);
  m.add(packet(6, 1, 2), 12);  // evicts flow 3
  ASSERT_EQ(c.flows.size(), 2u);
  EXPECT_EQ(c.flows[1].src, packet(3, 0, 0).src);
  EXPECT_EQ(m.stats().flows_evicted, 2u);
  EXPECT_EQ(m.stats().active_flows, 4u);
  m.add(packet(1, 1, 2), 13);  // still metered in its original flow
  m.flush();
  std::uint64_t flow1 = 0;
  for (const auto& r : c.flows) {
    if (r.src == packet(1, 0, 0).src) flow1 += r.packets;
  }
  EXPECT_EQ(flow1, 3u);
  EXPECT_EQ(c.flows.size(), 6u);
  expect_balanced(m.stats());
}

TEST(FlowMeter, MaxFlowsOfOne) {
  Collector c;
  FlowMeter m(config(15, 60, 1), c.emit());
  m.add(packet(1, 1, 2), 0);
  m.add(packet(2, 1, 2), 1);
  m.add(packet(1, 1, 2), 2);
  EXPECT_EQ(c.flows.size(), 2u);
  EXPECT_EQ(m.stats().flows_evicted, 2u);
}

TEST(FlowMeter, FlushEmitsEverythingOnce) {
  Collector c;
  FlowMeter m(config(), c.emit());
  for (std::uint16_t port = 0; port < 1000; ++port) m.add(packet(1, port, 80), port);
  m.flush();
  EXPECT_EQ(c.flows.size(), 1000u);
  EXPECT_EQ(m.stats().flows_flushed, 1000u);
  m.flush();
  m.advance(1000 * kSec);
  EXPECT_EQ(c.flows.size(), 1000u);
  expect_balanced(m.stats());
}

// Random traffic over a small key space and a small table: exercises hash collisions,
// backward-shift deletion and every end reason. Checks conservation of packets and bytes.
TEST(FlowMeter, RandomTrafficConservesCounts) {
  Collector c;
  FlowMeter m(config(3, 10, 64), c.emit());
  std::mt19937 rng(7);
  std::uint64_t packets = 0, bytes = 0;
  std::int64_t t = 0;
  for (int i = 0; i < 200000; ++i) {
    t += rng() % (kSec / 50);
    if (i % 20000 == 0) t += 5 * kSec;  // a quiet spell: everything goes idle
    // Mostly 50 busy keys (which outlive the active timeout), sometimes a stray one that
    // pushes the 64-entry table into eviction.
    const bool stray = rng() % 20 == 0;
    const auto host = static_cast<std::uint8_t>(stray ? 100 + rng() % 150 : rng() % 25);
    const auto port = static_cast<std::uint16_t>(rng() % 2);
    const std::uint8_t proto = rng() % 2 ? kTcp : kUdp;
    const std::uint8_t flags = rng() % 400 == 0 ? kFin : kAck;
    const auto len = static_cast<std::uint32_t>(40 + rng() % 1460);
    m.add(packet(host, port, 80, proto, flags, len), t);
    packets += 1;
    bytes += len;
    if (i % 100 == 0) m.advance(t);
  }
  m.flush();
  std::uint64_t got_packets = 0, got_bytes = 0;
  for (const auto& r : c.flows) {
    got_packets += r.packets;
    got_bytes += r.bytes;
    EXPECT_LE(r.end_ns - r.start_ns, 10 * kSec);
  }
  EXPECT_EQ(got_packets, packets);
  EXPECT_EQ(got_bytes, bytes);
  const auto& s = m.stats();
  EXPECT_EQ(s.packets, packets);
  EXPECT_EQ(c.flows.size(), s.flows_created);
  EXPECT_GT(s.flows_expired_idle, 0u);
  EXPECT_GT(s.flows_expired_active, 0u);
  EXPECT_GT(s.flows_ended_tcp, 0u);
  EXPECT_GT(s.flows_evicted, 0u);
  EXPECT_EQ(s.active_flows, 0u);
  expect_balanced(s);
}

}  // namespace
}  // namespace citywatch::agent
