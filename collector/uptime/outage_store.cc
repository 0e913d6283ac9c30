#include "collector/uptime/outage_store.h"

#include <algorithm>

namespace citywatch::collector::uptime {

const char* to_string(EntityKind k) {
  switch (k) {
    case EntityKind::kSegment:
      return "segment";
    case EntityKind::kDevice:
      return "device";
    case EntityKind::kInterface:
      return "interface";
  }
  return "device";
}

const char* to_string(EntityState s) {
  switch (s) {
    case EntityState::kUnknown:
      return "unknown";
    case EntityState::kUp:
      return "up";
    case EntityState::kDown:
      return "down";
    case EntityState::kUnmonitored:
      return "unmonitored";
  }
  return "unknown";
}

bool parse_kind(const std::string& s, EntityKind& out) {
  for (EntityKind k : {EntityKind::kSegment, EntityKind::kDevice, EntityKind::kInterface})
    if (s == to_string(k)) {
      out = k;
      return true;
    }
  return false;
}

namespace {

EntityState parse_state(const std::string& s) {
  for (EntityState v :
       {EntityState::kUnknown, EntityState::kUp, EntityState::kDown, EntityState::kUnmonitored})
    if (s == to_string(v)) return v;
  return EntityState::kUnknown;
}

// Version 2 added outages.root_outage_id (dependencies), version 3 the collector pair tables;
// kMigrations[v - 1] takes a version-v store to v + 1 inside one transaction.
constexpr const char* kComponent = "outages";
constexpr int kSchemaVersion = 3;
constexpr const char* kPairTables = R"sql(
CREATE TABLE IF NOT EXISTS collectors (
  collector TEXT PRIMARY KEY,
  heartbeat_ns {INT} NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_owners (
  agent TEXT PRIMARY KEY,
  collector TEXT NOT NULL,
  connected {INT} NOT NULL,
  changed_ns {INT} NOT NULL
);
)sql";
constexpr const char* kMigrations[] = {
    R"sql(
ALTER TABLE outages ADD COLUMN root_outage_id {INT} REFERENCES outages(id);
DROP VIEW IF EXISTS outage_view;
)sql",
    kPairTables,
};
static_assert(std::size(kMigrations) == kSchemaVersion - 1);
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS entities (
  id {ID},
  kind TEXT NOT NULL CHECK (kind IN ('segment', 'device', 'interface')),
  key TEXT NOT NULL UNIQUE,
  agent TEXT NOT NULL,
  site TEXT NOT NULL,
  segment TEXT NOT NULL,
  device TEXT NOT NULL,
  device_name TEXT NOT NULL,
  interface TEXT NOT NULL,
  if_index {INT} NOT NULL,
  first_seen_ns {INT} NOT NULL,
  state TEXT NOT NULL,
  state_since_ns {INT} NOT NULL,
  last_up_ns {INT} NOT NULL,
  last_down_ns {INT} NOT NULL
);
CREATE INDEX IF NOT EXISTS entities_by_agent ON entities(agent);
CREATE TABLE IF NOT EXISTS outages (
  id {ID},
  entity_id {INT} NOT NULL REFERENCES entities(id),
  cause TEXT NOT NULL,
  start_ns {INT} NOT NULL,
  end_ns {INT},
  start_uncertainty_ns {INT} NOT NULL,
  end_uncertainty_ns {INT} NOT NULL DEFAULT 0,
  flap {INT} NOT NULL DEFAULT 0,
  maintenance_ns {INT} NOT NULL DEFAULT 0,
  end_reason TEXT NOT NULL DEFAULT '',
  root_outage_id {INT} REFERENCES outages(id),
  UNIQUE (entity_id, start_ns)
);
CREATE INDEX IF NOT EXISTS outages_by_root ON outages(root_outage_id)
  WHERE root_outage_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS one_open_outage ON outages(entity_id) WHERE end_ns IS NULL;
CREATE INDEX IF NOT EXISTS outages_by_time ON outages(start_ns, end_ns);
CREATE TABLE IF NOT EXISTS state_changes (
  id {ID},
  entity_id {INT} NOT NULL REFERENCES entities(id),
  time_ns {INT} NOT NULL,
  state TEXT NOT NULL,
  detail TEXT NOT NULL
);
{VIEW} outage_view AS
  SELECT o.id, e.kind, e.site, e.segment, e.device, e.device_name, e.interface, o.cause,
         o.start_ns, o.end_ns, o.start_uncertainty_ns, o.end_uncertainty_ns, o.flap,
         o.maintenance_ns, o.end_reason, o.root_outage_id
  FROM outages o JOIN entities e ON e.id = o.entity_id;
)sql";

using store::SqlRows;
using store::SqlValue;

constexpr const char* kOutageColumns =
    "SELECT id, entity_id, cause, start_ns, end_ns, start_uncertainty_ns, end_uncertainty_ns, "
    "flap, maintenance_ns, end_reason, root_outage_id FROM outages ";

OutageRow read_outage(const SqlRows& q, std::size_t i) {
  OutageRow o;
  o.id = q.i64(i, 0);
  o.entity_id = q.i64(i, 1);
  o.cause = q.text(i, 2);
  o.start_ns = q.i64(i, 3);
  o.open = q.null(i, 4);
  o.end_ns = o.open ? 0 : q.i64(i, 4);
  o.start_uncertainty_ns = q.i64(i, 5);
  o.end_uncertainty_ns = q.i64(i, 6);
  o.flap = q.i64(i, 7) != 0;
  o.maintenance_ns = q.i64(i, 8);
  o.end_reason = q.text(i, 9);
  o.root_outage_id = q.null(i, 10) ? 0 : q.i64(i, 10);
  return o;
}

SqlValue id_or_null(std::int64_t id) { return id ? SqlValue{id} : SqlValue{nullptr}; }

}  // namespace

Status OutageStore::open(const std::filesystem::path& file, std::unique_ptr<OutageStore>& out,
                         bool create) {
  std::error_code ec;
  if (!create && !std::filesystem::exists(file, ec))
    return Status::error(file.string() + ": no outage store here");
  std::unique_ptr<store::SqlDb> db;
  if (auto s = store::open_sqlite(file, db, create); !s) return s;
  return open(std::move(db), out);
}

Status OutageStore::open(std::unique_ptr<store::SqlDb> db, std::unique_ptr<OutageStore>& out) {
  std::unique_ptr<OutageStore> s(new OutageStore());
  s->db_ = std::move(db);
  if (auto st = s->migrate(); !st) return st;
  out = std::move(s);
  return Status::ok();
}

Status OutageStore::migrate() {
  const store::Schema schema{kComponent, "outage store", kSchemaVersion,
                             std::string(kSchema) + kPairTables,
                             [](int from) { return std::string(kMigrations[from - 1]); }};
  int migrated_from = 0;
  return store::migrate(*db_, schema, migrated_from);
}

OutageStore::~OutageStore() = default;

Status OutageStore::load_entities_where(const std::string& where, std::span<const SqlValue> params,
                                        std::vector<EntityRow>& out) const {
  out.clear();
  SqlRows q;
  if (auto s = db_->run(
          "SELECT id, kind, key, agent, site, segment, device, device_name, interface, if_index, "
          "first_seen_ns, state, state_since_ns, last_up_ns, last_down_ns FROM entities " +
              where + " ORDER BY id",
          params, &q);
      !s)
    return s;
  for (std::size_t i = 0; i < q.size(); ++i) {
    EntityRow e;
    e.id = q.i64(i, 0);
    parse_kind(q.text(i, 1), e.kind);
    e.key = q.text(i, 2);
    e.agent = q.text(i, 3);
    e.site = q.text(i, 4);
    e.segment = q.text(i, 5);
    e.device = q.text(i, 6);
    e.device_name = q.text(i, 7);
    e.interface = q.text(i, 8);
    e.if_index = static_cast<std::uint32_t>(q.i64(i, 9));
    e.first_seen_ns = q.i64(i, 10);
    e.state = parse_state(q.text(i, 11));
    e.state_since_ns = q.i64(i, 12);
    e.last_up_ns = q.i64(i, 13);
    e.last_down_ns = q.i64(i, 14);
    out.push_back(std::move(e));
  }
  return Status::ok();
}

Status OutageStore::load_entities(std::vector<EntityRow>& out) const {
  return load_entities_where("", {}, out);
}

Status OutageStore::load_entities_of(const std::string& agent, std::vector<EntityRow>& out) const {
  const SqlValue p[] = {agent};
  return load_entities_where("WHERE agent = $1", p, out);
}

Status OutageStore::load_open_outages(std::vector<OutageRow>& out) const {
  out.clear();
  SqlRows q;
  if (auto s =
          db_->run(std::string(kOutageColumns) + "WHERE end_ns IS NULL ORDER BY start_ns", {}, &q);
      !s)
    return s;
  for (std::size_t i = 0; i < q.size(); ++i) out.push_back(read_outage(q, i));
  return Status::ok();
}

Status OutageStore::load_open_outages_of(const std::string& agent,
                                         std::vector<OutageRow>& out) const {
  out.clear();
  SqlRows q;
  if (auto s = db_->run(std::string(kOutageColumns) +
                            "WHERE end_ns IS NULL AND entity_id IN (SELECT id FROM entities "
                            "WHERE agent = $1) ORDER BY start_ns",
                        {agent}, &q);
      !s)
    return s;
  for (std::size_t i = 0; i < q.size(); ++i) out.push_back(read_outage(q, i));
  return Status::ok();
}

Status OutageStore::load_outages(std::int64_t from_ns, std::int64_t to_ns,
                                 std::vector<OutageRow>& out) const {
  out.clear();
  SqlRows q;
  if (auto s = db_->run(
          std::string(kOutageColumns) +
              "WHERE start_ns < $2 AND (end_ns IS NULL OR end_ns > $1) ORDER BY start_ns, id",
          {from_ns, to_ns}, &q);
      !s)
    return s;
  for (std::size_t i = 0; i < q.size(); ++i) out.push_back(read_outage(q, i));
  return Status::ok();
}

Status OutageStore::save_entity(EntityRow& e) {
  SqlRows q;
  if (auto s = db_->run(
          "INSERT INTO entities(kind, key, agent, site, segment, device, device_name, interface, "
          "if_index, first_seen_ns, state, state_since_ns, last_up_ns, last_down_ns) "
          "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
          "ON CONFLICT(key) DO UPDATE SET agent = excluded.agent, site = excluded.site, "
          "device_name = excluded.device_name, interface = excluded.interface, "
          "state = excluded.state, state_since_ns = excluded.state_since_ns, "
          "last_up_ns = excluded.last_up_ns, last_down_ns = excluded.last_down_ns RETURNING id",
          {std::string(to_string(e.kind)), e.key, e.agent, e.site, e.segment, e.device,
           e.device_name, e.interface, static_cast<std::int64_t>(e.if_index), e.first_seen_ns,
           std::string(to_string(e.state)), e.state_since_ns, e.last_up_ns, e.last_down_ns},
          &q);
      !s)
    return s;
  if (q.empty()) return Status::error(db_->name() + ": entity row not returned");
  e.id = q.i64(0, 0);
  return Status::ok();
}

Status OutageStore::save_entity_state(const EntityRow& e) {
  return db_->run(
      "UPDATE entities SET state = $2, state_since_ns = $3, last_up_ns = $4, "
      "last_down_ns = $5 WHERE id = $1",
      {e.id, std::string(to_string(e.state)), e.state_since_ns, e.last_up_ns, e.last_down_ns});
}

Status OutageStore::add_change(const EntityRow& e, std::int64_t time_ns,
                               const std::string& detail) {
  return db_->run(
      "INSERT INTO state_changes(entity_id, time_ns, state, detail) VALUES($1, $2, $3, $4)",
      {e.id, time_ns, std::string(to_string(e.state)), detail});
}

Status OutageStore::insert_outage(const EntityRow& e, OutageRow& o) {
  if (auto s = db_->run(
          "INSERT INTO outages(entity_id, cause, start_ns, start_uncertainty_ns, "
          "root_outage_id) VALUES($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
          {e.id, o.cause, o.start_ns, o.start_uncertainty_ns, id_or_null(o.root_outage_id)});
      !s)
    return s;
  SqlRows id;
  if (auto s =
          db_->run("SELECT id, root_outage_id FROM outages WHERE entity_id = $1 AND start_ns = $2",
                   {e.id, o.start_ns}, &id);
      !s)
    return s;
  if (id.empty()) {
    // The entity already has an open outage with another start (written by another
    // collector of a pair, or before a restart): the store's is the outage, continued.
    if (auto s = db_->run(std::string(kOutageColumns) + "WHERE entity_id = $1 AND end_ns IS NULL",
                          {e.id}, &id);
        !s)
      return s;
    if (id.empty()) return Status::error(db_->name() + ": outage row vanished");
    o = read_outage(id, 0);
    return save_entity_state(e);
  }
  o.id = id.i64(0, 0);
  o.root_outage_id = id.null(0, 1) ? 0 : id.i64(0, 1);
  if (auto s = save_entity_state(e); !s) return s;
  return add_change(e, o.start_ns, "outage start: " + o.cause);
}

Status OutageStore::start_outage(const EntityRow& e, OutageRow& o) {
  return store::transaction(*db_, [&] { return insert_outage(e, o); });
}

Status OutageStore::end_outage(const EntityRow& e, const OutageRow& o) {
  return store::transaction(*db_, [&]() -> Status {
    if (auto s = db_->run("UPDATE outages SET end_ns = $2, end_uncertainty_ns = $3, flap = $4, "
                          "maintenance_ns = $5, end_reason = $6 WHERE id = $1",
                          {o.id, o.end_ns, o.end_uncertainty_ns, std::int64_t{o.flap ? 1 : 0},
                           o.maintenance_ns, o.end_reason});
        !s)
      return s;
    if (auto s = save_entity_state(e); !s) return s;
    return add_change(e, o.end_ns,
                      std::string(o.flap ? "flap end: " : "outage end: ") + o.end_reason);
  });
}

Status OutageStore::load_outage(std::int64_t id, OutageRow& out) const {
  SqlRows q;
  if (auto s = db_->run(std::string(kOutageColumns) + "WHERE id = $1", {id}, &q); !s) return s;
  if (q.empty()) return Status::error(db_->name() + ": no outage " + std::to_string(id));
  out = read_outage(q, 0);
  return Status::ok();
}

Status OutageStore::attach(std::int64_t outage_id, std::int64_t root_id) {
  // The outage and everything attached to it move under the root: roots are never nested.
  return db_->run("UPDATE outages SET root_outage_id = $2 WHERE id = $1 OR root_outage_id = $1",
                  {outage_id, root_id});
}

Status OutageStore::set_root(std::int64_t outage_id, std::int64_t root_id) {
  return db_->run("UPDATE outages SET root_outage_id = $2 WHERE id = $1",
                  {outage_id, id_or_null(root_id)});
}

Status OutageStore::split_outage(const EntityRow& e, const OutageRow& ended, OutageRow& next) {
  return store::transaction(*db_, [&]() -> Status {
    if (auto s = db_->run("UPDATE outages SET end_ns = $2, end_uncertainty_ns = 0, flap = $3, "
                          "maintenance_ns = $4, end_reason = $5 WHERE id = $1",
                          {ended.id, ended.end_ns, std::int64_t{ended.flap ? 1 : 0},
                           ended.maintenance_ns, ended.end_reason});
        !s)
      return s;
    SqlRows q;
    if (auto s = db_->run("INSERT INTO outages(entity_id, cause, start_ns, start_uncertainty_ns, "
                          "root_outage_id) VALUES($1, $2, $3, 0, $4) RETURNING id",
                          {e.id, next.cause, next.start_ns, id_or_null(next.root_outage_id)}, &q);
        !s)
      return s;
    if (q.empty()) return Status::error(db_->name() + ": outage row not returned");
    next.id = q.i64(0, 0);
    return add_change(e, next.start_ns, "outage continues on its own: " + ended.end_reason);
  });
}

Status OutageStore::record_state(const EntityRow& e, std::int64_t time_ns,
                                 const std::string& detail) {
  return store::transaction(*db_, [&]() -> Status {
    if (auto s = save_entity_state(e); !s) return s;
    return add_change(e, time_ns, detail);
  });
}

Status OutageStore::claim_agent(const std::string& agent, const std::string& collector,
                                std::int64_t time_ns) {
  return store::transaction(*db_, [&]() -> Status {
    if (auto s = db_->lock("owner/" + agent); !s) return s;
    return db_->run(
        "INSERT INTO agent_owners(agent, collector, connected, changed_ns) VALUES($1, $2, 1, $3) "
        "ON CONFLICT(agent) DO UPDATE SET collector = excluded.collector, connected = 1, "
        "changed_ns = excluded.changed_ns",
        {agent, collector, time_ns});
  });
}

Status OutageStore::release_agent(const std::string& agent, const std::string& collector,
                                  std::int64_t time_ns) {
  return store::transaction(*db_, [&]() -> Status {
    if (auto s = db_->lock("owner/" + agent); !s) return s;
    return db_->run(
        "UPDATE agent_owners SET connected = 0, changed_ns = $3 WHERE agent = $1 AND "
        "collector = $2",
        {agent, collector, time_ns});
  });
}

Status OutageStore::heartbeat(const std::string& collector, std::int64_t now_ns) {
  return db_->run(
      "INSERT INTO collectors(collector, heartbeat_ns) VALUES($1, $2) ON CONFLICT(collector) DO "
      "UPDATE SET heartbeat_ns = excluded.heartbeat_ns",
      {collector, now_ns});
}

namespace {
constexpr const char* kOwnerColumns =
    "SELECT a.agent, a.collector, a.connected, a.changed_ns, c.heartbeat_ns FROM agent_owners a "
    "LEFT JOIN collectors c ON c.collector = a.collector ";
AgentOwner read_owner(const SqlRows& q, std::size_t i) {
  return {q.text(i, 0), q.text(i, 1), q.i64(i, 2) != 0, q.i64(i, 3),
          q.null(i, 4) ? 0 : q.i64(i, 4)};
}
}  // namespace

Status OutageStore::agent_owner(const std::string& agent, AgentOwner& out) const {
  out = AgentOwner{};
  out.agent = agent;
  SqlRows q;
  if (auto s = db_->run(std::string(kOwnerColumns) + "WHERE a.agent = $1", {agent}, &q); !s)
    return s;
  if (!q.empty()) out = read_owner(q, 0);
  return Status::ok();
}

Status OutageStore::agents_of(const std::string& collector, std::vector<AgentOwner>& out) const {
  out.clear();
  SqlRows q;
  if (auto s = db_->run(std::string(kOwnerColumns) + "WHERE a.collector = $1 ORDER BY a.agent",
                        {collector}, &q);
      !s)
    return s;
  for (std::size_t i = 0; i < q.size(); ++i) out.push_back(read_owner(q, i));
  return Status::ok();
}

Status OutageStore::record_exporter(std::int64_t alive_since_ns, std::string& out) const {
  SqlRows q;
  if (auto s = db_->run("SELECT min(collector) FROM collectors WHERE heartbeat_ns >= $1",
                        {alive_since_ns}, &q);
      !s)
    return s;
  out = q.text(0, 0);
  return Status::ok();
}

Status OutageStore::orphaned_agents(const std::string& collector, std::int64_t stale_before_ns,
                                    std::vector<AgentOwner>& out) const {
  out.clear();
  SqlRows q;
  if (auto s = db_->run(std::string(kOwnerColumns) +
                            "WHERE a.collector <> $1 AND (c.heartbeat_ns IS NULL OR "
                            "c.heartbeat_ns < $2) ORDER BY a.agent",
                        {collector, stale_before_ns}, &q);
      !s)
    return s;
  for (std::size_t i = 0; i < q.size(); ++i) out.push_back(read_owner(q, i));
  return Status::ok();
}

Status OutageStore::adopt_orphan(const AgentOwner& seen, const std::string& collector, bool& won,
                                 std::int64_t& dark_since_ns) {
  won = false;
  dark_since_ns = seen.connected ? std::max(seen.heartbeat_ns, seen.changed_ns) : seen.changed_ns;
  return store::transaction(*db_, [&]() -> Status {
    if (auto s = db_->lock("owner/" + seen.agent); !s) return s;
    SqlRows q;
    if (auto s = db_->run(std::string(kOwnerColumns) + "WHERE a.agent = $1", {seen.agent}, &q); !s)
      return s;
    if (q.empty()) return Status::ok();
    const AgentOwner now = read_owner(q, 0);
    if (now.collector != seen.collector || now.connected != seen.connected ||
        now.changed_ns != seen.changed_ns || now.heartbeat_ns != seen.heartbeat_ns)
      return Status::ok();  // someone moved first
    SqlRows changed;
    if (auto s =
            db_->run("UPDATE agent_owners SET collector = $2, connected = 0, changed_ns = $3 WHERE "
                     "agent = $1",
                     {seen.agent, collector, dark_since_ns}, &changed);
        !s)
      return s;
    won = changed.changed() == 1;
    return Status::ok();
  });
}

Status OutageStore::start_lost_outage(const EntityRow& e, OutageRow& o,
                                      const std::string& collector, bool& ours) {
  ours = false;
  bool refused = false;
  const Status st = store::transaction(*db_, [&]() -> Status {
    if (auto s = db_->lock("owner/" + e.agent); !s) return s;
    SqlRows q;
    if (auto s = db_->run("SELECT collector, connected FROM agent_owners WHERE agent = $1",
                          {e.agent}, &q);
        !s)
      return s;
    // Ours, whatever `connected` says: the caller holds no session of the agent (a release
    // that failed with the database left it 1).
    if (q.empty() || q.text(0, 0) != collector) {
      refused = true;
      return Status::error("not ours");  // rolls back; the caller learns from `ours`
    }
    ours = true;
    if (auto s = db_->run("UPDATE agent_owners SET connected = 0 WHERE agent = $1", {e.agent}); !s)
      return s;
    return insert_outage(e, o);
  });
  if (refused) return Status::ok();
  if (!st) ours = false;  // nothing was written: the caller asks again
  return st;
}

}  // namespace citywatch::collector::uptime
