#include "collector/metrics/snmp_metrics.h"

#include <cstdio>
#include <string_view>

#include "common/label_text.h"

namespace citywatch::collector {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

const char* const kCauseNames[] = {"ok", "timeout", "auth", "error", "send", "bad_reply"};

const char* trap_name(SnmpTrapKind k) {
  switch (k) {
    case SnmpTrapKind::kColdStart:
      return "coldStart";
    case SnmpTrapKind::kWarmStart:
      return "warmStart";
    case SnmpTrapKind::kLinkDown:
      return "linkDown";
    case SnmpTrapKind::kLinkUp:
      return "linkUp";
    case SnmpTrapKind::kAuthenticationFailure:
      return "authenticationFailure";
    case SnmpTrapKind::kGeneric:
      return "other";
  }
  return "other";
}

std::string ip_text(const IpAddr& a) {
  char buf[64] = "";
  if (a.family == IpAddr::Family::kV4)
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]);
  if (a.family == IpAddr::Family::kV6) {
    int n = 0;
    for (int i = 0; i < 16; i += 2)
      n += std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n), i ? ":%x" : "%x",
                         a.bytes[i] << 8 | a.bytes[i + 1]);
  }
  return buf;
}

double seconds(std::int64_t ns) { return static_cast<double>(ns) / 1e9; }

// Label text from a device: valid UTF-8, NULs (some agents pad ifAlias with them) and other
// control characters removed; everything else (trailing blanks too) kept as the device says
// it (common/label_text.h).
std::string clean(std::string_view v) { return label_text(v); }

MetricFamily family(const char* name, const char* help, MetricType type) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

void add(MetricFamily& f, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

}  // namespace

SnmpMetrics::SnmpMetrics(std::size_t max_series) : max_series_(max_series) {}

bool SnmpMetrics::room() const {
  return interfaces_.size() + devices_.size() + traps_.size() < max_series_;
}

void SnmpMetrics::consume(const RecordBatch& records) {
  std::lock_guard lock(mu_);
  for (const RecordRef r : records) {
    if (const auto* s = r.get_if<InterfaceSample>())
      on_interface(r, *s);
    else if (const auto* d = r.get_if<DeviceStatus>())
      on_device(r, *d);
    else if (const auto* t = r.get_if<SnmpTrap>())
      on_trap(r, *t);
  }
}

void SnmpMetrics::on_interface(const RecordRef& r, const InterfaceSample& s) {
  const std::string device = s.target.empty() ? ip_text(s.device) : std::string(s.target.view());
  IfKey key{std::string(r.segment.view()), device, s.if_index};
  auto it = interfaces_.find(key);
  if (it == interfaces_.end()) {
    if (!room()) {
      ++dropped_;
      return;
    }
    it = interfaces_.emplace(std::move(key), Interface{}).first;
  }
  if (s.event == SnmpEvent::kOperChange) ++it->second.oper_changes;
  it->second.last = s;
}

void SnmpMetrics::on_device(const RecordRef& r, const DeviceStatus& d) {
  const std::string device = d.target.empty() ? ip_text(d.device) : std::string(d.target.view());
  DevKey key{std::string(r.segment.view()), device};
  auto it = devices_.find(key);
  if (it == devices_.end()) {
    if (!room()) {
      ++dropped_;
      return;
    }
    it = devices_.emplace(std::move(key), Device{}).first;
  }
  Device& dev = it->second;
  switch (d.event) {
    case SnmpEvent::kDown:
      ++dev.downs;
      dev.last_change_s = seconds(r.event_time_ns);
      break;
    case SnmpEvent::kUp:
      ++dev.ups;
      dev.last_change_s = seconds(r.event_time_ns);
      break;
    case SnmpEvent::kReboot:
      ++dev.reboots;
      break;
    default:
      // A cause from a newer agent that this version does not know is not counted by result.
      if (const auto c = static_cast<std::size_t>(d.cause); c < dev.polls.size()) ++dev.polls[c];
      dev.last_poll_s = seconds(r.event_time_ns);
      // Identity from the last answer stays while the device is down.
      if (d.reachable || !dev.polled) dev.last = d;
      dev.last.reachable = d.reachable;
      dev.last.cause = d.cause;
      dev.last.poll_duration_us = d.poll_duration_us;
      dev.polled = true;
      break;
  }
}

void SnmpMetrics::on_trap(const RecordRef& r, const SnmpTrap& t) {
  const std::string device = t.target.empty() ? ip_text(t.device) : std::string(t.target.view());
  const bool link = t.kind == SnmpTrapKind::kLinkDown || t.kind == SnmpTrapKind::kLinkUp;
  TrapKey key{std::string(r.segment.view()), device, trap_name(t.kind),
              link ? std::to_string(t.if_index) : std::string()};
  auto it = traps_.find(key);
  if (it == traps_.end()) {
    if (!room()) {
      ++dropped_;
      return;
    }
    it = traps_.emplace(std::move(key), 0).first;
  }
  ++it->second;
}

std::vector<ClientMetric::Label> SnmpMetrics::interface_labels(const IfKey& k,
                                                               const InterfaceSample& s) const {
  // The same labels on every interface metric: where (site, segment, device) and which
  // interface (ifIndex, ifName or else ifDescr, ifAlias), as NOC staff name them.
  std::string site;
  if (auto d = devices_.find(DevKey{std::get<0>(k), std::get<1>(k)}); d != devices_.end())
    site = clean(d->second.last.site.view());
  return {{"site", site},
          {"segment", std::get<0>(k)},
          {"device", std::get<1>(k)},
          {"ifindex", std::to_string(s.if_index)},
          {"ifname", clean(s.if_name.empty() ? s.if_descr.view() : s.if_name.view())},
          {"ifalias", clean(s.if_alias.view())}};
}

std::vector<MetricFamily> SnmpMetrics::Collect() const {
  std::lock_guard lock(mu_);
  struct IfCounter {
    const char* name;
    const char* help;
    std::uint64_t InterfaceSample::*field;
  };
  static const IfCounter kIfCounters[] = {
      {"citywatch_interface_receive_bytes_total",
       "Octets received (ifHCInOctets, else ifInOctets extended past 32-bit wraps)",
       &InterfaceSample::in_octets},
      {"citywatch_interface_transmit_bytes_total", "Octets sent (ifHCOutOctets, else ifOutOctets)",
       &InterfaceSample::out_octets},
      {"citywatch_interface_receive_packets_total",
       "Packets received: unicast + multicast + broadcast (HC columns when present)",
       &InterfaceSample::in_packets},
      {"citywatch_interface_transmit_packets_total",
       "Packets sent: unicast + multicast + broadcast", &InterfaceSample::out_packets},
      {"citywatch_interface_receive_multicast_total",
       "Multicast packets received (ifHCInMulticastPkts)", &InterfaceSample::in_multicast},
      {"citywatch_interface_transmit_multicast_total",
       "Multicast packets sent (ifHCOutMulticastPkts)", &InterfaceSample::out_multicast},
      {"citywatch_interface_receive_broadcast_total",
       "Broadcast packets received (ifHCInBroadcastPkts)", &InterfaceSample::in_broadcast},
      {"citywatch_interface_transmit_broadcast_total",
       "Broadcast packets sent (ifHCOutBroadcastPkts)", &InterfaceSample::out_broadcast},
      {"citywatch_interface_receive_errs_total", "Inbound packets with errors (ifInErrors)",
       &InterfaceSample::in_errors},
      {"citywatch_interface_transmit_errs_total",
       "Outbound packets not sent because of errors (ifOutErrors)", &InterfaceSample::out_errors},
      {"citywatch_interface_receive_drop_total",
       "Inbound packets discarded without error (ifInDiscards)", &InterfaceSample::in_discards},
      {"citywatch_interface_transmit_drop_total",
       "Outbound packets discarded without error (ifOutDiscards)", &InterfaceSample::out_discards},
  };
  std::vector<MetricFamily> out;
  out.reserve(32);
  for (const IfCounter& c : kIfCounters) {
    MetricFamily f = family(c.name, c.help, MetricType::Counter);
    for (const auto& [k, e] : interfaces_)
      add(f, interface_labels(k, e.last), static_cast<double>(e.last.*c.field));
    out.push_back(std::move(f));
  }
  MetricFamily up =
      family("citywatch_interface_up", "1 when ifOperStatus is up(1)", MetricType::Gauge);
  MetricFamily oper = family(
      "citywatch_interface_oper_status",
      "ifOperStatus: 1 up, 2 down, 3 testing, 4 unknown, 5 dormant, 6 notPresent, 7 lowerLayerDown",
      MetricType::Gauge);
  MetricFamily admin = family("citywatch_interface_admin_status",
                              "ifAdminStatus: 1 up, 2 down, 3 testing", MetricType::Gauge);
  MetricFamily speed =
      family("citywatch_interface_speed_bytes",
             "Interface speed in bytes per second (ifHighSpeed, else ifSpeed)", MetricType::Gauge);
  MetricFamily changes = family("citywatch_interface_oper_changes_total",
                                "ifOperStatus transitions seen between polls", MetricType::Counter);
  MetricFamily info = family("citywatch_interface_info", "Interface identity; value is always 1",
                             MetricType::Gauge);
  for (const auto& [k, e] : interfaces_) {
    const InterfaceSample& s = e.last;
    std::vector<ClientMetric::Label> l = interface_labels(k, s);
    add(up, l, s.oper_status == 1);
    add(oper, l, s.oper_status);
    add(admin, l, s.admin_status);
    add(speed, l, static_cast<double>(s.speed_bps) / 8);
    add(changes, l, static_cast<double>(e.oper_changes));
    l.push_back({"ifdescr", clean(s.if_descr.view())});
    l.push_back({"iftype", std::to_string(s.if_type)});
    add(info, l, 1);
  }
  for (auto* f : {&up, &oper, &admin, &speed, &changes, &info}) out.push_back(std::move(*f));

  MetricFamily dup = family("citywatch_snmp_device_up", "1 when the device answered its last poll",
                            MetricType::Gauge);
  MetricFamily uptime = family("citywatch_snmp_device_uptime_seconds",
                               "sysUpTime at the last answer", MetricType::Gauge);
  MetricFamily duration = family("citywatch_snmp_poll_duration_seconds",
                                 "Wall time of the last poll", MetricType::Gauge);
  MetricFamily polls =
      family("citywatch_snmp_polls_total",
             "Polls by result (ok, timeout, auth, error, send, bad_reply)", MetricType::Counter);
  MetricFamily transitions =
      family("citywatch_snmp_device_transitions_total",
             "Reachability transitions, by the state entered", MetricType::Counter);
  MetricFamily reboots = family("citywatch_snmp_device_reboots_total",
                                "Reboots seen (sysUpTime went backwards)", MetricType::Counter);
  MetricFamily last_change =
      family("citywatch_snmp_device_last_change_timestamp_seconds",
             "When the device last went down or up (agent's clock)", MetricType::Gauge);
  MetricFamily dinfo =
      family("citywatch_snmp_device_info",
             "Device identity from the system group; value is always 1", MetricType::Gauge);
  MetricFamily ifcount = family("citywatch_snmp_device_interfaces",
                                "Interfaces reported by the last answer", MetricType::Gauge);
  for (const auto& [k, d] : devices_) {
    std::vector<ClientMetric::Label> l = {{"segment", std::get<0>(k)}, {"device", std::get<1>(k)}};
    if (d.polled) {
      add(dup, l, d.last.reachable);
      add(uptime, l, static_cast<double>(d.last.uptime_cs) / 100);
      add(duration, l, static_cast<double>(d.last.poll_duration_us) / 1e6);
      add(ifcount, l, d.last.interfaces);
      for (std::size_t c = 0; c < d.polls.size(); ++c) {
        auto lr = l;
        lr.push_back({"result", kCauseNames[c]});
        add(polls, lr, static_cast<double>(d.polls[c]));
      }
      auto li = l;
      li.push_back({"site", std::string(d.last.site.view())});
      li.push_back({"sys_name", clean(d.last.name.view())});
      li.push_back({"sys_object_id", std::string(d.last.object_id.view())});
      li.push_back({"address", ip_text(d.last.device)});
      add(dinfo, li, 1);
    }
    auto ld = l;
    ld.push_back({"state", "down"});
    add(transitions, ld, static_cast<double>(d.downs));
    auto lu = l;
    lu.push_back({"state", "up"});
    add(transitions, lu, static_cast<double>(d.ups));
    add(reboots, l, static_cast<double>(d.reboots));
    add(last_change, l, d.last_change_s);
  }
  for (auto* f :
       {&dup, &uptime, &duration, &polls, &transitions, &reboots, &last_change, &dinfo, &ifcount})
    out.push_back(std::move(*f));

  MetricFamily traps = family("citywatch_snmp_traps_total",
                              "Notifications received, by device, trap and (link traps) ifIndex",
                              MetricType::Counter);
  for (const auto& [k, n] : traps_)
    add(traps,
        {{"segment", std::get<0>(k)},
         {"device", std::get<1>(k)},
         {"trap", std::get<2>(k)},
         {"ifindex", std::get<3>(k)}},
        static_cast<double>(n));
  out.push_back(std::move(traps));
  MetricFamily dropped =
      family("citywatch_snmp_series_dropped_total",
             "SNMP samples dropped because the series cap was reached", MetricType::Counter);
  add(dropped, {}, static_cast<double>(dropped_));
  out.push_back(std::move(dropped));
  return out;
}

}  // namespace citywatch::collector
