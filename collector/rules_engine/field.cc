#include "collector/rules_engine/field.h"

#include <arpa/inet.h>

#include <cmath>
#include <cstdio>

namespace citywatch::collector {
namespace {

using T = Value::Type;
using S = RuleSource;

const FlowRecord& flow(const EvalInput& in) { return in.record->get<FlowRecord>(); }
const PacketEvent& pkt(const EvalInput& in) { return in.record->get<PacketEvent>(); }
const InterfaceSample& ifs(const EvalInput& in) { return in.record->get<InterfaceSample>(); }
const DeviceStatus& dev(const EvalInput& in) { return in.record->get<DeviceStatus>(); }
const SnmpTrap& trap(const EvalInput& in) { return in.record->get<SnmpTrap>(); }
Value num(double v) { return Value::number(v); }

// RFC 793 section 3.1 control bits.
constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;

// The registered domain, approximated as the last two labels ("a.b.city.example" ->
// "city.example"); a public-suffix list would be more exact but is not needed to group
// one tunnel's queries together.
std::string_view dns_domain(std::string_view n) {
  if (!n.empty() && n.back() == '.') n.remove_suffix(1);
  const auto last = n.rfind('.');
  if (last == std::string_view::npos || last == 0) return n;
  const auto prev = n.rfind('.', last - 1);
  return prev == std::string_view::npos ? n : n.substr(prev + 1);
}
std::string_view dns_subdomain(std::string_view n) {
  if (!n.empty() && n.back() == '.') n.remove_suffix(1);
  const std::string_view d = dns_domain(n);
  return d.size() + 1 >= n.size() ? std::string_view{} : n.substr(0, n.size() - d.size() - 1);
}
double max_label(std::string_view n) {
  std::size_t best = 0, cur = 0;
  for (char c : n) {
    if (c == '.') {
      cur = 0;
    } else if (++cur > best) {
      best = cur;
    }
  }
  return static_cast<double>(best);
}
double label_count(std::string_view n) {
  if (n.empty()) return 0;
  double c = 1;
  for (std::size_t i = 0; i + 1 < n.size(); ++i) c += n[i] == '.';
  return c;
}
// Shannon entropy (bits per character) of the subdomain part: encoded payloads score
// about 4 and above, words and host names about 2.5 to 3.5.
double entropy(std::string_view s) {
  if (s.empty()) return 0;
  std::uint32_t counts[256] = {};
  std::size_t n = 0;
  for (char c : s) {
    if (c == '.') continue;
    ++counts[static_cast<std::uint8_t>(c)];
    ++n;
  }
  if (n == 0) return 0;
  double h = 0;
  for (std::uint32_t c : counts) {
    if (!c) continue;
    const double p = static_cast<double>(c) / static_cast<double>(n);
    h -= p * std::log2(p);
  }
  return h;
}
Value mac_value(const std::array<std::uint8_t, 6>& m) {
  std::uint64_t v = 0;
  for (std::uint8_t b : m) v = (v << 8) | b;
  Value x;
  x.type = T::kMac;
  x.num = static_cast<double>(v);
  return x;
}

std::string_view snmp_event(SnmpEvent e) {
  switch (e) {
    case SnmpEvent::kNone:
      return "none";
    case SnmpEvent::kDown:
      return "down";
    case SnmpEvent::kUp:
      return "up";
    case SnmpEvent::kReboot:
      return "reboot";
    case SnmpEvent::kOperChange:
      return "oper_change";
  }
  return "unknown";
}
std::string_view trap_kind(SnmpTrapKind k) {
  switch (k) {
    case SnmpTrapKind::kGeneric:
      return "generic";
    case SnmpTrapKind::kColdStart:
      return "cold_start";
    case SnmpTrapKind::kWarmStart:
      return "warm_start";
    case SnmpTrapKind::kLinkDown:
      return "link_down";
    case SnmpTrapKind::kLinkUp:
      return "link_up";
    case SnmpTrapKind::kAuthenticationFailure:
      return "authentication_failure";
  }
  return "unknown";
}

std::vector<FieldDef> make_table() {
  std::vector<FieldDef> t;
  for (S s : {S::kFlow, S::kPacket, S::kInterface, S::kDevice, S::kTrap}) {
    t.push_back({s, "agent", T::kStr,
                 [](const EvalInput& in) { return Value::string(in.record->agent.view()); },
                 "agent id (certificate CN)"});
    t.push_back({s, "segment", T::kStr,
                 [](const EvalInput& in) { return Value::string(in.record->segment.view()); },
                 "the agent's segment"});
  }
  // Flow records (FlowRecord).
  t.push_back({S::kFlow, "src", T::kIp,
               [](const EvalInput& in) { return Value::address(flow(in).src); }, "source address"});
  t.push_back({S::kFlow, "dst", T::kIp,
               [](const EvalInput& in) { return Value::address(flow(in).dst); },
               "destination address"});
  t.push_back({S::kFlow, "exporter", T::kIp,
               [](const EvalInput& in) { return Value::address(flow(in).exporter); },
               "exporter address"});
  t.push_back({S::kFlow, "src_port", T::kNum,
               [](const EvalInput& in) { return num(flow(in).src_port); }, ""});
  t.push_back({S::kFlow, "dst_port", T::kNum,
               [](const EvalInput& in) { return num(flow(in).dst_port); }, ""});
  t.push_back({S::kFlow, "protocol", T::kNum,
               [](const EvalInput& in) { return num(flow(in).protocol); },
               "IANA number; tcp, udp, icmp, icmpv6 are names for it"});
  t.push_back({S::kFlow, "packets", T::kNum,
               [](const EvalInput& in) { return num(static_cast<double>(flow(in).packets)); }, ""});
  t.push_back({S::kFlow, "bytes", T::kNum,
               [](const EvalInput& in) { return num(static_cast<double>(flow(in).bytes)); }, ""});
  t.push_back({S::kFlow, "bits", T::kNum,
               [](const EvalInput& in) { return num(8.0 * static_cast<double>(flow(in).bytes)); },
               "bytes x 8"});
  t.push_back({S::kFlow, "bytes_per_packet", T::kNum,
               [](const EvalInput& in) {
                 const auto& f = flow(in);
                 return num(
                     f.packets ? static_cast<double>(f.bytes) / static_cast<double>(f.packets) : 0);
               },
               ""});
  t.push_back({S::kFlow, "tcp_flags", T::kNum,
               [](const EvalInput& in) { return num(flow(in).tcp_flags); },
               "OR of all packets' flags"});
  t.push_back({S::kFlow, "syn", T::kNum,
               [](const EvalInput& in) { return num((flow(in).tcp_flags & kSyn) != 0); }, ""});
  t.push_back({S::kFlow, "ack", T::kNum,
               [](const EvalInput& in) { return num((flow(in).tcp_flags & kAck) != 0); }, ""});
  t.push_back({S::kFlow, "rst", T::kNum,
               [](const EvalInput& in) { return num((flow(in).tcp_flags & kRst) != 0); }, ""});
  t.push_back({S::kFlow, "fin", T::kNum,
               [](const EvalInput& in) { return num((flow(in).tcp_flags & kFin) != 0); }, ""});
  t.push_back({S::kFlow, "syn_only", T::kNum,
               [](const EvalInput& in) {
                 const auto f = flow(in).tcp_flags;
                 return num(flow(in).protocol == 6 && (f & kSyn) && !(f & kAck));
               },
               "TCP flow that sent SYN but never ACK: a connection attempt that went nowhere"});
  t.push_back(
      {S::kFlow, "vlan", T::kNum, [](const EvalInput& in) { return num(flow(in).vlan); }, ""});
  t.push_back({S::kFlow, "duration", T::kNum,
               [](const EvalInput& in) {
                 return num(static_cast<double>(flow(in).end_ns - flow(in).start_ns) / 1e9);
               },
               "seconds"});
  t.push_back({S::kFlow, "input_if", T::kNum,
               [](const EvalInput& in) { return num(flow(in).input_if); }, ""});
  t.push_back({S::kFlow, "output_if", T::kNum,
               [](const EvalInput& in) { return num(flow(in).output_if); }, ""});
  t.push_back({S::kFlow, "sampling_rate", T::kNum,
               [](const EvalInput& in) { return num(flow(in).sampling_rate); }, ""});
  // Packet events (PacketEvent).
  t.push_back({S::kPacket, "event", T::kStr,
               [](const EvalInput& in) { return Value::string(to_string(pkt(in).kind)); },
               "tcp_syn, tcp_syn_ack, tcp_rst, dns_query, dns_response, arp_binding, "
               "icmp_unreachable, new_mac, tcp_probe_failed, arp_reply_flood"});
  t.push_back({S::kPacket, "src", T::kIp,
               [](const EvalInput& in) { return Value::address(pkt(in).src); },
               "source address (ARP: the sender IP)"});
  t.push_back({S::kPacket, "dst", T::kIp,
               [](const EvalInput& in) { return Value::address(pkt(in).dst); }, ""});
  t.push_back({S::kPacket, "src_port", T::kNum,
               [](const EvalInput& in) { return num(pkt(in).src_port); }, ""});
  t.push_back({S::kPacket, "dst_port", T::kNum,
               [](const EvalInput& in) { return num(pkt(in).dst_port); }, ""});
  t.push_back({S::kPacket, "protocol", T::kNum,
               [](const EvalInput& in) { return num(pkt(in).protocol); }, ""});
  t.push_back(
      {S::kPacket, "vlan", T::kNum, [](const EvalInput& in) { return num(pkt(in).vlan); }, ""});
  t.push_back({S::kPacket, "mac", T::kMac,
               [](const EvalInput& in) { return mac_value(pkt(in).mac); },
               "ARP sender / new station MAC"});
  t.push_back({S::kPacket, "dns.qtype", T::kNum,
               [](const EvalInput& in) { return num(pkt(in).dns_qtype); }, ""});
  t.push_back({S::kPacket, "dns.rcode", T::kNum,
               [](const EvalInput& in) { return num(pkt(in).dns_rcode); }, "3 = NXDOMAIN"});
  t.push_back({S::kPacket, "dns.name", T::kStr,
               [](const EvalInput& in) { return Value::string(pkt(in).name.view()); },
               "query name (first 127 bytes)"});
  t.push_back({S::kPacket, "dns.name_len", T::kNum,
               [](const EvalInput& in) { return num(static_cast<double>(pkt(in).name.size())); },
               ""});
  t.push_back({S::kPacket, "dns.max_label_len", T::kNum,
               [](const EvalInput& in) { return num(max_label(pkt(in).name.view())); }, ""});
  t.push_back({S::kPacket, "dns.labels", T::kNum,
               [](const EvalInput& in) { return num(label_count(pkt(in).name.view())); }, ""});
  t.push_back({S::kPacket, "dns.domain", T::kStr,
               [](const EvalInput& in) { return Value::string(dns_domain(pkt(in).name.view())); },
               "last two labels"});
  t.push_back(
      {S::kPacket, "dns.subdomain", T::kStr,
       [](const EvalInput& in) { return Value::string(dns_subdomain(pkt(in).name.view())); },
       "the name without dns.domain"});
  t.push_back({S::kPacket, "dns.subdomain_len", T::kNum,
               [](const EvalInput& in) {
                 return num(static_cast<double>(dns_subdomain(pkt(in).name.view()).size()));
               },
               ""});
  t.push_back({S::kPacket, "dns.entropy", T::kNum,
               [](const EvalInput& in) { return num(entropy(dns_subdomain(pkt(in).name.view()))); },
               "Shannon bits per character of dns.subdomain"});
  t.push_back({S::kPacket, "prev_mac", T::kMac,
               [](const EvalInput& in) { return mac_value(pkt(in).prev_mac); },
               "ARP binding changed: the MAC before"});
  t.push_back(
      {S::kPacket, "arp.new", T::kNum,
       [](const EvalInput& in) { return num((pkt(in).flags & packet_event_flags::kArpNew) != 0); },
       "first binding seen for this IP"});
  t.push_back({S::kPacket, "arp.changed", T::kNum,
               [](const EvalInput& in) {
                 return num((pkt(in).flags & packet_event_flags::kArpChanged) != 0);
               },
               "the IP moved to another MAC"});
  t.push_back({S::kPacket, "arp.gratuitous", T::kNum,
               [](const EvalInput& in) {
                 return num((pkt(in).flags & packet_event_flags::kArpGratuitous) != 0);
               },
               ""});
  t.push_back({S::kPacket, "count", T::kNum, [](const EvalInput& in) { return num(pkt(in).count); },
               "arp_reply_flood: the MAC's ARP replies in that second"});
  t.push_back({S::kPacket, "tcp.rejected", T::kNum,
               [](const EvalInput& in) {
                 return num((pkt(in).flags & packet_event_flags::kTcpRejected) != 0);
               },
               "tcp_probe_failed: refused by a RST"});
  t.push_back({S::kPacket, "tcp.half_open", T::kNum,
               [](const EvalInput& in) {
                 return num((pkt(in).flags & packet_event_flags::kTcpHalfOpen) != 0);
               },
               "tcp_probe_failed: accepted, then reset by the client (SYN scan, open port)"});
  t.push_back({S::kPacket, "icmp_code", T::kNum,
               [](const EvalInput& in) { return num(pkt(in).icmp_code); }, ""});
  // Interface samples (InterfaceSample).
  t.push_back({S::kInterface, "device", T::kIp,
               [](const EvalInput& in) { return Value::address(ifs(in).device); }, ""});
  t.push_back({S::kInterface, "if_index", T::kNum,
               [](const EvalInput& in) { return num(ifs(in).if_index); }, ""});
  t.push_back({S::kInterface, "if_name", T::kStr,
               [](const EvalInput& in) { return Value::string(ifs(in).if_name.view()); }, ""});
  t.push_back({S::kInterface, "in_octets", T::kNum,
               [](const EvalInput& in) { return num(static_cast<double>(ifs(in).in_octets)); },
               "counter"});
  t.push_back({S::kInterface, "out_octets", T::kNum,
               [](const EvalInput& in) { return num(static_cast<double>(ifs(in).out_octets)); },
               "counter"});
  t.push_back({S::kInterface, "in_packets", T::kNum,
               [](const EvalInput& in) { return num(static_cast<double>(ifs(in).in_packets)); },
               "counter"});
  t.push_back({S::kInterface, "out_packets", T::kNum,
               [](const EvalInput& in) { return num(static_cast<double>(ifs(in).out_packets)); },
               "counter"});
  t.push_back({S::kInterface, "in_errors", T::kNum,
               [](const EvalInput& in) { return num(static_cast<double>(ifs(in).in_errors)); },
               "counter"});
  t.push_back({S::kInterface, "out_errors", T::kNum,
               [](const EvalInput& in) { return num(static_cast<double>(ifs(in).out_errors)); },
               "counter"});
  t.push_back({S::kInterface, "errors", T::kNum,
               [](const EvalInput& in) {
                 return num(static_cast<double>(ifs(in).in_errors + ifs(in).out_errors));
               },
               "counter, in + out"});
  t.push_back({S::kInterface, "in_discards", T::kNum,
               [](const EvalInput& in) { return num(static_cast<double>(ifs(in).in_discards)); },
               "counter"});
  t.push_back({S::kInterface, "out_discards", T::kNum,
               [](const EvalInput& in) { return num(static_cast<double>(ifs(in).out_discards)); },
               "counter"});
  t.push_back({S::kInterface, "speed_bps", T::kNum,
               [](const EvalInput& in) { return num(static_cast<double>(ifs(in).speed_bps)); },
               ""});
  t.push_back({S::kInterface, "admin_up", T::kNum,
               [](const EvalInput& in) { return num(ifs(in).admin_up() ? 1 : 0); },
               "1 = ifAdminStatus up"});
  t.push_back({S::kInterface, "oper_up", T::kNum,
               [](const EvalInput& in) { return num(ifs(in).oper_up() ? 1 : 0); },
               "1 = ifOperStatus up"});
  t.push_back({S::kInterface, "target", T::kStr,
               [](const EvalInput& in) { return Value::string(ifs(in).target.view()); },
               "configured device name"});
  t.push_back({S::kInterface, "if_alias", T::kStr,
               [](const EvalInput& in) { return Value::string(ifs(in).if_alias.view()); }, ""});
  t.push_back({S::kInterface, "admin_status", T::kNum,
               [](const EvalInput& in) { return num(ifs(in).admin_status); },
               "IF-MIB ifAdminStatus: 1 up, 2 down"});
  t.push_back({S::kInterface, "oper_status", T::kNum,
               [](const EvalInput& in) { return num(ifs(in).oper_status); },
               "IF-MIB ifOperStatus: 1 up, 2 down, 7 lowerLayerDown"});
  t.push_back({S::kInterface, "event", T::kStr,
               [](const EvalInput& in) { return Value::string(snmp_event(ifs(in).event)); },
               "none, oper_change"});
  t.push_back({S::kInterface, "counters_reset", T::kNum,
               [](const EvalInput& in) {
                 return num((ifs(in).flags & InterfaceSample::kCountersReset) != 0);
               },
               "counters restarted before this sample"});
  // Device status (DeviceStatus).
  t.push_back({S::kDevice, "device", T::kIp,
               [](const EvalInput& in) { return Value::address(dev(in).device); }, ""});
  t.push_back({S::kDevice, "name", T::kStr,
               [](const EvalInput& in) { return Value::string(dev(in).name.view()); }, "sysName"});
  t.push_back(
      {S::kDevice, "uptime", T::kNum,
       [](const EvalInput& in) { return num(static_cast<double>(dev(in).uptime_cs) / 100.0); },
       "sysUpTime in seconds"});
  t.push_back({S::kDevice, "reachable", T::kNum,
               [](const EvalInput& in) { return num(dev(in).reachable); }, ""});
  t.push_back({S::kDevice, "cause", T::kNum,
               [](const EvalInput& in) { return num(static_cast<double>(dev(in).cause)); }, ""});
  t.push_back({S::kDevice, "target", T::kStr,
               [](const EvalInput& in) { return Value::string(dev(in).target.view()); },
               "configured device name"});
  t.push_back({S::kDevice, "site", T::kStr,
               [](const EvalInput& in) { return Value::string(dev(in).site.view()); }, ""});
  t.push_back({S::kDevice, "event", T::kStr,
               [](const EvalInput& in) { return Value::string(snmp_event(dev(in).event)); },
               "none, down, up, reboot (docs/snmp.md)"});
  t.push_back({S::kDevice, "consecutive_failures", T::kNum,
               [](const EvalInput& in) { return num(dev(in).consecutive_failures); }, ""});
  // SNMP traps (SnmpTrap).
  t.push_back({S::kTrap, "device", T::kIp,
               [](const EvalInput& in) { return Value::address(trap(in).device); }, ""});
  t.push_back({S::kTrap, "if_index", T::kNum,
               [](const EvalInput& in) { return num(trap(in).if_index); }, ""});
  t.push_back({S::kTrap, "trap", T::kNum,
               [](const EvalInput& in) {
                 const auto& tr = trap(in);
                 return num(tr.trap_oid_len
                                ? tr.trap_oid[std::min<std::size_t>(tr.trap_oid_len, 16) - 1]
                                : 0);
               },
               "last arc of snmpTrapOID (linkDown = 3, linkUp = 4)"});
  t.push_back({S::kTrap, "target", T::kStr,
               [](const EvalInput& in) { return Value::string(trap(in).target.view()); }, ""});
  t.push_back({S::kTrap, "kind", T::kStr,
               [](const EvalInput& in) { return Value::string(trap_kind(trap(in).kind)); },
               "generic, cold_start, warm_start, link_down, link_up, authentication_failure"});
  // Agent sessions (the collector's own events).
  t.push_back({S::kAgentSession, "agent", T::kStr,
               [](const EvalInput& in) { return Value::string(in.session->agent); }, ""});
  t.push_back({S::kAgentSession, "segment", T::kStr,
               [](const EvalInput& in) { return Value::string(in.session->segment); }, ""});
  t.push_back({S::kAgentSession, "connected", T::kNum,
               [](const EvalInput& in) { return num(in.session->connected); }, ""});
  return t;
}

}  // namespace

bool parse_rule_source(std::string_view s, RuleSource& out) {
  static constexpr std::pair<std::string_view, RuleSource> kNames[] = {
      {"flow", S::kFlow},     {"packet", S::kPacket}, {"interface", S::kInterface},
      {"device", S::kDevice}, {"trap", S::kTrap},     {"agent_session", S::kAgentSession}};
  for (const auto& [n, v] : kNames)
    if (n == s) {
      out = v;
      return true;
    }
  return false;
}

const char* to_string(RuleSource s) {
  switch (s) {
    case S::kFlow:
      return "flow";
    case S::kPacket:
      return "packet";
    case S::kInterface:
      return "interface";
    case S::kDevice:
      return "device";
    case S::kTrap:
      return "trap";
    case S::kAgentSession:
      return "agent_session";
  }
  return "?";
}

const std::vector<FieldDef>& all_fields() {
  static const std::vector<FieldDef> table = make_table();
  return table;
}

const FieldDef* find_field(RuleSource source, std::string_view name) {
  for (const FieldDef& f : all_fields())
    if (f.source == source && f.name == name) return &f;
  return nullptr;
}

std::string field_names(RuleSource source) {
  std::string out;
  for (const FieldDef& f : all_fields()) {
    if (f.source != source) continue;
    if (!out.empty()) out += ", ";
    out += f.name;
  }
  return out;
}

std::uint64_t hash_value(const Value& v, std::uint64_t h) {
  auto mix = [&h](const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    for (std::size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  };
  const auto t = static_cast<std::uint8_t>(v.type);
  mix(&t, 1);
  switch (v.type) {
    case T::kNum:
    case T::kMac:
      mix(&v.num, sizeof v.num);
      break;
    case T::kIp:
      mix(v.ip.bytes.data(), v.ip.family == IpAddr::Family::kV4 ? 4 : 16);
      break;
    case T::kStr:
      mix(v.str.data(), v.str.size());
      break;
    case T::kNone:
      break;
  }
  return h;
}

std::string format_value(const Value& v) {
  char buf[64];
  switch (v.type) {
    case T::kNum:
      if (v.num == std::floor(v.num) && std::fabs(v.num) < 1e15)
        std::snprintf(buf, sizeof buf, "%.0f", v.num);
      else
        std::snprintf(buf, sizeof buf, "%.3g", v.num);
      return buf;
    case T::kMac: {
      const auto m = static_cast<std::uint64_t>(v.num);
      std::snprintf(
          buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", static_cast<unsigned>((m >> 40) & 0xff),
          static_cast<unsigned>((m >> 32) & 0xff), static_cast<unsigned>((m >> 24) & 0xff),
          static_cast<unsigned>((m >> 16) & 0xff), static_cast<unsigned>((m >> 8) & 0xff),
          static_cast<unsigned>(m & 0xff));
      return buf;
    }
    case T::kIp:
      if (v.ip.family == IpAddr::Family::kV4)
        return inet_ntop(AF_INET, v.ip.bytes.data(), buf, sizeof buf) ? buf : "?";
      if (v.ip.family == IpAddr::Family::kV6)
        return inet_ntop(AF_INET6, v.ip.bytes.data(), buf, sizeof buf) ? buf : "?";
      return "";
    case T::kStr:
      return std::string(v.str);
    case T::kNone:
      return "";
  }
  return "";
}

}  // namespace citywatch::collector
