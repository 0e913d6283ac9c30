// libFuzzer target: one UDP datagram as the agent's trap receiver gets it. The bytes go
// through net-snmp's own message parser (v1, v2c and v3 with the USM users configured as in
// tests/integration/snmp_trap_auth.sh: authPriv SHA/AES and authNoPriv SHA for one engine),
// after the receiver's BER check (snmp_well_formed), then, when they parse as a
// PDU, through TrapReceiver::decode (the v1 -> v2 trap mapping included) and, as though they
// answered the poller's GETBULK, through the IF-MIB walk (IfWalk::apply); the raw bytes also
// go through TrapReceiver::peek_usm_header. The poller checks its answers with the same
// snmp_well_formed before net-snmp parses them.
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/snmp/if_walk.h"
#include "agent/snmp/snmp_ber.h"
#include "agent/snmp/snmp_library.h"
#include "agent/snmp/trap_receiver.h"

namespace {

netsnmp_session* session() {
  static citywatch::agent::SnmpLibrary library("citywatch-fuzz");
  static netsnmp_session* s = [] {
    for (const auto& [user, priv] : {std::pair{"cwpriv", true}, std::pair{"cwauth", false}}) {
      citywatch::agent::SnmpV3Credentials u;
      u.user = user;
      u.engine_id = "8000000001020304aabbcc";
      u.auth_protocol = "SHA";
      u.auth_password = "cw-trap-auth";
      if (priv) {
        u.priv_protocol = "AES";
        u.priv_password = "cw-trap-priv";
      }
      std::string err;
      citywatch::agent::add_trap_user(u, err);
    }
    static netsnmp_session sess;
    snmp_sess_init(&sess);
    sess.version = SNMP_DEFAULT_VERSION;
    sess.isAuthoritative = SNMP_SESS_UNKNOWNAUTH;
    return &sess;
  }();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  netsnmp_session* s = session();
  std::string user, engine;
  // The receiver hands net-snmp only datagrams whose BER lengths all fit (net-snmp 5.9.3
  // reads past the buffer otherwise); the fuzzer follows the same path.
  if (!citywatch::agent::snmp_well_formed({data, size})) return 0;
  citywatch::agent::TrapReceiver::peek_usm_header({data, size}, user, engine);
  std::vector<u_char> buf(data, data + size);  // net-snmp parses in place
  netsnmp_pdu* pdu = snmp_pdu_create(0);
  if (!pdu) return 0;
  if (snmp_parse(nullptr, s, pdu, buf.data(), buf.size()) == SNMPERR_SUCCESS) {
    citywatch::SnmpTrap trap;
    citywatch::agent::TrapReceiver::decode(pdu, trap);
    // The same varbinds as a device's answer to the poller's GETBULK: the walk takes them as
    // often as they keep it going, and must end within its bound.
    citywatch::agent::IfWalk walk;
    walk.begin(4);
    int answers = 0;
    while (!walk.done() && answers++ < 64) {
      walk.for_each_request_oid([](const unsigned long*, std::size_t) {});
      walk.apply(pdu->variables);
    }
    if (walk.rows().size() > 4) __builtin_trap();
  }
  snmp_free_pdu(pdu);
  return 0;
}
