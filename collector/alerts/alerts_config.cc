#include "collector/alerts/alerts_config.h"

#include "common/secret.h"

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
    if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0)
      am.error("urls", "expected http://HOST:PORT or https://HOST:PORT, got '" + u + "'");
  AlertmanagerClientConfig& client = out.alertmanager_client;
  ConfigMap tls = am.map("tls_config");
  tls.get_path("ca_file", client.ca_file, false, true);
  tls.get_path("cert_file", client.cert_file, false, true);
  tls.get_path("key_file", client.key_file, false, true);
  tls.get("server_name", client.server_name);
  tls.get("insecure_skip_verify", client.insecure_skip_verify);
  if (client.cert_file.empty() != client.key_file.empty())
    tls.error(client.cert_file.empty() ? "key_file" : "cert_file",
              "cert_file and key_file go together");
  tls.done();
  const bool has_basic = am.has("basic_auth");
  ConfigMap basic = am.map("basic_auth");
  basic.get("username", client.basic_user, has_basic);
  get_secret(basic, "password", "password_file", client.basic_password);
  basic.done();
  const bool has_authz = am.has("authorization");
  ConfigMap authz = am.map("authorization");
  authz.get("type", client.auth_type);
  if (has_authz && client.auth_type.empty()) client.auth_type = "Bearer";
  if (has_authz && !get_secret(authz, "credentials", "credentials_file", client.auth_credentials))
    authz.error(nullptr, "needs credentials or credentials_file");
  if (client.auth_type.find_first_of(" \r\n") != std::string::npos)
    authz.error("type", "must be one word such as Bearer");
  authz.done();
  if (has_basic && has_authz)
    am.error("authorization", "set basic_auth or authorization, not both");
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
