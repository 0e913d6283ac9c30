// OutageTracker: turns the state the agents report into outages (docs/uptime.md).
//
// Monitored entities: each agent's segment (dark while the agent has no session: cause
// agent_lost), each polled device (DeviceStatus.reachable; cause snmp_timeout and friends),
// and each administratively up interface (InterfaceSample oper status, cause oper_down; SNMP
// linkDown/linkUp traps, cause trap). An outage starts at the first failed check or down
// event and ends at the first good one; the time since the last good check (and until the
// last failed one) is stored as the detection uncertainty. A down/up shorter than
// uptime.min_outage is a flap, not an outage. Every transition is written to the
// OutageStore before the next record is looked at, and load() continues from the store, so
// a collector restart neither loses, duplicates nor closes an open outage. Agents whose
// segment was up when the collector stopped get uptime.agent_grace to reconnect before
// their segment is counted dark (from the collector's start).
//
// Dependencies (uptime.dependencies, docs/uptime.md "Dependencies and root cause"): an
// outage that starts while every parent of its entity is down, or whose parent goes down
// after the entity's last good check, is attached to the root outage (the top of the
// chain) and counted as a dependent, not an incident, in the metrics. A dependent still down
// uptime.dependency_grace after its root ended continues as an outage of its own from the
// root's end. As a DependencyView, the tracker tells the rules engine which alerts the root
// speaks for and what the root took down.
//
// Collector pairs (a collector_id given: the store is shared, docs/scaling.md): the tracker
// answers only for the agents it owns in the store's agent_owners: an agent that connects
// here is claimed and its entities (with their open outages) are read back from the store,
// whoever wrote them. An agent that disconnects is not dark at once: if it reconnects to
// another collector within uptime.agent_grace it has failed over, and this collector lets
// its entities go (no outage, no series); if not, its segment outage starts at the
// disconnection, written only if this collector still owns the agent (checked under the
// agent's lock, so exactly one collector records it). A collector that stops beating
// (killed) leaves orphans; the others adopt them after kOrphanAfter and treat them as
// disconnected since its last heartbeat. Series and counters cover owned entities only,
// so sums across collectors are exact.
//
// Time: outage boundaries are the records' event times (agent clock) and the session times
// the ingest server reports; tick() reads the injected Clock for accounting, the grace
// period and the availability gauges. Tests use a fake clock and never sleep.
//
// Memory: one entry per entity, created the first time it is seen; records for known
// entities are handled without allocating.
//
// Thread-safety: everything runs on the collector's ingest thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "collector/records/dependency_view.h"
#include "collector/records/record_consumer.h"
#include "collector/uptime/availability.h"
#include "collector/uptime/clock.h"
#include "collector/uptime/outage_store.h"
#include "collector/uptime/time_zone.h"
#include "collector/uptime/uptime_config.h"
#include "collector/uptime/uptime_metrics.h"

namespace citywatch::collector::uptime {

class OutageTracker final : public RecordConsumer, public DependencyView {
 public:
  // metrics may be null (tests, tools); store, clock and config must outlive the tracker.
  // collector_id: this collector's name in a pair sharing the store; empty: alone.
  OutageTracker(const UptimeConfig& config, OutageStore& store, const Clock& clock,
                UptimeMetrics* metrics, std::string collector_id = {});
  ~OutageTracker() override;

  // Restores entities and open outages from the store.
  Status load();

  void consume(const RecordBatch& batch) override;
  void on_agent_session(const std::string& agent, const std::string& segment, bool connected,
                        std::int64_t time_ns) override;

  // Call about once a second: confirms outages that reached min_outage, accounts outage and
  // monitored seconds, ends the restart grace period and refreshes availability gauges
  // (every 60 s).
  void tick();
  // The collector is shutting down: session closes from now on are not agent losses.
  void stop() { stopping_ = true; }

  Verdict verdict(const EntityRef& e, std::int64_t event_ns) const override;
  void describe(const EntityRef& e, std::vector<std::pair<std::string, std::string>>& labels,
                std::vector<std::pair<std::string, std::string>>& details) const override;

  // For tests and tools.
  const EntityRow* entity(const std::string& key) const;
  // The open outage of the entity (null without one).
  const OutageRow* open_outage(const std::string& key) const;
  std::size_t open_outage_count() const;
  std::uint64_t store_errors() const { return store_errors_; }
  std::uint64_t late_records() const { return late_records_; }
  bool owns_agent(const std::string& agent) const { return !shared_ || owned_.count(agent) > 0; }

  // Pairs: how often the heartbeat is written, and how long a silent collector's agents wait
  // before another adopts them.
  static constexpr std::int64_t kHeartbeatEveryNs = 2'000'000'000;
  static constexpr std::int64_t kOrphanAfterNs = 15'000'000'000;

 private:
  struct Key {
    EntityKind kind;
    ShortName scope;  // agent (segment entities) or segment
    IpAddr addr;
    std::uint32_t if_index;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const;
  };
  struct Tracked;
  // A root outage others are attached to.
  struct Root {
    Tracked* entity = nullptr;  // whose outage it is
    bool open = true;
    std::int64_t end_ns = 0;
    std::vector<Tracked*> dependents;  // with an open outage attached here
  };
  // The outage an entity's failure is attributed to: all its parents are down and none of
  // their incidents has ended. id 0: none.
  struct Blocker {
    std::int64_t id = 0;
    Tracked* owner = nullptr;
  };

  Tracked* find(const Key& k);
  const Tracked* find(const Key& k) const;
  const Tracked* find_ref(const EntityRef& e) const;
  void resolve_dependencies(Tracked& t);
  const Tracked* parent_entity(const std::string& p) const;
  Blocker blocking_root(const Tracked& t) const;
  // An open outage enters or leaves the books: open gauges, the root's dependents.
  Root& root_entry(std::int64_t id, Tracked* owner);
  void enter(Tracked& t);
  void leave(Tracked& t, std::int64_t time_ns);
  void attach(Tracked& t, const Blocker& b);
  void attach_dependents(Tracked& parent);
  void release_dependents(std::int64_t now_ns);
  void split(Tracked& t, std::int64_t at_ns);
  // An outage of its own so far whose parent has not been checked since it began (at most
  // dependency_wait): not yet known to be an incident, so not confirmed or counted.
  bool waiting_for_parent(const Tracked& t, std::int64_t now_ns) const;
  void count_outage_time(Tracked& t, std::int64_t until_ns);
  void update_root_gauge(std::int64_t root_id);
  Tracked& create(const Key& k, EntityRow row, std::int64_t time_ns);
  Tracked* device(const RecordRef& r, const IpAddr& addr, std::string_view target,
                  std::string_view sys_name, std::string_view site, bool create_it);
  // Null when create_it is false and it is not tracked yet, or when a bound refuses it.
  Tracked* interface(const RecordRef& r, const IpAddr& addr, std::uint32_t if_index,
                     std::string_view if_name, bool create_it, bool from_trap);
  void observe(Tracked& t, bool up, const char* cause, std::int64_t time_ns,
               const char* end_reason);
  void unmonitor(Tracked& t, std::int64_t time_ns);
  void end_outage(Tracked& t, std::int64_t time_ns, const char* reason);
  void refresh_maintenance(Tracked& t, std::int64_t now_ns);
  std::int64_t maintenance_between(Tracked& t, std::int64_t a, std::int64_t b);
  void account(Tracked& t, std::int64_t now_ns);
  void update_availability(std::int64_t now_ns);
  void save(Status s);
  // Pairs.
  bool owns(const Tracked& t) const;
  // Reads the agent's entities and open outages back from the store; false on a store error.
  bool adopt(const std::string& agent, std::int64_t now_ns);
  void let_go(const std::string& agent, const std::string& to, std::int64_t now_ns);
  void pair_tick(std::int64_t now_ns);
  void lost_agent(Tracked& t, std::int64_t now_ns);
  void ensure_root(std::int64_t root_id, std::int64_t now_ns);
  Tracked& restore(const EntityRow& row);

  const UptimeConfig& config_;
  OutageStore& store_;
  const Clock& clock_;
  UptimeMetrics* metrics_;
  MaintenanceCalendar calendar_;
  TimeZone tz_;  // uptime.time_zone: the target periods are local calendar periods
  // Bounds on what the tracker follows (interface()): every entity, and the interfaces that
  // only link traps (from devices no agent polls) brought in since start.
  static constexpr std::size_t kMaxEntities = 200000;
  static constexpr std::size_t kMaxTrapOnlyInterfaces = 1024;
  std::size_t trap_only_interfaces_ = 0;
  std::unordered_map<Key, std::unique_ptr<Tracked>, KeyHash> entities_;
  std::unordered_map<std::string, Tracked*> by_key_;
  std::unordered_map<std::int64_t, Root> roots_;
  // Devices by name and by address.
  std::unordered_map<std::string, Tracked*> by_name_;
  std::set<std::string, std::less<>> parent_names_;  // every parent the config names
  std::int64_t last_tick_ns_ = 0;
  std::int64_t next_availability_ns_ = 0;
  bool stopping_ = false;
  std::uint64_t store_errors_ = 0;
  std::uint64_t late_records_ = 0;
  // Pairs.
  std::string collector_id_;
  bool shared_ = false;
  std::set<std::string, std::less<>> owned_;          // agents this collector answers for
  std::map<std::string, int, std::less<>> sessions_;  // agents' sessions here now
  bool lost_guard_ = false;  // observe(): a segment outage only if the agent is still ours
  bool lost_won_ = false;
  std::int64_t next_heartbeat_ns_ = 0;
  std::int64_t next_orphan_check_ns_ = 0;
};

}  // namespace citywatch::collector::uptime
