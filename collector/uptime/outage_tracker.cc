#include "collector/uptime/outage_tracker.h"

#include <arpa/inet.h>

#include <algorithm>
#include <map>

#include "collector/uptime/targets.h"
#include "common/label_text.h"
#include "common/log.h"

namespace citywatch::collector::uptime {

struct OutageTracker::Tracked {
  EntityRow row;
  bool has_outage = false;
  OutageRow outage;
  bool confirmed = false;         // lasted min_outage: counted as an outage
  std::int64_t accounted_ns = 0;  // outage seconds exported up to here
  std::int64_t monitored_ns = 0;  // monitored seconds exported up to here
  bool grace = false;             // segment: waiting for its agent (restart, or pairs)
  std::int64_t grace_start_ns = 0;
  std::int64_t left_ns = 0;     // pairs: the agent disconnected from here then (0: a restart)
  std::vector<Interval> maint;  // maintenance cached for [maint_from, maint_to)
  std::int64_t maint_from_ns = 0;
  std::int64_t maint_to_ns = 0;
  UptimeMetrics::SiteSeries* site = nullptr;
  UptimeMetrics::EntitySeries series;
  // Dependencies: the entry naming its parents (null: none), those parents as a label, and
  // for an entity the configuration names as a parent, its incident_dependents gauge.
  const DependencySpec* deps = nullptr;
  std::string parents_label;
  bool is_parent = false;
  prometheus::Gauge* incident_gauge = nullptr;
};

namespace {

constexpr std::int64_t kDayNs = 86400 * kNsPerSecond;
constexpr std::int64_t kAvailabilityEveryNs = 60 * kNsPerSecond;
constexpr std::size_t kMaxDependentNames = 20;  // in a root alert's dependent_names

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
                             UptimeMetrics* metrics, std::string collector_id)
    : config_(config),
      store_(store),
      clock_(clock),
      metrics_(metrics),
      calendar_(config.maintenance),
      collector_id_(std::move(collector_id)),
      shared_(!collector_id_.empty()) {
  for (const DependencySpec& d : config.dependencies)
    for (const std::string& p : d.parents) parent_names_.insert(p);
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

OutageTracker::Tracked& OutageTracker::restore(const EntityRow& row) {
  Key k{row.kind, {}, parse_addr(row.device), row.if_index};
  k.scope.assign(row.kind == EntityKind::kSegment ? row.agent : row.segment);
  auto& slot = entities_[k];
  if (!slot) slot = std::make_unique<Tracked>();
  Tracked& t = *slot;
  t.row = row;
  // Names stored before they were made label text (common/label_text.h) are made so now.
  t.row.device_name = label_text(t.row.device_name);
  t.row.interface = label_text(t.row.interface);
  // Sites follow the configuration in force now.
  if (t.row.kind != EntityKind::kDevice) t.row.site = config_.site_of(t.row.segment);
  if (!t.deps) resolve_dependencies(t);
  by_key_[t.row.key] = &t;
  return t;
}

void OutageTracker::ensure_root(std::int64_t r, std::int64_t now) {
  if (r == 0 || roots_.count(r)) return;
  Root root;
  for (auto& [k2, o] : entities_)
    if (o->has_outage && o->outage.id == r) root.entity = o.get();
  if (!root.entity) {
    // Ended before the restart: the dependents wait out the grace from its end. A root
    // row that cannot be read (removed by hand) counts as ended now.
    OutageRow ended;
    root.open = false;
    root.end_ns = now;
    if (auto st = store_.load_outage(r, ended); !st)
      log::warning("uptime: " + st.message() + "; its dependents are released after the grace");
    else if (!ended.open)
      root.end_ns = ended.end_ns;
    else
      root.open = true;  // open in the record, its entity not (yet) here: a pair's other side
  }
  roots_.emplace(r, std::move(root));
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
  if (shared_) {
    // Agents this collector answered for before it stopped: as alone, they get the grace
    // to come back (here or to another collector) from now; until then they are not dark.
    std::vector<AgentOwner> mine;
    if (auto s = store_.agents_of(collector_id_, mine); !s) return s;
    for (const AgentOwner& o : mine) {
      owned_.insert(o.agent);
      if (auto s = store_.release_agent(o.agent, collector_id_, now); !s) return s;
    }
    if (auto s = store_.heartbeat(collector_id_, now); !s) return s;
    next_heartbeat_ns_ = now + kHeartbeatEveryNs;
  }
  std::size_t restored = 0;
  for (EntityRow& row : rows) {
    Tracked& t = restore(row);
    if (!owns(t)) continue;  // another collector's: silent until its agent comes here
    if (const auto it = open_by_entity.find(t.row.id); it != open_by_entity.end()) {
      t.has_outage = true;
      t.outage = it->second;
      t.confirmed = now - t.outage.start_ns >= config_.min_outage.count();
      t.accounted_ns = now;  // counters restart at zero; Prometheus handles the reset
      ++restored;
    }
    t.monitored_ns = now;
    if (t.row.kind == EntityKind::kSegment && t.row.state == EntityState::kUp) {
      t.grace = true;
      t.grace_start_ns = now;
    }
    if (metrics_) {
      t.site = metrics_->site(t.row.site, t.row.kind);
      t.series = metrics_->entity(t.row);
      if (t.series.up) t.series.up->Set(t.row.state == EntityState::kDown ? 0 : 1);
    }
  }
  // Roots of the dependents still open: an open outage of another entity, or one that ended
  // (its dependents wait out the grace from its end).
  for (auto& [k, t] : entities_)
    if (t->has_outage) ensure_root(t->outage.root_outage_id, now);
  for (auto& [k, t] : entities_)
    if (t->has_outage) enter(*t);
  log::info("uptime: " + std::to_string(entities_.size()) + " entities, " +
            std::to_string(restored) + " open outages restored" +
            (shared_ ? "; " + std::to_string(owned_.size()) + " agents owned by collector '" +
                           collector_id_ + "'"
                     : ""));
  return Status::ok();
}

// ---- Collector pairs ----

bool OutageTracker::owns(const Tracked& t) const {
  return !shared_ || owned_.count(t.row.agent) > 0;
}

bool OutageTracker::adopt(const std::string& agent, std::int64_t now) {
  std::vector<EntityRow> rows;
  std::vector<OutageRow> open;
  if (auto s = store_.load_entities_of(agent, rows); !s) {
    save(s);
    return false;
  }
  if (auto s = store_.load_open_outages_of(agent, open); !s) {
    save(s);
    return false;
  }
  std::map<std::int64_t, OutageRow> open_by_entity;
  for (OutageRow& o : open) open_by_entity[o.entity_id] = std::move(o);
  std::vector<Tracked*> adopted;
  for (const EntityRow& row : rows) {
    Key k{row.kind, {}, parse_addr(row.device), row.if_index};
    k.scope.assign(row.kind == EntityKind::kSegment ? row.agent : row.segment);
    if (Tracked* old = find(k); old && old->has_outage) {
      if (old->site) leave(*old, now);
      old->has_outage = false;
    }
    Tracked& t = restore(row);
    t.grace = false;
    t.left_ns = 0;
    t.monitored_ns = now;
    if (const auto it = open_by_entity.find(t.row.id); it != open_by_entity.end()) {
      t.has_outage = true;
      t.outage = it->second;
      t.confirmed = now - t.outage.start_ns >= config_.min_outage.count();
      t.accounted_ns = now;
    }
    if (metrics_ && !t.site) {
      t.site = metrics_->site(t.row.site, t.row.kind);
      t.series = metrics_->entity(t.row);
    }
    if (t.series.up) t.series.up->Set(t.row.state == EntityState::kDown ? 0 : 1);
    adopted.push_back(&t);
  }
  for (Tracked* t : adopted)
    if (t->has_outage) ensure_root(t->outage.root_outage_id, now);
  for (Tracked* t : adopted) {
    if (!t->has_outage) continue;
    enter(*t);
    // A root another collector's dependents were attached to, known here before its entity.
    if (const auto it = roots_.find(t->outage.id); it != roots_.end()) {
      it->second.entity = t;
      it->second.open = true;
      update_root_gauge(t->outage.id);
    }
  }
  log::info("uptime: collector '" + collector_id_ + "' answers for agent '" + agent + "' (" +
            std::to_string(rows.size()) + " entities, " + std::to_string(open.size()) +
            " open outages from the store)");
  return true;
}

void OutageTracker::let_go(const std::string& agent, const std::string& to, std::int64_t now) {
  for (auto& [k, tp] : entities_) {
    Tracked& t = *tp;
    if (t.row.agent != agent) continue;
    account(t, now);
    if (t.has_outage && t.site) leave(t, now);
    t.has_outage = false;
    t.grace = false;
    t.left_ns = 0;
    if (metrics_) metrics_->remove_entity(t.row, t.series);
    t.site = nullptr;
  }
  owned_.erase(agent);
  log::info("uptime: agent '" + agent + "' is with collector '" + to +
            "' now; that collector answers for its segment (no outage recorded here)");
}

void OutageTracker::lost_agent(Tracked& t, std::int64_t now) {
  AgentOwner o;
  if (auto s = store_.agent_owner(t.row.agent, o); !s) return save(s);  // asked again next tick
  if (!o.collector.empty() && o.collector != collector_id_)
    return let_go(t.row.agent, o.collector, now);
  t.grace = false;
  if (t.has_outage) return;  // already dark in the record (adopted as it was)
  const std::uint64_t errors = store_errors_;
  lost_won_ = false;
  lost_guard_ = true;
  observe(t, false, "agent_lost", t.grace_start_ns, "agent_back");
  lost_guard_ = false;
  if (lost_won_) {
    log::warning("uptime: agent '" + t.row.agent + "' has not come back to any collector " +
                 "within the grace; segment '" + t.row.segment + "' counted dark since " +
                 (t.left_ns ? "it was last seen" : "start-up"));
    return;
  }
  if (store_errors_ != errors) {
    t.grace = true;  // the database failed: nothing was written, asked again next tick
    return;
  }
  // Claimed elsewhere between the two looks: that collector answers for it now.
  if (auto s = store_.agent_owner(t.row.agent, o);
      !s || o.collector.empty() || o.collector == collector_id_) {
    t.grace = true;  // asked again next tick
    return save(s);
  }
  let_go(t.row.agent, o.collector, now);
}

void OutageTracker::pair_tick(std::int64_t now) {
  if (now >= next_heartbeat_ns_) {
    save(store_.heartbeat(collector_id_, now));
    next_heartbeat_ns_ = now + kHeartbeatEveryNs;
  }
  if (now < next_orphan_check_ns_) return;
  next_orphan_check_ns_ = now + kHeartbeatEveryNs;
  // Agents the store no longer lists as ours. Without a session here, one came back to
  // another collector (which closed its outage): that one answers for it now. With one, this
  // collector was thought dead (stalled longer than kOrphanAfterNs) and its agent adopted:
  // the collector that receives the agent's records answers for it, so it claims it back.
  std::vector<AgentOwner> listed;
  if (auto s = store_.agents_of(collector_id_, listed); !s) return save(s);
  std::set<std::string, std::less<>> still;
  for (const AgentOwner& o : listed) still.insert(o.agent);
  std::vector<std::string> lost;
  for (const std::string& agent : owned_)
    if (!still.count(agent)) lost.push_back(agent);
  for (const std::string& agent : lost) {
    AgentOwner o;
    if (auto s = store_.agent_owner(agent, o); !s) return save(s);
    // Adopted as an orphan (not connected there) while its session is here: this collector
    // was stalled, not dead, and claims it back. Connected at the other collector: the agent
    // moved and a session here is a half-open leftover; the other one answers for it.
    if (sessions_.count(agent) && !o.connected) {
      log::warning("uptime: agent '" + agent + "' was taken over while its session is here; " +
                   "collector '" + collector_id_ + "' claims it back");
      save(store_.claim_agent(agent, collector_id_, now));
      if (!adopt(agent, now)) owned_.erase(agent);
      continue;
    }
    let_go(agent, o.collector.empty() ? std::string("none") : o.collector, now);
  }
  // Agents with a session here whose entities could not be read back (the database): again.
  for (const AgentOwner& o : listed)
    if (o.connected && sessions_.count(o.agent) && !owned_.count(o.agent) && adopt(o.agent, now))
      owned_.insert(o.agent);
  std::vector<AgentOwner> orphans;
  if (auto s = store_.orphaned_agents(collector_id_, now - kOrphanAfterNs, orphans); !s)
    return save(s);
  for (const AgentOwner& o : orphans) {
    bool won = false;
    std::int64_t since = 0;
    if (auto s = store_.adopt_orphan(o, collector_id_, won, since); !s) {
      save(s);
      continue;
    }
    if (!won) continue;
    log::warning("uptime: collector '" + o.collector + "' has been silent for " +
                 std::to_string((now - o.heartbeat_ns) / kNsPerSecond) + " s; collector '" +
                 collector_id_ + "' takes over agent '" + o.agent + "'");
    if (!adopt(o.agent, now)) continue;  // still ours in the store: read back next time
    owned_.insert(o.agent);
    if (Tracked* t = find({EntityKind::kSegment, ShortName(o.agent), IpAddr{}, 0});
        t && !t->has_outage) {
      t->grace = true;
      t->grace_start_ns = std::max(since, t->row.state_since_ns);
      t->left_ns = t->grace_start_ns;
    }
  }
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
  resolve_dependencies(*t);
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
  // Device text (sysName, ifName) goes to labels and reports as valid UTF-8 without control
  // characters (common/label_text.h).
  row.device_name = !target.empty()     ? std::string(target)
                    : !sys_name.empty() ? label_text(sys_name)
                                        : row.device;
  row.key = "device/" + row.segment + "/" + row.device;
  return &create(k, std::move(row), r.event_time_ns);
}

OutageTracker::Tracked* OutageTracker::interface(const RecordRef& r, const IpAddr& addr,
                                                 std::uint32_t if_index, std::string_view if_name,
                                                 bool create_it, bool from_trap) {
  Key k{EntityKind::kInterface, r.segment, addr, if_index};
  if (Tracked* t = find(k)) return t;
  if (!create_it) return nullptr;
  // A link trap names its sender itself, and anyone who knows the community (or, with none
  // configured, anyone) can send one: interfaces of devices no agent polls are followed up to
  // a bound, and nothing is followed beyond kMaxEntities, so spoofed traps or a device
  // inventing ifIndexes cannot grow the tracker, its store and its start-up without end.
  const bool polled = find({EntityKind::kDevice, r.segment, addr, 0}) != nullptr;
  if (from_trap && !polled && trap_only_interfaces_ >= kMaxTrapOnlyInterfaces) {
    if (metrics_) metrics_->entity_refused("unknown_device");
    return nullptr;
  }
  if (entities_.size() >= kMaxEntities) {
    if (metrics_) metrics_->entity_refused("full");
    return nullptr;
  }
  if (from_trap && !polled) ++trap_only_interfaces_;
  EntityRow row;
  row.kind = EntityKind::kInterface;
  row.agent = std::string(r.agent.view());
  row.segment = std::string(r.segment.view());
  row.device = addr_text(addr);
  row.if_index = if_index;
  row.interface = if_name.empty() ? "ifIndex " + std::to_string(if_index) : label_text(if_name);
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
  // A pair: records from a leftover session of an agent another collector answers for.
  if (shared_ && records.size() > 0 && !owned_.count(records[0].agent.view())) return;
  for (const RecordRef r : records) {
    if (const auto* d = r.get_if<DeviceStatus>()) {
      Tracked* t = device(r, d->device, d->target.view(), d->name.view(), d->site.view(), true);
      if (d->event == SnmpEvent::kReboot && r.event_time_ns >= t->row.state_since_ns)
        save(store_.record_state(t->row, r.event_time_ns, "reboot"));
      observe(*t, d->reachable != 0, cause_name(d->cause), r.event_time_ns, "recovered");
    } else if (const auto* s = r.get_if<InterfaceSample>()) {
      // ifAdminStatus 2 (down) or 3 (testing): not expected to pass traffic, not monitored.
      const bool admin_up = s->admin_up();
      Tracked* t = interface(r, s->device, s->if_index, s->if_name.view(), admin_up, false);
      if (!t) continue;
      if (!admin_up)
        unmonitor(*t, r.event_time_ns);
      else
        observe(*t, s->oper_up(), "oper_down", r.event_time_ns, "recovered");
    } else if (const auto* tr = r.get_if<SnmpTrap>()) {
      if (tr->kind == SnmpTrapKind::kLinkDown || tr->kind == SnmpTrapKind::kLinkUp) {
        if (tr->admin_status == 2) continue;  // shut down on purpose
        Tracked* t = interface(r, tr->device, tr->if_index, {}, true, true);
        if (!t) continue;
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
  if (shared_) {
    // An agent may hold more than one session (a half-open one lingering after it
    // reconnected): it is gone only when its last session here ends.
    if (connected) {
      ++sessions_[agent];
      save(store_.claim_agent(agent, collector_id_, time_ns));
      if (!owned_.count(agent) && adopt(agent, time_ns)) owned_.insert(agent);
    } else {
      if (const auto it = sessions_.find(agent); it != sessions_.end() && --it->second > 0) return;
      sessions_.erase(agent);
      save(store_.release_agent(agent, collector_id_, time_ns));
    }
  }
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
  if (shared_ && !connected) {
    // Dark only if it comes back to no collector within the grace (tick()).
    t->grace = true;
    t->grace_start_ns = time_ns;
    t->left_ns = time_ns;
    return;
  }
  // Back here within the grace after leaving: the gap is recorded as it would be alone
  // (a flap if shorter than min_outage).
  if (t->grace && t->left_ns) observe(*t, false, "agent_lost", t->left_ns, "agent_back");
  t->grace = false;
  t->left_ns = 0;
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
  const EntityRow before = e;
  e.state = EntityState::kDown;
  e.state_since_ns = time_ns;
  e.last_down_ns = time_ns;
  t.outage = OutageRow{};
  t.outage.entity_id = e.id;
  t.outage.cause = cause;
  t.outage.start_ns = time_ns;
  t.outage.start_uncertainty_ns = last_good > 0 ? time_ns - last_good : 0;
  const Blocker b = blocking_root(t);
  t.outage.root_outage_id = b.id;
  t.has_outage = true;
  t.confirmed = false;
  t.accounted_ns = time_ns;
  if (lost_guard_) {
    save(store_.start_lost_outage(e, t.outage, collector_id_, lost_won_));
    if (!lost_won_) {
      e = before;
      t.has_outage = false;
      return;
    }
  } else {
    save(store_.start_outage(e, t.outage));
  }
  if (t.outage.root_outage_id != b.id) {
    // A row from before (a replay after a restart) with another root: memory decides.
    t.outage.root_outage_id = b.id;
    save(store_.set_root(t.outage.id, b.id));
  }
  if (t.outage.root_outage_id) root_entry(b.id, b.owner);
  if (t.series.up) t.series.up->Set(0);
  enter(t);
  attach_dependents(t);
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
  // A root others depend on is an incident however short: were it a flap, its dependents
  // (left out of the incident view) would take the incident with them.
  o.flap = time_ns - o.start_ns < config_.min_outage.count() &&
           (o.root_outage_id != 0 || !roots_.count(o.id));
  o.maintenance_ns = maintenance_between(t, o.start_ns, time_ns);
  save(store_.end_outage(t.row, o));
  if (t.site) {
    if (o.flap) {
      t.site->flaps->Increment();
    } else {
      if (!t.confirmed && metrics_)
        metrics_->outage(t.row.site, t.row.kind, o.cause, o.root_outage_id != 0);
      t.confirmed = true;
      count_outage_time(t, time_ns);
    }
  }
  leave(t, time_ns);
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
  if (t.has_outage && t.confirmed) {
    // A dependent whose root has ended waits: its time up to now belongs to the dependent
    // outage if it recovers within the grace, to an outage of its own if it does not.
    const auto r = roots_.find(t.outage.root_outage_id);
    if (t.outage.root_outage_id == 0 ? !waiting_for_parent(t, now_ns)
                                     : r == roots_.end() || r->second.open)
      count_outage_time(t, now_ns);
  }
  if (t.series.maintenance)
    t.series.maintenance->Set(covered_ns(t.maint, now_ns, now_ns + 1) > 0 ? 1 : 0);
}

void OutageTracker::tick() {
  const std::int64_t now = clock_.now_ns();
  if (shared_) pair_tick(now);
  for (auto& [k, tp] : entities_) {
    Tracked& t = *tp;
    if (!owns(t)) continue;
    if (shared_ && t.grace && now - t.grace_start_ns >= config_.agent_grace.count()) {
      lost_agent(t, now);
      if (!owns(t)) continue;
    } else if (t.grace && now - t.grace_start_ns >= config_.agent_grace.count()) {
      // The agent has not come back since the collector started: its segment has been
      // dark (as far as anyone can tell) since then.
      t.grace = false;
      log::warning("uptime: agent '" + t.row.agent +
                   "' did not reconnect within the grace "
                   "period; segment '" +
                   t.row.segment + "' counted dark since start-up");
      observe(t, false, "agent_lost", t.grace_start_ns, "agent_back");
    }
    if (t.has_outage && !t.confirmed && now - t.outage.start_ns >= config_.min_outage.count() &&
        !waiting_for_parent(t, now)) {
      t.confirmed = true;
      if (metrics_)
        metrics_->outage(t.row.site, t.row.kind, t.outage.cause, t.outage.root_outage_id != 0);
    }
    account(t, now);
  }
  release_dependents(now);
  last_tick_ns_ = now;
  if (metrics_ && now >= next_availability_ns_) {
    next_availability_ns_ = now + kAvailabilityEveryNs;
    update_availability(now);
  }
}

void OutageTracker::update_availability(std::int64_t now_ns) {
  std::vector<EntityRow> rows;
  if (shared_) {
    // The figures come from the whole city's record, the same for every collector of the
    // pair: one exports them (the first live one by name), so a sum over collectors (the
    // dashboards' sum(...)) counts them once.
    std::string exporter;
    if (auto s = store_.record_exporter(now_ns - kOrphanAfterNs, exporter); !s) return save(s);
    if (exporter != collector_id_) {
      metrics_->clear_record_figures();
      return;
    }
    if (auto s = store_.load_entities(rows); !s) return save(s);
    rows.erase(std::remove_if(rows.begin(), rows.end(),
                              [](const EntityRow& r) { return r.kind == EntityKind::kInterface; }),
               rows.end());
    for (EntityRow& r : rows)
      if (r.kind != EntityKind::kDevice) r.site = config_.site_of(r.segment);
  } else {
    for (const auto& [k, t] : entities_)
      if (t->row.kind != EntityKind::kInterface) rows.push_back(t->row);
  }
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

// ---- Dependencies ----

namespace {

// How a root alert names what it took down.
std::string display_name(const EntityRow& e) {
  switch (e.kind) {
    case EntityKind::kSegment:
      return "segment " + e.segment;
    case EntityKind::kInterface:
      return e.device_name + "[" + e.interface + "]";
    case EntityKind::kDevice:
      break;
  }
  return e.device_name;
}

}  // namespace

const OutageTracker::Tracked* OutageTracker::find(const Key& k) const {
  const auto it = entities_.find(k);
  return it == entities_.end() ? nullptr : it->second.get();
}

void OutageTracker::resolve_dependencies(Tracked& t) {
  EntityRow& e = t.row;
  std::vector<std::string> names;
  switch (e.kind) {
    case EntityKind::kDevice:
      names = {e.device_name, e.device};
      t.deps = find_dependency(config_.dependencies, DependencySpec::Kind::kDevice, e.device_name,
                               e.device, e.site);
      break;
    case EntityKind::kInterface:
      break;
    case EntityKind::kSegment:
      t.deps = find_dependency(config_.dependencies, DependencySpec::Kind::kSegment, e.segment, {},
                               e.site);
      break;
  }
  for (const std::string& n : names) {
    by_name_.try_emplace(n, &t);
    t.is_parent = t.is_parent || parent_names_.count(n) > 0;
  }
  if (t.deps)
    for (const std::string& p : t.deps->parents)
      t.parents_label += (t.parents_label.empty() ? "" : ",") + p;
  if (t.is_parent && metrics_) {
    t.incident_gauge = metrics_->incident_dependents(e, display_name(e));
    t.incident_gauge->Set(0);
  }
}

const OutageTracker::Tracked* OutageTracker::parent_entity(const std::string& p) const {
  const auto it = by_name_.find(p);
  return it == by_name_.end() ? nullptr : it->second;
}

OutageTracker::Blocker OutageTracker::blocking_root(const Tracked& t) const {
  if (!t.deps || t.deps->parents.empty()) return {};
  Blocker b;
  for (const std::string& p : t.deps->parents) {
    const Tracked* pt = parent_entity(p);
    if (!pt || pt == &t || !pt->has_outage) return {};
    const std::int64_t r = pt->outage.root_outage_id ? pt->outage.root_outage_id : pt->outage.id;
    const auto it = roots_.find(r);
    if (it != roots_.end() && !it->second.open) return {};  // that incident is over
    // A dependent parent whose root is not known here is being released: not a blocker.
    if (it == roots_.end() && pt->outage.root_outage_id != 0) return {};
    if (t.has_outage && r == t.outage.id) return {};
    if (b.id == 0) {
      b.id = r;
      b.owner = it != roots_.end() ? it->second.entity : const_cast<Tracked*>(pt);
    }
  }
  return b;
}

OutageTracker::Root& OutageTracker::root_entry(std::int64_t id, Tracked* owner) {
  auto [it, added] = roots_.try_emplace(id);
  if (added) it->second.entity = owner;
  return it->second;
}

void OutageTracker::enter(Tracked& t) {
  const std::int64_t r = t.outage.root_outage_id;
  if (r == 0) {
    if (t.site) t.site->open->Increment();
    return;
  }
  if (t.site) t.site->open_dependent->Increment();
  if (t.series.dependent) t.series.dependent->Set(1);
  if (auto it = roots_.find(r); it != roots_.end()) {
    it->second.dependents.push_back(&t);
    update_root_gauge(r);
  }
}

void OutageTracker::leave(Tracked& t, std::int64_t time_ns) {
  const std::int64_t r = t.outage.root_outage_id;
  if (r == 0) {
    if (t.site) t.site->open->Decrement();
    if (auto it = roots_.find(t.outage.id); it != roots_.end()) {
      it->second.open = false;
      it->second.end_ns = time_ns;
      update_root_gauge(t.outage.id);
      if (it->second.dependents.empty()) roots_.erase(it);
    }
    return;
  }
  if (t.site) t.site->open_dependent->Decrement();
  if (t.series.dependent) t.series.dependent->Set(0);
  if (auto it = roots_.find(r); it != roots_.end()) {
    auto& v = it->second.dependents;
    v.erase(std::remove(v.begin(), v.end(), &t), v.end());
    update_root_gauge(r);
    if (!it->second.open && v.empty()) roots_.erase(it);
  }
}

void OutageTracker::attach(Tracked& t, const Blocker& b) {
  const std::int64_t own = t.outage.id;
  // What depended on t moves under t's root: roots are never nested.
  std::vector<Tracked*> moved;
  if (auto it = roots_.find(own); it != roots_.end()) {
    moved = std::move(it->second.dependents);
    roots_.erase(it);
  }
  if (t.site) t.site->open->Decrement();
  if (t.incident_gauge) t.incident_gauge->Set(0);
  save(store_.attach(own, b.id));
  Root& root = root_entry(b.id, b.owner);
  for (Tracked* d : moved) {
    d->outage.root_outage_id = b.id;
    root.dependents.push_back(d);
  }
  t.outage.root_outage_id = b.id;
  enter(t);
}

void OutageTracker::attach_dependents(Tracked& parent) {
  if (!parent.is_parent) return;
  // Outages that began after the parent's last good check may be its doing: those whose
  // parents are now all down move under the root. A chain settles in as many rounds as it
  // is deep (bounded: a cycle is a configuration error).
  const std::int64_t since = parent.row.last_up_ns;
  for (int round = 0; round < 16; ++round) {
    bool moved = false;
    for (auto& [k, tp] : entities_) {
      Tracked& c = *tp;
      if (&c == &parent || !c.has_outage || c.outage.root_outage_id != 0 || !c.deps ||
          c.outage.start_ns < since)
        continue;
      const Blocker b = blocking_root(c);
      if (b.id == 0) continue;
      attach(c, b);
      moved = true;
    }
    if (!moved) break;
  }
}

void OutageTracker::release_dependents(std::int64_t now_ns) {
  std::vector<std::int64_t> due;
  for (const auto& [id, r] : roots_)
    if (!r.open && now_ns - r.end_ns >= config_.dependency_grace.count()) due.push_back(id);
  for (const std::int64_t id : due) {
    const auto it = roots_.find(id);
    if (it == roots_.end()) continue;
    // The closed root stays known while its dependents split, so none of them takes a
    // dependent parent of the same incident for a live root; it goes once they all have.
    const std::vector<Tracked*> still_down = it->second.dependents;
    const std::int64_t at = it->second.end_ns;
    for (Tracked* d : still_down) split(*d, at);
    if (const auto left = roots_.find(id); left != roots_.end() && left->second.dependents.empty())
      roots_.erase(left);
  }
}

void OutageTracker::split(Tracked& t, std::int64_t at_ns) {
  OutageRow& o = t.outage;
  const Blocker b = blocking_root(t);
  if (at_ns <= o.start_ns) {
    // It failed after its root had already recovered (records from two agents, or a batch
    // late): nothing of it was the root's doing. It is its own outage from its start.
    leave(t, at_ns);
    o.root_outage_id = b.id;
    save(store_.set_root(o.id, b.id));
    if (b.id) root_entry(b.id, b.owner);
    enter(t);
    attach_dependents(t);
    return;
  }
  OutageRow ended = o;
  ended.end_ns = at_ns;
  ended.open = false;
  ended.end_reason = "parent_up";
  ended.end_uncertainty_ns = 0;
  ended.flap = at_ns - ended.start_ns < config_.min_outage.count();
  ended.maintenance_ns = maintenance_between(t, ended.start_ns, at_ns);
  OutageRow next;
  next.entity_id = t.row.id;
  next.cause = o.cause;
  next.start_ns = at_ns;
  next.root_outage_id = b.id;
  if (Status st = store_.split_outage(t.row, ended, next); !st) {
    // Nothing changed on disk: the outage stays as it is, attached, and is retried at the
    // next tick (its root's entry is kept while it is still a dependent).
    save(st);
    return;
  }
  if (t.site) {
    if (ended.flap) {
      t.site->flaps->Increment();
    } else {
      if (!t.confirmed && metrics_) metrics_->outage(t.row.site, t.row.kind, ended.cause, true);
      count_outage_time(t, at_ns);
    }
  }
  leave(t, at_ns);
  log::info("uptime: " + display_name(t.row) + " is still down after the outage it depended on " +
            "ended; it continues as an outage of its own");
  t.outage = std::move(next);
  t.confirmed = false;
  t.accounted_ns = std::max(at_ns, t.accounted_ns);
  if (b.id) root_entry(b.id, b.owner);
  enter(t);
  attach_dependents(t);
}

bool OutageTracker::waiting_for_parent(const Tracked& t, std::int64_t now_ns) const {
  if (!t.has_outage || t.outage.root_outage_id != 0 || !t.deps ||
      now_ns - t.outage.start_ns >= config_.dependency_wait.count())
    return false;
  for (const std::string& p : t.deps->parents)
    if (const Tracked* pt = parent_entity(p);
        pt && std::max(pt->row.last_up_ns, pt->row.last_down_ns) < t.outage.start_ns)
      return true;
  return false;
}

void OutageTracker::count_outage_time(Tracked& t, std::int64_t until_ns) {
  if (!t.site || until_ns <= t.accounted_ns) return;
  prometheus::Counter* c =
      t.outage.root_outage_id ? t.site->dependent_outage_seconds : t.site->outage_seconds;
  c->Increment(static_cast<double>(until_ns - t.accounted_ns -
                                   maintenance_between(t, t.accounted_ns, until_ns)) /
               kNsPerSecond);
  t.accounted_ns = until_ns;
}

void OutageTracker::update_root_gauge(std::int64_t root_id) {
  const auto it = roots_.find(root_id);
  if (it == roots_.end() || !it->second.entity || !it->second.entity->incident_gauge) return;
  it->second.entity->incident_gauge->Set(
      it->second.open ? static_cast<double>(it->second.dependents.size()) : 0.0);
}

const OutageTracker::Tracked* OutageTracker::find_ref(const EntityRef& e) const {
  // An interface's alerts follow its device's dependencies.
  if (e.kind == EntityRef::Kind::kSegment)
    return find({EntityKind::kSegment, ShortName(e.agent), IpAddr{}, 0});
  return find({EntityKind::kDevice, ShortName(e.segment), e.addr, 0});
}

DependencyView::Verdict OutageTracker::verdict(const EntityRef& e, std::int64_t event_ns) const {
  const Tracked* t = find_ref(e);
  if (!t || !t->deps) return Verdict::kAlert;
  if (t->has_outage && t->outage.root_outage_id) return Verdict::kSuppress;
  if (blocking_root(*t).id) return Verdict::kSuppress;
  // It failed and a parent has not been checked since: its answer decides.
  return waiting_for_parent(*t, event_ns) ? Verdict::kHold : Verdict::kAlert;
}

void OutageTracker::describe(const EntityRef& e,
                             std::vector<std::pair<std::string, std::string>>& labels,
                             std::vector<std::pair<std::string, std::string>>& details) const {
  const Tracked* root = find_ref(e);
  if (root && !root->parents_label.empty()) labels.emplace_back("parents", root->parents_label);
  if (e.kind == EntityRef::Kind::kInterface) return;  // the device's alert names dependents
  if (!root || !root->has_outage || root->outage.root_outage_id != 0) return;
  const auto it = roots_.find(root->outage.id);
  if (it == roots_.end() || it->second.dependents.empty()) return;
  std::vector<std::string> names;
  for (const Tracked* d : it->second.dependents) names.push_back(display_name(d->row));
  std::sort(names.begin(), names.end());
  std::string text;
  for (std::size_t i = 0; i < names.size() && i < kMaxDependentNames; ++i)
    text += (i ? ", " : "") + names[i];
  if (names.size() > kMaxDependentNames)
    text += " and " + std::to_string(names.size() - kMaxDependentNames) + " more";
  details.emplace_back("dependents", std::to_string(names.size()));
  details.emplace_back("dependent_names", std::move(text));
}

const EntityRow* OutageTracker::entity(const std::string& key) const {
  const auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : &it->second->row;
}

const OutageRow* OutageTracker::open_outage(const std::string& key) const {
  const auto it = by_key_.find(key);
  return it == by_key_.end() || !it->second->has_outage ? nullptr : &it->second->outage;
}

std::size_t OutageTracker::open_outage_count() const {
  std::size_t n = 0;
  for (const auto& [k, t] : entities_) n += t->has_outage ? 1 : 0;
  return n;
}

}  // namespace citywatch::collector::uptime
