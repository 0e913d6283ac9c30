// Packet decoder: turns one captured frame (link layer to transport header) into the fields
// the flow meter and the packet-event extractors need.
//
// decode_packet() is a pure function on the data path: it reads only the span it is given,
// checks every bound before every read, never allocates and never throws, fills a
// caller-owned DecodedPacket and returns a DecodeResult. Anything other than kOk means the
// frame is not metered; callers count the result by reason (DecodeCounters) and drop it.
// kNotIp is not an error (ARP, LLDP, ...), just traffic the meter does not see.
//
// Thread-safety: stateless; safe to call from any thread. DecodeCounters is a plain value
// owned by one thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/record.h"

namespace citywatch::agent {

enum class DecodeResult : std::uint8_t {
  kOk = 0,
  kNotIp,                   // a valid frame carrying something other than IPv4/IPv6
  kUnsupportedLinktype,     // a DLT this decoder does not know
  kTruncatedLinkHeader,     // shorter than the SLL/SLL2/NULL/LOOP header
  kTruncatedEthernet,       // shorter than the 14-byte Ethernet header
  kTruncatedVlan,           // an 802.1Q/802.1ad tag cut short
  kTooManyVlanTags,         // more stacked tags than kMaxVlanTags
  kTruncatedIp,             // shorter than the fixed IPv4 (20) / IPv6 (40) header
  kBadIpVersion,            // version nibble does not match the link layer's ethertype
  kBadIpHeaderLength,       // IPv4 IHL < 5 (options cut short by the capture: kTruncatedIp)
  kBadIpTotalLength,        // IPv4 total length smaller than its own header
  kTruncatedIpv6ExtHeader,  // an IPv6 extension header cut short
  kTooManyIpv6ExtHeaders,   // extension chain longer than kMaxIpv6ExtHeaders
  kTruncatedTransport,      // TCP/UDP/ICMP header cut short (non-fragment or first fragment)
  kTruncatedMpls,           // an MPLS label stack entry or pseudowire control word cut short
  kTooManyMplsLabels,       // more stacked labels than kMaxMplsLabels
  kCount,                   // number of codes; not a result
};

inline constexpr std::size_t kDecodeResultCount = static_cast<std::size_t>(DecodeResult::kCount);
inline constexpr int kMaxVlanTags = 4;
inline constexpr int kMaxIpv6ExtHeaders = 8;
inline constexpr int kMaxMplsLabels = 8;

// Stable snake_case name for metrics labels and logs ("truncated_ip", ...).
const char* to_string(DecodeResult r);

// Everything decode_packet() learns about one frame. Fixed size, no heap.
struct DecodedPacket {
  std::array<std::uint8_t, 6> src_mac{};  // zero when the link layer has none (raw IP, NULL)
  std::array<std::uint8_t, 6> dst_mac{};
  std::uint16_t vlan = 0;       // outermost 802.1Q/802.1ad VLAN id; 0 when untagged
  std::uint16_t ethertype = 0;  // innermost ethertype (0x0800 / 0x86dd for IP)
  IpAddr src;
  IpAddr dst;
  std::uint8_t protocol = 0;  // IANA protocol after the IPv6 extension chain
  std::uint8_t tcp_flags = 0;
  std::uint16_t src_port = 0;         // TCP/UDP ports; ICMP/ICMPv6: 0
  std::uint16_t dst_port = 0;         // ICMP/ICMPv6: type << 8 | code, as NetFlow exporters do
  std::uint32_t ip_bytes = 0;         // IPv4 total length / IPv6 payload length + 40 (what NetFlow
                                      // counts), even when snaplen cut the capture short
  bool is_fragment = false;           // IPv4 MF or offset != 0; IPv6 fragment header present
  std::uint16_t fragment_offset = 0;  // in 8-byte units; only the first (0) carries ports
  std::uint8_t ip_version = 0;        // 4 or 6
  std::uint8_t ttl = 0;               // IPv4 TTL / IPv6 hop limit
  // Offsets into the frame, for extractors that read further (DNS, ARP): start of the IP
  // header, of the transport header, and of the transport payload (0 when not reached).
  // For non-IP frames (kNotIp) l3_offset is where the innermost ethertype's payload starts
  // (ARP is read from there).
  std::uint32_t l3_offset = 0;
  std::uint32_t l4_offset = 0;
  std::uint32_t payload_offset = 0;
  std::uint8_t mpls_labels = 0;  // MPLS label stack entries crossed on the way to IP
  // The IP header's length field was 0 (a GSO/TSO super-frame captured on a Linux host
  // before segmentation, or an IPv6 payload without a jumbo option): ip_bytes is then the
  // captured length from the IP header on.
  bool ip_length_from_capture = false;
};

// The fields of an Ethernet/IPv4 ARP packet (RFC 826), read from a frame decode_packet()
// returned kNotIp for with ethertype 0x0806.
struct ArpPacket {
  std::uint16_t op = 0;  // 1 request, 2 reply
  std::array<std::uint8_t, 6> sender_mac{};
  std::array<std::uint8_t, 4> sender_ip{};
  std::array<std::uint8_t, 6> target_mac{};
  std::array<std::uint8_t, 4> target_ip{};
};

// Reads the ARP packet at p.l3_offset; false when it is not Ethernet/IPv4 ARP or is cut short.
bool decode_arp(std::span<const std::byte> frame, const DecodedPacket& p, ArpPacket& out);

// Decodes `frame` captured with libpcap link type `linktype` (DLT_EN10MB, DLT_LINUX_SLL,
// DLT_LINUX_SLL2, DLT_RAW, DLT_IPV4, DLT_IPV6, DLT_NULL, DLT_LOOP). `out` is reset first.
DecodeResult decode_packet(int linktype, std::span<const std::byte> frame, DecodedPacket& out);

// Per-reason drop counters; the hot path only increments.
struct DecodeCounters {
  std::array<std::uint64_t, kDecodeResultCount> by_result{};
  void count(DecodeResult r) { ++by_result[static_cast<std::size_t>(r)]; }
  std::uint64_t operator[](DecodeResult r) const { return by_result[static_cast<std::size_t>(r)]; }
};

}  // namespace citywatch::agent
