// CounterTracker: turns one interface's raw SNMP counters into monotonic 64-bit counters.
//
// 32-bit counters (ifTable) wrap at 2^32: a reading below the previous one is a wrap and the
// difference is taken modulo 2^32 (RFC 2578 section 7.1.6). 64-bit counters (ifXTable HC)
// never wrap in practice, so one going backwards is a discontinuity. On a discontinuity (a
// reboot, a changed ifCounterDiscontinuityTime, an HC counter going backwards, a counter
// changing width) no delta is taken at all: the exported counters restart at the raw
// readings and the sample is flagged, so a reboot never shows up as a 2^32 spike.
//
// Thread-safety: a plain value owned by the poller's per-device state.
#pragma once

#include <array>
#include <cstdint>

namespace citywatch::agent {

class CounterTracker {
 public:
  static constexpr int kCounters = 12;
  using Values = std::array<std::uint64_t, kCounters>;
  using Wide = std::array<bool, kCounters>;  // true: the reading is a 64-bit counter

  // Feeds one poll's readings; `out` receives the monotonic counters. Returns true when
  // this sample starts after a discontinuity (or is the first one).
  bool update(const Values& raw, const Wide& wide, bool discontinuity, Values& out);

 private:
  Values prev_{};
  Values acc_{};
  Wide wide_{};
  bool seen_ = false;
};

}  // namespace citywatch::agent
