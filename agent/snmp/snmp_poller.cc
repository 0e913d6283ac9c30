#include "agent/snmp/snmp_poller.h"

#include <arpa/inet.h>
#include <net-snmp/library/large_fd_set.h>
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstring>

#include "agent/snmp/snmp_ber.h"
#include "agent/snmp/snmp_library.h"
#include "common/log.h"

namespace citywatch::agent {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// SNMPv2-MIB system group (RFC 3418 section 2): sysDescr, sysObjectID, sysUpTime, sysName.
const oid kSysDescr[] = {1, 3, 6, 1, 2, 1, 1, 1, 0};
const oid kSysObjectId[] = {1, 3, 6, 1, 2, 1, 1, 2, 0};
const oid kSysUpTime[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};
const oid kSysName[] = {1, 3, 6, 1, 2, 1, 1, 5, 0};

constexpr std::uint64_t kTimeTicksWrap = 1ull << 32;  // sysUpTime is TimeTicks (32 bits)

std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool same_oid(const netsnmp_variable_list* v, const oid* o, std::size_t n) {
  return snmp_oid_compare(v->name, v->name_length, o, n) == 0;
}

const char* cause_name(SnmpCause c) {
  switch (c) {
    case SnmpCause::kNone:
      return "ok";
    case SnmpCause::kTimeout:
      return "timeout";
    case SnmpCause::kAuth:
      return "auth";
    case SnmpCause::kError:
      return "error";
    case SnmpCause::kSend:
      return "send";
    case SnmpCause::kBadReply:
      return "bad_reply";
  }
  return "unknown";
}

}  // namespace

struct SnmpPoller::Target {
  Target(asio::io_context& io, const SnmpTarget& c) : cfg(c), due(io), timeout(io) {}

  // Per-interface state kept between polls.
  struct IfState {
    std::uint32_t if_index = 0;
    std::uint8_t oper = 0;
    std::uint64_t discontinuity_time = 0;
    CounterTracker counters;
  };
  enum class Reach : std::uint8_t { kUnknown, kUp, kDown };

  const SnmpTarget& cfg;
  SnmpPoller* poller = nullptr;
  IpAddr addr;
  void* sess = nullptr;
  int fd = -1;
  std::unique_ptr<asio::posix::stream_descriptor> sock;
  asio::steady_timer due;
  asio::steady_timer timeout;
  Phase phase = Phase::kIdle;
  int max_rep = 1;
  int report_retries = 0;
  bool engine_known = false;
  IfWalk walk;
  std::vector<IfState> states;
  std::vector<IfState> next_states;
  Reach reach = Reach::kUnknown;
  std::uint16_t failures = 0;
  bool have_uptime = false;
  std::uint64_t last_uptime_cs = 0;
  Clock::time_point last_answer{};
  Clock::time_point poll_start{};
  Clock::time_point next_due{};
  // This poll's system group.
  std::uint64_t uptime_cs = 0;
  const char* last_error = "";  // net-snmp's text for a failed send: never holds a secret
  ShortName sys_name;
  InlineString<127> sys_descr;
  LongName sys_object_id;
};

// One reusable large fd set: net-snmp's read and select_info calls take one, and a plain
// fd_set would cap descriptors at FD_SETSIZE. netsnmp_large_fd_set grows on demand.
struct SnmpPollerFdSet {
  netsnmp_large_fd_set set;
  SnmpPollerFdSet() { netsnmp_large_fd_set_init(&set, FD_SETSIZE); }
  ~SnmpPollerFdSet() { netsnmp_large_fd_set_cleanup(&set); }
};

SnmpPoller::SnmpPoller(asio::io_context& io, const SnmpConfig& config, RecordSink& sink)
    : io_(io), config_(config), sink_(sink), fds_(std::make_unique<SnmpPollerFdSet>()) {}

SnmpPoller::~SnmpPoller() { stop(); }

Status SnmpPoller::open() {
  for (const SnmpTarget& cfg : config_.targets) {
    auto t = std::make_unique<Target>(io_, cfg);
    t->poller = this;
    t->max_rep = cfg.bulk_repetitions;
    unsigned char buf[16];
    if (inet_pton(AF_INET, cfg.address.c_str(), buf) == 1)
      t->addr = IpAddr::v4(buf);
    else if (inet_pton(AF_INET6, cfg.address.c_str(), buf) == 1)
      t->addr = IpAddr::v6(buf);
    std::string err;
    t->sess = open_client_session(cfg, &SnmpPoller::on_response, t.get(), err);
    if (!t->sess) return Status::error("snmp: target '" + cfg.name + "': " + err);
    netsnmp_transport* tr = snmp_sess_transport(t->sess);
    if (!tr || tr->sock < 0)
      return Status::error("snmp: target '" + cfg.name + "': session has no socket");
    t->fd = tr->sock;
    t->sock = std::make_unique<asio::posix::stream_descriptor>(io_, t->fd);
    t->walk.begin(cfg.max_interfaces);
    targets_.push_back(std::move(t));
  }
  return Status::ok();
}

void SnmpPoller::start() {
  const auto now = Clock::now();
  started_ = now;
  for (auto& t : targets_) {
    wait_readable(*t);
    t->next_due = now;
    enqueue(*t);
  }
  pump();
}

void SnmpPoller::stop() {
  if (stopping_) return;
  stopping_ = true;
  for (auto& t : targets_) {
    t->due.cancel();
    t->timeout.cancel();
    // The socket belongs to net-snmp: hand it back before snmp_sess_close() closes it.
    if (t->sock) {
      t->sock->cancel();
      t->sock->release();
    }
    if (t->sess) snmp_sess_close(t->sess);
    t->sess = nullptr;
  }
  queue_.clear();
}

void SnmpPoller::wait_readable(Target& t) {
  t.sock->async_wait(asio::posix::stream_descriptor::wait_read,
                     [this, &t](boost::system::error_code ec) {
                       if (ec || stopping_ || !t.sess) return;
                       if (!drop_malformed(t)) {
                         netsnmp_large_fd_set& fds = fds_->set;
                         NETSNMP_LARGE_FD_SET(t.fd, &fds);
                         snmp_sess_read2(t.sess, &fds);  // runs on_response for a matching reply
                         NETSNMP_LARGE_FD_CLR(t.fd, &fds);
                       }
                       if (!stopping_) wait_readable(t);
                     });
}

// net-snmp reads past a datagram whose inner lengths overstate what follows (snmp_ber.h), and
// what reaches a poller's socket is the device's to choose (or a spoofer's): a datagram goes
// to net-snmp only when every length fits. Anything else is dropped unread and counted.
bool SnmpPoller::drop_malformed(Target& t) {
  // Only a datagram is looked at: a pending socket error (an ICMP unreachable) stays for
  // net-snmp's own read, as before.
  int pending = 0;
  if (::ioctl(t.fd, FIONREAD, &pending) != 0 || pending <= 0) return false;
  if (peek_.empty()) peek_.resize(65536);  // larger than any UDP datagram
  const ssize_t n = ::recv(t.fd, peek_.data(), peek_.size(), MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
  if (n <= 0) return false;  // nothing there, or an error net-snmp's read will report
  if (static_cast<std::size_t>(n) < peek_.size() &&
      snmp_well_formed({peek_.data(), static_cast<std::size_t>(n)}))
    return false;
  std::uint8_t discard;
  (void)::recv(t.fd, &discard, sizeof discard, MSG_DONTWAIT);  // drops the whole datagram
  ++stats_.malformed_answers;
  return true;
}

void SnmpPoller::arm_timeout(Target& t) {
  if (!t.sess) return;
  netsnmp_large_fd_set& fds = fds_->set;
  int numfds = 0;
  int block = 1;  // in: no upper bound of our own; out: 0 when a retransmission is pending
  timeval tv{};
  snmp_sess_select_info2(t.sess, &numfds, &fds, &tv, &block);
  NETSNMP_LARGE_FD_CLR(t.fd, &fds);
  if (block) return;
  t.timeout.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec));
  t.timeout.async_wait([this, &t](boost::system::error_code ec) {
    if (ec || stopping_ || !t.sess) return;
    snmp_sess_timeout(t.sess);  // resends, or reports TIMED_OUT to on_response
    arm_timeout(t);
  });
}

void SnmpPoller::schedule(Target& t, Clock::time_point when) {
  t.phase = Phase::kIdle;
  t.due.expires_at(when);
  t.due.async_wait([this, &t](boost::system::error_code ec) {
    if (ec || stopping_) return;
    enqueue(t);
    pump();
  });
}

void SnmpPoller::enqueue(Target& t) {
  t.phase = Phase::kQueued;
  queue_.push_back(&t);
  ++stats_.queued;
}

void SnmpPoller::pump() {
  while (!queue_.empty() && stats_.in_flight < config_.max_in_flight && !stopping_) {
    Target* t = queue_.front();
    queue_.pop_front();
    --stats_.queued;
    ++stats_.in_flight;
    begin_poll(*t);
  }
}

void SnmpPoller::begin_poll(Target& t) {
  t.poll_start = Clock::now();
  t.report_retries = 0;
  const bool ok = t.cfg.version == 3 && !t.engine_known ? send_probe(t) : send_system(t);
  if (!ok) finish(t, SnmpCause::kSend);
}

bool SnmpPoller::send(Target& t, snmp_pdu* pdu) {
  ++stats_.requests;
  if (snmp_sess_async_send(t.sess, pdu, &SnmpPoller::on_response, &t) == 0) {
    snmp_free_pdu(pdu);
    const netsnmp_session* s = snmp_sess_session(t.sess);
    t.last_error = snmp_api_errstring(s ? s->s_snmp_errno : SNMPERR_GENERR);
    return false;
  }
  arm_timeout(t);
  return true;
}

bool SnmpPoller::send_probe(Target& t) {
  // RFC 3414 section 4: a request with an unknown engine ID (and no authentication) is
  // answered by a Report that carries the device's snmpEngineID.
  ensure_probe_user();
  t.phase = Phase::kProbe;
  netsnmp_pdu* pdu = snmp_pdu_create(SNMP_MSG_GET);
  pdu->version = SNMP_VERSION_3;
  pdu->securityName = strdup("");
  pdu->securityNameLen = 0;
  pdu->securityLevel = SNMP_SEC_LEVEL_NOAUTH;
  pdu->securityModel = SNMP_SEC_MODEL_USM;
  return send(t, pdu);
}

bool SnmpPoller::send_system(Target& t) {
  t.phase = Phase::kSystem;
  netsnmp_pdu* pdu = snmp_pdu_create(SNMP_MSG_GET);
  snmp_add_null_var(pdu, kSysDescr, OID_LENGTH(kSysDescr));
  snmp_add_null_var(pdu, kSysObjectId, OID_LENGTH(kSysObjectId));
  snmp_add_null_var(pdu, kSysUpTime, OID_LENGTH(kSysUpTime));
  snmp_add_null_var(pdu, kSysName, OID_LENGTH(kSysName));
  return send(t, pdu);
}

bool SnmpPoller::send_walk(Target& t) {
  t.phase = Phase::kWalk;
  netsnmp_pdu* pdu = snmp_pdu_create(SNMP_MSG_GETBULK);
  pdu->non_repeaters = 0;
  pdu->max_repetitions = t.max_rep;
  t.walk.for_each_request_oid(
      [pdu](const unsigned long* o, std::size_t len) { snmp_add_null_var(pdu, o, len); });
  return send(t, pdu);
}

int SnmpPoller::on_response(int op, snmp_session* /*session*/, int /*reqid*/, snmp_pdu* pdu,
                            void* magic) {
  auto* t = static_cast<Target*>(magic);
  if (t && t->poller && !t->poller->stopping_) t->poller->handle(*t, op, pdu);
  return 1;
}

// Runs inside net-snmp (read or timeout processing): the PDU is read here, and the next
// request is posted, so net-snmp's request list is never changed under its own feet.
void SnmpPoller::handle(Target& t, int op, snmp_pdu* pdu) {
  if (t.phase != Phase::kProbe && t.phase != Phase::kSystem && t.phase != Phase::kWalk) return;
  auto next = [this, &t](bool (SnmpPoller::*step)(Target&)) {
    asio::post(io_, [this, &t, step] {
      if (stopping_) return;
      if (!(this->*step)(t)) finish(t, SnmpCause::kSend);
    });
  };
  auto fail = [this, &t](SnmpCause c) {
    asio::post(io_, [this, &t, c] {
      if (!stopping_) finish(t, c);
    });
  };
  if (op == NETSNMP_CALLBACK_OP_TIMED_OUT) {
    ++stats_.timeouts;
    return fail(SnmpCause::kTimeout);
  }
  // net-snmp announces a security-level problem (SEC_ERROR) before it either passes the
  // Report on as a received message or resends by itself (RESEND, after notInTimeWindow):
  // the request lives on either way, so neither ends the poll.
  if (op == NETSNMP_CALLBACK_OP_RESEND || op == NETSNMP_CALLBACK_OP_SEC_ERROR) return;
  if (op != NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE || !pdu) return fail(SnmpCause::kSend);
  t.last_answer = Clock::now();

  if (t.phase == Phase::kProbe) {
    netsnmp_session* s = snmp_sess_session(t.sess);
    if (!learn_engine_id(s, pdu)) return fail(SnmpCause::kBadReply);
    if (usm_create_user_from_session(s) != SNMPERR_SUCCESS) return fail(SnmpCause::kAuth);
    t.engine_known = true;
    return next(&SnmpPoller::send_system);
  }
  if (pdu->command == SNMP_MSG_REPORT) {
    // notInTimeWindow right after discovery is how the engine's clock is learnt (RFC 3414
    // section 3.2 step 7); anything else is a credentials problem.
    const int type = snmpv3_get_report_type(pdu);
    if (type == SNMPERR_NOT_IN_TIME_WINDOW && t.report_retries++ < 2)
      return next(t.phase == Phase::kSystem ? &SnmpPoller::send_system : &SnmpPoller::send_walk);
    return fail(SnmpCause::kAuth);
  }
  if (pdu->command != SNMP_MSG_RESPONSE) return fail(SnmpCause::kBadReply);

  if (t.phase == Phase::kSystem) {
    if (pdu->errstat != SNMP_ERR_NOERROR) return fail(SnmpCause::kError);
    bool uptime = false;
    t.sys_name = {};
    t.sys_descr = {};
    t.sys_object_id = {};
    for (netsnmp_variable_list* v = pdu->variables; v; v = v->next_variable) {
      if (same_oid(v, kSysUpTime, OID_LENGTH(kSysUpTime)) && v->type == ASN_TIMETICKS) {
        t.uptime_cs = static_cast<std::uint64_t>(*v->val.integer) & 0xffffffffu;
        uptime = true;
      } else if (same_oid(v, kSysName, OID_LENGTH(kSysName)) && v->type == ASN_OCTET_STR) {
        t.sys_name.assign({reinterpret_cast<const char*>(v->val.string), v->val_len});
      } else if (same_oid(v, kSysDescr, OID_LENGTH(kSysDescr)) && v->type == ASN_OCTET_STR) {
        t.sys_descr.assign({reinterpret_cast<const char*>(v->val.string), v->val_len});
      } else if (same_oid(v, kSysObjectId, OID_LENGTH(kSysObjectId)) && v->type == ASN_OBJECT_ID) {
        char buf[LongName::kCapacity + 1];
        std::size_t n = 0;
        const std::size_t count = v->val_len / sizeof(oid);
        for (std::size_t i = 0; i < count && n < sizeof buf; ++i) {
          const int w = std::snprintf(buf + n, sizeof buf - n, i ? ".%lu" : "%lu",
                                      static_cast<unsigned long>(v->val.objid[i]));
          if (w < 0) break;
          n += static_cast<std::size_t>(w);
        }
        t.sys_object_id.assign({buf, std::min(n, sizeof buf - 1)});
      }
    }
    if (!uptime) return fail(SnmpCause::kBadReply);
    t.walk.begin(t.cfg.max_interfaces);
    return next(&SnmpPoller::send_walk);
  }

  // kWalk
  if (pdu->errstat != SNMP_ERR_NOERROR) {
    // RFC 3416 section 4.2.3: tooBig (or a device's genErr on a large GETBULK) means ask for
    // less. The smaller value sticks for this device.
    if (t.max_rep > 1) {
      t.max_rep = std::max(1, t.max_rep / 2);
      ++stats_.backoffs;
      return next(&SnmpPoller::send_walk);
    }
    return fail(SnmpCause::kError);
  }
  if (!pdu->variables) return fail(SnmpCause::kBadReply);
  t.walk.apply(pdu->variables);
  if (!t.walk.done()) return next(&SnmpPoller::send_walk);
  fail(SnmpCause::kNone);  // done: finish() on the io loop, outside net-snmp
}

void SnmpPoller::finish(Target& t, SnmpCause cause) {
  if (t.phase == Phase::kIdle || t.phase == Phase::kQueued) return;
  t.timeout.cancel();
  const std::int64_t now_ns = wall_ns();
  ++stats_.polls;
  if (cause == SnmpCause::kNone) {
    emit_success(t, now_ns);
  } else {
    ++stats_.polls_failed;
    if (t.failures < 0xffff) ++t.failures;
    if (t.reach != Target::Reach::kDown) {
      t.reach = Target::Reach::kDown;
      ++stats_.devices_down;
      log::warning("snmp: device '" + t.cfg.name + "' (" + t.cfg.address +
                   ") down: " + cause_name(cause) +
                   (cause == SnmpCause::kSend ? std::string(" (") + t.last_error + ")" : ""));
      emit_status(t, now_ns, SnmpEvent::kDown, cause);
    }
    emit_status(t, now_ns, SnmpEvent::kNone, cause);
    if (cause == SnmpCause::kAuth && t.cfg.version == 3) {
      // The device may have been replaced (new engine ID): discover again next time.
      t.engine_known = false;
      netsnmp_session* s = snmp_sess_session(t.sess);
      forget_engine_id(s);
    }
  }
  const IfWalk::Stats& ws = t.walk.stats();
  stats_.rows_dropped += ws.rows_dropped;
  stats_.bad_values += ws.bad_values;
  t.walk.stats() = {};

  --stats_.in_flight;
  if (++polls_this_round_ == targets_.size()) {
    polls_this_round_ = 0;
    ++stats_.rounds_completed;
    if (stats_.rounds_completed == 1)
      log::info("snmp: first round of " + std::to_string(targets_.size()) +
                " device(s) polled in " +
                std::to_string(
                    std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_)
                        .count()) +
                " ms");
  }
  t.next_due += t.cfg.interval;
  const auto now = Clock::now();
  if (t.next_due < now) t.next_due = now;  // the poll overran its interval: no burst after
  schedule(t, t.next_due);
  pump();
}

void SnmpPoller::emit_status(Target& t, std::int64_t now_ns, SnmpEvent event, SnmpCause cause) {
  record_.event_time_ns = now_ns;
  DeviceStatus& d = record_.body.emplace<DeviceStatus>();
  d.device = t.addr;
  d.target.assign(t.cfg.name);
  d.site.assign(t.cfg.site);
  d.name = t.sys_name;
  d.descr = t.sys_descr;
  d.object_id = t.sys_object_id;
  d.uptime_cs = t.have_uptime ? t.last_uptime_cs : 0;
  d.poll_duration_us = static_cast<std::uint32_t>(std::min<std::int64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t.poll_start).count(),
      0xffffffff));
  d.interfaces = static_cast<std::uint16_t>(std::min<std::size_t>(t.states.size(), 0xffff));
  d.consecutive_failures = t.failures;
  d.reachable = t.reach == Target::Reach::kUp;
  d.cause = cause;
  d.event = event;
  sink_.add(record_);
}

void SnmpPoller::emit_success(Target& t, std::int64_t now_ns) {
  // A reboot: sysUpTime went backwards. TimeTicks wrap after 497 days; a value that would
  // have passed 2^32 since the last answer is a wrap, not a reboot.
  bool reboot = false;
  if (t.have_uptime && t.uptime_cs < t.last_uptime_cs) {
    const auto elapsed_cs = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t.poll_start).count() /
            10 +
        std::chrono::duration_cast<std::chrono::milliseconds>(t.cfg.interval).count() / 10 * 2);
    reboot = t.last_uptime_cs + elapsed_cs < kTimeTicksWrap;
  }
  t.failures = 0;
  t.have_uptime = true;
  t.last_uptime_cs = t.uptime_cs;
  const bool was_up = t.reach == Target::Reach::kUp;
  if (t.reach == Target::Reach::kDown) --stats_.devices_down;
  t.reach = Target::Reach::kUp;

  // Interface state: keep the entries of interfaces still there, in ifIndex order.
  const auto& rows = t.walk.rows();
  t.next_states.clear();
  std::size_t j = 0;
  if (!was_up) {
    if (t.states.empty() && !reboot)
      log::info("snmp: device '" + t.cfg.name + "' (" + t.cfg.address +
                ") up: " + std::to_string(rows.size()) + " interface(s)");
    else
      log::info("snmp: device '" + t.cfg.name + "' (" + t.cfg.address + ") up again");
    emit_status(t, now_ns, SnmpEvent::kUp, SnmpCause::kNone);
  }
  if (reboot) {
    ++stats_.reboots;
    log::warning("snmp: device '" + t.cfg.name + "' (" + t.cfg.address +
                 ") rebooted: sysUpTime went backwards; counters restart");
    emit_status(t, now_ns, SnmpEvent::kReboot, SnmpCause::kNone);
  }

  record_.event_time_ns = now_ns;
  for (const IfWalk::Row& r : rows) {
    while (j < t.states.size() && t.states[j].if_index < r.if_index) ++j;
    Target::IfState st;
    const bool known = j < t.states.size() && t.states[j].if_index == r.if_index;
    if (known) st = t.states[j];
    st.if_index = r.if_index;

    using C = IfWalk::Col;
    CounterTracker::Values raw{};
    CounterTracker::Wide wide{};
    // Prefer the 64-bit column when the device has it (RFC 2863 section 3.1.6).
    auto pick = [&r, &raw, &wide](int i, C hc, C low) {
      if (r.has(hc)) {
        raw[i] = r.v[hc];
        wide[i] = true;
      } else {
        raw[i] = r.v[low];
      }
    };
    pick(0, C::kHCInOctets, C::kInOctets);
    pick(1, C::kHCOutOctets, C::kOutOctets);
    pick(2, C::kHCInUcast, C::kInUcast);
    pick(3, C::kHCOutUcast, C::kOutUcast);
    pick(4, C::kHCInMcast, C::kInMcast);
    pick(5, C::kHCOutMcast, C::kOutMcast);
    // A device without ifXTable counts its non-unicast packets only in the deprecated
    // ifIn/OutNUcastPkts: they stand in for multicast + broadcast, so packet totals mean the
    // same on every device (the multicast/broadcast series stay 0 there).
    const bool in_nucast = !r.has(C::kHCInMcast) && !r.has(C::kInMcast) && r.has(C::kInNUcast);
    const bool out_nucast = !r.has(C::kHCOutMcast) && !r.has(C::kOutMcast) && r.has(C::kOutNUcast);
    if (in_nucast) raw[4] = r.v[C::kInNUcast];
    if (out_nucast) raw[5] = r.v[C::kOutNUcast];
    pick(6, C::kHCInBcast, C::kInBcast);
    pick(7, C::kHCOutBcast, C::kOutBcast);
    raw[8] = r.v[C::kInErrors];
    raw[9] = r.v[C::kOutErrors];
    raw[10] = r.v[C::kInDiscards];
    raw[11] = r.v[C::kOutDiscards];
    const bool disc_changed = known && r.has(C::kDiscontinuityTime) &&
                              r.v[C::kDiscontinuityTime] != st.discontinuity_time;
    st.discontinuity_time = r.v[C::kDiscontinuityTime];
    CounterTracker::Values acc{};
    const bool reset = st.counters.update(raw, wide, reboot || disc_changed, acc);

    InterfaceSample& s = record_.body.emplace<InterfaceSample>();
    s.device = t.addr;
    s.target.assign(t.cfg.name);
    s.if_index = r.if_index;
    s.if_type = static_cast<std::uint32_t>(r.v[C::kType]);
    s.if_name = r.name;
    s.if_alias = r.alias;
    s.if_descr = r.descr;
    s.in_octets = acc[0];
    s.out_octets = acc[1];
    s.in_packets = acc[2] + acc[4] + acc[6];
    s.out_packets = acc[3] + acc[5] + acc[7];
    s.in_multicast = in_nucast ? 0 : acc[4];
    s.out_multicast = out_nucast ? 0 : acc[5];
    s.in_broadcast = acc[6];
    s.out_broadcast = acc[7];
    s.in_errors = acc[8];
    s.out_errors = acc[9];
    s.in_discards = acc[10];
    s.out_discards = acc[11];
    s.speed_bps = r.has(C::kHighSpeed) && r.v[C::kHighSpeed] > 0 ? r.v[C::kHighSpeed] * 1000000
                                                                 : r.v[C::kSpeed];
    s.admin_status = static_cast<std::uint8_t>(std::min<std::uint64_t>(r.v[C::kAdminStatus], 255));
    s.oper_status = static_cast<std::uint8_t>(std::min<std::uint64_t>(r.v[C::kOperStatus], 255));
    s.flags = static_cast<std::uint8_t>((wide[0] ? InterfaceSample::kCounters64 : 0) |
                                        (reset ? InterfaceSample::kCountersReset : 0));
    if (known && st.oper != s.oper_status) {
      s.event = SnmpEvent::kOperChange;
      s.prev_oper_status = st.oper;
    }
    st.oper = s.oper_status;
    t.next_states.push_back(st);
    sink_.add(record_);
  }
  t.states.swap(t.next_states);
  emit_status(t, now_ns, SnmpEvent::kNone, SnmpCause::kNone);
}

}  // namespace citywatch::agent
