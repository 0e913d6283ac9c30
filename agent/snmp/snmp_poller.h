// SnmpPoller: polls every configured device over SNMP v2c/v3 with net-snmp's single-session
// API, driven by the agent's Boost.Asio io_context, and hands the results to the agent's
// RecordSink as DeviceStatus and InterfaceSample records (docs/snmp.md).
//
// Each device has its own net-snmp session and UDP socket. The socket is watched by an
// asio stream_descriptor (epoll: no FD_SETSIZE limit), and read with snmp_sess_read2 and a
// netsnmp_large_fd_set; retransmissions and timeouts are driven by an asio timer armed from
// snmp_sess_select_info2. Nothing blocks: SNMPv3 engine-ID discovery is an ordinary
// asynchronous probe, and addresses are IP literals. At most max_in_flight polls run at once;
// due polls queue in order.
//
// A poll is: one GET of the system group, then GETBULK walks of ifTable/ifXTable columns in
// parallel (IfWalk). A tooBig or other error answer halves max-repetitions and the request
// is repeated; the reduced value is kept for the device. A poll fails when a request times
// out after 1 + retries sends: the device is then down (one DeviceStatus event), and up again
// at its first answer.
//
// Thread-safety: none. Every net-snmp call happens on the io_context's single thread (the
// library is not thread-safe); stats() is read on the same thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "agent/snmp/counter_tracker.h"
#include "agent/snmp/if_walk.h"
#include "agent/snmp/snmp_config.h"
#include "common/record.h"
#include "common/record_sink.h"
#include "common/status.h"

struct snmp_pdu;
struct snmp_session;

namespace citywatch::agent {

struct SnmpPollerFdSet;

class SnmpPoller {
 public:
  struct Stats {
    std::uint64_t polls = 0;
    std::uint64_t polls_failed = 0;
    std::uint64_t requests = 0;
    std::uint64_t timeouts = 0;  // requests that got no answer after every retry
    std::uint64_t backoffs = 0;  // max-repetitions halved after an error answer
    std::uint64_t reboots = 0;
    std::uint64_t rows_dropped = 0;
    std::uint64_t bad_values = 0;
    std::uint64_t malformed_answers = 0;  // datagrams dropped unread: BER lengths do not fit
    std::uint32_t in_flight = 0;
    std::uint32_t queued = 0;
    std::uint32_t devices_down = 0;
    std::uint32_t rounds_completed = 0;  // times every device had been polled once more
  };

  SnmpPoller(boost::asio::io_context& io, const SnmpConfig& config, RecordSink& sink);
  ~SnmpPoller();
  SnmpPoller(const SnmpPoller&) = delete;
  SnmpPoller& operator=(const SnmpPoller&) = delete;

  // Opens one session per target (needs SnmpLibrary alive). Fails on the first target whose
  // session cannot be opened, naming it.
  Status open();
  // Schedules every target's first poll now.
  void start();
  void stop();

  const Stats& stats() const { return stats_; }

 private:
  struct Target;
  enum class Phase : std::uint8_t { kIdle, kQueued, kProbe, kSystem, kWalk };

  static int on_response(int op, snmp_session* session, int reqid, snmp_pdu* pdu, void* magic);
  void handle(Target& t, int op, snmp_pdu* pdu);
  void schedule(Target& t, std::chrono::steady_clock::time_point when);
  void enqueue(Target& t);
  void pump();
  void begin_poll(Target& t);
  bool send_probe(Target& t);
  bool send_system(Target& t);
  bool send_walk(Target& t);
  bool send(Target& t, snmp_pdu* pdu);
  void wait_readable(Target& t);
  bool drop_malformed(Target& t);
  void arm_timeout(Target& t);
  void finish(Target& t, SnmpCause cause);
  void emit_success(Target& t, std::int64_t now_ns);
  void emit_status(Target& t, std::int64_t now_ns, SnmpEvent event, SnmpCause cause);

  boost::asio::io_context& io_;
  const SnmpConfig& config_;
  RecordSink& sink_;
  std::vector<std::unique_ptr<Target>> targets_;
  std::deque<Target*> queue_;
  std::unique_ptr<SnmpPollerFdSet> fds_;
  Record record_;                   // reused for every record emitted
  std::vector<std::uint8_t> peek_;  // the datagram about to be read, checked first
  std::chrono::steady_clock::time_point started_{};
  Stats stats_;
  std::uint64_t polls_this_round_ = 0;
  bool stopping_ = false;
};

}  // namespace citywatch::agent
