#include "agent/snmp/counter_tracker.h"

namespace citywatch::agent {

bool CounterTracker::update(const Values& raw, const Wide& wide, bool discontinuity, Values& out) {
  bool reset = !seen_ || discontinuity;
  for (int i = 0; i < kCounters && !reset; ++i)
    reset = wide[i] != wide_[i] || (wide[i] && raw[i] < prev_[i]);
  for (int i = 0; i < kCounters; ++i) {
    if (reset)
      acc_[i] = raw[i];
    else if (wide[i])
      acc_[i] += raw[i] - prev_[i];
    else
      acc_[i] += (raw[i] - prev_[i]) & 0xffffffffull;  // modulo 2^32: a wrap adds the rest
  }
  prev_ = raw;
  wide_ = wide;
  seen_ = true;
  out = acc_;
  return reset;
}

}  // namespace citywatch::agent
