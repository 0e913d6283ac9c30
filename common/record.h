// The normalised record model: the only thing that crosses the wire from agent to collector.
//
// Every record carries its event time, the agent that produced it and the agent's segment,
// so a capture replayed offline yields the same metrics and alerts as the same traffic seen
// live. All types here are trivially copyable and fixed size: a Record never touches the
// heap, so the data path can fill, copy and batch them without allocating.
//
// Thread-safety: plain values; no shared state.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <variant>

namespace citywatch {

// A short name (agent id, segment, ifname) stored inline. Longer input is truncated, and the
// truncation is the caller's to report: config validation bounds these names up front.
template <std::size_t N>
class InlineString {
 public:
  static constexpr std::size_t kCapacity = N;
  constexpr InlineString() = default;
  explicit InlineString(std::string_view s) { assign(s); }
  void assign(std::string_view s) {
    len_ = static_cast<std::uint8_t>(s.size() < N ? s.size() : N);
    if (len_) std::memcpy(data_.data(), s.data(), len_);  // s.data() may be null when empty
  }
  std::string_view view() const { return {data_.data(), len_}; }
  std::size_t size() const { return len_; }
  bool empty() const { return len_ == 0; }
  friend bool operator==(const InlineString& a, const InlineString& b) {
    return a.view() == b.view();
  }

 private:
  static_assert(N < 256, "length is stored in one byte");
  std::array<char, N> data_{};
  std::uint8_t len_ = 0;
};

using ShortName = InlineString<47>;

// An IPv4 or IPv6 address. IPv4 is held in the first four bytes.
struct IpAddr {
  enum class Family : std::uint8_t { kNone = 0, kV4 = 4, kV6 = 6 };
  std::array<std::uint8_t, 16> bytes{};
  Family family = Family::kNone;

  static IpAddr v4(const std::uint8_t* p) {
    IpAddr a;
    if constexpr (std::endian::native == std::endian::little) {
      // The 16 bytes in one store: a key built from them soon after loads them whole, and a
      // load spanning a zeroing store and a 4-byte store cannot be forwarded (it waits for
      // both to reach the cache: a stall on every packet the meter hashes).
      using V = std::uint32_t __attribute__((vector_size(16)));
      std::uint32_t v;
      std::memcpy(&v, p, 4);
      const V w = {v, 0, 0, 0};
      std::memcpy(a.bytes.data(), &w, 16);
    } else {
      std::memcpy(a.bytes.data(), p, 4);
    }
    a.family = Family::kV4;
    return a;
  }
  static IpAddr v6(const std::uint8_t* p) {
    IpAddr a;
    std::memcpy(a.bytes.data(), p, 16);
    a.family = Family::kV6;
    return a;
  }
  friend bool operator==(const IpAddr& a, const IpAddr& b) {
    return a.family == b.family && a.bytes == b.bytes;
  }
};

// Where a flow record came from: the agent's own packet meter or an exporter's format.
enum class FlowSource : std::uint8_t {
  kPacketMeter = 1,
  kNetflowV5 = 5,
  kNetflowV9 = 9,
  kIpfix = 10,
  kSflow = 20,
};

enum class FlowDirection : std::uint8_t { kUnknown = 0, kIngress = 1, kEgress = 2 };

// One unidirectional flow. Counters are already scaled by sampling_rate (scaled once, by the
// producer); sampling_rate travels with the record so consumers can judge precision.
struct FlowRecord {
  std::int64_t start_ns = 0;  // first packet, ns since the Unix epoch
  std::int64_t end_ns = 0;    // last packet
  IpAddr src;
  IpAddr dst;
  IpAddr exporter;  // unset for kPacketMeter
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;  // from the IP header on, as NetFlow counts them
  std::uint32_t observation_domain = 0;
  std::uint32_t sampling_rate = 1;
  std::uint32_t input_if = 0;
  std::uint32_t output_if = 0;
  std::uint16_t src_port = 0;  // for ICMP: type << 8 | code in dst_port, as NetFlow does
  std::uint16_t dst_port = 0;
  std::uint16_t vlan = 0;
  std::uint8_t protocol = 0;   // IANA protocol number
  std::uint8_t tcp_flags = 0;  // OR of all packets' flags
  FlowDirection direction = FlowDirection::kUnknown;
  FlowSource source = FlowSource::kPacketMeter;
};

// SNMP events carried by InterfaceSample and DeviceStatus records (docs/snmp.md is the
// contract the rules engine and the uptime tracker rely on).
enum class SnmpEvent : std::uint8_t {
  kNone = 0,        // a periodic sample or status: no transition
  kDown = 1,        // DeviceStatus: the device stopped answering (cause says why)
  kUp = 2,          // DeviceStatus: the first answer after kDown (or the first answer ever)
  kReboot = 3,      // DeviceStatus: sysUpTime went backwards; counters restarted
  kOperChange = 4,  // InterfaceSample: ifOperStatus differs from the previous poll
};

// Why a poll failed (DeviceStatus.cause, the `result` label of the poll metrics).
enum class SnmpCause : std::uint8_t {
  kNone = 0,      // the poll succeeded
  kTimeout = 1,   // no answer after every retry
  kAuth = 2,      // SNMPv3 report: unknown user, wrong digest, unsupported level, ...
  kError = 3,     // the device answered with an error-status at max-repetitions 1
  kSend = 4,      // the request could not be sent (socket or encoding error)
  kBadReply = 5,  // the answer was malformed or incomplete (e.g. no sysUpTime)
};
// Per-cause tables are indexed by SnmpCause.
inline constexpr std::size_t kSnmpCauses = static_cast<std::size_t>(SnmpCause::kBadReply) + 1;

using LongName = InlineString<63>;

// Interface counters and state from SNMP or sFlow counter samples. Counters are 64-bit and
// monotonic between discontinuities: a producer reading 32-bit counters extends them across
// wraps; kCountersReset marks a sample whose counters restarted (a reboot, or the first
// sample of an interface) so no consumer computes a delta across it.
struct InterfaceSample {
  static constexpr std::uint8_t kCounters64 = 1;     // from ifXTable HC counters
  static constexpr std::uint8_t kCountersReset = 2;  // discontinuity before this sample
  IpAddr device;
  ShortName target;  // the configured device name (metrics label `device`)
  std::uint32_t if_index = 0;
  std::uint32_t if_type = 0;  // IANAifType
  ShortName if_name;
  LongName if_alias;
  LongName if_descr;
  std::uint64_t in_octets = 0;
  std::uint64_t out_octets = 0;
  std::uint64_t in_packets = 0;  // unicast + multicast + broadcast
  std::uint64_t out_packets = 0;
  std::uint64_t in_multicast = 0;
  std::uint64_t out_multicast = 0;
  std::uint64_t in_broadcast = 0;
  std::uint64_t out_broadcast = 0;
  std::uint64_t in_errors = 0;
  std::uint64_t out_errors = 0;
  std::uint64_t in_discards = 0;
  std::uint64_t out_discards = 0;
  std::uint64_t speed_bps = 0;
  std::uint8_t admin_status = 0;      // IF-MIB ifAdminStatus (1 up, 2 down, 3 testing); 0 unknown
  std::uint8_t oper_status = 0;       // IF-MIB ifOperStatus (1 up, 2 down, ... 7); 0 unknown
  std::uint8_t prev_oper_status = 0;  // with kOperChange: the status before
  std::uint8_t flags = 0;
  SnmpEvent event = SnmpEvent::kNone;

  // The one status representation is IF-MIB's; these read it (unknown is not up).
  bool admin_up() const { return admin_status == 1; }
  bool oper_up() const { return oper_status == 1; }
};

// Reachability and identity of a polled device: one per poll (event kNone), plus one per
// transition (kDown, kUp, kReboot).
struct DeviceStatus {
  IpAddr device;
  ShortName target;             // the configured device name
  ShortName site;               // the configured site label
  ShortName name;               // sysName
  InlineString<127> descr;      // sysDescr
  LongName object_id;           // sysObjectID, dotted
  std::uint64_t uptime_cs = 0;  // sysUpTime, centiseconds
  std::uint32_t poll_duration_us = 0;
  std::uint16_t interfaces = 0;  // rows reported by the last successful poll
  std::uint16_t consecutive_failures = 0;
  std::uint8_t reachable = 0;
  SnmpCause cause = SnmpCause::kNone;  // of this poll (kDown: of the failure that took it down)
  SnmpEvent event = SnmpEvent::kNone;
};

enum class SnmpTrapKind : std::uint8_t {
  kGeneric = 0,  // any other notification: see trap_oid
  kColdStart = 1,
  kWarmStart = 2,
  kLinkDown = 3,
  kLinkUp = 4,
  kAuthenticationFailure = 5,
};

// One variable binding of a notification, its value rendered as text (numbers in decimal,
// OIDs dotted, printable strings as is, other octets in hex), truncated to 31 bytes.
struct SnmpVarbind {
  std::array<std::uint32_t, 16> oid{};
  std::uint8_t oid_len = 0;
  std::uint8_t type = 0;  // ASN.1 tag (RFC 3416 section 3): 2 integer, 4 octets, 6 oid, 0x41 ...
  InlineString<31> value;
};

// An SNMP notification (trap or inform, v1/v2c/v3). The well-known fields are pulled out;
// the remaining varbinds are kept, up to kMaxVarbinds (varbind_count says how many there
// were).
struct SnmpTrap {
  static constexpr std::size_t kMaxVarbinds = 5;
  IpAddr device;     // the sender
  ShortName target;  // the configured device with the sender's address, if any
  std::array<std::uint32_t, 16> trap_oid{};
  std::uint8_t trap_oid_len = 0;
  std::uint32_t if_index = 0;  // linkDown/linkUp: ifIndex varbind
  std::uint64_t uptime_cs = 0;
  SnmpTrapKind kind = SnmpTrapKind::kGeneric;
  std::uint8_t version = 0;  // 1 (v1), 2 (v2c) or 3
  std::uint8_t inform = 0;
  std::uint8_t admin_status = 0;
  std::uint8_t oper_status = 0;
  std::uint8_t varbind_count = 0;
  std::uint8_t varbinds_len = 0;
  std::array<SnmpVarbind, kMaxVarbinds> varbinds{};
};

// Packet-level observations for the rules engine.
enum class PacketEventKind : std::uint8_t {
  kTcpSyn = 1,     // SYN without ACK: a connection attempt
  kTcpSynAck = 2,  // the answer
  kTcpRst = 3,
  kDnsQuery = 4,
  kDnsResponse = 5,
  kArpBinding = 6,
  kIcmpUnreachable = 7,
  kNewMac = 8,
  kTcpProbeFailed = 9,  // a connection attempt refused (RST) or unanswered: a scan's probe
  kArpReplyFlood = 10,  // one MAC sent more ARP replies in a second than arp_reply_flood
};

// PacketEvent::flags bits.
namespace packet_event_flags {
inline constexpr std::uint8_t kArpNew = 0x01;         // first binding seen for this IP
inline constexpr std::uint8_t kArpChanged = 0x02;     // the IP moved to another MAC; see prev_mac
inline constexpr std::uint8_t kArpGratuitous = 0x04;  // sender announces its own address
inline constexpr std::uint8_t kArpReply = 0x08;       // ARP op 2 (else a request)
inline constexpr std::uint8_t kTcpRejected = 0x10;    // tcp_probe_failed: refused by a RST
inline constexpr std::uint8_t kTcpHalfOpen = 0x20;    // tcp_probe_failed: accepted, then reset
}  // namespace packet_event_flags

// What each kind fills (docs/packet-capture.md has the full table):
//   TCP SYN / SYN-ACK / RST: src, dst, ports, protocol 6, vlan, mac = sender's MAC.
//   DNS query / response: src, dst, ports, protocol, name, dns_qtype, dns_rcode.
//   ARP binding: src = the sender's IP, mac = its MAC, flags, prev_mac when changed.
//   ICMP unreachable: src = who reports, dst = whom; protocol and ports of the packet it
//     quotes; icmp_code.
//   New MAC: mac, vlan, src when the frame was IP.
//   TCP probe failed: as its SYN (src = who tried, dst and dst_port = what), at the SYN's
//     time; flags kTcpRejected when a RST refused it, kTcpHalfOpen when the server accepted
//     and the client reset instead of completing (a SYN scan finding an open port), else
//     it went unanswered.
//   ARP reply flood: mac = the sender, src / dst = its last reply's sender and target IP,
//     count = its replies in that second, at the second's start.
// The kind's name: the `kind` label of the agent's event metrics and the `event` field of
// the rule language, so both speak of the same thing the same way.
constexpr const char* to_string(PacketEventKind k) {
  switch (k) {
    case PacketEventKind::kTcpSyn:
      return "tcp_syn";
    case PacketEventKind::kTcpSynAck:
      return "tcp_syn_ack";
    case PacketEventKind::kTcpRst:
      return "tcp_rst";
    case PacketEventKind::kDnsQuery:
      return "dns_query";
    case PacketEventKind::kDnsResponse:
      return "dns_response";
    case PacketEventKind::kArpBinding:
      return "arp_binding";
    case PacketEventKind::kIcmpUnreachable:
      return "icmp_unreachable";
    case PacketEventKind::kNewMac:
      return "new_mac";
    case PacketEventKind::kTcpProbeFailed:
      return "tcp_probe_failed";
    case PacketEventKind::kArpReplyFlood:
      return "arp_reply_flood";
  }
  return "unknown";
}

struct PacketEvent {
  IpAddr src;
  IpAddr dst;
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint16_t vlan = 0;
  std::uint16_t dns_qtype = 0;
  std::array<std::uint8_t, 6> mac{};
  std::uint8_t protocol = 0;
  std::uint8_t dns_rcode = 0;
  PacketEventKind kind = PacketEventKind::kTcpSyn;
  InlineString<127> name;  // DNS query name; truncated beyond 127 bytes
  std::uint8_t flags = 0;  // packet_event_flags
  std::uint8_t icmp_code = 0;
  std::array<std::uint8_t, 6> prev_mac{};  // ARP binding changed: the MAC it had before
  std::uint32_t count = 0;                 // ARP reply flood: replies in its second
};

enum class RecordKind : std::uint8_t {
  kFlow = 1,
  kInterfaceSample = 2,
  kDeviceStatus = 3,
  kSnmpTrap = 4,
  kPacketEvent = 5,
};

// The bodies in RecordKind order: a RecordKind is its body's index + 1.
using RecordBody = std::variant<FlowRecord, InterfaceSample, DeviceStatus, SnmpTrap, PacketEvent>;
inline constexpr std::size_t kRecordKinds = std::variant_size_v<RecordBody>;
static_assert(static_cast<std::size_t>(RecordKind::kPacketEvent) == kRecordKinds,
              "a new RecordKind needs its body in RecordBody, in order");

// A table with one slot per RecordKind, indexed by the kind's value (slot 0 is unused).
template <typename T>
using PerRecordKind = std::array<T, kRecordKinds + 1>;

struct Record {
  std::int64_t event_time_ns = 0;  // when it happened, ns since the Unix epoch
  ShortName agent;
  ShortName segment;
  RecordBody body;

  RecordKind kind() const { return static_cast<RecordKind>(body.index() + 1); }
};

static_assert(std::is_trivially_copyable_v<Record>, "records must be cheap to copy");

}  // namespace citywatch
