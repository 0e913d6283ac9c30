// OutageStore: the durable outage record: STATE_DIR/uptime.sqlite (SQLite in WAL mode), or
// the PostgreSQL database a collector pair shares (collector/store/sql_db.h).
//
// Three tables: `entities` (every monitored segment, device and interface with its current
// state), `outages` (one row per outage: entity, cause, start, end or NULL while open,
// detection uncertainty, flap flag, maintenance time inside it, the root outage it depends
// on) and `state_changes` (the
// timeline). An outage's row is written when it starts, so a collector restart finds it
// open and continues it instead of opening a second one: (entity, start) is unique and at
// most one outage per entity can be open, both enforced by the schema. Each transition is
// one transaction (synchronous=FULL), so a crash leaves the transition whole or absent.
// The `outage_view` view joins outages with their entity for ad-hoc SQL and reports.
//
// Collector pairs (docs/scaling.md): `collectors` holds each collector's heartbeat and
// `agent_owners` which collector answers for each agent's segment (and its devices and
// interfaces), so a segment whose agent moved to another collector is not an outage and one
// whose agent is gone from all is recorded once: by its owner, under the agent's lock.
//
// Thread-safety: none. One owner: the tracker on the ingest thread, or the report CLI.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "collector/store/sql_db.h"
#include "common/status.h"

namespace citywatch::collector::uptime {

enum class EntityKind : std::uint8_t { kSegment = 0, kDevice = 1, kInterface = 2 };
enum class EntityState : std::uint8_t { kUnknown = 0, kUp = 1, kDown = 2, kUnmonitored = 3 };
const char* to_string(EntityKind k);
const char* to_string(EntityState s);
bool parse_kind(const std::string& s, EntityKind& out);

struct EntityRow {
  std::int64_t id = 0;
  EntityKind kind = EntityKind::kDevice;
  std::string
      key;  // unique: "segment/AGENT", "device/SEGMENT/ADDR", "interface/SEGMENT/ADDR/IFINDEX"
  std::string agent;
  std::string site;
  std::string segment;
  std::string device;       // address as text
  std::string device_name;  // sysName, or the agent id for a segment
  std::string interface;    // ifName (or "ifIndex N")
  std::uint32_t if_index = 0;
  std::int64_t first_seen_ns = 0;
  EntityState state = EntityState::kUnknown;
  std::int64_t state_since_ns = 0;
  std::int64_t last_up_ns = 0;    // last good check
  std::int64_t last_down_ns = 0;  // last failed check
};

struct OutageRow {
  std::int64_t id = 0;
  std::int64_t entity_id = 0;
  std::string cause;  // snmp_timeout, unreachable, oper_down, trap, agent_lost
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  bool open = true;
  // Between the last good check and the first failed one, and between the last failed
  // check and the first good one: how much earlier the outage may really have begun/ended.
  std::int64_t start_uncertainty_ns = 0;
  std::int64_t end_uncertainty_ns = 0;
  bool flap = false;                // shorter than uptime.min_outage
  std::int64_t maintenance_ns = 0;  // time inside maintenance windows (set at the end)
  std::string end_reason;           // recovered, admin_down, agent_back, parent_up
  // The outage of the entity this one depends on (docs/uptime.md, "Dependencies and root
  // cause"), always the top of the chain; 0: this outage is a root, its own incident.
  std::int64_t root_outage_id = 0;
};

// Who answers for an agent's segment (collector pairs).
struct AgentOwner {
  std::string agent;
  std::string collector;  // empty: no collector has claimed it
  bool connected = false;
  std::int64_t changed_ns = 0;    // when it connected or disconnected
  std::int64_t heartbeat_ns = 0;  // the owner's last heartbeat (0: none)
};

class OutageStore {
 public:
  // A SQLite store in this file.
  static Status open(const std::filesystem::path& file, std::unique_ptr<OutageStore>& out,
                     bool create = true);
  // A store in db, migrated to the current schema.
  static Status open(std::unique_ptr<store::SqlDb> db, std::unique_ptr<OutageStore>& out);
  ~OutageStore();
  OutageStore(const OutageStore&) = delete;
  OutageStore& operator=(const OutageStore&) = delete;

  Status load_entities(std::vector<EntityRow>& out) const;
  Status load_open_outages(std::vector<OutageRow>& out) const;
  // The same, for the entities one agent reports (a collector takes the agent over).
  Status load_entities_of(const std::string& agent, std::vector<EntityRow>& out) const;
  Status load_open_outages_of(const std::string& agent, std::vector<OutageRow>& out) const;
  // Outages that overlap [from, to): start < to and (open or end > from), by start.
  Status load_outages(std::int64_t from_ns, std::int64_t to_ns, std::vector<OutageRow>& out) const;

  // Inserts the entity or updates it by key; sets e.id.
  Status save_entity(EntityRow& e);
  // One transaction: the outage row (o.id is set; an outage already stored for the same
  // entity and start is reused, not duplicated), the entity's state and a state change.
  Status start_outage(const EntityRow& e, OutageRow& o);
  Status end_outage(const EntityRow& e, const OutageRow& o);
  Status load_outage(std::int64_t id, OutageRow& out) const;
  // Makes the outage a dependent of root_id, with every outage that was attached to it.
  Status attach(std::int64_t outage_id, std::int64_t root_id);
  // The root of this one outage alone (0: none, it is its own incident).
  Status set_root(std::int64_t outage_id, std::int64_t root_id);
  // One transaction: ends `ended` (still down: its root recovered) and opens `next` for the
  // same entity at the same moment; next.id is set. The entity's state does not change.
  Status split_outage(const EntityRow& e, const OutageRow& ended, OutageRow& next);
  // A state change with no outage boundary (first seen up, unmonitored, reboot).
  Status record_state(const EntityRow& e, std::int64_t time_ns, const std::string& detail);

  // Collector pairs. The agent connected to (claim) or left (release: only if still ours)
  // this collector.
  Status claim_agent(const std::string& agent, const std::string& collector, std::int64_t time_ns);
  Status release_agent(const std::string& agent, const std::string& collector,
                       std::int64_t time_ns);
  Status heartbeat(const std::string& collector, std::int64_t now_ns);
  Status agent_owner(const std::string& agent, AgentOwner& out) const;
  Status agents_of(const std::string& collector, std::vector<AgentOwner>& out) const;
  // The collector that exports the figures read from the shared record: the first by name
  // of those that have beaten since alive_since_ns (empty: none).
  Status record_exporter(std::int64_t alive_since_ns, std::string& out) const;
  // Agents whose owner is another collector that has not beaten since stale_before_ns.
  Status orphaned_agents(const std::string& collector, std::int64_t stale_before_ns,
                         std::vector<AgentOwner>& out) const;
  // Takes an orphan over if it is still as seen (one collector wins); dark_since_ns: since
  // when its segment is unaccounted for (its owner's last heartbeat, or its disconnection).
  Status adopt_orphan(const AgentOwner& seen, const std::string& collector, bool& won,
                      std::int64_t& dark_since_ns);
  // start_outage for a lost agent, only if this collector still owns it (checked and written
  // under the agent's lock; the caller holds no session of it); ours tells which. An error
  // (the database) writes nothing and leaves ours false.
  Status start_lost_outage(const EntityRow& e, OutageRow& o, const std::string& collector,
                           bool& ours);

  store::SqlDb& db() const { return *db_; }

 private:
  OutageStore() = default;
  Status migrate();
  Status insert_outage(const EntityRow& e, OutageRow& o);
  Status save_entity_state(const EntityRow& e);
  Status add_change(const EntityRow& e, std::int64_t time_ns, const std::string& detail);
  Status load_entities_where(const std::string& where, std::span<const store::SqlValue> params,
                             std::vector<EntityRow>& out) const;

  std::unique_ptr<store::SqlDb> db_;
};

}  // namespace citywatch::collector::uptime
