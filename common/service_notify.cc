#include "common/service_notify.h"

#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "common/log.h"

namespace citywatch {
namespace {

constexpr long kSendTimeoutSeconds = 2;

// A decimal number filling all of `text`; false for anything else (empty, signs, garbage).
bool parse_decimal(const char* text, std::uint64_t& out) {
  if (text == nullptr || *text == '\0') return false;
  const char* end = text + std::strlen(text);
  const auto [ptr, ec] = std::from_chars(text, end, out);
  return ec == std::errc() && ptr == end;
}

// STATUS= is one line: a newline would start another assignment.
std::string status_line(std::string_view status) {
  std::string s = "STATUS=";
  for (char c : status) s += (c == '\n' || c == '\r') ? ' ' : c;
  return s;
}

}  // namespace

std::unique_ptr<ServiceNotifier> ServiceNotifier::from_environment() {
  auto owned = std::make_unique<ServiceNotifier>();
  ServiceNotifier& n = *owned;
  const char* socket_env = std::getenv("NOTIFY_SOCKET");
  std::uint64_t usec = 0, pid = 0;
  const bool watchdog = parse_decimal(std::getenv("WATCHDOG_USEC"), usec) && usec > 0;
  const char* pid_env = std::getenv("WATCHDOG_PID");
  const bool ours = pid_env == nullptr ||
                    (parse_decimal(pid_env, pid) && pid == static_cast<std::uint64_t>(getpid()));
  const std::string name = socket_env != nullptr ? socket_env : "";
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  if (name.empty()) return owned;
  // An absolute path, or '@' and an abstract name; it must fit sun_path (sd_notify(3)).
  if ((name[0] != '/' && name[0] != '@') || name.size() < 2 ||
      name.size() > sizeof(n.addr_.sun_path) - 1) {
    log::warning("NOTIFY_SOCKET '" + name + "' is not a socket path; not notifying the manager");
    return owned;
  }
  n.addr_.sun_family = AF_UNIX;
  std::memcpy(n.addr_.sun_path, name.data(), name.size());
  if (name[0] == '@') n.addr_.sun_path[0] = '\0';
  n.addr_len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() +
                                       (name[0] == '@' ? 0 : 1));
  n.fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (n.fd_ < 0) {
    log::warning(std::string("NOTIFY_SOCKET: socket: ") + std::strerror(errno) +
                 "; not notifying the manager");
    return owned;
  }
  // Blocking, as libsystemd sends: a manager busy at boot, its queue full, gets the message a
  // moment later instead of never (a lost READY=1 fails the start after TimeoutStartSec).
  // Bounded, so a manager that stopped reading cannot hold the daemon's loop.
  const timeval bound{kSendTimeoutSeconds, 0};
  (void)::setsockopt(n.fd_, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound);
  if (watchdog && ours) n.watchdog_ = std::chrono::microseconds(usec);
  return owned;
}

ServiceNotifier::~ServiceNotifier() {
  if (fd_ >= 0) ::close(fd_);
}

bool ServiceNotifier::send(std::string_view message) {
  if (fd_ < 0) return false;
  ssize_t n;
  do {
    n = ::sendto(fd_, message.data(), message.size(), MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(message.size())) {
    ++sent_;
    return true;
  }
  // Logged the first time only: a manager that went away would otherwise fill the log with
  // a line per watchdog ping.
  if (failures_++ == 0)
    log::warning(std::string("NOTIFY_SOCKET: ") + (n < 0 ? std::strerror(errno) : "short send") +
                 "; the service manager may not see this daemon's state");
  return false;
}

void ServiceNotifier::ready(std::string_view status) { send("READY=1\n" + status_line(status)); }

void ServiceNotifier::reloading() {
  // systemd 253 and later match the reload to this clock reading (Type=notify-reload);
  // earlier ones ignore it.
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto usec = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u +
                    static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\n" +
       status_line("reloading the configuration"));
}

void ServiceNotifier::stopping(std::string_view status) {
  send("STOPPING=1\n" + status_line(status));
}

void ServiceNotifier::status(std::string_view status) { send(status_line(status)); }

void ServiceNotifier::start_watchdog(boost::asio::io_context& io) {
  if (fd_ < 0 || watchdog_.count() == 0) return;
  timer_ = std::make_unique<boost::asio::steady_timer>(io);
  ping();
}

void ServiceNotifier::stop_watchdog() {
  // The timer goes with the io_context's life, not this object's: a pending wait ends
  // (operation_aborted) and the io_context may be destroyed before the notifier.
  timer_.reset();
}

void ServiceNotifier::ping() {
  send("WATCHDOG=1");
  // A quarter of the interval, not systemd's suggested half: a stall shorter than 3/4 of
  // WatchdogSec (a slow fsync, a busy moment) never misses the deadline.
  timer_->expires_after(watchdog_ / 4);
  timer_->async_wait([this](boost::system::error_code ec) {
    // timer_ is gone when stop_watchdog() came after this wait had already completed: its
    // handler still runs, with success, if the io_context turns again (the collector's
    // drain() does).
    if (!ec && timer_) ping();
  });
}

}  // namespace citywatch
