// Clock: where the uptime tracker reads "now". The collector passes the system clock; tests
// pass a fake clock they advance by hand, so outage boundaries are exact and no test sleeps.
//
// Thread-safety: SystemClock is stateless; a fake clock belongs to one test thread.
#pragma once

#include <chrono>
#include <cstdint>

namespace citywatch::collector::uptime {

class Clock {
 public:
  virtual ~Clock() = default;
  // Nanoseconds since the Unix epoch.
  virtual std::int64_t now_ns() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::int64_t now_ns() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

inline constexpr std::int64_t kNsPerSecond = 1'000'000'000;

}  // namespace citywatch::collector::uptime
