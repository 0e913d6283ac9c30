#include "collector/rules_engine/rules_engine.h"

#include <algorithm>
#include <chrono>
#include <tuple>

#include "common/log.h"

namespace citywatch::collector {
namespace {

constexpr std::int64_t kSecond = 1000000000;
// A key above its threshold refreshes its alert at most this often (event time).
constexpr std::int64_t kSignalInterval = kSecond;

std::int64_t system_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::size_t source_index(RecordKind k) {
  switch (k) {
    case RecordKind::kFlow:
      return static_cast<std::size_t>(RuleSource::kFlow);
    case RecordKind::kPacketEvent:
      return static_cast<std::size_t>(RuleSource::kPacket);
    case RecordKind::kInterfaceSample:
      return static_cast<std::size_t>(RuleSource::kInterface);
    case RecordKind::kDeviceStatus:
      return static_cast<std::size_t>(RuleSource::kDevice);
    case RecordKind::kSnmpTrap:
      return static_cast<std::size_t>(RuleSource::kTrap);
  }
  return 0;
}

double window_sum(const std::array<double, 10>& b) {
  double s = 0;
  for (double x : b) s += x;
  return s;
}

// Adds v at event time t to a 10-bucket sliding window of `window` ns.
void window_add(std::array<double, 10>& b, std::uint8_t& current, std::int64_t& start,
                std::int64_t t, std::int64_t window, double v) {
  const std::int64_t width = std::max<std::int64_t>(window / 10, 1);
  if (start == 0) start = t;
  if (t >= start + width) {
    const std::int64_t steps = (t - start) / width;
    for (std::int64_t i = 0; i < std::min<std::int64_t>(steps, 10); ++i) {
      current = static_cast<std::uint8_t>((current + 1) % 10);
      b[current] = 0;
    }
    start += steps * width;
  }
  if (t >= start) {
    b[current] += v;
    return;
  }
  // Late (flows end out of order): into its own bucket while that is still in the window.
  const std::int64_t back = (start - t + width - 1) / width;
  if (back < 10) b[static_cast<std::size_t>((current + 10 - back) % 10)] += v;
}

}  // namespace

RulesEngine::RulesEngine(AlertLifecycle& alerts, prometheus::Registry& r, Clock clock)
    : alerts_(alerts),
      clock_(clock ? std::move(clock) : Clock(system_now)),
      records_(prometheus::BuildCounter()
                   .Name("citywatch_rules_records_total")
                   .Help("Records (and agent session events) evaluated by the rules engine")
                   .Register(r)
                   .Add({})),
      seconds_(prometheus::BuildCounter()
                   .Name("citywatch_rules_engine_seconds_total")
                   .Help("Wall time spent evaluating rules")
                   .Register(r)
                   .Add({})),
      matches_(prometheus::BuildCounter()
                   .Name("citywatch_rule_matches_total")
                   .Help("Records that passed a rule's where/except conditions, by rule")
                   .Register(r)),
      evictions_(prometheus::BuildCounter()
                     .Name("citywatch_rule_state_evictions_total")
                     .Help("Rule state entries evicted because max_keys was reached, by rule")
                     .Register(r)),
      keys_(prometheus::BuildGauge()
                .Name("citywatch_rule_state_keys")
                .Help("Group keys a rule holds state for, by rule")
                .Register(r)),
      loaded_(prometheus::BuildGauge()
                  .Name("citywatch_rules_loaded")
                  .Help("Rules in the running rule set")
                  .Register(r)
                  .Add({})),
      info_(prometheus::BuildGauge()
                .Name("citywatch_rules_info")
                .Help("The running rule set; version is a hash of its files; value is always 1")
                .Register(r)),
      list_entries_(prometheus::BuildGauge()
                        .Name("citywatch_rules_list_entries")
                        .Help("Entries (addresses and CIDR blocks) of each list or feed, as "
                              "loaded")
                        .Register(r)),
      load_time_(prometheus::BuildGauge()
                     .Name("citywatch_rules_load_timestamp_seconds")
                     .Help("When the running rule set was loaded, seconds since the epoch")
                     .Register(r)
                     .Add({})),
      reload_ok_(prometheus::BuildCounter()
                     .Name("citywatch_rules_reloads_total")
                     .Help("Rule set loads by result")
                     .Register(r)
                     .Add({{"result", "ok"}})),
      reload_failed_(prometheus::BuildCounter()
                         .Name("citywatch_rules_reloads_total")
                         .Help("Rule set loads by result")
                         .Register(r)
                         .Add({{"result", "rejected"}})),
      held_signals_(prometheus::BuildCounter()
                        .Name("citywatch_rules_dependent_signals_total")
                        .Help("Rule matches not sent as alerts because of uptime.dependencies: "
                              "reason=\"parent_down\" (the root's alert speaks for it) or "
                              "\"waiting_for_parent\" (its parent had not been checked yet)")
                        .Register(r)) {}

RulesEngine::~RulesEngine() = default;

void RulesEngine::load(std::shared_ptr<const RuleSet> rules) {
  rules_ = std::move(rules);
  states_.clear();
  pending_.clear();
  held_.clear();
  for (auto& v : by_source_) v.clear();
  states_.resize(rules_->rules.size());
  for (std::size_t i = 0; i < rules_->rules.size(); ++i) {
    const Rule& r = *rules_->rules[i];
    RuleState& rs = states_[i];
    rs.rule = &r;
    rs.keys.reserve(std::min<std::size_t>(r.max_keys, 1024));
    rs.matches = &matches_.Add({{"rule", r.info->name}});
    rs.evictions = &evictions_.Add({{"rule", r.info->name}});
    rs.key_gauge = &keys_.Add({{"rule", r.info->name}});
    rs.key_gauge->Set(0);
    by_source_[static_cast<std::size_t>(r.source)].emplace_back(i, &r);
    if (r.also) by_source_[static_cast<std::size_t>(r.also->source)].emplace_back(i, r.also.get());
  }
  for (prometheus::Gauge* g : list_gauges_) list_entries_.Remove(g);
  list_gauges_.clear();
  for (const auto& [name, list] : rules_->lists) {
    prometheus::Gauge& g = list_entries_.Add({{"list", name}});
    g.Set(static_cast<double>(list->entries()));
    list_gauges_.push_back(&g);
  }
  if (info_gauge_) info_gauge_->Set(0);
  info_gauge_ = &info_.Add({{"version", rules_->version}});
  info_gauge_->Set(1);
  loaded_.Set(static_cast<double>(rules_->rules.size()));
  load_time_.Set(static_cast<double>(rules_->loaded_at_ns) / 1e9);
  reload_ok_.Increment();
}

std::uint64_t RulesEngine::evictions() const {
  double n = 0;
  for (const RuleState& rs : states_) n += rs.evictions->Value();
  return static_cast<std::uint64_t>(n);
}

std::size_t RulesEngine::keys() const {
  std::size_t n = 0;
  for (const RuleState& rs : states_) n += rs.keys.size();
  return n;
}

void RulesEngine::consume(const RecordBatch& records) {
  if (!rules_) return;
  const auto t0 = std::chrono::steady_clock::now();
  const std::int64_t wall = clock_();
  for (const RecordRef r : records) {
    alerts_.observe(r.event_time_ns, wall);
    const EvalInput in{&r, nullptr};
    for (const auto& [i, rule] : by_source_[source_index(r.kind())])
      eval_rule(states_[i], *rule, in, wall);
  }
  if (!pending_.empty()) flush_pending(wall);
  recheck_held();
  records_.Increment(static_cast<double>(records.size()));
  seconds_.Increment(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

void RulesEngine::on_agent_session(const std::string& agent, const std::string& segment,
                                   bool connected, std::int64_t time_ns) {
  if (!rules_) return;
  const SessionEvent ev{agent, segment, connected, time_ns};
  const EvalInput in{nullptr, &ev};
  for (const auto& [i, rule] : by_source_[static_cast<std::size_t>(RuleSource::kAgentSession)])
    eval_rule(states_[i], *rule, in, clock_());
  if (!pending_.empty()) flush_pending(clock_());
  recheck_held();
  records_.Increment();
}

void RulesEngine::evaluate(const EvalInput& in, std::int64_t wall_ns) {
  if (!rules_) return;
  if (in.record) alerts_.observe(in.record->event_time_ns, wall_ns);
  const std::size_t src = in.record ? source_index(in.record->kind())
                                    : static_cast<std::size_t>(RuleSource::kAgentSession);
  for (const auto& [i, rule] : by_source_[src]) eval_rule(states_[i], *rule, in, wall_ns);
  if (!pending_.empty()) flush_pending(wall_ns);
}

std::uint64_t RulesEngine::key_hash(const Rule& r, const EvalInput& in) const {
  std::uint64_t h = 1469598103934665603ull;
  for (const FieldDef* f : r.group_by) h = hash_value(f->get(in), h);
  return h;
}

RulesEngine::KeyState* RulesEngine::key_state(RuleState& rs, std::uint64_t key, std::int64_t t) {
  auto it = rs.keys.find(key);
  if (it != rs.keys.end()) return &it->second;
  const Rule& r = *rs.rule;
  if (rs.keys.size() >= r.max_keys) {
    // Purge what has left its window (at most once per quarter window), then evict.
    const std::int64_t keep = std::max<std::int64_t>(r.window_ns, r.info->hold_down.count());
    if (r.window_ns > 0 && t - rs.last_purge_ns > keep / 4) {
      rs.last_purge_ns = t;
      for (auto k = rs.keys.begin(); k != rs.keys.end();)
        k = t - k->second.last_ns > keep && !k->second.bad ? rs.keys.erase(k) : std::next(k);
    }
    if (rs.keys.size() >= r.max_keys) {
      rs.keys.erase(rs.keys.begin());
      rs.evictions->Increment();
    }
  }
  KeyState& ks = rs.keys[key];
  ks.key = key;
  ks.first_ns = t;
  rs.key_gauge->Set(static_cast<double>(rs.keys.size()));
  return &ks;
}

const ThresholdGroup* RulesEngine::group_of(const Rule& r, const EvalInput& in) {
  if (r.groups.empty()) return nullptr;
  const IpAddr a = r.group_field->get(in).ip;
  for (const ThresholdGroup& g : r.groups)
    if (g.networks->contains(a)) return &g;
  return nullptr;
}

void RulesEngine::fire(RuleState& rs, const Rule& r, KeyState& ks, const EvalInput& in,
                       double value, std::int64_t wall_ns, const Example* extra, const ListHit* hit,
                       const ThresholdGroup* group) {
  const std::int64_t t = in.time_ns();
  EntityRef entity;
  const bool about_entity = dependencies_ && entity_of(r, in, entity);
  if (about_entity) {
    const auto v = dependencies_->verdict(entity, t);
    if (v != DependencyView::Verdict::kAlert) {
      held_signals_
          .Add({{"rule", r.info->name},
                {"reason",
                 v == DependencyView::Verdict::kSuppress ? "parent_down" : "waiting_for_parent"}})
          .Increment();
      // A poll comes again; an agent session event does not: keep it and ask later.
      if (in.session && r.kind == RuleKind::kState) hold(rs, ks, *in.session, wall_ns);
      return;
    }
  }
  if (ks.last_signal_ns != 0 && t >= ks.last_signal_ns && t - ks.last_signal_ns < kSignalInterval &&
      r.kind != RuleKind::kChange && r.kind != RuleKind::kNewValue) {
    // Held back; if the evidence grew, it goes out at the end of the batch.
    if (ks.sent && value > ks.sent->value && value > ks.pending_value) {
      if (!ks.pending)
        pending_.emplace_back(static_cast<std::size_t>(&rs - states_.data()), ks.key);
      ks.pending = true;
      ks.pending_value = value;
      ks.pending_ns = std::max(ks.pending_ns, t);
      ks.pending_arrival_ns = alerts_.event_now(wall_ns);
    }
    return;
  }
  ks.last_signal_ns = t;
  ks.pending = false;
  ks.pending_value = 0;
  AlertSignal s;
  s.rule = r.info;
  for (const FieldDef* f : r.group_by) {
    std::string v = format_value(f->get(in));
    s.key += (s.key.empty() ? "" : ",") + std::string(f->name) + "=" + v;
    std::string label(f->name);
    std::replace(label.begin(), label.end(), '.', '_');
    s.key_labels.emplace_back(std::move(label), std::move(v));
  }
  if (hit && r.conversation) {
    for (const auto& [name, v] :
         {std::pair{"listed", &hit->listed}, std::pair{"peer", &hit->peer}}) {
      std::string text = format_value(*v);
      s.key += (s.key.empty() ? "" : ",") + std::string(name) + "=" + text;
      s.key_labels.emplace_back(name, std::move(text));
    }
  }
  if (hit) {
    // Which list, and the entry the address matched (the most specific), with the feed's
    // reference for it: what an analyst checks first.
    s.details.emplace_back("list", r.list_name);
    ListMatch m;
    if (r.list->lookup(hit->listed.ip, m)) {
      s.details.emplace_back("list_entry", std::move(m.entry));
      if (!m.reference.empty()) s.details.emplace_back("list_reference", std::move(m.reference));
    }
  }
  // Where: the segment and agent the record came from, and the segment's site.
  const std::string_view segment =
      in.record ? in.record->segment.view() : (in.session ? in.session->segment : "");
  const std::string_view agent =
      in.record ? in.record->agent.view() : (in.session ? in.session->agent : "");
  if (!segment.empty()) s.where.emplace_back("segment", std::string(segment));
  if (!agent.empty()) s.where.emplace_back("agent", std::string(agent));
  if (auto site = sites_.find(segment); site != sites_.end())
    s.where.emplace_back("site", site->second);
  if (about_entity) dependencies_->describe(entity, s.where, s.details);
  s.value = value;
  s.threshold = group ? group->threshold : r.threshold;
  if (group) s.details.emplace_back("threshold_group", group->name);
  s.window_ns = r.window_ns;
  for (const Example& e : ks.examples) {
    Value v = e.value;
    if (v.type == Value::Type::kStr) v.str = e.text.view();
    s.examples.push_back(format_value(v));
  }
  if (extra) {
    Value v = extra->value;
    if (v.type == Value::Type::kStr) v.str = extra->text.view();
    s.examples.push_back(format_value(v));
  }
  if (r.kind == RuleKind::kNewValue || r.kind == RuleKind::kChange) {
    // Each new value is its own alert: the value is part of the key.
    const std::string v = s.examples.empty() ? "" : s.examples.back();
    std::string label(r.value->name);
    std::replace(label.begin(), label.end(), '.', '_');
    s.key += (s.key.empty() ? "" : ",") + std::string(r.value->name) + "=" + v;
    s.key_labels.emplace_back(std::move(label), v);
  }
  s.event_time_ns = t;
  // The evidence began with the key's first record, at most one window back.
  if (r.window_ns > 0) s.first_event_ns = std::max(ks.first_ns, t - r.window_ns);
  alerts_.signal(s, wall_ns);
  if (r.kind != RuleKind::kChange && r.kind != RuleKind::kNewValue)
    ks.sent = std::make_unique<AlertSignal>(std::move(s));
}

void RulesEngine::hold(const RuleState& rs, const KeyState& ks, const SessionEvent& ev,
                       std::int64_t wall_ns) {
  const std::size_t state = static_cast<std::size_t>(&rs - states_.data());
  for (Held& h : held_)
    if (h.state == state && h.key == ks.key) {
      h.time_ns = ev.time_ns;
      h.wall_ns = wall_ns;
      return;
    }
  if (held_.size() >= kMaxHeld) held_.erase(held_.begin());  // the oldest: bounded memory
  held_.push_back({state, ks.key, std::string(ev.agent), std::string(ev.segment), ev.connected,
                   ev.time_ns, wall_ns});
}

void RulesEngine::recheck_held() {
  if (held_.empty() || !dependencies_ || !rules_) return;
  const std::int64_t wall_ns = clock_ ? clock_() : 0;
  std::vector<Held> list = std::move(held_);
  held_.clear();
  for (const Held& h : list) {
    if (h.state >= states_.size()) continue;
    RuleState& rs = states_[h.state];
    const auto it = rs.keys.find(h.key);
    if (it == rs.keys.end() || !it->second.bad) continue;  // its condition cleared meanwhile
    // Event time moves on with the wall clock, so dependency_wait runs out.
    SessionEvent ev{h.agent, h.segment, h.connected,
                    h.time_ns + std::max<std::int64_t>(0, wall_ns - h.wall_ns)};
    const EvalInput in{nullptr, &ev};
    fire(rs, *rs.rule, it->second, in, 1, wall_ns);  // held again if still not its turn
  }
}

bool RulesEngine::entity_of(const Rule& r, const EvalInput& in, EntityRef& out) {
  if (in.session) {
    if (r.source != RuleSource::kAgentSession) return false;
    out.kind = EntityRef::Kind::kSegment;
    out.agent = in.session->agent;
    out.segment = in.session->segment;
    return true;
  }
  if (!in.record) return false;
  out.segment = in.record->segment.view();
  out.agent = in.record->agent.view();
  if (const auto* d = in.record->get_if<DeviceStatus>()) {
    out.kind = EntityRef::Kind::kDevice;
    out.addr = d->device;
    return true;
  }
  if (const auto* i = in.record->get_if<InterfaceSample>()) {
    out.kind = EntityRef::Kind::kInterface;
    out.addr = i->device;
    out.if_index = i->if_index;
    return true;
  }
  if (const auto* tr = in.record->get_if<SnmpTrap>()) {
    out.kind = tr->if_index ? EntityRef::Kind::kInterface : EntityRef::Kind::kDevice;
    out.addr = tr->device;
    out.if_index = tr->if_index;
    return true;
  }
  return false;
}

void RulesEngine::flush_pending(std::int64_t wall_ns) {
  for (const auto& [index, key] : pending_) {
    if (index >= states_.size()) continue;
    auto it = states_[index].keys.find(key);
    if (it == states_[index].keys.end()) continue;  // evicted since
    KeyState& ks = it->second;
    if (!ks.pending || !ks.sent) continue;
    ks.pending = false;
    AlertSignal& s = *ks.sent;
    s.value = ks.pending_value;
    s.event_time_ns = std::max(s.event_time_ns, ks.pending_ns);
    // Its lateness is the record's, not the batch end's (the clock may have moved since).
    s.arrival_ns = ks.pending_arrival_ns;
    s.examples.clear();
    for (const Example& e : ks.examples) {
      Value v = e.value;
      if (v.type == Value::Type::kStr) v.str = e.text.view();
      s.examples.push_back(format_value(v));
    }
    ks.pending_value = 0;
    alerts_.signal(s, wall_ns);
  }
  pending_.clear();
}

void RulesEngine::eval_rule(RuleState& rs, const Rule& r, const EvalInput& in,
                            std::int64_t wall_ns) {
  if (!r.where.eval(in)) return;
  if (!r.except.empty() && r.except.eval(in)) return;
  rs.matches->Increment();
  const std::int64_t t = in.time_ns();
  auto make_example = [](const Value& v) {
    Example e;
    e.value = v;
    if (v.type == Value::Type::kStr) e.text.assign(v.str);
    return e;
  };

  switch (r.kind) {
    case RuleKind::kMatch: {
      KeyState* ks = key_state(rs, key_hash(r, in), t);
      ks->last_ns = t;
      fire(rs, r, *ks, in, 1, wall_ns);
      return;
    }
    case RuleKind::kList: {
      const FieldDef* hit = nullptr;
      for (const FieldDef* f : r.list_fields)
        if (r.list->contains(f->get(in).ip)) {
          hit = f;
          break;
        }
      if (!hit) return;
      ListHit lh{hit->get(in), {}};
      std::uint64_t key = 0;
      if (r.conversation) {
        // Both directions of a conversation share one key: (listed, peer). When both ends
        // are listed, the lower address is "listed".
        const FieldDef* other = hit == r.list_fields[0] ? r.list_fields[1] : r.list_fields[0];
        lh.peer = other->get(in);
        if (r.list->contains(lh.peer.ip) && std::tie(lh.peer.ip.family, lh.peer.ip.bytes) <
                                                std::tie(lh.listed.ip.family, lh.listed.ip.bytes))
          std::swap(lh.listed, lh.peer);
        key = hash_value(lh.peer, hash_value(lh.listed));
      } else {
        key = key_hash(r, in);
      }
      KeyState* ks = key_state(rs, key, t);
      ks->last_ns = t;
      const Example e = make_example(hit->get(in));
      fire(rs, r, *ks, in, 1, wall_ns, ks->examples.empty() ? &e : nullptr, &lh);
      return;
    }
    case RuleKind::kThreshold: {
      KeyState* ks = key_state(rs, key_hash(r, in), t);
      ks->last_ns = std::max(ks->last_ns, t);
      window_add(ks->buckets, ks->current, ks->bucket_start_ns, t, r.window_ns,
                 r.sum ? r.value->get(in).num : 1.0);
      if (r.value && !r.sum && ks->examples.size() < r.examples) {
        const Value v = r.value->get(in);
        const std::uint64_t h = hash_value(v);
        bool seen = false;
        for (const Example& e : ks->examples)
          seen |= hash_value(e.value.type == Value::Type::kStr ? Value::string(e.text.view())
                                                               : e.value) == h;
        if (!seen) ks->examples.push_back(make_example(v));
      }
      const double total = window_sum(ks->buckets);
      const ThresholdGroup* g = group_of(r, in);
      if (total >= (g ? g->threshold : r.threshold))
        fire(rs, r, *ks, in, total, wall_ns, nullptr, nullptr, g);
      return;
    }
    case RuleKind::kRate: {
      KeyState* ks = key_state(rs, key_hash(r, in), t);
      ks->last_ns = std::max(ks->last_ns, t);
      double rate = 0;
      if (r.counter) {
        const double v = r.value->get(in).num;
        const bool ok = ks->have_prev && v >= ks->prev && t > ks->prev_ns;
        if (ok) rate = (v - ks->prev) / (static_cast<double>(t - ks->prev_ns) / 1e9) * r.scale;
        ks->have_prev = true;
        ks->prev = v;
        ks->prev_ns = t;
        if (!ok) return;
      } else {
        double v = r.value->get(in).num;
        // A flow's packets and bytes were sent over its whole life, not at its end: only the
        // share that falls inside the window counts. Ten 59-second camera streams ending
        // together add 10/59 of their packets to a 10 s window (their real rate), not all
        // of them at once (six times the rate, a false flood).
        if (const auto* f = in.record ? in.record->get_if<FlowRecord>() : nullptr) {
          const std::int64_t life = f->end_ns - f->start_ns;
          if (life > r.window_ns) v *= static_cast<double>(r.window_ns) / static_cast<double>(life);
        }
        window_add(ks->buckets, ks->current, ks->bucket_start_ns, t, r.window_ns, v);
        rate = window_sum(ks->buckets) / (static_cast<double>(r.window_ns) / 1e9) * r.scale;
      }
      if (r.relative_to) {
        const double base = r.relative_to->get(in).num;
        if (base <= 0) return;
        rate /= base;
      }
      const ThresholdGroup* g = group_of(r, in);
      if (rate >= (g ? g->threshold : r.threshold))
        fire(rs, r, *ks, in, rate, wall_ns, nullptr, nullptr, g);
      return;
    }
    case RuleKind::kDistinct: {
      KeyState* ks = key_state(rs, key_hash(r, in), t);
      ks->last_ns = std::max(ks->last_ns, t);
      const Value v = r.value->get(in);
      const std::uint64_t h = hash_value(v);
      bool found = false;
      for (auto& [vh, seen] : ks->distinct)
        if (vh == h) {
          seen = std::max(seen, t);
          found = true;
          break;
        }
      if (!found) {
        if (ks->distinct.size() >= r.max_distinct || t - ks->last_prune_ns > r.window_ns / 10) {
          ks->last_prune_ns = t;
          std::erase_if(ks->distinct, [&](const auto& e) { return t - e.second > r.window_ns; });
        }
        if (ks->distinct.size() < r.max_distinct) {
          if (ks->distinct.empty()) ks->distinct.reserve(std::min<std::size_t>(r.max_distinct, 64));
          ks->distinct.emplace_back(h, t);
          if (ks->examples.size() < r.examples) ks->examples.push_back(make_example(v));
        }
      }
      // Only a new value keeps the alert alive: probing ports already counted is not more
      // scanning (and a SYN flood to one port must not extend a finished scan).
      const double n = static_cast<double>(ks->distinct.size());
      if (!found && n >= r.threshold) fire(rs, r, *ks, in, n, wall_ns);
      return;
    }
    case RuleKind::kState: {
      const std::uint64_t key = key_hash(r, in);
      if (r.state.empty()) {  // decreases: e.g. sysUpTime went back = a reboot
        KeyState* ks = key_state(rs, key, t);
        ks->last_ns = t;
        const double v = r.value->get(in).num;
        const bool dropped = ks->have_prev && v < ks->prev;
        ks->have_prev = true;
        ks->prev = v;
        if (dropped) fire(rs, r, *ks, in, v, wall_ns);
        return;
      }
      const bool bad = r.state.eval(in);
      auto it = rs.keys.find(key);
      if (!bad) {
        if (it == rs.keys.end() || !it->second.bad) return;
        it->second.bad = false;
        it->second.last_signal_ns = 0;
        std::string k;
        for (const FieldDef* f : r.group_by)
          k += (k.empty() ? "" : ",") + std::string(f->name) + "=" + format_value(f->get(in));
        alerts_.clear(r.info->name, k, t, wall_ns);
        return;
      }
      KeyState* ks = key_state(rs, key, t);
      ks->last_ns = t;
      ks->bad = true;
      fire(rs, r, *ks, in, 1, wall_ns);
      return;
    }
    case RuleKind::kNewValue: {
      if (rs.first_seen_ns == 0) rs.first_seen_ns = t;
      const Value v = r.value->get(in);
      const std::uint64_t key = hash_value(v, key_hash(r, in));
      if (auto it = rs.keys.find(key); it != rs.keys.end()) {
        it->second.last_ns = std::max(it->second.last_ns, t);
        return;
      }
      KeyState* ks = key_state(rs, key, t);
      ks->last_ns = t;
      if (t - rs.first_seen_ns < r.learning_ns) return;  // still learning what is normal
      const Example e = make_example(v);
      fire(rs, r, *ks, in, 1, wall_ns, &e);
      return;
    }
    case RuleKind::kChange: {
      KeyState* ks = key_state(rs, key_hash(r, in), t);
      const Value v = r.value->get(in);
      const std::uint64_t h = hash_value(v);
      const bool changed = ks->have_prev && h != ks->prev_hash;
      ks->last_ns = t;
      if (changed) {
        // Evidence: the previous value, then the new one.
        const Example e = make_example(v);
        fire(rs, r, *ks, in, 1, wall_ns, &e);
      }
      ks->have_prev = true;
      ks->prev_hash = h;
      // The key's recent values, oldest first, each once (an IP's MAC history): the alert
      // shows them before the new one.
      std::erase_if(ks->examples, [&](const Example& e) {
        return hash_value(e.value.type == Value::Type::kStr ? Value::string(e.text.view())
                                                            : e.value) == h;
      });
      ks->examples.push_back(make_example(v));
      if (ks->examples.size() > std::max<std::size_t>(r.examples, 1))
        ks->examples.erase(ks->examples.begin());
      return;
    }
  }
}

}  // namespace citywatch::collector
