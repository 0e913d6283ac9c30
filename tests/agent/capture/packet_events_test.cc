#include "agent/capture/packet_events.h"

#include <gtest/gtest.h>
#include <pcap/dlt.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/wire_codec.h"
#include "tests/agent/capture/test_frames.h"

namespace citywatch::agent {
namespace {

using namespace citywatch::agent::test_frames;

constexpr std::int64_t kSec = 1'000'000'000;

class Harness {
 public:
  explicit Harness(PacketEventConfig cfg = {})
      : x(cfg, [this](const PacketEvent& e, std::int64_t) { events.push_back(e); }) {}
  void feed(const Bytes& f, std::int64_t ts) {
    DecodedPacket p;
    const DecodeResult r = decode_packet(DLT_EN10MB, f.b, p);
    x.add(r, p, f.b, ts);
  }
  std::size_t count(PacketEventKind k) const {
    std::size_t n = 0;
    for (const auto& e : events) n += e.kind == k;
    return n;
  }
  std::vector<PacketEvent> events;
  PacketEventExtractor x;
};

TEST(PacketEvents, ScanPassesWholeFloodIsBudgetedPerService) {
  Harness h;
  for (int port = 1; port <= 1024; ++port) h.feed(tcp_frame(40000, port, 0x02), kSec);
  EXPECT_EQ(h.count(PacketEventKind::kTcpSyn), 1024u);
  std::set<int> ports;
  for (const auto& e : h.events)
    if (e.kind == PacketEventKind::kTcpSyn) ports.insert(e.dst_port);
  EXPECT_EQ(ports.size(), 1024u);

  h.events.clear();
  for (int i = 0; i < 1000; ++i) h.feed(tcp_frame(1024 + i, 8080, 0x02), 2 * kSec);
  EXPECT_EQ(h.count(PacketEventKind::kTcpSyn), 32u);
  const auto k = static_cast<std::size_t>(PacketEventKind::kTcpSyn);
  EXPECT_EQ(h.x.stats().suppressed_budget[k], 968u);
  // A new window gives the key a fresh budget.
  h.events.clear();
  h.feed(tcp_frame(3000, 8080, 0x02), 13 * kSec);
  EXPECT_EQ(h.count(PacketEventKind::kTcpSyn), 1u);
}

TEST(PacketEvents, AnswersAreKeyedByService) {
  Harness h;
  // Closed ports answer a scan with RST+ACK from each probed port: one event per port.
  for (int port = 1; port <= 100; ++port) h.feed(tcp_frame(port, 40000, 0x14, 20, 10), kSec);
  EXPECT_EQ(h.count(PacketEventKind::kTcpRst), 100u);
  // A host resetting a flood's SYN-ACKs (RST without ACK) towards one service: budgeted.
  for (int i = 0; i < 100; ++i) h.feed(tcp_frame(2000 + i, 8080, 0x04), kSec);
  EXPECT_EQ(h.count(PacketEventKind::kTcpRst), 132u);
  for (int i = 0; i < 100; ++i) h.feed(tcp_frame(8080, 2000 + i, 0x12, 20, 10), kSec);
  EXPECT_EQ(h.count(PacketEventKind::kTcpSynAck), 32u);
  h.feed(tcp_frame(40000, 80, 0x10), kSec);  // plain ACK: no event
  EXPECT_EQ(h.events.size(), 164u + 2u);     // + the two hosts' new-MAC events
}

std::vector<PacketEvent> failed(const Harness& h) {
  std::vector<PacketEvent> out;
  for (const auto& e : h.events)
    if (e.kind == PacketEventKind::kTcpProbeFailed) out.push_back(e);
  return out;
}

TEST(PacketEvents, ProbesRefusedAtOnceHalfOpenAtOnceUnansweredAfterTheTimeout) {
  using namespace packet_event_flags;
  Harness h;
  // .10 tries four ports of .20: 22 refused (RST+ACK), 80 accepted and then reset by the
  // client (a SYN scan finding it open), 443 accepted and completed, 8080 never answered.
  for (int port : {22, 80, 443, 8080}) h.feed(tcp_frame(40000, port, 0x02), kSec);
  h.feed(tcp_frame(40000, 8080, 0x02), kSec + kSec / 2);  // retransmitted: the same attempt
  h.feed(tcp_frame(22, 40000, 0x14, 20, 10), kSec + 1000);
  h.feed(tcp_frame(80, 40000, 0x12, 20, 10), kSec + 1000);
  h.feed(tcp_frame(443, 40000, 0x12, 20, 10), kSec + 1000);
  h.feed(tcp_frame(40000, 80, 0x04), kSec + 2000);
  h.feed(tcp_frame(40000, 443, 0x10), kSec + 2000);
  auto f = failed(h);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].dst_port, 22);
  EXPECT_EQ(f[0].flags, kTcpRejected);
  EXPECT_EQ(f[1].dst_port, 80);
  EXPECT_EQ(f[1].flags, kTcpHalfOpen);
  // Oriented as the SYN: src tried dst.
  EXPECT_EQ(f[0].src.bytes[3], 10);
  EXPECT_EQ(f[0].dst.bytes[3], 20);
  // 8080: nothing at 5.9 s, reported (once) by the first frame or tick at 6 s.
  h.x.advance(kSec + 5 * kSec - 1);
  EXPECT_EQ(failed(h).size(), 2u);
  h.x.advance(kSec + 5 * kSec);
  f = failed(h);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[2].dst_port, 8080);
  EXPECT_EQ(f[2].flags, 0);
  h.x.advance(60 * kSec);
  h.x.flush();
  EXPECT_EQ(failed(h).size(), 3u);  // 443 was a connection, not a probe
}

// A browser's HTTPS connection, completed (the client's ACK), then aborted: RST+ACK, and its
// kernel answers the server's segment in flight with a bare RST. A connection, not a SYN
// scan's half-open probe (which resets without ever ACKing): the corpus case
// https_client_resets, 40 of which were once reported as a horizontal scan.
TEST(PacketEvents, ACompletedHandshakeIsNeverAHalfOpenProbeHoweverItEnds) {
  Harness h;
  h.feed(tcp_frame(40000, 443, 0x02), kSec);
  h.feed(tcp_frame(443, 40000, 0x12, 20, 10), kSec + 1000);
  h.feed(tcp_frame(40000, 443, 0x10), kSec + 2000);  // handshake complete
  h.feed(tcp_frame(40000, 443, 0x18), kSec + 3000);  // the request
  h.feed(tcp_frame(40000, 443, 0x14), kSec + 4000);  // abort: RST+ACK
  h.feed(tcp_frame(40000, 443, 0x04), kSec + 5000);  // bare RST to the segment in flight
  h.x.advance(60 * kSec);
  h.x.flush();
  EXPECT_EQ(failed(h).size(), 0u);
}

TEST(PacketEvents, ProbeEventTimeIsTheSynAndFlushReportsWhatWaits) {
  Harness h;
  std::vector<std::int64_t> times;
  PacketEventExtractor x({}, [&](const PacketEvent& e, std::int64_t ts) {
    if (e.kind == PacketEventKind::kTcpProbeFailed) times.push_back(ts);
  });
  for (int i = 0; i < 3; ++i) {
    const Bytes f = tcp_frame(40000, 100 + i, 0x02);
    DecodedPacket p;
    x.add(decode_packet(DLT_EN10MB, f.b, p), p, f.b, (10 + i) * kSec);
  }
  x.flush();  // end of a capture file: nothing more will answer
  EXPECT_EQ(times, (std::vector<std::int64_t>{10 * kSec, 11 * kSec, 12 * kSec}));
}

TEST(PacketEvents, AnsweredAttemptsAreNeverReportedHoweverTheIndexCollides) {
  // 16 slots: 300 answered connections collide in the index all the time. Whatever is
  // pushed out is counted, and no answered attempt becomes a failed probe.
  PacketEventConfig cfg;
  cfg.probe_slots = 16;
  Harness h(cfg);
  for (int i = 0; i < 300; ++i) {
    const int port = 1000 + i, last = 30 + i % 200;
    h.feed(tcp_frame(40000, port, 0x02, 10, last), kSec + i * 1000);
    if (i >= 8) {  // answers arrive 8 attempts later, so several wait at once
      const int j = i - 8;
      h.feed(tcp_frame(1000 + j, 40000, 0x12, 30 + j % 200, 10), kSec + i * 1000 + 500);
    }
  }
  for (int j = 292; j < 300; ++j)
    h.feed(tcp_frame(1000 + j, 40000, 0x12, 30 + j % 200, 10), kSec + 300 * 1000);
  h.x.flush();
  EXPECT_TRUE(failed(h).empty()) << failed(h).size() << " answered attempts reported as failed";
}

TEST(PacketEvents, AFullProbeRingCountsWhatItPushesOut) {
  PacketEventConfig cfg;
  cfg.probe_slots = 16;
  Harness h(cfg);
  for (int port = 1; port <= 20; ++port) h.feed(tcp_frame(40000, port, 0x02), kSec);
  // At least the oldest four left the ring; a full index bucket may push out more. Each
  // attempt is either reported at the end or counted as pushed out, never both.
  const std::uint64_t evicted = h.x.stats().probes_evicted;
  EXPECT_GE(evicted, 4u);
  h.x.flush();
  const auto f = failed(h);
  EXPECT_EQ(f.size() + evicted, 20u);
  std::set<int> ports;
  for (const auto& e : f) ports.insert(e.dst_port);
  EXPECT_EQ(ports.size(), f.size());
  for (int port = 1; port <= 4; ++port) EXPECT_FALSE(ports.count(port)) << port;
  // An answer for an attempt that left the ring is no answer to anything else.
  h.feed(tcp_frame(1, 40000, 0x14, 20, 10), 2 * kSec);
  EXPECT_EQ(failed(h).size(), f.size());
}

TEST(PacketEvents, ArpReplyFloodIsCountedPerMacAndSecond) {
  PacketEventConfig cfg;
  cfg.arp_reply_flood = 50;
  Harness h(cfg);
  auto floods = [&h] {
    std::vector<PacketEvent> out;
    for (const auto& e : h.events)
      if (e.kind == PacketEventKind::kArpReplyFlood) out.push_back(e);
    return out;
  };
  // MAC ...:66 claims 10.0.0.1 in 120 replies spread over the second [1 s, 2 s), then 80
  // in [2 s, 3 s). MAC ...:55 answers 10 times a second: no flood.
  for (int i = 0; i < 120; ++i)
    h.feed(arp_frame(2, 0x66, {10, 0, 0, 1}, {10, 0, 0, 9}), kSec + i * 8'000'000);
  for (int i = 0; i < 80; ++i)
    h.feed(arp_frame(2, 0x66, {10, 0, 0, 1}, {10, 0, 0, 9}), 2 * kSec + i * 12'000'000);
  for (int i = 0; i < 10; ++i)
    h.feed(arp_frame(2, 0x55, {10, 0, 0, 5}, {10, 0, 0, 9}), kSec + i * 100'000'000);
  auto f = floods();
  ASSERT_EQ(f.size(), 1u);  // the first second ended when the second began
  EXPECT_EQ(f[0].count, 120u);
  EXPECT_EQ(f[0].mac[5], 0x66);
  EXPECT_EQ(f[0].src.bytes[3], 1);
  h.x.advance(4 * kSec);  // no more replies: the second second ends on the clock
  f = floods();
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[1].count, 80u);
  h.x.flush();
  EXPECT_EQ(floods().size(), 2u);
  // Requests are not counted.
  for (int i = 0; i < 200; ++i) h.feed(arp_frame(1, 0x77, {10, 0, 0, 7}, {10, 0, 0, 9}), 10 * kSec);
  h.x.flush();
  EXPECT_EQ(floods().size(), 2u);
}

TEST(PacketEvents, RateLimitBoundsFloodsWithManyKeys) {
  PacketEventConfig cfg;
  cfg.rate = 10;
  cfg.burst = 5;
  Harness h(cfg);
  for (int i = 0; i < 100; ++i) h.feed(tcp_frame(40000, i + 1, 0x02), kSec);
  EXPECT_EQ(h.count(PacketEventKind::kTcpSyn), 5u);
  const auto k = static_cast<std::size_t>(PacketEventKind::kTcpSyn);
  EXPECT_EQ(h.x.stats().suppressed_rate[k], 95u);
  // Half a second later: 5 tokens back (10/s), capped at the burst.
  for (int i = 0; i < 100; ++i) h.feed(tcp_frame(40000, 200 + i, 0x02), kSec + kSec / 2);
  EXPECT_EQ(h.count(PacketEventKind::kTcpSyn), 10u);
}

TEST(PacketEvents, DnsQueriesAndErrorAnswers) {
  Harness h;
  h.feed(dns_frame(false, 0, "aGVsbG8.city.example", 40001, 53), kSec);
  h.feed(dns_frame(true, 0, "aGVsbG8.city.example", 53, 40001), kSec);  // NOERROR: no event
  h.feed(dns_frame(true, 3, "nope.city.example", 53, 40002), kSec);
  h.feed(dns_frame(false, 0, "not-dns.example", 40003, 5353), kSec);  // another port
  ASSERT_EQ(h.count(PacketEventKind::kDnsQuery), 1u);
  ASSERT_EQ(h.count(PacketEventKind::kDnsResponse), 1u);
  for (const auto& e : h.events) {
    if (e.kind == PacketEventKind::kDnsQuery) {
      EXPECT_EQ(e.name.view(), "aGVsbG8.city.example");
      EXPECT_EQ(e.dns_qtype, 16);
      EXPECT_EQ(e.dst_port, 53);
    }
    if (e.kind == PacketEventKind::kDnsResponse) {
      EXPECT_EQ(e.name.view(), "nope.city.example");
      EXPECT_EQ(e.dns_rcode, 3);
    }
  }
  EXPECT_EQ(h.x.stats().dns[static_cast<std::size_t>(DnsResult::kOk)], 3u);
}

TEST(PacketEvents, ArpBindingsNewChangedGratuitous) {
  Harness h;
  h.feed(arp_frame(1, 0x0a, {10, 99, 1, 10}, {10, 99, 1, 20}), kSec);  // who-has .20, tell .10
  h.feed(arp_frame(2, 0x14, {10, 99, 1, 20}, {10, 99, 1, 10}), kSec);  // .20 is-at ...:14
  h.feed(arp_frame(2, 0x14, {10, 99, 1, 20}, {10, 99, 1, 10}), kSec);  // known: nothing
  ASSERT_EQ(h.count(PacketEventKind::kArpBinding), 2u);
  h.feed(arp_frame(1, 0x33, {10, 99, 1, 20}, {10, 99, 1, 20}), 2 * kSec);  // moved, gratuitous
  h.feed(arp_frame(1, 0x0a, {0, 0, 0, 0}, {10, 99, 1, 77}), 2 * kSec);     // probe: no binding
  ASSERT_EQ(h.count(PacketEventKind::kArpBinding), 3u);
  std::vector<PacketEvent> arp;
  for (const auto& e : h.events)
    if (e.kind == PacketEventKind::kArpBinding) arp.push_back(e);
  EXPECT_EQ(arp[0].flags, packet_event_flags::kArpNew);
  EXPECT_EQ(arp[1].flags, packet_event_flags::kArpNew | packet_event_flags::kArpReply);
  EXPECT_EQ(arp[1].mac, (std::array<std::uint8_t, 6>{2, 0, 0, 0, 0, 0x14}));
  const std::uint8_t ip20[4] = {10, 99, 1, 20};
  EXPECT_EQ(arp[1].src, IpAddr::v4(ip20));
  EXPECT_EQ(arp[2].flags, packet_event_flags::kArpChanged | packet_event_flags::kArpGratuitous);
  EXPECT_EQ(arp[2].prev_mac, (std::array<std::uint8_t, 6>{2, 0, 0, 0, 0, 0x14}));
  EXPECT_EQ(arp[2].mac, (std::array<std::uint8_t, 6>{2, 0, 0, 0, 0, 0x33}));
}

TEST(PacketEvents, NewMacOncePerAddressAndTableResetIsCounted) {
  PacketEventConfig cfg;
  cfg.mac_table = 16;
  Harness h(cfg);
  for (int i = 0; i < 3; ++i) h.feed(tcp_frame(1, 2, 0x10, 10, 20), kSec);
  EXPECT_EQ(h.count(PacketEventKind::kNewMac), 1u);
  for (int m = 100; m < 120; ++m) h.feed(tcp_frame(1, 2, 0x10, m, 20), kSec);
  EXPECT_EQ(h.count(PacketEventKind::kNewMac), 21u);
  EXPECT_EQ(h.x.stats().mac_table_resets, 1u);
}

TEST(PacketEvents, IcmpUnreachableNamesTheQuotedPacket) {
  // Port unreachable from .20 to .10 quoting UDP 10.99.1.10:40000 -> 10.99.1.20:5353.
  Bytes quote = ipv4(17, 8, 10, 20).u16(40000).u16(5353).u16(8).u16(0);
  Bytes icmp = Bytes().u8(3).u8(3).u16(0).u32(0).append(quote);
  Bytes f = eth(20, 0x0800).append(ipv4(1, static_cast<int>(icmp.b.size()), 20, 10)).append(icmp);
  Harness h;
  h.feed(f, kSec);
  ASSERT_EQ(h.count(PacketEventKind::kIcmpUnreachable), 1u);
  for (const auto& e : h.events) {
    if (e.kind != PacketEventKind::kIcmpUnreachable) continue;
    EXPECT_EQ(e.icmp_code, 3);
    EXPECT_EQ(e.protocol, 17);
    EXPECT_EQ(e.src_port, 40000);
    EXPECT_EQ(e.dst_port, 5353);
  }
  // Cut inside the quote: still an event, counted as truncated.
  Bytes cut = Bytes().u8(3).u8(1).u16(0).u32(0).u8(0x45);
  Bytes g = eth(20, 0x0800).append(ipv4(1, static_cast<int>(cut.b.size()), 20, 11)).append(cut);
  h.feed(g, kSec);
  EXPECT_EQ(h.count(PacketEventKind::kIcmpUnreachable), 2u);
  EXPECT_EQ(h.x.stats().icmp_quote_truncated, 1u);
}

TEST(PacketEvents, DisabledProducesNothing) {
  PacketEventConfig cfg;
  cfg.enabled = false;
  Harness h(cfg);
  h.feed(tcp_frame(1, 22, 0x02), kSec);
  EXPECT_TRUE(h.events.empty());
}

TEST(PacketEvents, EveryKindHasAName) {
  std::set<std::string> names;
  for (std::size_t k = 1; k < kPacketEventKinds; ++k)
    names.insert(to_string(static_cast<PacketEventKind>(k)));
  EXPECT_EQ(names.size(), kPacketEventKinds - 1);
  EXPECT_EQ(names.count("unknown"), 0u);
}

// The fields added for ARP and ICMP travel over the wire.
TEST(PacketEvents, WireRoundTripKeepsEveryField) {
  PacketEvent e;
  e.kind = PacketEventKind::kArpBinding;
  const std::uint8_t ip[4] = {10, 99, 1, 20};
  e.src = IpAddr::v4(ip);
  e.mac = {2, 0, 0, 0, 0, 0x33};
  e.prev_mac = {2, 0, 0, 0, 0, 0x14};
  e.flags = packet_event_flags::kArpChanged;
  e.icmp_code = 9;
  e.name.assign("x.example");
  e.count = 123456;
  Record r;
  r.event_time_ns = 5 * kSec;
  r.body = e;
  wire::BatchEncoder enc;
  std::vector<Record> out;
  std::uint64_t seq = 0;
  std::uint32_t unknown = 0;
  for (const auto encoding : {wire::Encoding::kCompact, wire::Encoding::kFixed}) {
    enc.begin(encoding);
    enc.add(r);
    const auto payload = enc.finish(1);
    out.clear();
    ASSERT_EQ(wire::decode_batch(payload, ShortName("a"), ShortName("s"), seq, out, unknown),
              wire::DecodeError::kOk);
    ASSERT_EQ(out.size(), 1u);
    const auto& d = std::get<PacketEvent>(out[0].body);
    EXPECT_EQ(d.kind, e.kind);
    EXPECT_EQ(d.src, e.src);
    EXPECT_EQ(d.mac, e.mac);
    EXPECT_EQ(d.prev_mac, e.prev_mac);
    EXPECT_EQ(d.flags, e.flags);
    EXPECT_EQ(d.icmp_code, e.icmp_code);
    EXPECT_EQ(d.name, e.name);
    EXPECT_EQ(d.count, e.count);
  }
  // The fixed payload is the last one encoded.
  const auto payload = enc.finish(1);

  // An older agent's body ends before `count` (added last): it reads as 0, not as an error.
  // Payload (little-endian): seq u64, count u32, then kind u8, body length u16, body.
  std::vector<std::byte> old(payload.begin(), payload.end() - 4);
  const std::size_t len_at = 8 + 4 + 1;
  const auto len = static_cast<std::uint16_t>(
      (std::to_integer<int>(old[len_at]) | std::to_integer<int>(old[len_at + 1]) << 8) - 4);
  old[len_at] = static_cast<std::byte>(len & 0xff);
  old[len_at + 1] = static_cast<std::byte>(len >> 8);
  out.clear();
  ASSERT_EQ(wire::decode_batch(old, ShortName("a"), ShortName("s"), seq, out, unknown),
            wire::DecodeError::kOk);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<PacketEvent>(out[0].body).count, 0u);
  EXPECT_EQ(std::get<PacketEvent>(out[0].body).name, e.name);
}

}  // namespace
}  // namespace citywatch::agent
