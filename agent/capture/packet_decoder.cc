#include "agent/capture/packet_decoder.h"

#include <pcap/dlt.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace citywatch::agent {
namespace {

// Ethertypes (IEEE 802 numbers registry).
constexpr std::uint16_t kEthIpv4 = 0x0800;
constexpr std::uint16_t kEthIpv6 = 0x86dd;
constexpr std::uint16_t kEthVlan = 0x8100;        // IEEE 802.1Q
constexpr std::uint16_t kEthQinQ = 0x88a8;        // IEEE 802.1ad service tag
constexpr std::uint16_t kEthQinQLegacy = 0x9100;  // pre-802.1ad vendor QinQ
constexpr std::uint16_t kEthMinType = 0x0600;     // below this the field is an 802.3 length
constexpr std::uint16_t kEthArp = 0x0806;
constexpr std::uint16_t kEthMpls = 0x8847;       // RFC 3032 section 5
constexpr std::uint16_t kEthMplsMulti = 0x8848;  // RFC 5332 section 4

constexpr std::size_t kEthHeader = 14;
constexpr std::size_t kSllHeader = 16;  // https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html
constexpr std::size_t kSll2Header =
    20;  // https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html
constexpr std::size_t kNullHeader = 4;
constexpr std::size_t kIpv4MinHeader = 20;  // RFC 791 section 3.1
constexpr std::size_t kIpv6Header = 40;     // RFC 8200 section 3

// IANA protocol numbers.
constexpr std::uint8_t kProtoHopByHop = 0;
constexpr std::uint8_t kProtoIcmp = 1;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
constexpr std::uint8_t kProtoRouting = 43;
constexpr std::uint8_t kProtoFragment = 44;
constexpr std::uint8_t kProtoAh = 51;
constexpr std::uint8_t kProtoIcmpv6 = 58;
constexpr std::uint8_t kProtoDestOpts = 60;

// BSD address families seen in DLT_NULL/DLT_LOOP headers: AF_INET is 2 everywhere; AF_INET6
// is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
constexpr std::uint32_t kAfInet = 2;

class Frame {
 public:
  explicit Frame(std::span<const std::byte> f)
      : p_(reinterpret_cast<const std::uint8_t*>(f.data())), n_(f.size()) {}
  std::size_t size() const { return n_; }
  const std::uint8_t* at(std::size_t off) const { return p_ + off; }
  // Callers check off + width <= size() first.
  std::uint8_t u8(std::size_t off) const { return p_[off]; }
  std::uint16_t u16(std::size_t off) const {
    return static_cast<std::uint16_t>(p_[off] << 8 | p_[off + 1]);
  }
  std::uint32_t u32(std::size_t off) const {
    return std::uint32_t{p_[off]} << 24 | std::uint32_t{p_[off + 1]} << 16 |
           std::uint32_t{p_[off + 2]} << 8 | p_[off + 3];
  }
  bool has(std::size_t off, std::size_t len) const { return off <= n_ && len <= n_ - off; }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

// Reads the transport header in [l4, end). A fragment whose transport header is cut short
// still meters (without ports), as softflowd does.
DecodeResult decode_transport(const Frame& f, std::size_t l4, std::size_t end, DecodedPacket& out) {
  out.l4_offset = static_cast<std::uint32_t>(l4);
  const std::size_t avail = end > l4 ? end - l4 : 0;
  const DecodeResult short_header =
      out.is_fragment ? DecodeResult::kOk : DecodeResult::kTruncatedTransport;
  switch (out.protocol) {
    case kProtoTcp: {  // RFC 9293 section 3.1
      if (avail < 20) return short_header;
      out.src_port = f.u16(l4);
      out.dst_port = f.u16(l4 + 2);
      out.tcp_flags = f.u8(l4 + 13);
      const std::size_t doff = std::size_t{f.u8(l4 + 12)} >> 4 << 2;
      if (doff >= 20 && doff <= avail) out.payload_offset = static_cast<std::uint32_t>(l4 + doff);
      return DecodeResult::kOk;
    }
    case kProtoUdp:  // RFC 768
      if (avail < 8) return short_header;
      out.src_port = f.u16(l4);
      out.dst_port = f.u16(l4 + 2);
      out.payload_offset = static_cast<std::uint32_t>(l4 + 8);
      return DecodeResult::kOk;
    case kProtoIcmp:    // RFC 792
    case kProtoIcmpv6:  // RFC 4443 section 2.1
      if (avail < 4) return short_header;
      out.src_port = 0;
      out.dst_port = static_cast<std::uint16_t>(f.u8(l4) << 8 | f.u8(l4 + 1));
      out.payload_offset = static_cast<std::uint32_t>(l4 + 4);
      return DecodeResult::kOk;
    default:
      return DecodeResult::kOk;  // metered by address and protocol only
  }
}

DecodeResult decode_ipv4(const Frame& f, std::size_t off, DecodedPacket& out) {
  if (!f.has(off, 1)) return DecodeResult::kTruncatedIp;
  if (f.u8(off) >> 4 != 4) return DecodeResult::kBadIpVersion;
  if (!f.has(off, kIpv4MinHeader)) return DecodeResult::kTruncatedIp;
  const std::size_t ihl = std::size_t{f.u8(off) & 0x0fu} * 4;
  if (ihl < kIpv4MinHeader) return DecodeResult::kBadIpHeaderLength;
  if (!f.has(off, ihl)) return DecodeResult::kTruncatedIp;
  std::size_t total = f.u16(off + 2);
  if (total == 0) {
    // A GSO/TSO super-frame (Linux captures before segmentation) may carry 0 when it is
    // larger than 64 KiB: what was captured is the datagram.
    total = f.size() - off;
    out.ip_length_from_capture = true;
  }
  if (total < ihl) return DecodeResult::kBadIpTotalLength;
  const std::uint16_t frag = f.u16(off + 6);
  out.ip_version = 4;
  out.l3_offset = static_cast<std::uint32_t>(off);
  out.ip_bytes = static_cast<std::uint32_t>(total);
  out.ttl = f.u8(off + 8);
  out.protocol = f.u8(off + 9);
  out.src = IpAddr::v4(f.at(off + 12));
  out.dst = IpAddr::v4(f.at(off + 16));
  out.fragment_offset = frag & 0x1fff;
  out.is_fragment = (frag & 0x3fff) != 0;  // MF set or offset != 0
  // Stop at the IP total length: Ethernet pads short frames and the padding is not payload.
  const std::size_t end = off + std::min<std::size_t>(total, f.size() - off);
  if (out.fragment_offset != 0) return DecodeResult::kOk;  // later fragments carry no ports
  return decode_transport(f, off + ihl, end, out);
}

DecodeResult decode_ipv6(const Frame& f, std::size_t off, DecodedPacket& out) {
  if (!f.has(off, 1)) return DecodeResult::kTruncatedIp;
  if (f.u8(off) >> 4 != 6) return DecodeResult::kBadIpVersion;
  if (!f.has(off, kIpv6Header)) return DecodeResult::kTruncatedIp;
  const std::uint16_t plen = f.u16(off + 4);
  out.ip_version = 6;
  out.l3_offset = static_cast<std::uint32_t>(off);
  out.ip_bytes = std::uint32_t{plen} + kIpv6Header;
  if (plen == 0) {  // jumbogram or GSO super-frame: the capture is the datagram
    out.ip_bytes = static_cast<std::uint32_t>(f.size() - off);
    out.ip_length_from_capture = true;
  }
  out.ttl = f.u8(off + 7);
  out.src = IpAddr::v6(f.at(off + 8));
  out.dst = IpAddr::v6(f.at(off + 24));
  std::uint8_t next = f.u8(off + 6);
  // A zero payload length means a jumbogram (RFC 2675): bounded by the capture only.
  const std::size_t end =
      plen == 0 ? f.size() : off + std::min<std::size_t>(kIpv6Header + plen, f.size() - off);
  std::size_t cur = off + kIpv6Header;
  // RFC 8200 section 4: walk the extension headers to the upper-layer protocol.
  for (int n = 0;; ++n) {
    if (next != kProtoHopByHop && next != kProtoRouting && next != kProtoDestOpts &&
        next != kProtoAh && next != kProtoFragment) {
      break;
    }
    if (n >= kMaxIpv6ExtHeaders) return DecodeResult::kTooManyIpv6ExtHeaders;
    if (cur > end || end - cur < 8) return DecodeResult::kTruncatedIpv6ExtHeader;
    const std::uint8_t following = f.u8(cur);
    if (next == kProtoFragment) {  // RFC 8200 section 4.5: always 8 bytes
      const std::uint16_t fo = f.u16(cur + 2);
      out.fragment_offset = fo >> 3;
      out.is_fragment = (fo & 0xfff9) != 0;  // offset or M set; else an atomic fragment (RFC 6946)
      next = following;
      cur += 8;
      if (out.fragment_offset != 0) {
        out.protocol = next;
        out.l4_offset = static_cast<std::uint32_t>(cur);
        return DecodeResult::kOk;  // later fragments carry no ports
      }
      continue;
    }
    // AH (RFC 4302 section 2.2) counts 4-byte words minus 2; the others 8-byte words minus 1.
    const std::size_t len = next == kProtoAh ? (std::size_t{f.u8(cur + 1)} + 2) * 4
                                             : (std::size_t{f.u8(cur + 1)} + 1) * 8;
    if (end - cur < len) return DecodeResult::kTruncatedIpv6ExtHeader;
    next = following;
    cur += len;
  }
  out.protocol = next;
  return decode_transport(f, cur, end, out);
}

DecodeResult decode_ip_by_version(const Frame& f, std::size_t off, DecodedPacket& out) {
  if (!f.has(off, 1)) return DecodeResult::kTruncatedIp;
  switch (f.u8(off) >> 4) {
    case 4:
      out.ethertype = kEthIpv4;
      return decode_ipv4(f, off, out);
    case 6:
      out.ethertype = kEthIpv6;
      return decode_ipv6(f, off, out);
    default:
      return DecodeResult::kBadIpVersion;
  }
}

DecodeResult decode_ethertype(const Frame& f, std::size_t off, std::uint16_t type,
                              DecodedPacket& out);

// RFC 3032 section 2.1: 4-byte label stack entries down to the one with S set. The payload
// type is not on the wire; the first nibble tells IPv4 (4), IPv6 (6) or a pseudowire
// control word (0, RFC 4385 section 3) ahead of an Ethernet frame (RFC 4448).
DecodeResult decode_mpls(const Frame& f, std::size_t off, DecodedPacket& out) {
  for (int n = 0;; ++n) {
    if (n >= kMaxMplsLabels) return DecodeResult::kTooManyMplsLabels;
    if (!f.has(off, 4)) return DecodeResult::kTruncatedMpls;
    const bool bottom = (f.u8(off + 2) & 0x01) != 0;
    off += 4;
    ++out.mpls_labels;
    if (bottom) break;
  }
  if (!f.has(off, 1)) return DecodeResult::kTruncatedMpls;
  switch (f.u8(off) >> 4) {
    case 4:
      out.ethertype = kEthIpv4;
      return decode_ipv4(f, off, out);
    case 6:
      out.ethertype = kEthIpv6;
      return decode_ipv6(f, off, out);
    case 0: {  // control word, then the customer's Ethernet frame
      if (!f.has(off, 4 + kEthHeader)) return DecodeResult::kTruncatedMpls;
      off += 4;
      return decode_ethertype(f, off + kEthHeader, f.u16(off + 12), out);
    }
    default:
      out.ethertype = 0;
      out.l3_offset = static_cast<std::uint32_t>(off);
      return DecodeResult::kNotIp;
  }
}

// Follows stacked VLAN tags from `off` (where `type` was read from just before) to IP.
DecodeResult decode_ethertype(const Frame& f, std::size_t off, std::uint16_t type,
                              DecodedPacket& out) {
  for (int tags = 0; type == kEthVlan || type == kEthQinQ || type == kEthQinQLegacy; ++tags) {
    if (tags >= kMaxVlanTags) return DecodeResult::kTooManyVlanTags;
    if (!f.has(off, 4)) return DecodeResult::kTruncatedVlan;
    if (tags == 0) out.vlan = f.u16(off) & 0x0fff;  // IEEE 802.1Q TCI: low 12 bits
    type = f.u16(off + 2);
    off += 4;
  }
  out.ethertype = type;
  switch (type) {
    case kEthIpv4:
      return decode_ipv4(f, off, out);
    case kEthIpv6:
      return decode_ipv6(f, off, out);
    case kEthMpls:
    case kEthMplsMulti:
      if (out.mpls_labels != 0) return DecodeResult::kTooManyMplsLabels;  // MPLS in EoMPLS
      return decode_mpls(f, off, out);
    default:
      out.l3_offset = static_cast<std::uint32_t>(off);
      return DecodeResult::kNotIp;
  }
}

DecodeResult decode_ethernet(const Frame& f, DecodedPacket& out) {
  if (!f.has(0, kEthHeader)) return DecodeResult::kTruncatedEthernet;
  // memcpy of a constant size is a few moves; std::copy_n of 6 bytes was a call to memmove.
  std::memcpy(out.dst_mac.data(), f.at(0), 6);
  std::memcpy(out.src_mac.data(), f.at(6), 6);
  const std::uint16_t type = f.u16(12);
  if (type < kEthMinType) {  // 802.3 length + LLC (STP, CDP, ...)
    out.ethertype = 0;
    return DecodeResult::kNotIp;
  }
  return decode_ethertype(f, kEthHeader, type, out);
}

DecodeResult decode_sll(const Frame& f, DecodedPacket& out) {
  if (!f.has(0, kSllHeader)) return DecodeResult::kTruncatedLinkHeader;
  if (f.u16(4) == 6) std::memcpy(out.src_mac.data(), f.at(6), 6);
  return decode_ethertype(f, kSllHeader, f.u16(14), out);
}

DecodeResult decode_sll2(const Frame& f, DecodedPacket& out) {
  if (!f.has(0, kSll2Header)) return DecodeResult::kTruncatedLinkHeader;
  if (f.u8(11) == 6) std::memcpy(out.src_mac.data(), f.at(12), 6);
  return decode_ethertype(f, kSll2Header, f.u16(0), out);
}

DecodeResult decode_null(const Frame& f, DecodedPacket& out) {
  if (!f.has(0, kNullHeader)) return DecodeResult::kTruncatedLinkHeader;
  // DLT_NULL stores the family in the capturing host's byte order, DLT_LOOP in network
  // order; families are small numbers, so a value above 0xffff is the other byte order.
  std::uint32_t family = f.u32(0);
  if (family > 0xffff) family = __builtin_bswap32(family);
  if (family == kAfInet) {
    out.ethertype = kEthIpv4;
    return decode_ipv4(f, kNullHeader, out);
  }
  if (family == 10 || family == 24 || family == 28 || family == 30) {
    out.ethertype = kEthIpv6;
    return decode_ipv6(f, kNullHeader, out);
  }
  return DecodeResult::kNotIp;
}

}  // namespace

const char* to_string(DecodeResult r) {
  switch (r) {
    case DecodeResult::kOk:
      return "ok";
    case DecodeResult::kNotIp:
      return "not_ip";
    case DecodeResult::kUnsupportedLinktype:
      return "unsupported_linktype";
    case DecodeResult::kTruncatedLinkHeader:
      return "truncated_link_header";
    case DecodeResult::kTruncatedEthernet:
      return "truncated_ethernet";
    case DecodeResult::kTruncatedVlan:
      return "truncated_vlan";
    case DecodeResult::kTooManyVlanTags:
      return "too_many_vlan_tags";
    case DecodeResult::kTruncatedIp:
      return "truncated_ip";
    case DecodeResult::kBadIpVersion:
      return "bad_ip_version";
    case DecodeResult::kBadIpHeaderLength:
      return "bad_ip_header_length";
    case DecodeResult::kBadIpTotalLength:
      return "bad_ip_total_length";
    case DecodeResult::kTruncatedIpv6ExtHeader:
      return "truncated_ipv6_ext_header";
    case DecodeResult::kTooManyIpv6ExtHeaders:
      return "too_many_ipv6_ext_headers";
    case DecodeResult::kTruncatedTransport:
      return "truncated_transport";
    case DecodeResult::kTruncatedMpls:
      return "truncated_mpls";
    case DecodeResult::kTooManyMplsLabels:
      return "too_many_mpls_labels";
    case DecodeResult::kCount:
      break;
  }
  return "unknown";
}

DecodeResult decode_packet(int linktype, std::span<const std::byte> frame, DecodedPacket& out) {
  // All-zero bytes are DecodedPacket{}. Cleared 16 bytes a store: `out = DecodedPacket{}` (or
  // one memset) compiles to `rep stosq` here, whose start-up cost was 59 % of this function's
  // samples under perf annotate on the bench file.
  static_assert(std::is_trivially_copyable_v<DecodedPacket>);
  auto* bytes = reinterpret_cast<unsigned char*>(&out);
  for (std::size_t i = 0; i + 16 <= sizeof out; i += 16) std::memset(bytes + i, 0, 16);
  std::memset(bytes + sizeof out / 16 * 16, 0, sizeof out % 16);
  const Frame f(frame);
  switch (linktype) {
    case DLT_EN10MB:
      return decode_ethernet(f, out);
    case DLT_LINUX_SLL:
      return decode_sll(f, out);
    case DLT_LINUX_SLL2:
      return decode_sll2(f, out);
    case DLT_RAW:
      return decode_ip_by_version(f, 0, out);
    case DLT_IPV4:
      out.ethertype = kEthIpv4;
      return decode_ipv4(f, 0, out);
    case DLT_IPV6:
      out.ethertype = kEthIpv6;
      return decode_ipv6(f, 0, out);
    case DLT_NULL:
    case DLT_LOOP:
      return decode_null(f, out);
    default:
      return DecodeResult::kUnsupportedLinktype;
  }
}

bool decode_arp(std::span<const std::byte> frame, const DecodedPacket& p, ArpPacket& out) {
  // RFC 826: htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4, then op and the addresses.
  constexpr std::size_t kArpLength = 28;
  const Frame f(frame);
  const std::size_t off = p.l3_offset;
  if (p.ethertype != kEthArp || off == 0 || !f.has(off, kArpLength)) return false;
  if (f.u16(off) != 1 || f.u16(off + 2) != kEthIpv4 || f.u8(off + 4) != 6 || f.u8(off + 5) != 4)
    return false;
  out.op = f.u16(off + 6);
  std::copy_n(f.at(off + 8), 6, out.sender_mac.begin());
  std::copy_n(f.at(off + 14), 4, out.sender_ip.begin());
  std::copy_n(f.at(off + 18), 6, out.target_mac.begin());
  std::copy_n(f.at(off + 24), 4, out.target_ip.begin());
  return true;
}

}  // namespace citywatch::agent
