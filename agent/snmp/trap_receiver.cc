#include "agent/snmp/trap_receiver.h"

#include <arpa/inet.h>
#include <net-snmp/library/large_fd_set.h>
#include <net-snmp/library/snmpUDPBaseDomain.h>
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "agent/snmp/snmp_ber.h"
#include "agent/snmp/snmp_library.h"
#include "common/log.h"

namespace citywatch::agent {

namespace asio = boost::asio;

struct TrapReceiverFdSet {
  netsnmp_large_fd_set set;
  TrapReceiverFdSet() { netsnmp_large_fd_set_init(&set, FD_SETSIZE); }
  ~TrapReceiverFdSet() { netsnmp_large_fd_set_cleanup(&set); }
};

namespace {

// SNMPv2-MIB (RFC 3418): sysUpTime.0, snmpTrapOID.0, and the snmpTraps prefix.
const oid kSysUpTime0[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};
const oid kSnmpTrapOid0[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};
const oid kSnmpTraps[] = {1, 3, 6, 1, 6, 3, 1, 1, 5};
// IF-MIB ifEntry columns carried by linkDown/linkUp (RFC 2863 section 6).
const oid kIfEntry[] = {1, 3, 6, 1, 2, 1, 2, 2, 1};

bool prefix(const oid* name, std::size_t len, const oid* p, std::size_t plen) {
  return len >= plen && std::equal(p, p + plen, name);
}

std::uint64_t as_number(const netsnmp_variable_list* v) {
  switch (v->type) {
    case ASN_INTEGER:
    case ASN_COUNTER:
    case ASN_GAUGE:
    case ASN_TIMETICKS:
      return v->val.integer ? static_cast<std::uint64_t>(*v->val.integer) & 0xffffffffu : 0;
    case ASN_COUNTER64:
      return v->val.counter64 ? (static_cast<std::uint64_t>(v->val.counter64->high) << 32) |
                                    (v->val.counter64->low & 0xffffffffu)
                              : 0;
    default:
      return 0;
  }
}

void copy_oid(const oid* o, std::size_t len, std::array<std::uint32_t, 16>& out,
              std::uint8_t& out_len) {
  const std::size_t n = std::min<std::size_t>(len, out.size());
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint32_t>(o[i]);
  out_len = static_cast<std::uint8_t>(n);
}

void render(const netsnmp_variable_list* v, InlineString<31>& out) {
  char buf[96];
  int n = 0;
  switch (v->type) {
    case ASN_INTEGER:
      n = std::snprintf(buf, sizeof buf, "%ld", v->val.integer ? *v->val.integer : 0L);
      break;
    case ASN_COUNTER:
    case ASN_GAUGE:
    case ASN_TIMETICKS:
    case ASN_COUNTER64:
      n = std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(as_number(v)));
      break;
    case ASN_IPADDRESS:
      if (v->val_len == 4)
        n = std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", v->val.string[0], v->val.string[1],
                          v->val.string[2], v->val.string[3]);
      break;
    case ASN_OBJECT_ID: {
      const std::size_t count = v->val_len / sizeof(oid);
      for (std::size_t i = 0; i < count && n < static_cast<int>(sizeof buf) - 12; ++i)
        n += std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n), i ? ".%lu" : "%lu",
                           static_cast<unsigned long>(v->val.objid[i]));
      break;
    }
    case ASN_OCTET_STR: {
      bool printable = true;
      for (std::size_t i = 0; i < v->val_len; ++i)
        printable = printable && v->val.string[i] >= 0x20 && v->val.string[i] < 0x7f;
      if (printable) {
        out.assign({reinterpret_cast<const char*>(v->val.string), v->val_len});
        return;
      }
      for (std::size_t i = 0; i < v->val_len && n < static_cast<int>(sizeof buf) - 3; ++i)
        n += std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n), "%02x",
                           v->val.string[i]);
      break;
    }
    default:
      break;
  }
  out.assign({buf, static_cast<std::size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1))});
}

// Normalised hex of an engine ID: lower case, no "0x".
std::string engine_hex(std::string_view configured) {
  if (configured.starts_with("0x") || configured.starts_with("0X")) configured.remove_prefix(2);
  std::string out(configured);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string engine_hex(const std::uint8_t* id, std::size_t len) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < len; ++i) {
    out += kDigits[id[i] >> 4];
    out += kDigits[id[i] & 15];
  }
  return out;
}

// The security level a configured user implies (RFC 3414 section 3.2 step 5 leaves the
// check to the application): authPriv with both protocols, authNoPriv with auth only.
int required_level(const SnmpV3Credentials& u) {
  if (u.auth_protocol == "none") return SNMP_SEC_LEVEL_NOAUTH;
  return u.priv_protocol == "none" ? SNMP_SEC_LEVEL_AUTHNOPRIV : SNMP_SEC_LEVEL_AUTHPRIV;
}

// USM's refusal counters (RFC 3414 section 5, usmStats). They are process-wide; every
// net-snmp call runs on the io thread, so a difference across one read belongs to it.
struct UsmCounts {
  std::uint32_t unknown_users, unknown_engines, wrong_digests, decryption, time_window, levels,
      parse;
  static UsmCounts now() {
    return {snmp_get_statistic(STAT_USMSTATSUNKNOWNUSERNAMES),
            snmp_get_statistic(STAT_USMSTATSUNKNOWNENGINEIDS),
            snmp_get_statistic(STAT_USMSTATSWRONGDIGESTS),
            snmp_get_statistic(STAT_USMSTATSDECRYPTIONERRORS),
            snmp_get_statistic(STAT_USMSTATSNOTINTIMEWINDOWS),
            snmp_get_statistic(STAT_USMSTATSUNSUPPORTEDSECLEVELS),
            snmp_get_statistic(STAT_SNMPINASNPARSEERRS)};
  }
};

}  // namespace

bool TrapReceiver::peek_usm_header(std::span<const std::uint8_t> d, std::string& user,
                                   std::string& engine_id) {
  // SNMPv3Message ::= SEQUENCE { msgVersion INTEGER, msgGlobalData SEQUENCE,
  //   msgSecurityParameters OCTET STRING, msgData ... }            (RFC 3412 section 6)
  // UsmSecurityParameters ::= SEQUENCE { msgAuthoritativeEngineID OCTET STRING,
  //   msgAuthoritativeEngineBoots INTEGER, msgAuthoritativeEngineTime INTEGER,
  //   msgUserName OCTET STRING, ... }                              (RFC 3414 section 2.4)
  std::span<const std::uint8_t> msg, version, global, params, usm, engine, boots, time, name;
  BerReader outer{d.data(), d.data() + d.size()};
  if (!outer.next(0x30, msg)) return false;
  BerReader m{msg.data(), msg.data() + msg.size()};
  if (!m.next(0x02, version) || version.size() != 1 || version[0] != 3) return false;
  if (!m.next(0x30, global) || !m.next(0x04, params)) return false;
  BerReader p{params.data(), params.data() + params.size()};
  if (!p.next(0x30, usm)) return false;
  BerReader u{usm.data(), usm.data() + usm.size()};
  if (!u.next(0x04, engine) || !u.next(0x02, boots) || !u.next(0x02, time) || !u.next(0x04, name))
    return false;
  user.assign(reinterpret_cast<const char*>(name.data()), name.size());
  engine_id = engine_hex(engine.data(), engine.size());
  return true;
}

TrapReceiver::TrapReceiver(asio::io_context& io, const SnmpConfig& config, RecordSink& sink)
    : io_(io), config_(&config), sink_(sink), fds_(std::make_unique<TrapReceiverFdSet>()) {}

TrapReceiver::~TrapReceiver() { stop(); }

Status TrapReceiver::reconfigure(const SnmpConfig& next) {
  for (const SnmpV3Credentials& old : config_->trap_users)
    if (std::find(next.trap_users.begin(), next.trap_users.end(), old) == next.trap_users.end())
      remove_trap_user(old);
  for (const SnmpV3Credentials& u : next.trap_users) {
    if (std::find(config_->trap_users.begin(), config_->trap_users.end(), u) !=
        config_->trap_users.end())
      continue;
    std::string err;
    if (!add_trap_user(u, err)) return Status::error("snmp traps: user '" + u.user + "': " + err);
  }
  config_ = &next;
  names_.clear();
  learn_names();
  return Status::ok();
}

void TrapReceiver::learn_names() {
  for (const SnmpTarget& t : config_->targets) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, t.address.c_str(), buf) == 1)
      names_.emplace_back(IpAddr::v4(buf), t.name);
    else if (inet_pton(AF_INET6, t.address.c_str(), buf) == 1)
      names_.emplace_back(IpAddr::v6(buf), t.name);
  }
}

Status TrapReceiver::open() {
  learn_names();
  for (const SnmpV3Credentials& u : config_->trap_users) {
    std::string err;
    if (!add_trap_user(u, err)) return Status::error("snmp traps: user '" + u.user + "': " + err);
  }
  const bool v6 = config_->trap_host.find(':') != std::string::npos;
  const std::string spec =
      (v6 ? "udp6:[" + config_->trap_host + "]" : "udp:" + config_->trap_host) + ":" +
      std::to_string(config_->trap_port);
  netsnmp_transport* tr = netsnmp_transport_open_server("snmptrap", spec.c_str());
  if (!tr) return Status::error("snmp traps: cannot listen on " + spec);
  netsnmp_session s;
  snmp_sess_init(&s);
  s.peername = SNMP_DEFAULT_PEERNAME;
  s.version = SNMP_DEFAULT_VERSION;
  s.community_len = SNMP_DEFAULT_COMMUNITY_LEN;
  s.retries = SNMP_DEFAULT_RETRIES;
  s.timeout = SNMP_DEFAULT_TIMEOUT;
  s.callback = &TrapReceiver::on_pdu;
  s.callback_magic = this;
  s.isAuthoritative = SNMP_SESS_UNKNOWNAUTH;
  sess_ = snmp_sess_add(&s, tr, nullptr, nullptr);
  if (!sess_) return Status::error("snmp traps: cannot open a session on " + spec);
  fd_ = tr->sock;
  // The kernel reports datagrams it dropped for a full buffer on each read (SO_RXQ_OVFL).
  const int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  peek_.resize(65536);
  sockaddr_storage ss{};
  socklen_t sl = sizeof ss;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &sl) == 0)
    port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  sock_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd_);
  log::info("snmp: receiving traps and informs on " + config_->trap_host + ":" +
            std::to_string(port_));
  return Status::ok();
}

void TrapReceiver::start() {
  if (sock_) wait_readable();
}

void TrapReceiver::stop() {
  if (stopping_) return;
  stopping_ = true;
  if (sock_) {
    sock_->cancel();
    sock_->release();  // net-snmp closes it
  }
  if (sess_) snmp_sess_close(sess_);
  sess_ = nullptr;
}

void TrapReceiver::wait_readable() {
  sock_->async_wait(asio::posix::stream_descriptor::wait_read,
                    [this](boost::system::error_code ec) {
                      if (ec || stopping_ || !sess_) return;
                      read_one();
                      if (!stopping_) wait_readable();
                    });
}

void TrapReceiver::read_one() {
  // Peek at the datagram first: its USM header names the user when USM refuses it, and the
  // control message carries the kernel's drop counter.
  peek_user_.clear();
  peek_engine_.clear();
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(std::uint32_t))];
  iovec iov{peek_.data(), peek_.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  const ssize_t n = recvmsg(fd_, &mh, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) {
    ++stats_.datagrams;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
        std::uint32_t total = 0;
        std::memcpy(&total, CMSG_DATA(c), sizeof total);
        stats_.kernel_dropped += total - ovfl_last_;  // a running total; wraps like one
        ovfl_last_ = total;
      }
    const std::span<const std::uint8_t> datagram{peek_.data(), static_cast<std::size_t>(n)};
    // net-snmp 5.9 reads past the datagram when an inner length (the USM parameters')
    // overstates what follows: only BER whose every length fits reaches it.
    if (static_cast<std::size_t>(n) == peek_.size() || (mh.msg_flags & MSG_TRUNC) != 0 ||
        !snmp_well_formed(datagram)) {
      ++stats_.malformed;
      std::uint8_t discard;
      (void)recv(fd_, &discard, sizeof discard, MSG_DONTWAIT);  // drops the whole datagram
      return;
    }
    peek_usm_header(datagram, peek_user_, peek_engine_);
  }
  // What became of the datagram, so that one net-snmp drops without a word to us (a PDU type
  // that is no notification: "Bad PDU type received") is still counted.
  const auto outcomes = [this] {
    const Stats& t = stats_;
    return t.accepted + t.bad_community + t.malformed + t.unknown_user + t.wrong_engine +
           t.bad_auth + t.level_too_low + t.decryption_error + t.not_in_time_window;
  };
  const std::uint64_t outcomes_before = outcomes();
  const UsmCounts before = UsmCounts::now();
  // on_pdu reads the error net-snmp leaves for this message only.
  if (snmp_session* ss = snmp_sess_session(sess_)) ss->s_snmp_errno = 0;
  NETSNMP_LARGE_FD_SET(fd_, &fds_->set);
  snmp_sess_read2(sess_, &fds_->set);
  NETSNMP_LARGE_FD_CLR(fd_, &fds_->set);
  const UsmCounts after = UsmCounts::now();
  if (after.unknown_users != before.unknown_users ||
      after.unknown_engines != before.unknown_engines) {
    // USM keys users by (engine ID, name): a configured name from another engine is the
    // wrong engine, any other name an unknown user.
    bool known = false;
    for (const SnmpV3Credentials& u : config_->trap_users) known = known || u.user == peek_user_;
    ++(known ? stats_.wrong_engine : stats_.unknown_user);
  }
  if (after.decryption != before.decryption) ++stats_.decryption_error;
  if (after.time_window != before.time_window) ++stats_.not_in_time_window;
  if (after.levels != before.levels) ++stats_.level_too_low;
  if (after.parse != before.parse) ++stats_.malformed;
  // Wrong digests are counted in on_pdu, where net-snmp reports them.
  if (n > 0 && outcomes() == outcomes_before) ++stats_.malformed;
}

int TrapReceiver::on_pdu(int op, snmp_session* session, int /*reqid*/, snmp_pdu* pdu, void* magic) {
  auto* self = static_cast<TrapReceiver*>(magic);
  if (op != NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE || !pdu || self->stopping_) return 1;
  if (session && session->s_snmp_errno != 0) {
    // USM delivers a message that failed its checks with s_snmp_errno set (for
    // authenticationFailure reporting); such a message is never a trap to believe.
    if (session->s_snmp_errno == SNMPERR_USM_AUTHENTICATIONFAILURE)
      ++self->stats_.bad_auth;
    else
      ++self->stats_.malformed;
    return 1;
  }
  self->handle(pdu);
  return 1;
}

bool TrapReceiver::v3_allowed(const snmp_pdu* pdu) {
  const std::string_view name(pdu->securityName ? pdu->securityName : "",
                              pdu->securityName ? pdu->securityNameLen : 0);
  const std::string engine = engine_hex(pdu->securityEngineID, pdu->securityEngineIDLen);
  const SnmpV3Credentials* user = nullptr;
  bool name_known = false;
  for (const SnmpV3Credentials& u : config_->trap_users) {
    if (u.user != name) continue;
    name_known = true;
    // Informs are sent to this agent's own engine; a user without engine_id is for those.
    if (u.engine_id.empty() ? pdu->command == SNMP_MSG_INFORM : engine_hex(u.engine_id) == engine) {
      user = &u;
      break;
    }
  }
  if (!user) {
    ++(name_known ? stats_.wrong_engine : stats_.unknown_user);
    return false;
  }
  if (pdu->securityModel != SNMP_SEC_MODEL_USM || pdu->securityLevel < required_level(*user)) {
    ++stats_.level_too_low;
    return false;
  }
  return true;
}

bool TrapReceiver::decode(const snmp_pdu* pdu, SnmpTrap& t) {
  t = SnmpTrap{};
  const netsnmp_variable_list* v = pdu->variables;
  if (pdu->command == SNMP_MSG_TRAP) {
    // SNMPv1 (RFC 3584 section 3.1): generic traps map onto snmpTraps.(generic + 1).
    t.version = 1;
    t.uptime_cs = static_cast<std::uint64_t>(pdu->time);
    if (pdu->trap_type != SNMP_TRAP_ENTERPRISESPECIFIC) {
      oid o[OID_LENGTH(kSnmpTraps) + 1];
      std::copy(std::begin(kSnmpTraps), std::end(kSnmpTraps), o);
      o[OID_LENGTH(kSnmpTraps)] = static_cast<oid>(pdu->trap_type + 1);
      copy_oid(o, OID_LENGTH(o), t.trap_oid, t.trap_oid_len);
    } else if (pdu->enterprise) {
      oid o[MAX_OID_LEN];
      const std::size_t n = std::min<std::size_t>(pdu->enterprise_length, MAX_OID_LEN - 2);
      std::copy(pdu->enterprise, pdu->enterprise + n, o);
      o[n] = 0;
      o[n + 1] = static_cast<oid>(pdu->specific_type);
      copy_oid(o, n + 2, t.trap_oid, t.trap_oid_len);
    }
  } else if (pdu->command == SNMP_MSG_TRAP2 || pdu->command == SNMP_MSG_INFORM) {
    // RFC 3416 section 4.2.6: sysUpTime.0 then snmpTrapOID.0 come first.
    t.version = pdu->version == SNMP_VERSION_3 ? 3 : 2;
    t.inform = pdu->command == SNMP_MSG_INFORM;
    if (v && snmp_oid_compare(v->name, v->name_length, kSysUpTime0, OID_LENGTH(kSysUpTime0)) == 0) {
      t.uptime_cs = as_number(v);
      v = v->next_variable;
    }
    if (!v ||
        snmp_oid_compare(v->name, v->name_length, kSnmpTrapOid0, OID_LENGTH(kSnmpTrapOid0)) != 0 ||
        v->type != ASN_OBJECT_ID)
      return false;
    copy_oid(v->val.objid, v->val_len / sizeof(oid), t.trap_oid, t.trap_oid_len);
    v = v->next_variable;
  } else {
    return false;
  }
  if (t.trap_oid_len == OID_LENGTH(kSnmpTraps) + 1 &&
      std::equal(std::begin(kSnmpTraps), std::end(kSnmpTraps), t.trap_oid.begin())) {
    switch (t.trap_oid[OID_LENGTH(kSnmpTraps)]) {
      case 1:
        t.kind = SnmpTrapKind::kColdStart;
        break;
      case 2:
        t.kind = SnmpTrapKind::kWarmStart;
        break;
      case 3:
        t.kind = SnmpTrapKind::kLinkDown;
        break;
      case 4:
        t.kind = SnmpTrapKind::kLinkUp;
        break;
      case 5:
        t.kind = SnmpTrapKind::kAuthenticationFailure;
        break;
      default:
        break;
    }
  }
  for (; v; v = v->next_variable) {
    if (t.varbind_count < 255) ++t.varbind_count;
    if (prefix(v->name, v->name_length, kIfEntry, OID_LENGTH(kIfEntry)) &&
        v->name_length == OID_LENGTH(kIfEntry) + 2) {
      const oid column = v->name[OID_LENGTH(kIfEntry)];
      const std::uint64_t value = as_number(v);
      if (column == 1) t.if_index = static_cast<std::uint32_t>(value);
      if (column == 7)
        t.admin_status = static_cast<std::uint8_t>(std::min<std::uint64_t>(value, 255));
      if (column == 8)
        t.oper_status = static_cast<std::uint8_t>(std::min<std::uint64_t>(value, 255));
      // Without an ifIndex varbind, the instance of any ifEntry column names the interface.
      if (t.if_index == 0) t.if_index = static_cast<std::uint32_t>(v->name[v->name_length - 1]);
    }
    if (t.varbinds_len < SnmpTrap::kMaxVarbinds) {
      SnmpVarbind& b = t.varbinds[t.varbinds_len++];
      copy_oid(v->name, v->name_length, b.oid, b.oid_len);
      b.type = v->type;
      render(v, b.value);
    }
  }
  return true;
}

void TrapReceiver::handle(snmp_pdu* pdu) {
  if (pdu->version == SNMP_VERSION_3 && !v3_allowed(pdu)) return;
  if (pdu->version != SNMP_VERSION_3 && !config_->trap_communities.empty()) {
    const std::string_view c(reinterpret_cast<const char*>(pdu->community), pdu->community_len);
    if (std::find(config_->trap_communities.begin(), config_->trap_communities.end(), c) ==
        config_->trap_communities.end()) {
      ++stats_.bad_community;
      return;
    }
  }
  SnmpTrap& t = record_.body.emplace<SnmpTrap>();
  if (!decode(pdu, t)) {
    ++stats_.malformed;
    return;
  }
  // The sender: for v1 the agent-addr field, otherwise the datagram's source.
  if (pdu->command == SNMP_MSG_TRAP &&
      pdu->agent_addr[0] | pdu->agent_addr[1] | pdu->agent_addr[2] | pdu->agent_addr[3]) {
    t.device = IpAddr::v4(pdu->agent_addr);
  } else if (pdu->transport_data &&
             pdu->transport_data_length >= static_cast<int>(sizeof(netsnmp_indexed_addr_pair))) {
    const auto* ap = static_cast<const netsnmp_indexed_addr_pair*>(pdu->transport_data);
    if (ap->remote_addr.sa.sa_family == AF_INET)
      t.device = IpAddr::v4(reinterpret_cast<const std::uint8_t*>(&ap->remote_addr.sin.sin_addr));
    else if (ap->remote_addr.sa.sa_family == AF_INET6)
      t.device = IpAddr::v6(reinterpret_cast<const std::uint8_t*>(&ap->remote_addr.sin6.sin6_addr));
  }
  for (const auto& [addr, name] : names_)
    if (addr == t.device) {
      t.target.assign(name);
      break;
    }
  record_.event_time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  sink_.add(record_);
  ++stats_.accepted;

  if (pdu->command == SNMP_MSG_INFORM) {
    // RFC 3416 section 4.2.7: an inform is acknowledged with a Response carrying its varbinds.
    ++stats_.informs;
    netsnmp_pdu* reply = snmp_clone_pdu(pdu);
    if (reply) {
      reply->command = SNMP_MSG_RESPONSE;
      reply->errstat = 0;
      reply->errindex = 0;
      if (!snmp_sess_send(sess_, reply)) snmp_free_pdu(reply);
    }
  }
}

}  // namespace citywatch::agent
