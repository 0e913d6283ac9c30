// WebConfig: the metrics endpoint's TLS and basic-auth settings, in the file format of
// Prometheus's exporter-toolkit (--web.config.file), so an operator who has secured a
// node_exporter secures CityWatch with the same file:
//
//   tls_server_config:
//     cert_file: server.pem
//     key_file: server.key
//     client_ca_file: ca.pem                       # optional
//     client_auth_type: RequireAndVerifyClientCert # NoClientCert (default), RequestClientCert,
//                                                  # RequireAnyClientCert, VerifyClientCertIfGiven
//     min_version: TLS12                           # TLS10..TLS13; max_version likewise
//   basic_auth_users:
//     prometheus: $2y$10$...                        # bcrypt hashes only
//
// Relative paths resolve against the web config file's directory, as exporter-toolkit does.
// Keys exporter-toolkit knows but CityWatch does not implement (cipher_suites, http2 ...) are
// errors rather than silently ignored. Parsing is strict: FILE:LINE:COL errors.
//
// Thread-safety: a plain value, built once.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "common/status.h"

namespace citywatch::http {

enum class ClientAuth {
  kNoClientCert,
  kRequestClientCert,
  kRequireAnyClientCert,
  kVerifyClientCertIfGiven,
  kRequireAndVerifyClientCert,
};

struct TlsServerConfig {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // "" = none
  ClientAuth client_auth = ClientAuth::kNoClientCert;
  int min_version = 0x0303;  // TLS 1.2, exporter-toolkit's default
  int max_version = 0;       // 0 = the highest OpenSSL supports
};

struct WebConfig {
  std::optional<TlsServerConfig> tls;                   // absent: plain HTTP
  std::map<std::string, std::string> basic_auth_users;  // user -> bcrypt hash; empty = no auth
};

// Reads and validates a web config file; every problem is reported, FILE:LINE:COL: KEY: what.
Status load_web_config(const std::string& file, WebConfig& out);
Status parse_web_config(const std::string& text, const std::string& name,
                        const std::string& base_dir, WebConfig& out);

}  // namespace citywatch::http
