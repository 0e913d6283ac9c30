#include "collector/alerts/alert_lifecycle.h"

#include <algorithm>

#include "common/log.h"

namespace citywatch::collector {
namespace {
std::string id(const std::string& rule, const std::string& key) { return rule + '\x1f' + key; }
}  // namespace

AlertLifecycle::AlertLifecycle(AlertMetrics& metrics, std::size_t max_active)
    : metrics_(metrics), max_active_(max_active) {}

void AlertLifecycle::observe(std::int64_t event_ns, std::int64_t wall_ns) {
  if (event_ns > event_now(wall_ns)) {
    watermark_ns_ = event_ns;
    watermark_wall_ns_ = wall_ns;
  }
}

std::int64_t AlertLifecycle::event_now(std::int64_t wall_ns) const {
  if (watermark_wall_ns_ == 0) return watermark_ns_;
  return watermark_ns_ + std::max<std::int64_t>(0, wall_ns - watermark_wall_ns_);
}

const Alert* AlertLifecycle::find(const std::string& rule, const std::string& key) const {
  auto it = active_.find(id(rule, key));
  return it == active_.end() ? nullptr : &it->second;
}

void AlertLifecycle::deliver(const Alert& a, AlertEvent e, std::int64_t wall_ns) {
  for (AlertSink* s : sinks_)
    if ((e != AlertEvent::kResend || s->wants_resend()) &&
        (e != AlertEvent::kUpdate || s->wants_updates()))
      s->deliver(a, e, wall_ns);
}

namespace {

// The dependents annotations of a root outage's alert, "" without them.
std::string dependents_of(const Labels& details) {
  std::string out;
  for (const auto& [k, v] : details)
    if (k == "dependents" || k == "dependent_names") out += v + '\n';
  return out;
}

}  // namespace

void AlertLifecycle::signal(const AlertSignal& s, std::int64_t wall_ns) {
  const std::string k = id(s.rule->name, s.key);
  // A signal comes as its record arrives (the engine observed it just before), so the clock
  // now is the clock at arrival, unless the signal says when (held back to a batch's end).
  // (Agent-session signals carry wall-clock times: they are about on time.)
  const std::int64_t arrived = s.arrival_ns > 0 ? s.arrival_ns : event_now(wall_ns);
  const std::int64_t late = arrived - s.event_time_ns;
  const std::int64_t arrival_ns = late > 0 && late <= kMaxLateEvidence ? arrived : 0;
  auto it = active_.find(k);
  if (it != active_.end()) {
    Alert& a = it->second;
    a.last_event_ns = std::max(a.last_event_ns, s.event_time_ns);
    a.last_arrival_ns = std::max(a.last_arrival_ns, arrival_ns);
    ++a.signals;
    if (s.value >= a.value) {
      a.value = s.value;
      a.examples = s.examples;
    }
    // A reload may have changed its description, severity or category: the firing gauge
    // moves with it, so a later resolve does not drive another series negative.
    if (a.rule != s.rule) metrics_.on_rule_changed(*a.rule, *s.rule);
    a.rule = s.rule;
    // A root outage's alert names what it took down (docs/uptime.md, "Dependencies"): when
    // that grows, the latest details are kept and written as an update. Other details (a
    // list rule's entry) stay those of the first signal, as they always did.
    const bool details_changed = dependents_of(s.details) != dependents_of(a.details);
    if (details_changed) a.details = s.details;
    const bool grown = a.value >= a.reported_value * kUpdateGrowth && a.value > a.reported_value;
    if (grown) a.reported_value = a.value;
    if (grown || details_changed) deliver(a, AlertEvent::kUpdate, wall_ns);
    return;
  }
  if (auto r = resolved_at_.find(k); r != resolved_at_.end()) {
    if (s.event_time_ns - r->second < s.rule->suppress_for.count()) {
      metrics_.on_suppressed(s.rule->name);
      return;
    }
    resolved_at_.erase(r);
  }
  if (active_.size() >= max_active_) {
    // Evict the alert quiet for longest: it is the most likely to be over.
    auto oldest =
        std::min_element(active_.begin(), active_.end(), [](const auto& x, const auto& y) {
          return x.second.quiet_since_ns() < y.second.quiet_since_ns();
        });
    metrics_.on_evicted();
    resolve(oldest, s.event_time_ns, wall_ns);
  }
  Alert a;
  a.rule = s.rule;
  a.key = s.key;
  a.key_labels = s.key_labels;
  a.where = s.where;
  a.details = s.details;
  a.value = s.value;
  a.threshold = s.threshold;
  a.window_ns = s.window_ns;
  a.examples = s.examples;
  a.first_event_ns = a.last_event_ns = s.event_time_ns;
  a.last_arrival_ns = arrival_ns;
  if (s.first_event_ns > 0) a.first_event_ns = std::min(a.first_event_ns, s.first_event_ns);
  a.starts_wall_ns = wall_ns;
  a.last_sent_wall_ns = wall_ns;
  a.signals = 1;
  a.reported_value = a.value;
  auto [pos, inserted] = active_.emplace(k, std::move(a));
  metrics_.on_firing(pos->second, wall_ns);
  log::info("alert firing: " + s.rule->name + (s.key.empty() ? "" : " {" + s.key + "}") + ": " +
            pos->second.summary());
  deliver(pos->second, AlertEvent::kFiring, wall_ns);
}

void AlertLifecycle::resolve(std::map<std::string, Alert>::iterator it, std::int64_t event_ns,
                             std::int64_t wall_ns) {
  Alert& a = it->second;
  a.ends_wall_ns = wall_ns;
  metrics_.on_resolved(a);
  log::info("alert resolved: " + a.rule->name + (a.key.empty() ? "" : " {" + a.key + "}"));
  deliver(a, AlertEvent::kResolved, wall_ns);
  if (a.rule->suppress_for.count() > 0) {
    if (resolved_at_.size() >= max_active_) resolved_at_.erase(resolved_at_.begin());
    resolved_at_[it->first] = event_ns;
  }
  active_.erase(it);
}

void AlertLifecycle::clear(const std::string& rule, const std::string& key, std::int64_t event_ns,
                           std::int64_t wall_ns) {
  auto it = active_.find(id(rule, key));
  if (it != active_.end()) resolve(it, event_ns, wall_ns);
}

void AlertLifecycle::tick(std::int64_t wall_ns) {
  const std::int64_t now = event_now(wall_ns);
  for (auto it = active_.begin(); it != active_.end();) {
    Alert& a = it->second;
    if (!a.rule->explicit_resolve && now - a.quiet_since_ns() >= a.rule->hold_down.count()) {
      resolve(it++, now, wall_ns);
      continue;
    }
    if (wall_ns - a.last_sent_wall_ns >= a.rule->resend.count()) {
      a.last_sent_wall_ns = wall_ns;
      deliver(a, AlertEvent::kResend, wall_ns);
    }
    ++it;
  }
  // Forget suppression marks older than any rule could still need (bounded map anyway).
  for (auto it = resolved_at_.begin(); it != resolved_at_.end();)
    it = now - it->second > std::int64_t{24} * 3600 * 1000000000 ? resolved_at_.erase(it)
                                                                 : std::next(it);
}

}  // namespace citywatch::collector
