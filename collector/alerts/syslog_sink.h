// SyslogSink: one RFC 5424 message per alert state change (firing, resolved), over UDP
// (RFC 5426, one message per datagram) or TCP (RFC 6587 section 3.4.1 octet counting).
//
//   <PRI>1 TIMESTAMP HOST citywatch-collector PID firing [citywatch@32473 rule=".." ...] summary
//
// PRI = facility x 8 + severity (RFC 5424 section 6.2.1): critical -> 2 (crit), warning -> 4,
// info -> 6. 32473 is the example enterprise number RFC 5612 reserves for documentation;
// structured data parameters are escaped as RFC 5424 section 6.3.3 requires. Over TCP the
// messages queue (bounded, oldest dropped and counted) and one coroutine writes them,
// reconnecting with backoff; UDP sends are non-blocking and a failure is counted.
//
// Thread-safety: io thread only. Owned by collector/app; stop() before destruction.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include "collector/alerts/alert_metrics.h"
#include "collector/alerts/alert_sink.h"
#include "common/status.h"

namespace citywatch::collector {

struct SyslogOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 514;
  bool tcp = false;
  int facility = 16;  // local0
  std::size_t max_queue = 10000;
  // TCP: the most a connect or the write of one message may take. A receiver that accepts and
  // then stops reading would otherwise hold the sink (and every later alert) for ever.
  std::chrono::nanoseconds io_timeout = std::chrono::seconds(10);
};

// The RFC 5424 message text (no framing).
std::string syslog_message(const Alert& a, AlertEvent e, std::int64_t wall_ns, int facility,
                           const std::string& hostname, int pid);

class SyslogSink : public AlertSink {
 public:
  SyslogSink(boost::asio::io_context& io, SyslogOptions options, AlertMetrics& metrics);
  ~SyslogSink() override;
  Status start();
  void stop();
  void deliver(const Alert& alert, AlertEvent event, std::int64_t wall_ns) override;
  bool wants_updates() const override { return true; }

 private:
  boost::asio::io_context& io_;
  SyslogOptions options_;
  SinkCounters counters_;
  std::string hostname_;
  boost::asio::ip::udp::socket udp_;
  boost::asio::ip::udp::endpoint udp_target_;
  struct TcpState;
  std::shared_ptr<TcpState> tcp_;
};

}  // namespace citywatch::collector
