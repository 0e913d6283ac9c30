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
    std::memcpy(a.bytes.data(), p, 4);
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

// Interface counters and state from SNMP or sFlow counter samples.
struct InterfaceSample {
  IpAddr device;
  std::uint32_t if_index = 0;
  ShortName if_name;
  std::uint64_t in_octets = 0;
  std::uint64_t out_octets = 0;
  std::uint64_t in_packets = 0;
  std::uint64_t out_packets = 0;
  std::uint64_t in_errors = 0;
  std::uint64_t out_errors = 0;
  std::uint64_t in_discards = 0;
  std::uint64_t out_discards = 0;
  std::uint64_t speed_bps = 0;
  std::uint8_t admin_up = 0;
  std::uint8_t oper_up = 0;
};

// Reachability and identity of a polled device.
struct DeviceStatus {
  IpAddr device;
  ShortName name;
  std::uint64_t uptime_cs = 0;  // sysUpTime, centiseconds
  std::uint8_t reachable = 0;
  std::uint8_t cause = 0;  // why unreachable; enumerated by the SNMP poller
};

// An SNMP notification. Varbinds beyond the common ones arrive in later record kinds.
struct SnmpTrap {
  IpAddr device;
  std::array<std::uint32_t, 16> trap_oid{};
  std::uint8_t trap_oid_len = 0;
  std::uint32_t if_index = 0;
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
};

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
};

enum class RecordKind : std::uint8_t {
  kFlow = 1,
  kInterfaceSample = 2,
  kDeviceStatus = 3,
  kSnmpTrap = 4,
  kPacketEvent = 5,
};

struct Record {
  std::int64_t event_time_ns = 0;  // when it happened, ns since the Unix epoch
  ShortName agent;
  ShortName segment;
  std::variant<FlowRecord, InterfaceSample, DeviceStatus, SnmpTrap, PacketEvent> body;

  RecordKind kind() const { return static_cast<RecordKind>(body.index() + 1); }
};

static_assert(std::is_trivially_copyable_v<Record>, "records must be cheap to copy");

}  // namespace citywatch
