// ServiceNotifier against a real AF_UNIX datagram socket standing in for the service
// manager's: what is sent, when, and what the environment decides (sd_notify(3)).
#include "common/service_notify.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>

namespace citywatch {
namespace {

// The manager's end: a datagram socket bound to a path in a fresh directory, or to an
// abstract name ("@...").
class Manager {
 public:
  explicit Manager(bool abstract) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (abstract) {
      name_ = "@citywatch-notify-test-" + std::to_string(getpid());
    } else {
      char tmpl[] = "/tmp/citywatch-notify.XXXXXX";
      dir_ = ::mkdtemp(tmpl);
      name_ = dir_ + "/notify";
    }
    std::memcpy(a.sun_path, name_.data(), name_.size());
    if (abstract) a.sun_path[0] = '\0';
    const auto len =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size() + (abstract ? 0 : 1));
    EXPECT_EQ(::bind(fd_, reinterpret_cast<const sockaddr*>(&a), len), 0) << std::strerror(errno);
  }
  ~Manager() {
    ::close(fd_);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  const std::string& name() const { return name_; }
  // The next datagram, waiting at most `ms`; nullopt if none came.
  std::optional<std::string> next(int ms = 2000) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, ms) != 1) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  int fd_ = -1;
  std::string dir_, name_;
};

// The environment the manager would give: each variable set, or unset when null.
void set_env(const char* socket, const char* watchdog_usec = nullptr,
             const char* watchdog_pid = nullptr) {
  const std::pair<const char*, const char*> vars[] = {
      {"NOTIFY_SOCKET", socket}, {"WATCHDOG_USEC", watchdog_usec}, {"WATCHDOG_PID", watchdog_pid}};
  for (const auto& [name, value] : vars) {
    if (value != nullptr)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
}

TEST(ServiceNotifier, WithoutNotifySocketNobodyIsTold) {
  set_env(nullptr, "1000000");  // a watchdog without a socket is no watchdog
  auto n = ServiceNotifier::from_environment();
  EXPECT_FALSE(n->enabled());
  EXPECT_EQ(n->watchdog_interval().count(), 0);
  n->ready("x");
  n->stopping("y");
  EXPECT_EQ(n->sent(), 0u);
  EXPECT_EQ(n->failures(), 0u);
}

TEST(ServiceNotifier, TellsReadyReloadingAndStoppingOnAPathSocket) {
  Manager m(false);
  set_env(m.name().c_str());
  auto n = ServiceNotifier::from_environment();
  ASSERT_TRUE(n->enabled());
  // Read once and removed: a child started later does not speak for the daemon.
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_EQ(n->watchdog_interval().count(), 0);

  n->ready("ingest on 127.0.0.1:7443\nsecond line");
  EXPECT_EQ(m.next(), "READY=1\nSTATUS=ingest on 127.0.0.1:7443 second line");
  n->reloading();
  const auto r = m.next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << *r;
  const std::string usec =
      r->substr(r->find('=', 12) + 1, r->find('\n', 12) - r->find('=', 12) - 1);
  EXPECT_FALSE(usec.empty());
  EXPECT_EQ(usec.find_first_not_of("0123456789"), std::string::npos) << usec;
  EXPECT_NE(r->find("\nSTATUS=reloading the configuration"), std::string::npos) << *r;
  n->status("3 agents");
  EXPECT_EQ(m.next(), "STATUS=3 agents");
  n->stopping("stopping (terminated)");
  EXPECT_EQ(m.next(), "STOPPING=1\nSTATUS=stopping (terminated)");
  EXPECT_EQ(n->sent(), 4u);
  EXPECT_EQ(n->failures(), 0u);
}

TEST(ServiceNotifier, AbstractSocket) {
  Manager m(true);
  set_env(m.name().c_str());
  auto n = ServiceNotifier::from_environment();
  ASSERT_TRUE(n->enabled());
  n->ready("up");
  EXPECT_EQ(m.next(), "READY=1\nSTATUS=up");
}

TEST(ServiceNotifier, WatchdogPingsFromTheEventLoopUntilStopped) {
  Manager m(false);
  set_env(m.name().c_str(), "40000",
          std::to_string(getpid()).c_str());  // 40 ms: a ping every 10 ms
  auto n = ServiceNotifier::from_environment();
  ASSERT_EQ(n->watchdog_interval(), std::chrono::microseconds(40000));
  EXPECT_EQ(std::getenv("WATCHDOG_USEC"), nullptr);
  EXPECT_EQ(std::getenv("WATCHDOG_PID"), nullptr);
  boost::asio::io_context io;
  n->start_watchdog(io);
  EXPECT_EQ(m.next(0), "WATCHDOG=1");  // the first at once
  // Then more, while the loop turns (each run_for bounded; at most 5 s in all).
  int pings = 1;
  for (int i = 0; i < 250 && pings < 4; ++i) {
    io.run_for(std::chrono::milliseconds(20));
    while (auto d = m.next(0)) {
      EXPECT_EQ(*d, "WATCHDOG=1");
      ++pings;
    }
  }
  EXPECT_GE(pings, 4);
  // A loop that does not turn sends nothing (a pinger on a thread of its own would send
  // about ten here): a stuck loop is what the manager's watchdog catches.
  EXPECT_FALSE(m.next(100));
  n->stop_watchdog();
  io.run_for(std::chrono::milliseconds(100));
  while (m.next(0)) {
  }
  io.run_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(m.next(0)) << "a ping after stop_watchdog()";
}

// stop_watchdog() may come when a ping is already due: its wait has completed and its handler
// is queued, to run if the io_context turns again (the collector drains its sessions after
// stopping). That handler must not ping, nor touch the timer that is gone.
TEST(ServiceNotifier, StopWhileAPingIsDueSendsNoMore) {
  Manager m(false);
  for (int round = 0; round < 50; ++round) {
    set_env(m.name().c_str(), "4000");  // a ping due every millisecond
    auto n = ServiceNotifier::from_environment();
    boost::asio::io_context io;
    n->start_watchdog(io);
    ::usleep(3000);  // the next ping is due
    // Stopped from a handler queued before the reactor looks at the timer, or after it.
    boost::asio::post(io, [&] { n->stop_watchdog(); });
    if (round % 2) io.poll_one();
    io.poll();
    while (m.next(0)) {
    }
    const std::uint64_t sent = n->sent();
    io.restart();
    io.run_for(std::chrono::milliseconds(5));
    EXPECT_EQ(n->sent(), sent) << "round " << round;
    EXPECT_FALSE(m.next(0)) << "round " << round;
  }
}

TEST(ServiceNotifier, WatchdogMeantForAnotherProcessIsIgnored) {
  Manager m(false);
  set_env(m.name().c_str(), "1000000", std::to_string(getpid() + 1).c_str());
  auto n = ServiceNotifier::from_environment();
  EXPECT_TRUE(n->enabled());
  EXPECT_EQ(n->watchdog_interval().count(), 0);
  boost::asio::io_context io;
  n->start_watchdog(io);
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(m.next(0));
}

TEST(ServiceNotifier, BadEnvironmentIsRefusedQuietly) {
  for (const char* bad : {"relative/path", "@", "", "/x"}) {
    set_env(bad, "12abc");
    auto n = ServiceNotifier::from_environment();
    // "/x" is a well-formed path (nobody listens there); the others are not socket names.
    EXPECT_EQ(n->enabled(), std::string(bad) == "/x") << bad;
    EXPECT_EQ(n->watchdog_interval().count(), 0) << bad;
  }
  std::string too_long = "/" + std::string(sizeof(sockaddr_un::sun_path), 'a');
  set_env(too_long.c_str());
  EXPECT_FALSE(ServiceNotifier::from_environment()->enabled());
}

TEST(ServiceNotifier, AManagerThatIsGoneIsCountedNotFatal) {
  std::string path;
  {
    Manager m(false);
    path = m.name();
  }  // the socket and its directory are gone
  set_env(path.c_str());
  auto n = ServiceNotifier::from_environment();
  ASSERT_TRUE(n->enabled());
  n->ready("up");
  n->stopping("down");
  EXPECT_EQ(n->sent(), 0u);
  EXPECT_EQ(n->failures(), 2u);
}

}  // namespace
}  // namespace citywatch
