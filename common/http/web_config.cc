#include "common/http/web_config.h"

#include <openssl/ssl.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <vector>

#include "common/config_reader.h"

namespace citywatch::http {

namespace {

bool parse_tls_version(const std::string& text, int& out) {
  static const std::map<std::string, int> kVersions = {
      {"TLS10", TLS1_VERSION},
      {"TLS11", TLS1_1_VERSION},
      {"TLS12", TLS1_2_VERSION},
      {"TLS13", TLS1_3_VERSION},
  };
  const auto it = kVersions.find(text);
  if (it == kVersions.end()) return false;
  out = it->second;
  return true;
}

bool parse_client_auth(const std::string& text, ClientAuth& out) {
  static const std::map<std::string, ClientAuth> kTypes = {
      {"", ClientAuth::kNoClientCert},
      {"NoClientCert", ClientAuth::kNoClientCert},
      {"RequestClientCert", ClientAuth::kRequestClientCert},
      {"RequireAnyClientCert", ClientAuth::kRequireAnyClientCert},
      {"RequireClientCert", ClientAuth::kRequireAnyClientCert},  // exporter-toolkit's alias
      {"VerifyClientCertIfGiven", ClientAuth::kVerifyClientCertIfGiven},
      {"RequireAndVerifyClientCert", ClientAuth::kRequireAndVerifyClientCert},
  };
  const auto it = kTypes.find(text);
  if (it == kTypes.end()) return false;
  out = it->second;
  return true;
}

// A bcrypt hash as htpasswd -B and Go's bcrypt write it: $2a$, $2b$ or $2y$, a two-digit
// cost, 53 characters of salt and hash.
bool looks_like_bcrypt(const std::string& h) {
  if (h.size() != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$') return false;
  if (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') return false;
  return std::isdigit(static_cast<unsigned char>(h[4])) &&
         std::isdigit(static_cast<unsigned char>(h[5]));
}

// `doc` is the same document parsed again: ConfigMap reads keys the program knows, while
// user names are data and must be enumerated.
Status read(ConfigReader& reader, const YAML::Node& doc, WebConfig& out) {
  ConfigMap root = reader.root();
  if (root.has("tls_server_config")) {
    ConfigMap t = root.map("tls_server_config");
    TlsServerConfig tls;
    t.get_path("cert_file", tls.cert_file, true, true);
    t.get_path("key_file", tls.key_file, true, true);
    t.get_path("client_ca_file", tls.client_ca_file, false, true);
    std::string auth, min_v, max_v;
    t.get("client_auth_type", auth);
    if (!parse_client_auth(auth, tls.client_auth))
      t.error("client_auth_type",
              "expected NoClientCert, RequestClientCert, RequireAnyClientCert, "
              "VerifyClientCertIfGiven or RequireAndVerifyClientCert, got '" +
                  auth + "'");
    // As exporter-toolkit: a CA without a policy that uses it is a mistake, and verifying
    // client certificates needs a CA.
    if (!tls.client_ca_file.empty() && tls.client_auth == ClientAuth::kNoClientCert)
      t.error("client_ca_file",
              "client CAs are configured without a client_auth_type that uses them");
    if (tls.client_ca_file.empty() && (tls.client_auth == ClientAuth::kVerifyClientCertIfGiven ||
                                       tls.client_auth == ClientAuth::kRequireAndVerifyClientCert))
      t.error("client_auth_type", "verifying client certificates needs client_ca_file");
    t.get("min_version", min_v);
    t.get("max_version", max_v);
    if (!min_v.empty() && !parse_tls_version(min_v, tls.min_version))
      t.error("min_version", "expected TLS10, TLS11, TLS12 or TLS13, got '" + min_v + "'");
    if (!max_v.empty() && !parse_tls_version(max_v, tls.max_version))
      t.error("max_version", "expected TLS10, TLS11, TLS12 or TLS13, got '" + max_v + "'");
    if (tls.max_version != 0 && tls.max_version < tls.min_version)
      t.error("max_version", "is below min_version");
    for (const char* unsupported : {"cipher_suites", "curve_preferences",
                                    "prefer_server_cipher_suites", "client_allowed_sans"})
      if (t.has(unsupported)) t.error(unsupported, "is not supported by CityWatch; remove it");
    t.done();
    out.tls = tls;
  }
  if (root.has("basic_auth_users")) {
    ConfigMap users = root.map("basic_auth_users");
    std::vector<std::string> names;
    const YAML::Node node = doc["basic_auth_users"];
    if (node.IsMap())
      for (const auto& kv : node)
        if (kv.first.IsScalar()) names.push_back(kv.first.Scalar());
    for (const std::string& user : names) {
      std::string hash;
      users.get(user.c_str(), hash, true);
      if (!looks_like_bcrypt(hash))
        users.error(user.c_str(), "expected a bcrypt hash ($2y$10$...), as htpasswd -nbB writes");
      else if (user.find(':') != std::string::npos)
        users.error(user.c_str(), "a user name cannot contain ':'");
      else
        out.basic_auth_users[user] = hash;
    }
    users.done();
  }
  if (root.has("http_server_config"))
    root.error("http_server_config", "is not supported by CityWatch; remove it");
  root.done();
  return reader.status();
}

}  // namespace

Status load_web_config(const std::string& file, WebConfig& out) {
  ConfigReader reader = ConfigReader::from_file(file);
  if (auto s = reader.status(); !s) return s;
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(file);
  } catch (const std::exception& e) {
    return Status::error(file + ": " + e.what());
  }
  return read(reader, doc, out);
}

Status parse_web_config(const std::string& text, const std::string& name,
                        const std::string& base_dir, WebConfig& out) {
  ConfigReader reader = ConfigReader::from_string(text, name, base_dir);
  if (auto s = reader.status(); !s) return s;
  return read(reader, YAML::Load(text), out);
}

}  // namespace citywatch::http
