// AlertLifecycle: turns the rules engine's signals into alerts with a lifecycle.
//
// Alerts are keyed by rule + group key. The first signal makes an alert firing and delivers
// it to every sink; later signals refresh its evidence (largest value wins) without a new
// notification. An alert resolves when no signal came for the rule's hold_down (measured on
// the event clock, below), or, for state rules, when clear() says the state is good again.
// While firing, it is re-sent every `resend` (wall clock) to sinks that want resends. After
// it resolves, signals for the same key within the rule's suppress_for are counted and
// dropped. The number of alerts held is bounded (max_active); the oldest is evicted, counted.
//
// The event clock: the largest event time seen, advanced by the wall time elapsed since it
// was seen. A replayed capture (event times in the past, arriving fast) therefore resolves
// exactly as the same traffic live, and live alerts still resolve when traffic stops.
//
// Late evidence: a flow's event time is its end, and an exporter sends it only after its
// inactive timeout (15 s for the agent, often 60 s for a router), while packet events keep
// the clock at the present. Measured from event time alone, a flood whose flows come a
// hold_down late would resolve on the tick after each signal and fire again with the next
// (flapping). So quiet time counts from the later of the evidence's event time and the clock
// when it arrived, for evidence at most kMaxLateEvidence late. Evidence later than that (a
// spool drained after an outage, a replay behind another one that jumped the clock ahead)
// counts by event time alone, as before, so it cannot hold an alert open for long.
//
// Thread-safety: one thread (the collector's io thread). Owned by collector/app.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "collector/alerts/alert.h"
#include "collector/alerts/alert_metrics.h"
#include "collector/alerts/alert_sink.h"

namespace citywatch::collector {

// Evidence later than this (event clock at arrival minus event time) is not taken as export
// delay: five minutes covers a router's inactive timeout with room to spare.
constexpr std::int64_t kMaxLateEvidence = std::int64_t{300} * 1000000000;

class AlertLifecycle {
 public:
  AlertLifecycle(AlertMetrics& metrics, std::size_t max_active = 10000);

  void add_sink(AlertSink* sink) { sinks_.push_back(sink); }
  void clear_sinks() { sinks_.clear(); }

  // Advances the event clock with a record's event time. signal() and clear() do not: the
  // engine calls observe() for records, while agent-session events carry wall time.
  void observe(std::int64_t event_ns, std::int64_t wall_ns);
  // A rule matched: fire a new alert or refresh a firing one.
  void signal(const AlertSignal& s, std::int64_t wall_ns);
  // A state rule saw its key healthy again.
  void clear(const std::string& rule, const std::string& key, std::int64_t event_ns,
             std::int64_t wall_ns);
  // Resolves quiet alerts and re-sends firing ones; called about once a second.
  void tick(std::int64_t wall_ns);

  std::int64_t event_now(std::int64_t wall_ns) const;
  std::size_t firing() const { return active_.size(); }
  const Alert* find(const std::string& rule, const std::string& key) const;
  template <typename F>
  void for_each(F&& f) const {
    for (const auto& [k, a] : active_) f(a);
  }

 private:
  void resolve(std::map<std::string, Alert>::iterator it, std::int64_t event_ns,
               std::int64_t wall_ns);
  void deliver(const Alert& a, AlertEvent e, std::int64_t wall_ns);

  AlertMetrics& metrics_;
  std::size_t max_active_;
  std::vector<AlertSink*> sinks_;
  std::map<std::string, Alert> active_;              // rule '\x1f' key -> alert
  std::map<std::string, std::int64_t> resolved_at_;  // for suppress_for; event time
  std::int64_t watermark_ns_ = 0;
  std::int64_t watermark_wall_ns_ = 0;
};

}  // namespace citywatch::collector
