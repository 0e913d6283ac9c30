// AlertsConfig: the collector config's `alerts:` section (docs/configuration.md): how many
// alerts may fire at once and where they go.
//
// Thread-safety: plain value, built once at start-up.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/config_reader.h"

namespace citywatch::collector {

// How the collector talks to Alertmanager, as Prometheus's alertmanager_config does: TLS
// (a CA, an optional client certificate), basic auth or an Authorization header (bearer).
// Secrets may come from files (password_file, credentials_file), read at load.
struct AlertmanagerClientConfig {
  std::string ca_file;  // "" = the system's CAs
  std::string cert_file, key_file;
  std::string server_name;  // "" = the URL's host
  bool insecure_skip_verify = false;
  std::string basic_user, basic_password;   // basic_auth
  std::string auth_type, auth_credentials;  // authorization (type defaults to Bearer)
};

struct AlertsConfig {
  std::size_t max_active = 10000;
  std::string jsonl;  // "" = off
  std::vector<std::string> alertmanager_urls;
  std::size_t alertmanager_max_queue = 10000;
  std::chrono::nanoseconds alertmanager_timeout = std::chrono::seconds(5);
  AlertmanagerClientConfig alertmanager_client;
  std::string syslog_host;  // "" = off
  std::uint16_t syslog_port = 514;
  bool syslog_tcp = false;
  int syslog_facility = 16;  // local0 (RFC 5424 section 6.2.1)
};

void read_alerts_config(ConfigMap& map, AlertsConfig& out);

}  // namespace citywatch::collector
