#include "agent/snmp/snmp_library.h"

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include <syslog.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"

namespace citywatch::agent {

namespace {

struct AuthProto {
  const char* name;
  const oid* proto;
  std::size_t len;
};

bool auth_proto(const std::string& name, const oid*& proto, std::size_t& len) {
  // RFC 3414 (HMAC-SHA-96) and RFC 7860 (HMAC-SHA-2).
  if (name == "SHA") {
    proto = usmHMACSHA1AuthProtocol;
    len = OID_LENGTH(usmHMACSHA1AuthProtocol);
  } else if (name == "SHA-256") {
    proto = usmHMAC192SHA256AuthProtocol;
    len = OID_LENGTH(usmHMAC192SHA256AuthProtocol);
  } else if (name == "SHA-512") {
    proto = usmHMAC384SHA512AuthProtocol;
    len = OID_LENGTH(usmHMAC384SHA512AuthProtocol);
  } else {
    return false;
  }
  return true;
}

bool priv_proto(const std::string& name, const oid*& proto, std::size_t& len) {
  // RFC 3826 (AES-128 CFB); AES-256 with the key extension of draft-blumenthal-aes-usm-04.
  if (name == "AES") {
    proto = usmAESPrivProtocol;
    len = OID_LENGTH(usmAESPrivProtocol);
  } else if (name == "AES-256") {
    proto = usmAES256PrivProtocol;
    len = OID_LENGTH(usmAES256PrivProtocol);
  } else {
    return false;
  }
  return true;
}

// net-snmp logs one line per malformed or unauthenticated datagram it meets, and anyone
// can send those to the trap port: at most kLogBurst of its lines a minute reach the log,
// then one line saying how many more there were.
constexpr int kLogBurst = 20;
constexpr auto kLogWindow = std::chrono::minutes(1);

// net-snmp's own messages ("Authentication failed for ...", transport errors) go through
// the agent's log, with its priority prefix, instead of bare lines on stderr.
int on_log(int /*major*/, int /*minor*/, void* server_arg, void* /*client_arg*/) {
  const auto* m = static_cast<const snmp_log_message*>(server_arg);
  if (!m || !m->msg) return 0;
  std::string_view text(m->msg);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  if (text.empty()) return 0;
  const log::Level level = m->priority <= LOG_ERR       ? log::Level::kError
                           : m->priority == LOG_WARNING ? log::Level::kWarning
                           : m->priority <= LOG_INFO    ? log::Level::kInfo
                                                        : log::Level::kDebug;
  if (level == log::Level::kDebug) return 0;
  static std::mutex mu;
  static std::chrono::steady_clock::time_point window_start;
  static int in_window = 0;
  static long suppressed = 0;
  std::lock_guard lock(mu);
  const auto now = std::chrono::steady_clock::now();
  if (now - window_start >= kLogWindow) {
    if (suppressed > 0)
      log::warning("net-snmp: " + std::to_string(suppressed) +
                   " more messages in the last minute not logged (at most " +
                   std::to_string(kLogBurst) + " a minute)");
    window_start = now;
    in_window = 0;
    suppressed = 0;
  }
  if (++in_window > kLogBurst) {
    ++suppressed;
    return 0;
  }
  log::write(level, "net-snmp: " + std::string(text));
  return 0;
}

}  // namespace

SnmpLibrary::SnmpLibrary(const char* app_name) {
  snmp_disable_log();
  netsnmp_register_loghandler(NETSNMP_LOGHANDLER_CALLBACK, LOG_INFO);
  snmp_register_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING, &on_log, nullptr);
  // Numeric OIDs only: no MIB files are parsed, no snmp.conf is read, nothing is persisted.
  setenv("MIBS", "", 1);
  setenv("MIBDIRS", "", 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
  netsnmp_ds_set_int(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_MIB_WARNINGS, 0);
  init_snmp(app_name);
}

SnmpLibrary::~SnmpLibrary() { snmp_shutdown("citywatch-agent"); }

void* open_client_session(const SnmpTarget& t, SnmpCallback callback, void* magic,
                          std::string& err) {
  netsnmp_session s;
  snmp_sess_init(&s);
  const bool v6 = t.address.find(':') != std::string::npos;
  std::string peer =
      (v6 ? "udp6:[" + t.address + "]" : "udp:" + t.address) + ":" + std::to_string(t.port);
  s.peername = peer.data();
  s.timeout =
      static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(t.timeout).count());
  s.retries = t.retries;
  s.callback = callback;
  s.callback_magic = magic;
  std::string community = t.community;
  std::string user = t.v3.user;
  std::string context = t.v3.context;
  if (t.version == 2) {
    s.version = SNMP_VERSION_2c;
    s.community = reinterpret_cast<u_char*>(community.data());
    s.community_len = community.size();
  } else {
    s.version = SNMP_VERSION_3;
    s.flags |= SNMP_FLAGS_DONT_PROBE;  // discovery is done asynchronously by the poller
    s.securityModel = SNMP_SEC_MODEL_USM;
    s.securityName = user.data();
    s.securityNameLen = user.size();
    s.contextName = context.data();
    s.contextNameLen = context.size();
    s.securityLevel = SNMP_SEC_LEVEL_NOAUTH;
    const oid* proto = nullptr;
    std::size_t len = 0;
    if (auth_proto(t.v3.auth_protocol, proto, len)) {
      s.securityLevel = SNMP_SEC_LEVEL_AUTHNOPRIV;
      s.securityAuthProto = const_cast<oid*>(proto);
      s.securityAuthProtoLen = len;
      s.securityAuthKeyLen = USM_AUTH_KU_LEN;
      if (generate_Ku(proto, static_cast<u_int>(len),
                      reinterpret_cast<const u_char*>(t.v3.auth_password.data()),
                      t.v3.auth_password.size(), s.securityAuthKey,
                      &s.securityAuthKeyLen) != SNMPERR_SUCCESS) {
        err = "cannot derive the authentication key";
        return nullptr;
      }
      const oid* pproto = nullptr;
      std::size_t plen = 0;
      if (priv_proto(t.v3.priv_protocol, pproto, plen)) {
        s.securityLevel = SNMP_SEC_LEVEL_AUTHPRIV;
        s.securityPrivProto = const_cast<oid*>(pproto);
        s.securityPrivProtoLen = plen;
        s.securityPrivKeyLen = USM_PRIV_KU_LEN;
        if (generate_Ku(proto, static_cast<u_int>(len),
                        reinterpret_cast<const u_char*>(t.v3.priv_password.data()),
                        t.v3.priv_password.size(), s.securityPrivKey,
                        &s.securityPrivKeyLen) != SNMPERR_SUCCESS) {
          err = "cannot derive the privacy key";
          return nullptr;
        }
      }
    }
  }
  void* sess = snmp_sess_open(&s);
  // net-snmp honours DONT_PROBE only while opening and clears it afterwards (snmp_sess_add_ex).
  // Without it, every v3 send to an engine not yet known runs a synchronous discovery inside
  // snmp_sess_async_send: the agent's io thread blocked for timeout x (retries + 1) on each
  // poll of an unreachable device, and the answers read by net-snmp directly, past the
  // poller's check of their BER (snmp_ber.h). Set again, the poller's own asynchronous
  // discovery is the only one.
  if (sess && t.version == 3)
    if (netsnmp_session* live = snmp_sess_session(sess)) live->flags |= SNMP_FLAGS_DONT_PROBE;
  // The session holds its own copies; wipe ours.
  std::memset(s.securityAuthKey, 0, sizeof s.securityAuthKey);
  std::memset(s.securityPrivKey, 0, sizeof s.securityPrivKey);
  if (!sess) {
    int liberr = 0, syserr = 0;
    char* msg = nullptr;
    snmp_error(&s, &liberr, &syserr, &msg);
    err = std::string("cannot open a session to ") + peer + ": " + (msg ? msg : "unknown error");
    std::free(msg);
  }
  return sess;
}

void ensure_probe_user() {
  if (usm_get_user(nullptr, 0, "")) return;
  struct usmUser* u = usm_create_user();
  if (!u) return;
  u->name = strdup("");
  u->secName = strdup("");
  u->authProtocol = snmp_duplicate_objid(usmNoAuthProtocol, OID_LENGTH(usmNoAuthProtocol));
  u->authProtocolLen = OID_LENGTH(usmNoAuthProtocol);
  u->privProtocol = snmp_duplicate_objid(usmNoPrivProtocol, OID_LENGTH(usmNoPrivProtocol));
  u->privProtocolLen = OID_LENGTH(usmNoPrivProtocol);
  usm_add_user(u);
}

bool learn_engine_id(snmp_session* s, snmp_pdu* report) {
  if (s->securityEngineIDLen) return true;  // net-snmp already took it from the Report
  if (!report || report->securityEngineIDLen == 0) return false;
  s->securityEngineID =
      static_cast<u_char*>(netsnmp_memdup(report->securityEngineID, report->securityEngineIDLen));
  s->securityEngineIDLen = report->securityEngineIDLen;
  if (!s->contextEngineIDLen) {
    s->contextEngineID =
        static_cast<u_char*>(netsnmp_memdup(report->securityEngineID, report->securityEngineIDLen));
    s->contextEngineIDLen = report->securityEngineIDLen;
  }
  return s->securityEngineID != nullptr;
}

void forget_engine_id(snmp_session* s) {
  SNMP_FREE(s->securityEngineID);
  s->securityEngineIDLen = 0;
  SNMP_FREE(s->contextEngineID);
  s->contextEngineIDLen = 0;
  s->flags &= ~SNMP_FLAGS_USER_CREATED;
}

bool add_trap_user(const SnmpV3Credentials& u, std::string& err) {
  // net-snmp's own createUser line parser localises the keys for the given engine ID.
  static const char* const kAuth[][2] = {
      {"SHA", "SHA"}, {"SHA-256", "SHA-256"}, {"SHA-512", "SHA-512"}};
  std::string line;
  if (!u.engine_id.empty()) {
    std::string hex = u.engine_id;
    if (hex.rfind("0x", 0) != 0) hex = "0x" + hex;
    line += "-e " + hex + " ";
  }
  line += u.user;
  bool auth = false;
  for (const auto& a : kAuth)
    if (u.auth_protocol == a[0]) {
      line += std::string(" ") + a[1] + " \"" + u.auth_password + "\"";
      auth = true;
    }
  if (auth && u.priv_protocol != "none")
    line += std::string(" ") + (u.priv_protocol == "AES-256" ? "AES-256" : "AES") + " \"" +
            u.priv_password + "\"";
  std::vector<char> buf(line.begin(), line.end());
  buf.push_back('\0');
  usm_parse_create_usmUser("createUser", buf.data());
  std::fill(buf.begin(), buf.end(), '\0');
  std::fill(line.begin(), line.end(), '\0');
  if (!usm_get_user(nullptr, 0, u.user.c_str()) && u.engine_id.empty()) {
    // Informs: the user is created for the local engine; nothing else to check cheaply.
  }
  (void)err;
  return true;
}

void remove_trap_user(const SnmpV3Credentials& u) {
  // Informs' users live under the local engine ID, traps' under the sender's.
  std::vector<u_char> engine;
  if (u.engine_id.empty()) {
    engine.resize(64);
    const int n = snmpv3_get_engineID(engine.data(), engine.size());
    engine.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  } else {
    std::string hex = u.engine_id;
    if (hex.rfind("0x", 0) == 0 || hex.rfind("0X", 0) == 0) hex.erase(0, 2);
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
      engine.push_back(static_cast<u_char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  if (struct usmUser* user = usm_get_user(engine.data(), engine.size(), u.user.c_str())) {
    usm_remove_user(user);
    usm_free_user(user);
  }
}

}  // namespace citywatch::agent
