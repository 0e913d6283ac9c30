// Record builders for the rules engine tests: flows, packet events and SNMP records with the
// fields the rule pack looks at.
#pragma once

#include <arpa/inet.h>

#include <string>

#include "common/record.h"

namespace citywatch::collector::testing {

inline IpAddr ip(const std::string& s) {
  IpAddr a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = IpAddr::Family::kV4;
  } else if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = IpAddr::Family::kV6;
  }
  return a;
}

constexpr std::int64_t kT0 = 1795301438000000000;  // segment-a's first packet
constexpr std::int64_t kMs = 1000000;
constexpr std::int64_t kSec = 1000000000;

// RFC 793 flags.
constexpr std::uint8_t kSyn = 0x02, kAck = 0x10, kRst = 0x04, kFin = 0x01, kPsh = 0x08;

inline Record flow(std::int64_t t, const std::string& src, const std::string& dst, int sport,
                   int dport, int proto = 6, std::uint8_t flags = kSyn | kAck | kPsh | kFin,
                   std::uint64_t packets = 10, std::uint64_t bytes = 2000) {
  Record r;
  r.event_time_ns = t;
  r.agent.assign("agent-1");
  r.segment.assign("city-hall");
  FlowRecord f;
  f.start_ns = t - 100 * kMs;
  f.end_ns = t;
  f.src = ip(src);
  f.dst = ip(dst);
  f.src_port = static_cast<std::uint16_t>(sport);
  f.dst_port = static_cast<std::uint16_t>(dport);
  f.protocol = static_cast<std::uint8_t>(proto);
  f.tcp_flags = proto == 6 ? flags : 0;
  f.packets = packets;
  f.bytes = bytes;
  r.body = f;
  return r;
}

inline Record packet(std::int64_t t, PacketEventKind kind, const std::string& src,
                     const std::string& dst, const std::string& name = "",
                     std::array<std::uint8_t, 6> mac = {2, 0, 0, 0, 0, 1}, std::uint8_t flags = 0) {
  Record r;
  r.event_time_ns = t;
  r.agent.assign("agent-1");
  r.segment.assign("water-plant");
  PacketEvent p;
  p.kind = kind;
  p.src = ip(src);
  p.dst = ip(dst);
  p.src_port = 40000;
  p.dst_port = 53;
  p.protocol = 17;
  p.name.assign(name);
  p.mac = mac;
  p.flags = flags;
  r.body = p;
  return r;
}

inline Record iface(std::int64_t t, std::uint64_t in_octets, std::uint64_t out_octets,
                    std::uint64_t errors, std::uint8_t admin = 1, std::uint8_t oper = 1,
                    std::uint64_t speed = 1000000000) {
  Record r;
  r.event_time_ns = t;
  r.agent.assign("agent-1");
  r.segment.assign("city-hall");
  InterfaceSample s;
  s.device = ip("10.0.0.1");
  s.target.assign("core-sw1");
  s.if_index = 3;
  s.if_name.assign("Gi0/3");
  s.in_octets = in_octets;
  s.out_octets = out_octets;
  s.in_errors = errors;
  s.speed_bps = speed;
  s.admin_status = admin;
  s.oper_status = oper;
  r.body = s;
  return r;
}

inline Record device(std::int64_t t, bool reachable, int failures = 0,
                     SnmpEvent event = SnmpEvent::kNone, std::uint64_t uptime_cs = 100000) {
  Record r;
  r.event_time_ns = t;
  r.agent.assign("agent-1");
  r.segment.assign("city-hall");
  DeviceStatus d;
  d.device = ip("10.0.0.1");
  d.target.assign("core-sw1");
  d.reachable = reachable;
  d.consecutive_failures = static_cast<std::uint16_t>(failures);
  d.event = event;
  d.uptime_cs = uptime_cs;
  r.body = d;
  return r;
}

}  // namespace citywatch::collector::testing
