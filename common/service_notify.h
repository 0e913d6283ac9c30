// Tells the service manager how a daemon stands: the sd_notify protocol (systemd's
// sd_notify(3): newline-separated KEY=VALUE assignments, one datagram each, to the AF_UNIX
// socket named by $NOTIFY_SOCKET; a name starting with '@' is in the abstract namespace).
// Written here rather than linked from libsystemd: one sendto().
//
// Under the shipped units (Type=notify, WatchdogSec=):
//   READY=1      once the daemon listens and runs, so `systemctl start` returns only then,
//                and units ordered after it find its ports open;
//   RELOADING=1  while a SIGHUP re-reads the configuration (with MONOTONIC_USEC), READY=1
//                again after, with the outcome in STATUS=;
//   STOPPING=1   when it starts to shut down;
//   WATCHDOG=1   every quarter of $WATCHDOG_USEC from the daemon's event loop: a loop that
//                stops turning (a stuck disk, a deadlock) stops the pings, and systemd kills
//                and restarts the daemon (Restart=on-failure covers a watchdog timeout).
//                A stall shorter than 3/4 of the interval is never caught; one longer than
//                the interval always is.
//
// Without $NOTIFY_SOCKET (a daemon started by hand, by a test, with -r) every call does
// nothing. Sends block for at most 2 s (a manager busy at boot still gets READY=1). A
// datagram that cannot be sent is counted, never fatal: the manager's socket is not the
// daemon's business. Ownership: one per daemon, made in main(); its watchdog timer
// runs on the daemon's io_context. Thread-safety: one thread (the io_context's).
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace citywatch {

class ServiceNotifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID and removes them from the
  // environment, so a child the daemon starts does not talk to the manager in its name. A
  // WATCHDOG_PID naming another process disables the watchdog (the variables were inherited).
  static std::unique_ptr<ServiceNotifier> from_environment();
  ServiceNotifier() = default;  // notifies nobody
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;
  ~ServiceNotifier();

  bool enabled() const { return fd_ >= 0; }
  // Zero when the manager asked for no watchdog.
  std::chrono::microseconds watchdog_interval() const { return watchdog_; }

  void ready(std::string_view status);
  void reloading();
  void stopping(std::string_view status);
  void status(std::string_view status);

  // Pings WATCHDOG=1 now and then every watchdog_interval() / 4 on `io`, until
  // stop_watchdog() or the io_context stops. Nothing without a watchdog interval.
  // stop_watchdog() must come before `io` is destroyed (the daemons call it once their
  // io_context has stopped running).
  void start_watchdog(boost::asio::io_context& io);
  void stop_watchdog();

  std::uint64_t sent() const { return sent_; }
  std::uint64_t failures() const { return failures_; }

 private:
  bool send(std::string_view message);
  void ping();

  int fd_ = -1;
  sockaddr_un addr_{};
  socklen_t addr_len_ = 0;
  std::chrono::microseconds watchdog_{0};
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::uint64_t sent_ = 0;
  std::uint64_t failures_ = 0;
};

}  // namespace citywatch
