#include "collector/uptime/outage_tracker.h"

#include <arpa/inet.h>

#include <algorithm>
#include <map>

#include "collector/uptime/targets.h"
#include "common/log.h"

namespace citywatch::collector::uptime {

struct OutageTracker::Tracked {
  EntityRow row;
  bool has_outage = false;
  OutageRow outage;
  bool confirmed = false;         // lasted min_outage: counted as an outage
  std::int64_t accounted_ns = 0;  // outage seconds exported up to here
  std::int64_t monitored_ns = 0;  // monitored seconds exported up to here
  bool grace = false;             // segment: waiting for its agent after a restart
  std::int64_t grace_start_ns = 0;
  std::vector<Interval> maint;  // maintenance cached for [maint_from, maint_to)
  std::int64_t maint_from_ns = 0;
  std::int64_t maint_to_ns = 0;
  UptimeMetrics::SiteSeries* site = nullptr;
  UptimeMetrics::EntitySeries series;
};

namespace {

constexpr std::int64_t kDayNs = 86400 * kNsPerSecond;
constexpr std::int64_t kAvailabilityEveryNs = 60 * kNsPerSecond;

std::string addr_text(const IpAddr& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.family == IpAddr::Family::kV4) inet_ntop(AF_INET, a.bytes.data(), buf, sizeof buf);
  if (a.family == IpAddr::Family::kV6) inet_ntop(AF_INET6, a.bytes.data(), buf, sizeof buf);
  return buf;
}

IpAddr parse_addr(const std::string& s) {
  IpAddr a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1)
    a.family = IpAddr::Family::kV4;
  else if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1)
    a.family = IpAddr::Family::kV6;
  return a;
}

const char* cause_name(SnmpCause cause) {
  switch (cause) {
    case SnmpCause::kTimeout:
      return "snmp_timeout";
    case SnmpCause::kAuth:
      return "snmp_auth";
    case SnmpCause::kError:
      return "snmp_error";
    case SnmpCause::kSend:
      return "snmp_send";
    case SnmpCause::kBadReply:
      return "snmp_bad_reply";
    case SnmpCause::kNone:
      break;
  }
  return "unreachable";
}

}  // namespace

std::size_t OutageTracker::KeyHash::operator()(const Key& k) const {
  std::size_t h = static_cast<std::size_t>(k.kind) * 1000003u ^ k.if_index;
  for (char c : k.scope.view()) h = h * 131 + static_cast<unsigned char>(c);
  for (std::uint8_t b : k.addr.bytes) h = h * 131 + b;
  return h;
}

OutageTracker::OutageTracker(const UptimeConfig& config, OutageStore& store, const Clock& clock,
                             UptimeMetrics* metrics)
    : config_(config),
      store_(store),
      clock_(clock),
      metrics_(metrics),
      calendar_(config.maintenance) {
  // read_uptime_config has checked the zone; UTC stays if it has gone since.
  if (auto s = TimeZone::load(config.time_zone, tz_); !s) log::error("uptime: " + s.message());
}

OutageTracker::~OutageTracker() = default;

void OutageTracker::save(Status s) {
  if (s) return;
  ++store_errors_;
  if (metrics_) metrics_->store_error();
  log::error("uptime: " + s.message());
}

Status OutageTracker::load() {
  std::vector<EntityRow> rows;
  if (auto s = store_.load_entities(rows); !s) return s;
  std::vector<OutageRow> open;
  if (auto s = store_.load_open_outages(open); !s) return s;
  std::map<std::int64_t, OutageRow> open_by_entity;
  for (OutageRow& o : open) open_by_entity[o.entity_id] = std::move(o);
  const std::int64_t now = clock_.now_ns();
  last_tick_ns_ = now;
  for (EntityRow& row : rows) {
    Key k{row.kind, {}, parse_addr(row.device), row.if_index};
    k.scope.assign(row.kind == EntityKind::kSegment ? row.agent : row.segment);
    auto t = std::make_unique<Tracked>();
    t->row = std::move(row);
    // Sites follow the configuration in force now.
    if (t->row.kind != EntityKind::kDevice) t->row.site = config_.site_of(t->row.segment);
    if (const auto it = open_by_entity.find(t->row.id); it != open_by_entity.end()) {
      t->has_outage = true;
      t->outage = it->second;
      t->confirmed = now - t->outage.start_ns >= config_.min_outage.count();
      t->accounted_ns = now;  // counters restart at zero; Prometheus handles the reset
    }
    t->monitored_ns = now;
    if (t->row.kind == EntityKind::kSegment && t->row.state == EntityState::kUp) {
      t->grace = true;
      t->grace_start_ns = now;
    }
    if (metrics_) {
      t->site = metrics_->site(t->row.site, t->row.kind);
      t->series = metrics_->entity(t->row);
      if (t->series.up) t->series.up->Set(t->row.state == EntityState::kDown ? 0 : 1);
      if (t->has_outage) t->site->open->Increment();
    }
    by_key_[t->row.key] = t.get();
    entities_.emplace(k, std::move(t));
  }
  log::info("uptime: " + std::to_string(entities_.size()) + " entities, " +
            std::to_string(open.size()) + " open outages restored");
  return Status::ok();
}

OutageTracker::Tracked* OutageTracker::find(const Key& k) {
  const auto it = entities_.find(k);
  return it == entities_.end() ? nullptr : it->second.get();
}

OutageTracker::Tracked& OutageTracker::create(const Key& k, EntityRow row, std::int64_t time_ns) {
  auto t = std::make_unique<Tracked>();
  row.first_seen_ns = time_ns;
  row.state_since_ns = time_ns;
  t->row = std::move(row);
  t->monitored_ns = time_ns;
  save(store_.save_entity(t->row));
  if (metrics_) {
    t->site = metrics_->site(t->row.site, t->row.kind);
    t->series = metrics_->entity(t->row);
  }
  Tracked& ref = *t;
  by_key_[ref.row.key] = &ref;
  entities_.emplace(k, std::move(t));
  return ref;
}

OutageTracker::Tracked* OutageTracker::device(const RecordRef& r, const IpAddr& addr,
                                              std::string_view target, std::string_view sys_name,
                                              std::string_view site, bool create_it) {
  Key k{EntityKind::kDevice, r.segment, addr, 0};
  if (Tracked* t = find(k)) return t;
  if (!create_it) return nullptr;
  EntityRow row;
  row.kind = EntityKind::kDevice;
  row.agent = std::string(r.agent.view());
  row.segment = std::string(r.segment.view());
  row.site = site.empty() ? config_.site_of(row.segment) : std::string(site);
  row.device = addr_text(addr);
  row.device_name = !target.empty()     ? std::string(target)
                    : !sys_name.empty() ? std::string(sys_name)
                                        : row.device;
  row.key = "device/" + row.segment + "/" + row.device;
  return &create(k, std::move(row), r.event_time_ns);
}

OutageTracker::Tracked* OutageTracker::interface(const RecordRef& r, const IpAddr& addr,
                                                 std::uint32_t if_index, std::string_view if_name,
                                                 bool create_it) {
  Key k{EntityKind::kInterface, r.segment, addr, if_index};
  if (Tracked* t = find(k)) return t;
  if (!create_it) return nullptr;
  EntityRow row;
  row.kind = EntityKind::kInterface;
  row.agent = std::string(r.agent.view());
  row.segment = std::string(r.segment.view());
  row.device = addr_text(addr);
  row.if_index = if_index;
  row.interface = if_name.empty() ? "ifIndex " + std::to_string(if_index) : std::string(if_name);
  if (const Tracked* d = find({EntityKind::kDevice, r.segment, addr, 0})) {
    row.site = d->row.site;
    row.device_name = d->row.device_name;
  } else {
    row.site = config_.site_of(row.segment);
    row.device_name = row.device;
  }
  row.key = "interface/" + row.segment + "/" + row.device + "/" + std::to_string(if_index);
  return &create(k, std::move(row), r.event_time_ns);
}

void OutageTracker::consume(const RecordBatch& records) {
  for (const RecordRef r : records) {
    if (const auto* d = r.get_if<DeviceStatus>()) {
      Tracked* t = device(r, d->device, d->target.view(), d->name.view(), d->site.view(), true);
      if (d->event == SnmpEvent::kReboot && r.event_time_ns >= t->row.state_since_ns)
        save(store_.record_state(t->row, r.event_time_ns, "reboot"));
      observe(*t, d->reachable != 0, cause_name(d->cause), r.event_time_ns, "recovered");
    } else if (const auto* s = r.get_if<InterfaceSample>()) {
      // ifAdminStatus 2 (down) or 3 (testing): not expected to pass traffic, not monitored.
      const bool admin_up = s->admin_up();
      Tracked* t = interface(r, s->device, s->if_index, s->if_name.view(), admin_up);
      if (!t) continue;
      if (!admin_up)
        unmonitor(*t, r.event_time_ns);
      else
        observe(*t, s->oper_up(), "oper_down", r.event_time_ns, "recovered");
    } else if (const auto* tr = r.get_if<SnmpTrap>()) {
      if (tr->kind == SnmpTrapKind::kLinkDown || tr->kind == SnmpTrapKind::kLinkUp) {
        if (tr->admin_status == 2) continue;  // shut down on purpose
        Tracked* t = interface(r, tr->device, tr->if_index, {}, true);
        observe(*t, tr->kind == SnmpTrapKind::kLinkUp, "trap", r.event_time_ns, "recovered");
      } else if (tr->kind == SnmpTrapKind::kColdStart || tr->kind == SnmpTrapKind::kWarmStart) {
        if (Tracked* t = device(r, tr->device, tr->target.view(), {}, {}, false))
          save(store_.record_state(
              t->row, r.event_time_ns,
              tr->kind == SnmpTrapKind::kColdStart ? "trap: coldStart" : "trap: warmStart"));
      }
    }
  }
}

void OutageTracker::on_agent_session(const std::string& agent, const std::string& segment,
                                     bool connected, std::int64_t time_ns) {
  if (stopping_ && !connected) return;  // our own shutdown, not the agent's
  Key k{EntityKind::kSegment, ShortName(agent), IpAddr{}, 0};
  Tracked* t = find(k);
  if (!t) {
    EntityRow row;
    row.kind = EntityKind::kSegment;
    row.agent = agent;
    row.segment = segment;
    row.site = config_.site_of(segment);
    row.device_name = agent;
    row.key = "segment/" + agent;
    t = &create(k, std::move(row), time_ns);
  }
  t->grace = false;
  observe(*t, connected, "agent_lost", time_ns, "agent_back");
}

void OutageTracker::observe(Tracked& t, bool up, const char* cause, std::int64_t time_ns,
                            const char* end_reason) {
  EntityRow& e = t.row;
  if (time_ns < e.state_since_ns) {
    ++late_records_;
    if (metrics_) metrics_->late_record();
    return;
  }
  if (up) {
    if (e.state == EntityState::kUp) {
      e.last_up_ns = time_ns;
      return;
    }
    if (t.has_outage) {
      e.state = EntityState::kUp;
      e.state_since_ns = time_ns;
      end_outage(t, time_ns, end_reason);
      e.last_up_ns = time_ns;
      return;
    }
    e.state = EntityState::kUp;
    e.state_since_ns = time_ns;
    e.last_up_ns = time_ns;
    if (t.series.up) t.series.up->Set(1);
    save(store_.record_state(e, time_ns, "up"));
    return;
  }
  if (e.state == EntityState::kDown) {
    e.last_down_ns = time_ns;
    return;
  }
  // The first failed check: the outage starts here. It may have begun any time since the
  // last good check; that span is kept as the uncertainty.
  const std::int64_t last_good = e.last_up_ns;
  e.state = EntityState::kDown;
  e.state_since_ns = time_ns;
  e.last_down_ns = time_ns;
  t.outage = OutageRow{};
  t.outage.entity_id = e.id;
  t.outage.cause = cause;
  t.outage.start_ns = time_ns;
  t.outage.start_uncertainty_ns = last_good > 0 ? time_ns - last_good : 0;
  t.has_outage = true;
  t.confirmed = false;
  t.accounted_ns = time_ns;
  save(store_.start_outage(e, t.outage));
  if (t.series.up) t.series.up->Set(0);
  if (t.site) t.site->open->Increment();
}

void OutageTracker::unmonitor(Tracked& t, std::int64_t time_ns) {
  EntityRow& e = t.row;
  if (e.state == EntityState::kUnmonitored) return;
  if (time_ns < e.state_since_ns) {
    ++late_records_;
    if (metrics_) metrics_->late_record();
    return;
  }
  account(t, time_ns);
  e.state = EntityState::kUnmonitored;
  e.state_since_ns = time_ns;
  if (t.has_outage)
    end_outage(t, time_ns, "admin_down");
  else
    save(store_.record_state(e, time_ns, "admin down: not monitored"));
  if (t.series.up) t.series.up->Set(1);
}

void OutageTracker::end_outage(Tracked& t, std::int64_t time_ns, const char* reason) {
  OutageRow& o = t.outage;
  o.end_ns = time_ns;
  o.open = false;
  o.end_reason = reason;
  o.end_uncertainty_ns = t.row.last_down_ns > 0 ? time_ns - t.row.last_down_ns : 0;
  o.flap = time_ns - o.start_ns < config_.min_outage.count();
  o.maintenance_ns = maintenance_between(t, o.start_ns, time_ns);
  save(store_.end_outage(t.row, o));
  if (t.site) {
    if (o.flap) {
      t.site->flaps->Increment();
    } else {
      if (!t.confirmed && metrics_) metrics_->outage(t.row.site, t.row.kind, o.cause);
      t.confirmed = true;
      if (time_ns > t.accounted_ns)
        t.site->outage_seconds->Increment(
            static_cast<double>(time_ns - t.accounted_ns -
                                maintenance_between(t, t.accounted_ns, time_ns)) /
            kNsPerSecond);
    }
    t.site->open->Decrement();
  }
  t.has_outage = false;
  t.confirmed = false;
  if (t.series.up) t.series.up->Set(1);
}

void OutageTracker::refresh_maintenance(Tracked& t, std::int64_t now_ns) {
  if (now_ns >= t.maint_from_ns && now_ns + kNsPerSecond < t.maint_to_ns) return;
  t.maint_from_ns = now_ns - kDayNs;
  t.maint_to_ns = now_ns + kDayNs;
  calendar_.intervals(scope_of(t.row), t.maint_from_ns, t.maint_to_ns, t.maint);
}

std::int64_t OutageTracker::maintenance_between(Tracked& t, std::int64_t a, std::int64_t b) {
  if (calendar_.empty() || b <= a) return 0;
  if (a >= t.maint_from_ns && b <= t.maint_to_ns) return covered_ns(t.maint, a, b);
  std::vector<Interval> v;  // a span beyond the cache: a long outage ending (rare)
  calendar_.intervals(scope_of(t.row), a, b, v);
  return covered_ns(v, a, b);
}

void OutageTracker::account(Tracked& t, std::int64_t now_ns) {
  if (!t.site) return;
  refresh_maintenance(t, now_ns);
  const bool monitored = t.row.state == EntityState::kUp || t.row.state == EntityState::kDown;
  if (monitored && now_ns > t.monitored_ns)
    t.site->monitored_seconds->Increment(
        static_cast<double>(now_ns - t.monitored_ns -
                            maintenance_between(t, t.monitored_ns, now_ns)) /
        kNsPerSecond);
  t.monitored_ns = std::max(t.monitored_ns, now_ns);
  if (t.has_outage && t.confirmed && now_ns > t.accounted_ns) {
    t.site->outage_seconds->Increment(
        static_cast<double>(now_ns - t.accounted_ns -
                            maintenance_between(t, t.accounted_ns, now_ns)) /
        kNsPerSecond);
    t.accounted_ns = now_ns;
  }
  if (t.series.maintenance)
    t.series.maintenance->Set(covered_ns(t.maint, now_ns, now_ns + 1) > 0 ? 1 : 0);
}

void OutageTracker::tick() {
  const std::int64_t now = clock_.now_ns();
  for (auto& [k, tp] : entities_) {
    Tracked& t = *tp;
    if (t.grace && now - t.grace_start_ns >= config_.agent_grace.count()) {
      // The agent has not come back since the collector started: its segment has been
      // dark (as far as anyone can tell) since then.
      t.grace = false;
      log::warning("uptime: agent '" + t.row.agent +
                   "' did not reconnect within the grace "
                   "period; segment '" +
                   t.row.segment + "' counted dark since start-up");
      observe(t, false, "agent_lost", t.grace_start_ns, "agent_back");
    }
    if (t.has_outage && !t.confirmed && now - t.outage.start_ns >= config_.min_outage.count()) {
      t.confirmed = true;
      if (metrics_) metrics_->outage(t.row.site, t.row.kind, t.outage.cause);
    }
    account(t, now);
  }
  last_tick_ns_ = now;
  if (metrics_ && now >= next_availability_ns_) {
    next_availability_ns_ = now + kAvailabilityEveryNs;
    update_availability(now);
  }
}

void OutageTracker::update_availability(std::int64_t now_ns) {
  std::vector<EntityRow> rows;
  for (const auto& [k, t] : entities_)
    if (t->row.kind != EntityKind::kInterface) rows.push_back(t->row);
  std::int64_t longest = 0;
  for (const auto w : config_.availability_windows) longest = std::max(longest, w.count());
  std::vector<OutageRow> outages;
  if (auto s = store_.load_outages(now_ns - longest, now_ns + 1, outages); !s) {
    save(s);
    return;
  }
  std::vector<Figures> figures;
  for (const auto w : config_.availability_windows) {
    compute_figures(rows, outages, calendar_, now_ns - w.count(), now_ns, now_ns, figures);
    std::map<std::string, Figures> by_site;
    for (std::size_t i = 0; i < rows.size(); ++i) by_site[rows[i].site].add(figures[i]);
    std::map<std::pair<std::string, std::string>, Figures> by_segment;
    for (std::size_t i = 0; i < rows.size(); ++i)
      by_segment[{rows[i].site, rows[i].segment}].add(figures[i]);
    const std::string label = window_label(w);
    for (const auto& [site, f] : by_site) metrics_->set_availability(site, label, f.availability());
    for (const auto& [where, f] : by_segment)
      metrics_->set_segment_availability(where.first, where.second, label, f.availability());
  }
  TargetFigures targets;
  if (auto s = compute_targets(store_, calendar_, tz_, config_.target, now_ns, targets); !s) {
    save(s);
    return;
  }
  metrics_->set_targets(targets, config_.target.reduction_percent);
}

const EntityRow* OutageTracker::entity(const std::string& key) const {
  const auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : &it->second->row;
}

std::size_t OutageTracker::open_outage_count() const {
  std::size_t n = 0;
  for (const auto& [k, t] : entities_) n += t->has_outage ? 1 : 0;
  return n;
}

}  // namespace citywatch::collector::uptime
