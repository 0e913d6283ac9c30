// Alert: what the rules engine reports and the sinks deliver.
//
// A rule that matches hands an AlertSignal (rule, group key, evidence) to the AlertLifecycle,
// which turns repeated signals for the same rule + key into one Alert that is firing until it
// resolves. RuleInfo is the rule's immutable description, shared by the compiled rule and by
// every alert it raised (so an alert outlives a reload that removed its rule).
//
// Thread-safety: plain values; RuleInfo is immutable once built.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace citywatch::collector {

using Labels = std::vector<std::pair<std::string, std::string>>;

struct RuleInfo {
  std::string name;
  std::string kind;
  std::string severity = "warning";  // critical | warning | info
  std::string description;
  std::string runbook;
  std::string summary;  // template: {src}, {value}, {threshold}, {window}, {examples}, ...
  Labels labels;
  std::chrono::nanoseconds hold_down = std::chrono::minutes(2);  // quiet time before resolved
  std::chrono::nanoseconds resend = std::chrono::minutes(1);     // re-sent while firing
  std::chrono::nanoseconds suppress_for{0};  // after resolving, ignore the same key this long
  bool explicit_resolve = false;             // state rules: resolved by a record, not by time
  std::string file;
  int line = 0;
};

struct AlertSignal {
  std::shared_ptr<const RuleInfo> rule;
  std::string key;    // canonical "src=10.0.0.1,dst=10.0.0.2"; "" when the rule has no group_by
  Labels key_labels;  // the same, as labels
  // Where it was seen: segment, agent and (when the segment belongs to a configured site)
  // site of the record that raised it. Labels on every sink; not part of the identity.
  Labels where;
  // What the evidence names beyond the key: for list rules the list, the entry the address
  // matched and the feed's reference for it. Annotations on every sink; not the identity.
  Labels details;
  double value = 0;
  double threshold = 0;
  std::int64_t window_ns = 0;
  std::vector<std::string> examples;  // ports, hosts, names that made the value
  std::int64_t event_time_ns = 0;
  // Event time of the first record of the evidence (the scan's first probe); 0: event_time.
  std::int64_t first_event_ns = 0;
  // The event clock when the newest evidence arrived; 0: when the signal is given (a signal
  // held back to the end of a batch carries its record's).
  std::int64_t arrival_ns = 0;
};

// kUpdate: a firing alert's evidence grew materially (to at least kUpdateGrowth times the
// value last reported); sinks that keep a record (JSONL, syslog) write it.
enum class AlertEvent : std::uint8_t { kFiring, kResend, kUpdate, kResolved };
constexpr double kUpdateGrowth = 1.5;
const char* to_string(AlertEvent e);

struct Alert {
  std::shared_ptr<const RuleInfo> rule;
  std::string key;
  Labels key_labels;
  Labels where;  // of the first signal: segment, agent, site
  // Of the first signal (list, list_entry, list_reference), or of the latest one that
  // changed a root outage's dependents / dependent_names.
  Labels details;
  double value = 0;
  double threshold = 0;
  std::int64_t window_ns = 0;
  std::vector<std::string> examples;
  std::int64_t first_event_ns = 0;  // event time of the first signal
  std::int64_t last_event_ns = 0;   // event time of the latest signal
  // The event clock at the arrival of the latest signal whose evidence was late by at most
  // kMaxLateEvidence (0 if none): quiet time counts from here too (alert_lifecycle.h).
  std::int64_t last_arrival_ns = 0;
  std::int64_t starts_wall_ns = 0;  // collector clock when it began firing
  std::int64_t ends_wall_ns = 0;    // 0 while firing
  std::int64_t last_sent_wall_ns = 0;
  std::uint64_t signals = 0;
  double reported_value = 0;  // value in the last firing or update event

  // The summary template with {name} replaced by key labels, details and evidence.
  std::string summary() const;
  // Event time from which the alert has been quiet: its latest evidence, or when that
  // evidence arrived, whichever is later.
  std::int64_t quiet_since_ns() const {
    return last_event_ns > last_arrival_ns ? last_event_ns : last_arrival_ns;
  }
};

// "1m30s"-style text for a window.
std::string format_duration(std::int64_t ns);
// RFC 3339 UTC with milliseconds.
std::string format_time(std::int64_t ns);
std::string format_number(double v);

}  // namespace citywatch::collector
