#include "agent/capture/packet_decoder.h"

#include <gtest/gtest.h>
#include <pcap/dlt.h>

#include <cstdint>
#include <initializer_list>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace citywatch::agent {
namespace {

// Frames are built byte by byte, in wire order, so each test shows the exact layout it feeds.
class Bytes {
 public:
  Bytes& u8(std::uint8_t v) {
    b_.push_back(std::byte{v});
    return *this;
  }
  Bytes& u16(std::uint16_t v) { return u8(v >> 8).u8(v & 0xff); }
  Bytes& u32(std::uint32_t v) { return u16(v >> 16).u16(v & 0xffff); }
  Bytes& raw(std::initializer_list<std::uint8_t> v) {
    for (auto x : v) u8(x);
    return *this;
  }
  Bytes& zeros(std::size_t n) {
    b_.insert(b_.end(), n, std::byte{0});
    return *this;
  }
  Bytes& append(const Bytes& o) {
    b_.insert(b_.end(), o.b_.begin(), o.b_.end());
    return *this;
  }
  std::size_t size() const { return b_.size(); }
  const std::vector<std::byte>& vec() const { return b_; }
  std::span<const std::byte> span() const { return b_; }

 private:
  std::vector<std::byte> b_;
};

constexpr std::uint8_t kTcp = 6, kUdp = 17, kIcmp = 1, kIcmpv6 = 58;

Bytes eth(std::uint16_t type) {
  Bytes b;
  b.raw({0x02, 0x00, 0x00, 0x00, 0x00, 0x02});  // dst
  b.raw({0x02, 0x00, 0x00, 0x00, 0x00, 0x01});  // src
  b.u16(type);
  return b;
}
Bytes vlan_tag(std::uint16_t tci, std::uint16_t next) { return Bytes().u16(tci).u16(next); }

// IPv4 header with `options_words` 4-byte words of NOP options; total = header + l4_len.
Bytes ipv4(std::uint8_t proto, std::size_t l4_len, int options_words = 0, std::uint16_t frag = 0,
           std::uint16_t total_override = 0) {
  const std::size_t hl = 20 + 4 * options_words;
  Bytes b;
  b.u8(0x40 | static_cast<std::uint8_t>(hl / 4)).u8(0);
  b.u16(total_override != 0 ? total_override : static_cast<std::uint16_t>(hl + l4_len));
  b.u16(0x1234).u16(frag).u8(64).u8(proto).u16(0);
  b.raw({10, 0, 0, 1}).raw({10, 0, 0, 2});
  for (int i = 0; i < options_words; ++i) b.raw({1, 1, 1, 1});
  return b;
}
Bytes ipv6(std::uint8_t next, std::size_t payload_len) {
  Bytes b;
  b.u32(0x60000000).u16(static_cast<std::uint16_t>(payload_len)).u8(next).u8(255);
  b.raw({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  b.raw({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2});
  return b;
}
Bytes ext(std::uint8_t next, std::uint8_t len_units, std::size_t total) {  // generic ext header
  Bytes b;
  b.u8(next).u8(len_units).zeros(total - 2);
  return b;
}
Bytes frag6(std::uint8_t next, std::uint16_t offset_units, bool more) {
  return Bytes()
      .u8(next)
      .u8(0)
      .u16(static_cast<std::uint16_t>(offset_units << 3 | (more ? 1 : 0)))
      .u32(0xabcdef01);
}
Bytes tcp(std::uint16_t sport, std::uint16_t dport, std::uint8_t flags) {
  return Bytes().u16(sport).u16(dport).u32(1).u32(0).u8(0x50).u8(flags).u16(65535).u16(0).u16(0);
}
Bytes udp(std::uint16_t sport, std::uint16_t dport, std::uint16_t len = 8) {
  return Bytes().u16(sport).u16(dport).u16(len).u16(0);
}
Bytes icmp(std::uint8_t type, std::uint8_t code) { return Bytes().u8(type).u8(code).u16(0); }

Bytes eth_ipv4_tcp(std::uint8_t flags = 0x02) {
  return eth(0x0800).append(ipv4(kTcp, 20)).append(tcp(40000, 80, flags));
}

DecodeResult decode(int dlt, const Bytes& b, DecodedPacket& out) {
  return decode_packet(dlt, b.span(), out);
}

TEST(PacketDecoder, EthernetIpv4Tcp) {
  DecodedPacket p;
  const Bytes f = eth_ipv4_tcp(0x12);
  ASSERT_EQ(decode(DLT_EN10MB, f, p), DecodeResult::kOk);
  EXPECT_EQ(p.dst_mac, (std::array<std::uint8_t, 6>{2, 0, 0, 0, 0, 2}));
  EXPECT_EQ(p.src_mac, (std::array<std::uint8_t, 6>{2, 0, 0, 0, 0, 1}));
  EXPECT_EQ(p.ethertype, 0x0800);
  EXPECT_EQ(p.vlan, 0);
  const std::uint8_t s[4] = {10, 0, 0, 1}, d[4] = {10, 0, 0, 2};
  EXPECT_EQ(p.src, IpAddr::v4(s));
  EXPECT_EQ(p.dst, IpAddr::v4(d));
  EXPECT_EQ(p.ip_version, 4);
  EXPECT_EQ(p.protocol, kTcp);
  EXPECT_EQ(p.src_port, 40000);
  EXPECT_EQ(p.dst_port, 80);
  EXPECT_EQ(p.tcp_flags, 0x12);
  EXPECT_EQ(p.ip_bytes, 40u);
  EXPECT_EQ(p.ttl, 64);
  EXPECT_FALSE(p.is_fragment);
  EXPECT_EQ(p.l3_offset, 14u);
  EXPECT_EQ(p.l4_offset, 34u);
  EXPECT_EQ(p.payload_offset, 54u);
}

TEST(PacketDecoder, EthernetPaddingIsNotPayload) {
  Bytes f = eth(0x0800).append(ipv4(kUdp, 8)).append(udp(53, 5353));
  f.zeros(60 - f.size());  // minimum Ethernet frame
  DecodedPacket p;
  ASSERT_EQ(decode(DLT_EN10MB, f, p), DecodeResult::kOk);
  EXPECT_EQ(p.ip_bytes, 28u);
  EXPECT_EQ(p.src_port, 53);
  EXPECT_EQ(p.dst_port, 5353);
  EXPECT_EQ(p.payload_offset, 42u);
}

TEST(PacketDecoder, SnaplenTruncatedPacketCountsIpTotalLength) {
  // 1500-byte IP packet, only the headers captured.
  const Bytes f = eth(0x0800).append(ipv4(kTcp, 0, 0, 0, 1500)).append(tcp(1, 2, 0x10));
  DecodedPacket p;
  ASSERT_EQ(decode(DLT_EN10MB, f, p), DecodeResult::kOk);
  EXPECT_EQ(p.ip_bytes, 1500u);
  EXPECT_EQ(p.dst_port, 2);
}

TEST(PacketDecoder, Ipv4OptionsAndIcmp) {
  const Bytes f = eth(0x0800).append(ipv4(kIcmp, 8, 2)).append(icmp(8, 0)).zeros(4);
  DecodedPacket p;
  ASSERT_EQ(decode(DLT_EN10MB, f, p), DecodeResult::kOk);
  EXPECT_EQ(p.l4_offset, 14u + 28u);
  EXPECT_EQ(p.protocol, kIcmp);
  EXPECT_EQ(p.src_port, 0);
  EXPECT_EQ(p.dst_port, 8 << 8);
  EXPECT_EQ(p.ip_bytes, 36u);

  const Bytes unreach = eth(0x0800).append(ipv4(kIcmp, 4)).append(icmp(3, 3));
  ASSERT_EQ(decode(DLT_EN10MB, unreach, p), DecodeResult::kOk);
  EXPECT_EQ(p.dst_port, 0x0303);
}

TEST(PacketDecoder, VlanTags) {
  DecodedPacket p;
  Bytes q = eth(0x8100).append(vlan_tag(0x2064, 0x0800)).append(ipv4(kUdp, 8)).append(udp(1, 2));
  ASSERT_EQ(decode(DLT_EN10MB, q, p), DecodeResult::kOk);
  EXPECT_EQ(p.vlan, 100);  // priority bits masked off
  EXPECT_EQ(p.ethertype, 0x0800);
  EXPECT_EQ(p.l3_offset, 18u);

  for (std::uint16_t outer : {0x88a8, 0x9100}) {
    Bytes qinq = eth(outer)
                     .append(vlan_tag(200, 0x8100))
                     .append(vlan_tag(100, 0x86dd))
                     .append(ipv6(kUdp, 8))
                     .append(udp(1, 2));
    ASSERT_EQ(decode(DLT_EN10MB, qinq, p), DecodeResult::kOk) << outer;
    EXPECT_EQ(p.vlan, 200);  // outermost
    EXPECT_EQ(p.ethertype, 0x86dd);
    EXPECT_EQ(p.l3_offset, 22u);
  }

  Bytes deep = eth(0x8100);
  for (int i = 0; i < kMaxVlanTags; ++i) deep.append(vlan_tag(1, 0x8100));
  deep.append(ipv4(kUdp, 8)).append(udp(1, 2));
  EXPECT_EQ(decode(DLT_EN10MB, deep, p), DecodeResult::kTooManyVlanTags);
}

TEST(PacketDecoder, NotIp) {
  DecodedPacket p;
  Bytes arp = eth(0x0806).zeros(28);
  EXPECT_EQ(decode(DLT_EN10MB, arp, p), DecodeResult::kNotIp);
  EXPECT_EQ(p.ethertype, 0x0806);
  Bytes llc = eth(0x0026).raw({0x42, 0x42, 0x03}).zeros(35);  // 802.3 length + STP
  EXPECT_EQ(decode(DLT_EN10MB, llc, p), DecodeResult::kNotIp);
  Bytes vlan_arp = eth(0x8100).append(vlan_tag(5, 0x0806)).zeros(28);
  EXPECT_EQ(decode(DLT_EN10MB, vlan_arp, p), DecodeResult::kNotIp);
  EXPECT_EQ(p.vlan, 5);
}

TEST(PacketDecoder, MalformedIpv4) {
  DecodedPacket p;
  Bytes v6_in_v4 = eth(0x0800).append(ipv6(kUdp, 8)).append(udp(1, 2));
  EXPECT_EQ(decode(DLT_EN10MB, v6_in_v4, p), DecodeResult::kBadIpVersion);

  Bytes short_ihl = eth(0x0800).append(ipv4(kUdp, 8)).append(udp(1, 2));
  Bytes bad = eth(0x0800);
  Bytes ip = ipv4(kUdp, 8);
  std::vector<std::byte> raw = ip.vec();
  raw[0] = std::byte{0x44};  // IHL 4 words = 16 bytes
  std::vector<std::byte> frame = bad.vec();
  frame.insert(frame.end(), raw.begin(), raw.end());
  EXPECT_EQ(decode_packet(DLT_EN10MB, frame, p), DecodeResult::kBadIpHeaderLength);

  Bytes tiny_total = eth(0x0800).append(ipv4(kUdp, 8, 0, 0, 19)).append(udp(1, 2));
  EXPECT_EQ(decode(DLT_EN10MB, tiny_total, p), DecodeResult::kBadIpTotalLength);

  // Options claimed beyond the captured bytes.
  Bytes long_ihl = eth(0x0800).append(ipv4(kUdp, 0, 0));
  std::vector<std::byte> li = long_ihl.vec();
  li[14] = std::byte{0x4f};
  EXPECT_EQ(decode_packet(DLT_EN10MB, li, p), DecodeResult::kTruncatedIp);
}

TEST(PacketDecoder, Ipv4Fragments) {
  DecodedPacket p;
  // First fragment: MF set, offset 0 -> ports.
  Bytes first = eth(0x0800).append(ipv4(kUdp, 1480, 0, 0x2000)).append(udp(5000, 53, 3000));
  ASSERT_EQ(decode(DLT_EN10MB, first, p), DecodeResult::kOk);
  EXPECT_TRUE(p.is_fragment);
  EXPECT_EQ(p.fragment_offset, 0);
  EXPECT_EQ(p.dst_port, 53);
  EXPECT_EQ(p.ip_bytes, 1500u);

  // Later fragment: offset 185 (1480 bytes), no transport header -> no ports, still metered.
  Bytes later = eth(0x0800).append(ipv4(kUdp, 8, 0, 185)).zeros(8);
  ASSERT_EQ(decode(DLT_EN10MB, later, p), DecodeResult::kOk);
  EXPECT_TRUE(p.is_fragment);
  EXPECT_EQ(p.fragment_offset, 185);
  EXPECT_EQ(p.protocol, kUdp);
  EXPECT_EQ(p.src_port, 0);
  EXPECT_EQ(p.dst_port, 0);

  // A first fragment too short for a TCP header still meters, without ports (as softflowd).
  Bytes runt = eth(0x0800).append(ipv4(kTcp, 8, 0, 0x2000)).zeros(8);
  ASSERT_EQ(decode(DLT_EN10MB, runt, p), DecodeResult::kOk);
  EXPECT_EQ(p.dst_port, 0);
}

TEST(PacketDecoder, Ipv6Tcp) {
  const Bytes f = eth(0x86dd).append(ipv6(kTcp, 20)).append(tcp(443, 50000, 0x18));
  DecodedPacket p;
  ASSERT_EQ(decode(DLT_EN10MB, f, p), DecodeResult::kOk);
  EXPECT_EQ(p.ip_version, 6);
  EXPECT_EQ(p.src.family, IpAddr::Family::kV6);
  EXPECT_EQ(p.src.bytes[15], 1);
  EXPECT_EQ(p.dst.bytes[15], 2);
  EXPECT_EQ(p.ttl, 255);
  EXPECT_EQ(p.ip_bytes, 60u);
  EXPECT_EQ(p.src_port, 443);
  EXPECT_EQ(p.tcp_flags, 0x18);
  EXPECT_EQ(p.l4_offset, 54u);
}

TEST(PacketDecoder, Ipv6HopByHopIcmpv6) {  // MLD report, as in segment-a.pcap
  const Bytes f =
      eth(0x86dd).append(ipv6(0, 8 + 4)).append(ext(kIcmpv6, 0, 8)).append(icmp(143, 0));
  DecodedPacket p;
  ASSERT_EQ(decode(DLT_EN10MB, f, p), DecodeResult::kOk);
  EXPECT_EQ(p.protocol, kIcmpv6);
  EXPECT_EQ(p.dst_port, 143 << 8);
  EXPECT_EQ(p.ip_bytes, 52u);
}

TEST(PacketDecoder, Ipv6ExtensionChain) {
  // hop-by-hop (16 bytes) -> routing (8) -> dest opts (8) -> AH (len 4 -> 24 bytes) -> UDP
  Bytes chain;
  chain.append(ext(43, 1, 16)).append(ext(60, 0, 8)).append(ext(51, 0, 8)).append(ext(kUdp, 4, 24));
  const Bytes f = eth(0x86dd).append(ipv6(0, chain.size() + 8)).append(chain).append(udp(7, 9));
  DecodedPacket p;
  ASSERT_EQ(decode(DLT_EN10MB, f, p), DecodeResult::kOk);
  EXPECT_EQ(p.protocol, kUdp);
  EXPECT_EQ(p.src_port, 7);
  EXPECT_EQ(p.dst_port, 9);
  EXPECT_EQ(p.l4_offset, 14u + 40u + 56u);

  Bytes longchain;
  for (int i = 0; i < kMaxIpv6ExtHeaders; ++i) longchain.append(ext(60, 0, 8));
  longchain.append(ext(kUdp, 0, 8));
  const Bytes g =
      eth(0x86dd).append(ipv6(60, longchain.size() + 8)).append(longchain).append(udp(7, 9));
  EXPECT_EQ(decode(DLT_EN10MB, g, p), DecodeResult::kTooManyIpv6ExtHeaders);

  // Header length pointing past the packet.
  const Bytes h = eth(0x86dd).append(ipv6(0, 16)).append(ext(kUdp, 3, 8)).append(udp(1, 2));
  EXPECT_EQ(decode(DLT_EN10MB, h, p), DecodeResult::kTruncatedIpv6ExtHeader);
}

TEST(PacketDecoder, Ipv6Fragments) {
  DecodedPacket p;
  const Bytes first =
      eth(0x86dd).append(ipv6(44, 8 + 8)).append(frag6(kUdp, 0, true)).append(udp(1000, 2000));
  ASSERT_EQ(decode(DLT_EN10MB, first, p), DecodeResult::kOk);
  EXPECT_TRUE(p.is_fragment);
  EXPECT_EQ(p.protocol, kUdp);
  EXPECT_EQ(p.dst_port, 2000);

  const Bytes later = eth(0x86dd).append(ipv6(44, 8 + 8)).append(frag6(kUdp, 100, false)).zeros(8);
  ASSERT_EQ(decode(DLT_EN10MB, later, p), DecodeResult::kOk);
  EXPECT_TRUE(p.is_fragment);
  EXPECT_EQ(p.fragment_offset, 100);
  EXPECT_EQ(p.protocol, kUdp);
  EXPECT_EQ(p.dst_port, 0);
}

TEST(PacketDecoder, LinuxCookedV1AndV2) {
  DecodedPacket p;
  Bytes sll;
  sll.u16(0).u16(1).u16(6).raw({2, 0, 0, 0, 0, 9, 0, 0}).u16(0x0800);
  sll.append(ipv4(kUdp, 8)).append(udp(1, 2));
  ASSERT_EQ(decode(DLT_LINUX_SLL, sll, p), DecodeResult::kOk);
  EXPECT_EQ(p.src_mac[5], 9);
  EXPECT_EQ(p.l3_offset, 16u);
  EXPECT_EQ(p.dst_port, 2);

  Bytes sll2;
  sll2.u16(0x86dd).u16(0).u32(3).u16(1).u8(0).u8(6).raw({2, 0, 0, 0, 0, 7, 0, 0});
  sll2.append(ipv6(kTcp, 20)).append(tcp(1, 22, 0x02));
  ASSERT_EQ(decode(DLT_LINUX_SLL2, sll2, p), DecodeResult::kOk);
  EXPECT_EQ(p.src_mac[5], 7);
  EXPECT_EQ(p.l3_offset, 20u);
  EXPECT_EQ(p.dst_port, 22);

  Bytes sll_vlan;
  sll_vlan.u16(0).u16(1).u16(6).zeros(8).u16(0x8100).append(vlan_tag(42, 0x0800));
  sll_vlan.append(ipv4(kUdp, 8)).append(udp(1, 2));
  ASSERT_EQ(decode(DLT_LINUX_SLL, sll_vlan, p), DecodeResult::kOk);
  EXPECT_EQ(p.vlan, 42);
}

TEST(PacketDecoder, RawAndLoopback) {
  DecodedPacket p;
  const Bytes v4 = ipv4(kUdp, 8).append(udp(1, 2));
  const Bytes v6 = ipv6(kUdp, 8).append(udp(1, 2));
  EXPECT_EQ(decode(DLT_RAW, v4, p), DecodeResult::kOk);
  EXPECT_EQ(p.ethertype, 0x0800);
  EXPECT_EQ(decode(DLT_RAW, v6, p), DecodeResult::kOk);
  EXPECT_EQ(p.ethertype, 0x86dd);
  EXPECT_EQ(decode(DLT_IPV4, v4, p), DecodeResult::kOk);
  EXPECT_EQ(decode(DLT_IPV6, v6, p), DecodeResult::kOk);
  EXPECT_EQ(decode(DLT_IPV4, v6, p), DecodeResult::kBadIpVersion);
  EXPECT_EQ(decode(DLT_IPV6, v4, p), DecodeResult::kBadIpVersion);
  EXPECT_EQ(decode(DLT_RAW, Bytes().u8(0x50).zeros(30), p), DecodeResult::kBadIpVersion);

  // DLT_NULL: host byte order (little-endian here); DLT_LOOP: network byte order.
  const Bytes null_v4 = Bytes().raw({2, 0, 0, 0}).append(v4);
  const Bytes loop_v4 = Bytes().u32(2).append(v4);
  EXPECT_EQ(decode(DLT_NULL, null_v4, p), DecodeResult::kOk);
  EXPECT_EQ(decode(DLT_LOOP, loop_v4, p), DecodeResult::kOk);
  for (std::uint32_t af6 : {10u, 24u, 28u, 30u}) {
    EXPECT_EQ(decode(DLT_NULL, Bytes().u32(af6).append(v6), p), DecodeResult::kOk) << af6;
  }
  EXPECT_EQ(decode(DLT_NULL, Bytes().u32(7).append(v4), p), DecodeResult::kNotIp);
  EXPECT_EQ(decode(DLT_NULL, Bytes().u32(2).append(v6), p), DecodeResult::kBadIpVersion);
}

TEST(PacketDecoder, UnsupportedLinktype) {
  DecodedPacket p;
  EXPECT_EQ(decode(DLT_IEEE802_11, eth_ipv4_tcp(), p), DecodeResult::kUnsupportedLinktype);
}

TEST(PacketDecoder, EveryCodeHasAName) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < kDecodeResultCount; ++i) {
    const std::string n = to_string(static_cast<DecodeResult>(i));
    EXPECT_NE(n, "unknown") << i;
    names.insert(n);
  }
  EXPECT_EQ(names.size(), kDecodeResultCount);
  DecodeCounters c;
  c.count(DecodeResult::kTruncatedIp);
  c.count(DecodeResult::kTruncatedIp);
  EXPECT_EQ(c[DecodeResult::kTruncatedIp], 2u);
  EXPECT_EQ(c[DecodeResult::kOk], 0u);
}

struct Case {
  const char* name;
  int dlt;
  Bytes frame;
};

// Minimal frames: headers only, no payload or padding, so any truncation must be rejected.
std::vector<Case> minimal_frames() {
  Bytes chain;
  chain.append(ext(43, 0, 8)).append(ext(60, 0, 8)).append(ext(51, 0, 8)).append(ext(44, 0, 8));
  chain.append(frag6(kTcp, 0, false));
  std::vector<Case> c;
  c.push_back({"eth_ipv4_tcp", DLT_EN10MB, eth_ipv4_tcp()});
  c.push_back({"eth_ipv4_udp", DLT_EN10MB, eth(0x0800).append(ipv4(kUdp, 8)).append(udp(1, 2))});
  c.push_back(
      {"eth_ipv4_opts_icmp", DLT_EN10MB, eth(0x0800).append(ipv4(kIcmp, 4, 3)).append(icmp(0, 0))});
  c.push_back({"eth_ipv4_later_frag", DLT_EN10MB, eth(0x0800).append(ipv4(kUdp, 0, 0, 100))});
  c.push_back({"eth_qinq_ipv4_udp", DLT_EN10MB,
               eth(0x88a8)
                   .append(vlan_tag(10, 0x8100))
                   .append(vlan_tag(20, 0x0800))
                   .append(ipv4(kUdp, 8))
                   .append(udp(1, 2))});
  c.push_back(
      {"eth_ipv6_tcp", DLT_EN10MB, eth(0x86dd).append(ipv6(kTcp, 20)).append(tcp(1, 2, 2))});
  c.push_back({"eth_ipv6_hbh_icmpv6", DLT_EN10MB,
               eth(0x86dd).append(ipv6(0, 12)).append(ext(kIcmpv6, 0, 8)).append(icmp(143, 0))});
  c.push_back(
      {"eth_ipv6_chain_tcp", DLT_EN10MB,
       eth(0x86dd).append(ipv6(0, chain.size() + 20)).append(chain).append(tcp(1, 2, 0x11))});
  c.push_back(
      {"sll_ipv4_udp", DLT_LINUX_SLL,
       Bytes().u16(0).u16(1).u16(6).zeros(8).u16(0x0800).append(ipv4(kUdp, 8)).append(udp(1, 2))});
  c.push_back({"sll2_ipv6_udp", DLT_LINUX_SLL2,
               Bytes().u16(0x86dd).zeros(18).append(ipv6(kUdp, 8)).append(udp(1, 2))});
  c.push_back({"raw_ipv4_tcp", DLT_RAW, ipv4(kTcp, 20).append(tcp(1, 2, 4))});
  c.push_back({"ipv6_icmpv6", DLT_IPV6, ipv6(kIcmpv6, 4).append(icmp(128, 0))});
  c.push_back({"loop_ipv4_udp", DLT_LOOP, Bytes().u32(2).append(ipv4(kUdp, 8)).append(udp(1, 2))});
  c.push_back({"null_ipv6_udp", DLT_NULL,
               Bytes().raw({30, 0, 0, 0}).append(ipv6(kUdp, 8)).append(udp(1, 2))});
  return c;
}

TEST(PacketDecoder, EveryTruncationIsRejected) {
  for (const Case& c : minimal_frames()) {
    DecodedPacket p;
    ASSERT_EQ(decode(c.dlt, c.frame, p), DecodeResult::kOk) << c.name;
    for (std::size_t len = 0; len < c.frame.size(); ++len) {
      // An exactly sized heap copy, so AddressSanitizer catches any read past the end.
      std::vector<std::byte> cut(c.frame.vec().begin(), c.frame.vec().begin() + len);
      const DecodeResult r = decode_packet(c.dlt, cut, p);
      EXPECT_NE(r, DecodeResult::kOk) << c.name << " cut at " << len;
      EXPECT_NE(r, DecodeResult::kNotIp) << c.name << " cut at " << len;
    }
  }
}

TEST(PacketDecoder, RandomCorruptionNeverCrashes) {
  std::mt19937 rng(12345);
  const auto cases = minimal_frames();
  int ok = 0;
  for (int i = 0; i < 50000; ++i) {
    const Case& c = cases[rng() % cases.size()];
    std::vector<std::byte> f = c.frame.vec();
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) f[rng() % f.size()] = std::byte(rng() & 0xff);
    f.resize(rng() % (f.size() + 1));
    DecodedPacket p;
    const DecodeResult r = decode_packet(c.dlt, f, p);
    ASSERT_LT(static_cast<std::size_t>(r), kDecodeResultCount);
    if (r == DecodeResult::kOk) {
      ++ok;
      EXPECT_LE(p.l3_offset, f.size());
      EXPECT_LE(p.l4_offset, f.size());
      EXPECT_LE(p.payload_offset, f.size());
    }
  }
  EXPECT_GT(ok, 0);
}

// RFC 3032: two labels, the second with S set, then IPv4; and IPv6 under explicit null.
TEST(PacketDecoder, MplsLabelStack) {
  DecodedPacket p;
  Bytes f = eth(0x8847).u32(100 << 12 | 0x40).u32(200 << 12 | 0x100 | 0x40);
  f.append(ipv4(kUdp, 8)).append(udp(1000, 53));
  ASSERT_EQ(decode(DLT_EN10MB, f, p), DecodeResult::kOk);
  EXPECT_EQ(p.mpls_labels, 2);
  EXPECT_EQ(p.dst_port, 53);
  EXPECT_EQ(p.l3_offset, 22u);

  Bytes g = eth(0x8847).u32(2 << 12 | 0x100 | 0x40);
  g.append(ipv6(kTcp, 20)).append(tcp(1, 2, 0x02));
  ASSERT_EQ(decode(DLT_EN10MB, g, p), DecodeResult::kOk);
  EXPECT_EQ(p.ip_version, 6);

  // Pseudowire control word, then the customer's Ethernet frame (RFC 4448).
  Bytes eo = eth(0x8847).u32(300 << 12 | 0x100 | 0x40).u32(0);
  eo.append(eth(0x0800)).append(ipv4(kTcp, 20)).append(tcp(5, 6, 0x10));
  ASSERT_EQ(decode(DLT_EN10MB, eo, p), DecodeResult::kOk);
  EXPECT_EQ(p.src_port, 5);

  Bytes odd = eth(0x8847).u32(300 << 12 | 0x100 | 0x40).u8(0x90).zeros(20);
  EXPECT_EQ(decode(DLT_EN10MB, odd, p), DecodeResult::kNotIp);

  Bytes cut = eth(0x8847).u16(1);
  EXPECT_EQ(decode(DLT_EN10MB, cut, p), DecodeResult::kTruncatedMpls);
  Bytes deep = eth(0x8847);
  for (int i = 0; i <= kMaxMplsLabels; ++i) deep.u32(7 << 12);
  deep.append(ipv4(kUdp, 8)).append(udp(1, 2));
  EXPECT_EQ(decode(DLT_EN10MB, deep, p), DecodeResult::kTooManyMplsLabels);
}

// Linux hands GSO/TSO super-frames to the capture before segmentation; above 64 KiB the
// IPv4 total length reads 0. The captured length is then the datagram's length.
TEST(PacketDecoder, GsoSuperFrameCountsCapturedLength) {
  Bytes f = eth(0x0800).append(ipv4(kTcp, 20)).append(tcp(1, 2, 0x10));
  f.zeros(70000);
  std::vector<std::byte> raw = f.vec();
  raw[16] = raw[17] = std::byte{0};  // IPv4 total length 0
  DecodedPacket p;
  ASSERT_EQ(decode_packet(DLT_EN10MB, raw, p), DecodeResult::kOk);
  EXPECT_TRUE(p.ip_length_from_capture);
  EXPECT_EQ(p.ip_bytes, 20u + 20u + 70000u);

  Bytes g = eth(0x86dd).append(ipv6(kTcp, 0)).append(tcp(1, 2, 0x10));
  g.zeros(100);
  ASSERT_EQ(decode(DLT_EN10MB, g, p), DecodeResult::kOk);
  EXPECT_TRUE(p.ip_length_from_capture);
  EXPECT_EQ(p.ip_bytes, 40u + 20u + 100u);
}

TEST(PacketDecoder, ArpBehindVlan) {
  Bytes f = eth(0x8100).append(vlan_tag(42, 0x0806));
  f.u16(1).u16(0x0800).u8(6).u8(4).u16(2);
  f.raw({0x02, 0, 0, 0, 0, 0x0a}).raw({10, 0, 0, 10});
  f.raw({0x02, 0, 0, 0, 0, 0x14}).raw({10, 0, 0, 20});
  DecodedPacket p;
  ASSERT_EQ(decode(DLT_EN10MB, f, p), DecodeResult::kNotIp);
  EXPECT_EQ(p.vlan, 42);
  EXPECT_EQ(p.l3_offset, 18u);
  ArpPacket a;
  ASSERT_TRUE(decode_arp(f.span(), p, a));
  EXPECT_EQ(a.op, 2);
  EXPECT_EQ(a.sender_ip, (std::array<std::uint8_t, 4>{10, 0, 0, 10}));
  EXPECT_EQ(a.target_mac, (std::array<std::uint8_t, 6>{2, 0, 0, 0, 0, 0x14}));
  // Every truncation is refused.
  for (std::size_t n = 0; n < f.size(); ++n) EXPECT_FALSE(decode_arp(f.span().first(n), p, a)) << n;
}

}  // namespace
}  // namespace citywatch::agent
