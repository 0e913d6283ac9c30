#include "collector/alerts/alerts_config.h"

namespace citywatch::collector {

void read_alerts_config(ConfigMap& alerts, AlertsConfig& out) {
  std::int64_t max_active = static_cast<std::int64_t>(out.max_active);
  alerts.get("max_active", max_active, 1, 10000000);
  out.max_active = static_cast<std::size_t>(max_active);
  alerts.get_path("jsonl", out.jsonl);
  ConfigMap am = alerts.map("alertmanager");
  am.get("urls", out.alertmanager_urls);
  std::int64_t max_queue = static_cast<std::int64_t>(out.alertmanager_max_queue);
  am.get("max_queue", max_queue, 1, 10000000);
  out.alertmanager_max_queue = static_cast<std::size_t>(max_queue);
  am.get_duration("timeout", out.alertmanager_timeout);
  for (const std::string& u : out.alertmanager_urls)
    if (u.rfind("http://", 0) != 0) am.error("urls", "expected http://HOST:PORT, got '" + u + "'");
  am.done();
  ConfigMap syslog = alerts.map("syslog");
  std::string address, protocol = "udp";
  syslog.get("address", address);
  syslog.get("protocol", protocol);
  std::int64_t facility = out.syslog_facility;
  syslog.get("facility", facility, 0, 23);
  out.syslog_facility = static_cast<int>(facility);
  if (!address.empty() &&
      (!parse_endpoint(address, out.syslog_host, out.syslog_port) || out.syslog_port == 0))
    syslog.error("address", "expected IP:PORT, got '" + address + "'");
  if (protocol != "udp" && protocol != "tcp")
    syslog.error("protocol", "expected udp or tcp, got '" + protocol + "'");
  out.syslog_tcp = protocol == "tcp";
  syslog.done();
  alerts.done();
}

}  // namespace citywatch::collector
