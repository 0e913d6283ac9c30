// RulesEngine: evaluates the loaded RuleSet against every committed record and signals the
// AlertLifecycle when a rule's condition is met.
//
// Windows run on event time (each record's event_time_ns), so a replayed capture raises the
// same alerts as the same traffic live. Per rule, per group key, the engine keeps a sliding
// window of 10 buckets (threshold, rate), a bounded set of (value hash, last seen) pairs
// (distinct), or the last value (state, change, new_value). Keys per rule are bounded by
// max_keys and distinct values per key by max_distinct; when full, expired entries are purged
// and then the oldest is evicted, counted in citywatch_rule_state_evictions_total. Memory is
// only taken when a new key appears, never per record. A key that meets its threshold
// signals at most once per second of event time (the lifecycle keeps the alert firing).
//
// load() swaps in a new RuleSet (SIGHUP); rule state starts empty, firing alerts stay with
// the lifecycle and resolve as usual.
//
// Thread-safety: the collector's io thread only (RecordConsumer contract). Owned by
// collector/app; registered with IngestServer::add_consumer.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "collector/alerts/alert_lifecycle.h"
#include "collector/records/dependency_view.h"
#include "collector/records/record_consumer.h"
#include "collector/rules_engine/rule_set.h"

namespace citywatch::collector {

class RulesEngine : public RecordConsumer {
 public:
  using Clock = std::function<std::int64_t()>;  // wall clock, ns since the epoch

  RulesEngine(AlertLifecycle& alerts, prometheus::Registry& registry, Clock clock = {});
  ~RulesEngine() override;

  void load(std::shared_ptr<const RuleSet> rules);
  const RuleSet* rules() const { return rules_.get(); }
  // Stops evaluating: later records and session events are ignored (shutdown).
  void detach() {
    rules_.reset();
    states_.clear();
    held_.clear();
    for (auto& v : by_source_) v.clear();
  }
  // Counts a rejected reload (the running rules stay).
  void on_reload_failed() { reload_failed_.Increment(); }
  // Which site each segment belongs to (uptime.sites), for the `site` label of alerts.
  void set_sites(std::map<std::string, std::string, std::less<>> segment_to_site) {
    sites_ = std::move(segment_to_site);
  }

  // The uptime tracker's dependencies (docs/uptime.md, "Dependencies and root cause"): alerts
  // of rules that read device, interface, trap or agent session records are not sent while
  // the entity's parents are down, and carry the `parents` label and, for a root, the
  // `dependents` / `dependent_names` annotations. Null (the default): no dependencies.
  void set_dependencies(const DependencyView* view) { dependencies_ = view; }

  // Asks again about session alerts the dependencies held back (an agent session event is
  // not repeated, unlike a poll): sends those whose entity may now alert, drops those whose
  // condition cleared. The collector calls it once a second; consume() and session events
  // call it too.
  void recheck_held();

  void consume(const RecordBatch& batch) override;
  void on_agent_session(const std::string& agent, const std::string& segment, bool connected,
                        std::int64_t time_ns) override;

  // Evaluates one input (tests and the benchmark call this directly).
  void evaluate(const EvalInput& in, std::int64_t wall_ns);

  std::uint64_t evictions() const;
  std::size_t keys() const;

 private:
  struct Example {
    Value value;
    InlineString<63> text;  // the bytes a kStr value points at
  };
  struct KeyState {
    std::uint64_t key = 0;      // its key in RuleState::keys
    std::int64_t first_ns = 0;  // event time of the first record of this key's state
    std::int64_t last_ns = 0;
    std::int64_t last_signal_ns = 0;
    std::int64_t bucket_start_ns = 0;
    std::array<double, 10> buckets{};
    std::uint8_t current = 0;
    bool bad = false;
    bool have_prev = false;
    double prev = 0;
    std::int64_t prev_ns = 0;
    std::uint64_t prev_hash = 0;
    std::int64_t last_prune_ns = 0;
    std::vector<std::pair<std::uint64_t, std::int64_t>> distinct;  // value hash, last seen
    std::vector<Example> examples;
    // Evidence that grew between signals (at most one a second of event time): the last
    // signal sent, and the value and time it has reached since. flush_pending() sends it at
    // the end of the batch, so a scan over in under a second still reports its full extent.
    std::unique_ptr<AlertSignal> sent;
    double pending_value = 0;
    std::int64_t pending_ns = 0;
    std::int64_t pending_arrival_ns = 0;  // the event clock when that evidence arrived
    bool pending = false;
  };
  struct RuleState {
    const Rule* rule = nullptr;
    std::unordered_map<std::uint64_t, KeyState> keys;
    std::int64_t first_seen_ns = 0;  // new_value learning starts here
    std::int64_t last_purge_ns = 0;
    prometheus::Counter* matches = nullptr;
    prometheus::Counter* evictions = nullptr;
    prometheus::Gauge* key_gauge = nullptr;
  };

  // `r` is rs.rule, or its `also` (another record kind feeding the same state).
  void eval_rule(RuleState& rs, const Rule& r, const EvalInput& in, std::int64_t wall_ns);
  KeyState* key_state(RuleState& rs, std::uint64_t key, std::int64_t t);
  // A list rule's hit: the address on the list and the other end of the record.
  struct ListHit {
    Value listed;
    Value peer;
  };
  void fire(RuleState& rs, const Rule& r, KeyState& ks, const EvalInput& in, double value,
            std::int64_t wall_ns, const Example* extra = nullptr, const ListHit* hit = nullptr,
            const ThresholdGroup* group = nullptr);
  // The group whose networks hold the record's group_field address (first match), if any.
  static const ThresholdGroup* group_of(const Rule& r, const EvalInput& in);
  std::uint64_t key_hash(const Rule& r, const EvalInput& in) const;
  // Sends the grown evidence of the keys fire() held back in this batch.
  void flush_pending(std::int64_t wall_ns);

  // The entity a device, interface, trap or session rule's alert is about; false for others.
  static bool entity_of(const Rule& r, const EvalInput& in, EntityRef& out);
  // A session state alert the dependencies held back, to be asked about again.
  struct Held {
    std::size_t state = 0;  // index in states_
    std::uint64_t key = 0;
    std::string agent;
    std::string segment;
    bool connected = false;
    std::int64_t time_ns = 0;  // event time when held
    std::int64_t wall_ns = 0;  // and wall time
  };
  void hold(const RuleState& rs, const KeyState& ks, const SessionEvent& ev, std::int64_t wall_ns);
  static constexpr std::size_t kMaxHeld = 4096;
  std::vector<Held> held_;

  AlertLifecycle& alerts_;
  Clock clock_;
  const DependencyView* dependencies_ = nullptr;
  std::map<std::string, std::string, std::less<>> sites_;  // segment -> site
  std::shared_ptr<const RuleSet> rules_;
  std::vector<RuleState> states_;
  std::vector<std::pair<std::size_t, std::uint64_t>> pending_;  // rule index, key
  // Per RuleSource: the rules that read it, with the index of the state they feed.
  std::array<std::vector<std::pair<std::size_t, const Rule*>>, kRuleSources> by_source_;

  prometheus::Counter& records_;
  prometheus::Counter& seconds_;
  prometheus::Family<prometheus::Counter>& matches_;
  prometheus::Family<prometheus::Counter>& evictions_;
  prometheus::Family<prometheus::Gauge>& keys_;
  prometheus::Gauge& loaded_;
  prometheus::Family<prometheus::Gauge>& info_;
  prometheus::Family<prometheus::Gauge>& list_entries_;
  std::vector<prometheus::Gauge*> list_gauges_;
  prometheus::Gauge& load_time_;
  prometheus::Counter& reload_ok_;
  prometheus::Counter& reload_failed_;
  prometheus::Family<prometheus::Counter>& held_signals_;
  prometheus::Gauge* info_gauge_ = nullptr;
};

}  // namespace citywatch::collector
