#include "agent/snmp/snmp_config.h"

#include <arpa/inet.h>

#include <regex>

#include "common/record.h"
#include "common/secret.h"

namespace citywatch::agent {

namespace {

bool is_ip_literal(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// USM needs passwords of at least 8 characters (RFC 3414 section 11.2).
constexpr std::size_t kMinPassword = 8;

void read_v3(ConfigMap& m, SnmpV3Credentials& v3) {
  m.get("user", v3.user);
  m.get("auth_protocol", v3.auth_protocol);
  get_secret(m, "auth_password", "auth_password_file", v3.auth_password);
  m.get("priv_protocol", v3.priv_protocol);
  get_secret(m, "priv_password", "priv_password_file", v3.priv_password);
  m.get("context", v3.context);
}

void check_v3(ConfigMap& m, const SnmpV3Credentials& v3) {
  static const char* const kAuth[] = {"none", "SHA", "SHA-256", "SHA-512"};
  static const char* const kPriv[] = {"none", "AES", "AES-256"};
  bool ok = false;
  for (const char* a : kAuth) ok = ok || v3.auth_protocol == a;
  if (!ok) m.error("auth_protocol", "expected none, SHA, SHA-256 or SHA-512");
  ok = false;
  for (const char* p : kPriv) ok = ok || v3.priv_protocol == p;
  if (!ok) m.error("priv_protocol", "expected none, AES or AES-256");
  if (v3.user.empty()) m.error("user", "SNMPv3 needs a user");
  if (v3.auth_protocol != "none" && v3.auth_password.size() < kMinPassword)
    m.error("auth_password", "expected at least 8 characters");
  if (v3.priv_protocol != "none") {
    if (v3.auth_protocol == "none") m.error("priv_protocol", "privacy needs authentication");
    if (v3.priv_password.size() < kMinPassword)
      m.error("priv_password", "expected at least 8 characters");
  }
}

// Keys a target shares with `defaults:`.
void read_common(ConfigMap& m, SnmpTarget& t) {
  std::int64_t port = t.port;
  m.get("port", port, 1, 65535);
  t.port = static_cast<std::uint16_t>(port);
  std::string version = t.version == 3 ? "3" : "2c";
  m.get("version", version);
  if (version == "2c" || version == "2")
    t.version = 2;
  else if (version == "3")
    t.version = 3;
  else
    m.error("version", "expected 2c or 3");
  get_secret(m, "community", "community_file", t.community);
  read_v3(m, t.v3);
  m.get_duration("interval", t.interval);
  m.get_duration("timeout", t.timeout);
  if (t.interval < std::chrono::milliseconds(100)) m.error("interval", "expected at least 100ms");
  if (t.timeout < std::chrono::milliseconds(10)) m.error("timeout", "expected at least 10ms");
  std::int64_t retries = t.retries;
  m.get("retries", retries, 0, 10);
  t.retries = static_cast<int>(retries);
  std::int64_t reps = t.bulk_repetitions;
  m.get("max_repetitions", reps, 1, 1000);
  t.bulk_repetitions = static_cast<int>(reps);
  std::int64_t max_if = t.max_interfaces;
  m.get("max_interfaces", max_if, 1, 65535);
  t.max_interfaces = static_cast<std::uint32_t>(max_if);
  m.get("site", t.site);
}

}  // namespace

void read_snmp_config(ConfigMap& snmp, SnmpConfig& out) {
  static const std::regex kName("[A-Za-z0-9._:-]+");
  std::int64_t in_flight = out.max_in_flight;
  snmp.get("max_in_flight", in_flight, 1, 65536);
  out.max_in_flight = static_cast<std::uint32_t>(in_flight);

  SnmpTarget defaults;
  ConfigMap d = snmp.map("defaults");
  read_common(d, defaults);
  d.done();

  for (ConfigMap& m : snmp.list("targets")) {
    SnmpTarget t = defaults;
    m.get("name", t.name);
    m.get("address", t.address, true);
    read_common(m, t);
    m.done();
    if (!t.address.empty() && !is_ip_literal(t.address))
      m.error("address", "expected an IPv4 or IPv6 address (names would need a blocking lookup)");
    if (t.name.empty()) t.name = t.address;
    if (t.name.size() > ShortName::kCapacity || !std::regex_match(t.name, kName))
      m.error("name", "expected letters, digits, '.', '_', ':' or '-', at most 47 characters");
    if (t.site.size() > ShortName::kCapacity ||
        (!t.site.empty() && !std::regex_match(t.site, kName)))
      m.error("site", "expected letters, digits, '.', '_', ':' or '-', at most 47 characters");
    if (t.version == 3) check_v3(m, t.v3);
    if (t.timeout * (t.retries + 1) > t.interval)
      m.error("timeout", "timeout x (retries + 1) must fit in the interval");
    for (const SnmpTarget& other : out.targets)
      if (other.name == t.name) m.error("name", "another target has the name '" + t.name + "'");
    out.targets.push_back(std::move(t));
  }

  ConfigMap traps = snmp.map("traps");
  traps.get_listen("listen", out.trap_host, out.trap_port);
  traps.get("communities", out.trap_communities);
  // communities_file: one community per line, so the config itself holds no secret.
  std::string communities_file, communities_text;
  traps.get_path("communities_file", communities_file);
  if (!communities_file.empty()) {
    if (auto s = read_secret_file(communities_file, communities_text); !s) {
      traps.error("communities_file", s.message());
    } else {
      std::size_t start = 0;
      while (start <= communities_text.size()) {
        auto end = communities_text.find('\n', start);
        if (end == std::string::npos) end = communities_text.size();
        std::string line = communities_text.substr(start, end - start);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) out.trap_communities.push_back(line);
        start = end + 1;
      }
    }
  }
  for (ConfigMap& u : traps.list("users")) {
    SnmpV3Credentials v3;
    read_v3(u, v3);
    u.get("engine_id", v3.engine_id);
    u.done();
    check_v3(u, v3);
    static const std::regex kHex("(0x)?[0-9A-Fa-f]{10,64}");
    if (!v3.engine_id.empty() && !std::regex_match(v3.engine_id, kHex))
      u.error("engine_id", "expected 5 to 32 bytes in hex");
    out.trap_users.push_back(std::move(v3));
  }
  traps.done();
  snmp.done();
}

}  // namespace citywatch::agent
