#include "collector/alerts/syslog_sink.h"

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "common/log.h"
#include "common/task_exit.h"

namespace citywatch::collector {

namespace asio = boost::asio;

namespace {
// RFC 5424 section 6.3.3: '"', '\' and ']' are escaped with '\' inside PARAM-VALUE.
std::string sd_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  return out;
}
int severity_code(const std::string& s) {
  if (s == "critical") return 2;
  if (s == "warning") return 4;
  return 6;
}
}  // namespace

std::string syslog_message(const Alert& a, AlertEvent e, std::int64_t wall_ns, int facility,
                           const std::string& hostname, int pid) {
  std::string sd = "[citywatch@32473 rule=\"" + sd_escape(a.rule->name) + "\" severity=\"" +
                   sd_escape(a.rule->severity) + "\"";
  for (const auto& [k, v] : a.where) {
    bool in_key = false;
    for (const auto& kl : a.key_labels) in_key = in_key || kl.first == k;
    if (!in_key) sd += " " + k + "=\"" + sd_escape(v) + "\"";
  }
  for (const auto& [k, v] : a.key_labels) sd += " " + k + "=\"" + sd_escape(v) + "\"";
  for (const auto& [k, v] : a.details) sd += " " + k + "=\"" + sd_escape(v) + "\"";
  sd +=
      " value=\"" + format_number(a.value) + "\" threshold=\"" + format_number(a.threshold) + "\"";
  if (a.window_ns) sd += " window=\"" + format_duration(a.window_ns) + "\"";
  if (!a.examples.empty()) {
    std::string ex;
    for (std::size_t i = 0; i < a.examples.size(); ++i) ex += (i ? "," : "") + a.examples[i];
    sd += " examples=\"" + sd_escape(ex) + "\"";
  }
  sd += "]";
  const int pri = facility * 8 + (e == AlertEvent::kResolved ? 5 : severity_code(a.rule->severity));
  return "<" + std::to_string(pri) + ">1 " + format_time(wall_ns) + " " +
         (hostname.empty() ? "-" : hostname) + " citywatch-collector " + std::to_string(pid) + " " +
         to_string(e) + " " + sd + " " + a.summary();
}

struct SyslogSink::TcpState {
  explicit TcpState(asio::io_context& io) : socket(io), wake(io), deadline(io) {}
  asio::ip::tcp::socket socket;
  asio::steady_timer wake;
  asio::steady_timer deadline;  // of the connect or write in progress: closes the socket
  std::deque<std::string> queue;
  bool stopping = false;
  bool idle = false;
  bool writing = false;  // queue.front() is being written
  // Arms the deadline for the next connect or write: when it passes, the socket is closed,
  // which ends that operation with an error (counted, and the sink reconnects).
  void arm(std::chrono::nanoseconds timeout) {
    deadline.expires_after(timeout);
    deadline.async_wait([this](boost::system::error_code ec) {
      if (ec) return;  // cancelled: the operation ended in time
      boost::system::error_code ignore;
      socket.close(ignore);
    });
  }
};

SyslogSink::SyslogSink(asio::io_context& io, SyslogOptions options, AlertMetrics& metrics)
    : io_(io),
      options_(std::move(options)),
      counters_(metrics.sink(options_.tcp ? "syslog_tcp" : "syslog_udp")),
      udp_(io) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) hostname_ = host;
}

SyslogSink::~SyslogSink() { stop(); }

Status SyslogSink::start() {
  boost::system::error_code err;
  const auto addr = asio::ip::make_address(options_.host, err);
  if (err) return Status::error("syslog host '" + options_.host + "': expected an IP address");
  if (!options_.tcp) {
    udp_target_ = {addr, options_.port};
    udp_.open(udp_target_.protocol(), err);
    if (err) return Status::error("syslog: cannot open a UDP socket: " + err.message());
    udp_.non_blocking(true, err);
    return Status::ok();
  }
  tcp_ = std::make_shared<TcpState>(io_);
  auto st = tcp_;
  const asio::ip::tcp::endpoint target{addr, options_.port};
  asio::co_spawn(
      io_,
      [this, st, target]() -> asio::awaitable<void> {
        auto backoff = std::chrono::milliseconds(500);
        while (!st->stopping) {
          boost::system::error_code ec;
          if (st->queue.empty()) {
            st->wake.expires_after(std::chrono::hours(24));
            st->idle = true;
            co_await st->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            st->idle = false;
            continue;
          }
          if (!st->socket.is_open()) {
            st->arm(options_.io_timeout);
            co_await st->socket.async_connect(target,
                                              asio::redirect_error(asio::use_awaitable, ec));
            st->deadline.cancel();
            if (ec) {
              st->socket.close(ec);
              counters_.failures->Increment();
              st->wake.expires_after(backoff);
              co_await st->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
              backoff = std::min(backoff * 2, std::chrono::milliseconds(30000));
              continue;
            }
            backoff = std::chrono::milliseconds(500);
          }
          // RFC 6587 section 3.4.1: MSG-LEN SP SYSLOG-MSG.
          const std::string frame =
              std::to_string(st->queue.front().size()) + " " + st->queue.front();
          st->writing = true;
          st->arm(options_.io_timeout);
          co_await asio::async_write(st->socket, asio::buffer(frame),
                                     asio::redirect_error(asio::use_awaitable, ec));
          st->deadline.cancel();
          st->writing = false;
          if (ec) {
            counters_.failures->Increment();
            st->socket.close(ec);
            if (st->stopping) break;
            // Not at once: a receiver that accepts and never reads would be hammered.
            st->wake.expires_after(backoff);
            co_await st->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            backoff = std::min(backoff * 2, std::chrono::milliseconds(30000));
            continue;
          }
          st->queue.pop_front();
          counters_.sent->Increment();
          counters_.queued->Set(static_cast<double>(st->queue.size()));
        }
      },
      TaskExit("syslog sender", TaskExit::kFatal));
  return Status::ok();
}

void SyslogSink::stop() {
  if (tcp_) {
    tcp_->stopping = true;
    tcp_->wake.cancel();
    tcp_->deadline.cancel();
    boost::system::error_code ec;
    tcp_->socket.close(ec);
  }
}

void SyslogSink::deliver(const Alert& alert, AlertEvent event, std::int64_t wall_ns) {
  if (event == AlertEvent::kResend) return;
  std::string msg = syslog_message(alert, event, wall_ns, options_.facility, hostname_,
                                   static_cast<int>(getpid()));
  if (!tcp_) {
    boost::system::error_code ec;
    udp_.send_to(asio::buffer(msg), udp_target_, 0, ec);
    if (ec) {
      counters_.failures->Increment();
      counters_.dropped->Increment();
    } else {
      counters_.sent->Increment();
    }
    return;
  }
  if (tcp_->queue.size() >= options_.max_queue) {
    counters_.dropped->Increment();
    // The oldest message not being written makes way: the one being written is popped when
    // its write ends (it used to be dropped here, and the next one popped then, unsent).
    if (!tcp_->writing)
      tcp_->queue.pop_front();
    else if (tcp_->queue.size() > 1)
      tcp_->queue.erase(tcp_->queue.begin() + 1);
    else
      return;  // only the message being written is queued: the new one is the one dropped
  }
  tcp_->queue.push_back(std::move(msg));
  counters_.queued->Set(static_cast<double>(tcp_->queue.size()));
  if (tcp_->idle) tcp_->wake.cancel();
}

}  // namespace citywatch::collector
