#include "collector/uptime/outage_store.h"

#include <sqlite3.h>

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

// Version 2 added outages.root_outage_id (dependencies); kMigrations[v - 1] takes a
// version-v file to v + 1 inside one transaction.
constexpr int kSchemaVersion = 2;
constexpr const char* kMigrations[] = {
    R"sql(
ALTER TABLE outages ADD COLUMN root_outage_id INTEGER REFERENCES outages(id);
DROP VIEW IF EXISTS outage_view;
)sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion - 1);
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS entities (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('segment', 'device', 'interface')),
  key TEXT NOT NULL UNIQUE,
  agent TEXT NOT NULL,
  site TEXT NOT NULL,
  segment TEXT NOT NULL,
  device TEXT NOT NULL,
  device_name TEXT NOT NULL,
  interface TEXT NOT NULL,
  if_index INTEGER NOT NULL,
  first_seen_ns INTEGER NOT NULL,
  state TEXT NOT NULL,
  state_since_ns INTEGER NOT NULL,
  last_up_ns INTEGER NOT NULL,
  last_down_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outages (
  id INTEGER PRIMARY KEY,
  entity_id INTEGER NOT NULL REFERENCES entities(id),
  cause TEXT NOT NULL,
  start_ns INTEGER NOT NULL,
  end_ns INTEGER,
  start_uncertainty_ns INTEGER NOT NULL,
  end_uncertainty_ns INTEGER NOT NULL DEFAULT 0,
  flap INTEGER NOT NULL DEFAULT 0,
  maintenance_ns INTEGER NOT NULL DEFAULT 0,
  end_reason TEXT NOT NULL DEFAULT '',
  root_outage_id INTEGER REFERENCES outages(id),
  UNIQUE (entity_id, start_ns)
);
CREATE INDEX IF NOT EXISTS outages_by_root ON outages(root_outage_id)
  WHERE root_outage_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS one_open_outage ON outages(entity_id) WHERE end_ns IS NULL;
CREATE INDEX IF NOT EXISTS outages_by_time ON outages(start_ns, end_ns);
CREATE TABLE IF NOT EXISTS state_changes (
  id INTEGER PRIMARY KEY,
  entity_id INTEGER NOT NULL REFERENCES entities(id),
  time_ns INTEGER NOT NULL,
  state TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE VIEW IF NOT EXISTS outage_view AS
  SELECT o.id, e.kind, e.site, e.segment, e.device, e.device_name, e.interface, o.cause,
         o.start_ns, o.end_ns, o.start_uncertainty_ns, o.end_uncertainty_ns, o.flap,
         o.maintenance_ns, o.end_reason, o.root_outage_id
  FROM outages o JOIN entities e ON e.id = o.entity_id;
)sql";

// A prepared statement that finalises itself; binds are 1-based as in SQLite.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    ok_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) == SQLITE_OK;
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return ok_; }
  Stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  int step() { return sqlite3_step(s_); }
  std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  bool null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(s_, c);
    return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
  }

 private:
  sqlite3_stmt* s_ = nullptr;
  bool ok_ = false;
};

constexpr const char* kOutageColumns =
    "SELECT id, entity_id, cause, start_ns, end_ns, start_uncertainty_ns, end_uncertainty_ns, "
    "flap, maintenance_ns, end_reason, root_outage_id FROM outages ";

OutageRow read_outage(const Stmt& q) {
  OutageRow o;
  o.id = q.i64(0);
  o.entity_id = q.i64(1);
  o.cause = q.text(2);
  o.start_ns = q.i64(3);
  o.open = q.null(4);
  o.end_ns = o.open ? 0 : q.i64(4);
  o.start_uncertainty_ns = q.i64(5);
  o.end_uncertainty_ns = q.i64(6);
  o.flap = q.i64(7) != 0;
  o.maintenance_ns = q.i64(8);
  o.end_reason = q.text(9);
  o.root_outage_id = q.null(10) ? 0 : q.i64(10);
  return o;
}

}  // namespace

Status OutageStore::open(const std::filesystem::path& file, std::unique_ptr<OutageStore>& out,
                         bool create) {
  std::error_code ec;
  if (!create && !std::filesystem::exists(file, ec))
    return Status::error(file.string() + ": no outage store here");
  if (create) std::filesystem::create_directories(file.parent_path(), ec);
  std::unique_ptr<OutageStore> s(new OutageStore());
  s->file_ = file.string();
  if (sqlite3_open(file.c_str(), &s->db_) != SQLITE_OK)
    return Status::error(file.string() + ": cannot open outage store: " +
                         (s->db_ ? sqlite3_errmsg(s->db_) : "out of memory"));
  sqlite3_busy_timeout(s->db_, 5000);
  // WAL lets `citywatch report` read while the collector writes; FULL makes an outage's
  // start durable before the next record is looked at.
  if (auto st = s->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"); !st) return st;
  int version = -1;
  bool empty = true;
  {
    Stmt v(s->db_, "PRAGMA user_version");
    if (v.ok() && v.step() == SQLITE_ROW) version = static_cast<int>(v.i64(0));
    Stmt t(s->db_, "SELECT 1 FROM sqlite_master LIMIT 1");
    if (t.ok() && t.step() == SQLITE_ROW) empty = false;
  }
  if (!empty && (version < 1 || version > kSchemaVersion))
    return Status::error(file.string() + ": outage store schema version " +
                         std::to_string(version) + ", this build reads 1 to " +
                         std::to_string(kSchemaVersion) + "; move the file aside");
  for (int v = empty ? kSchemaVersion : version; v < kSchemaVersion; ++v) {
    const std::string step = std::string("BEGIN IMMEDIATE;") + kMigrations[v - 1] +
                             "PRAGMA user_version=" + std::to_string(v + 1) + "; COMMIT;";
    if (auto st = s->exec(step.c_str()); !st) {
      (void)s->exec("ROLLBACK");
      return Status::error("migrating the outage store to version " + std::to_string(v + 1) + ": " +
                           st.message());
    }
  }
  if (auto st = s->exec(kSchema); !st) return st;
  if (auto st = s->exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str()); !st)
    return st;
  out = std::move(s);
  return Status::ok();
}

OutageStore::~OutageStore() { sqlite3_close(db_); }

Status OutageStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = file_ + ": " + (err ? err : "unknown error");
    sqlite3_free(err);
    return Status::error(msg);
  }
  return Status::ok();
}

Status OutageStore::load_entities(std::vector<EntityRow>& out) const {
  out.clear();
  Stmt q(db_,
         "SELECT id, kind, key, agent, site, segment, device, device_name, interface, if_index, "
         "first_seen_ns, state, state_since_ns, last_up_ns, last_down_ns FROM entities ORDER BY "
         "id");
  if (!q.ok()) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
  while (q.step() == SQLITE_ROW) {
    EntityRow e;
    e.id = q.i64(0);
    parse_kind(q.text(1), e.kind);
    e.key = q.text(2);
    e.agent = q.text(3);
    e.site = q.text(4);
    e.segment = q.text(5);
    e.device = q.text(6);
    e.device_name = q.text(7);
    e.interface = q.text(8);
    e.if_index = static_cast<std::uint32_t>(q.i64(9));
    e.first_seen_ns = q.i64(10);
    e.state = parse_state(q.text(11));
    e.state_since_ns = q.i64(12);
    e.last_up_ns = q.i64(13);
    e.last_down_ns = q.i64(14);
    out.push_back(std::move(e));
  }
  return Status::ok();
}

Status OutageStore::load_open_outages(std::vector<OutageRow>& out) const {
  out.clear();
  Stmt q(db_, (std::string(kOutageColumns) + "WHERE end_ns IS NULL ORDER BY start_ns").c_str());
  if (!q.ok()) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
  while (q.step() == SQLITE_ROW) out.push_back(read_outage(q));
  return Status::ok();
}

Status OutageStore::load_outages(std::int64_t from_ns, std::int64_t to_ns,
                                 std::vector<OutageRow>& out) const {
  out.clear();
  Stmt q(db_, (std::string(kOutageColumns) +
               "WHERE start_ns < ?2 AND (end_ns IS NULL OR end_ns > ?1) ORDER BY start_ns, id")
                  .c_str());
  if (!q.ok()) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
  q.bind(1, from_ns).bind(2, to_ns);
  while (q.step() == SQLITE_ROW) out.push_back(read_outage(q));
  return Status::ok();
}

Status OutageStore::save_entity(EntityRow& e) {
  Stmt q(db_,
         "INSERT INTO entities(kind, key, agent, site, segment, device, device_name, interface, "
         "if_index, first_seen_ns, state, state_since_ns, last_up_ns, last_down_ns) "
         "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) "
         "ON CONFLICT(key) DO UPDATE SET agent = ?3, site = ?4, device_name = ?7, "
         "interface = ?8, state = ?11, state_since_ns = ?12, last_up_ns = ?13, "
         "last_down_ns = ?14 RETURNING id");
  if (!q.ok()) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
  q.bind(1, std::string(to_string(e.kind)))
      .bind(2, e.key)
      .bind(3, e.agent)
      .bind(4, e.site)
      .bind(5, e.segment)
      .bind(6, e.device)
      .bind(7, e.device_name)
      .bind(8, e.interface)
      .bind(9, static_cast<std::int64_t>(e.if_index))
      .bind(10, e.first_seen_ns)
      .bind(11, std::string(to_string(e.state)))
      .bind(12, e.state_since_ns)
      .bind(13, e.last_up_ns)
      .bind(14, e.last_down_ns);
  if (q.step() != SQLITE_ROW) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
  e.id = q.i64(0);
  return Status::ok();
}

Status OutageStore::save_entity_state(const EntityRow& e) {
  Stmt q(db_,
         "UPDATE entities SET state = ?2, state_since_ns = ?3, last_up_ns = ?4, "
         "last_down_ns = ?5 WHERE id = ?1");
  if (!q.ok()) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
  q.bind(1, e.id)
      .bind(2, std::string(to_string(e.state)))
      .bind(3, e.state_since_ns)
      .bind(4, e.last_up_ns)
      .bind(5, e.last_down_ns);
  if (q.step() != SQLITE_DONE) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
  return Status::ok();
}

Status OutageStore::add_change(const EntityRow& e, std::int64_t time_ns,
                               const std::string& detail) {
  Stmt q(db_, "INSERT INTO state_changes(entity_id, time_ns, state, detail) VALUES(?1,?2,?3,?4)");
  if (!q.ok()) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
  q.bind(1, e.id).bind(2, time_ns).bind(3, std::string(to_string(e.state))).bind(4, detail);
  if (q.step() != SQLITE_DONE) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
  return Status::ok();
}

Status OutageStore::start_outage(const EntityRow& e, OutageRow& o) {
  if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
  Status st = [&]() -> Status {
    Stmt ins(db_,
             "INSERT OR IGNORE INTO outages(entity_id, cause, start_ns, start_uncertainty_ns, "
             "root_outage_id) VALUES(?1, ?2, ?3, ?4, ?5)");
    if (!ins.ok()) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
    ins.bind(1, e.id).bind(2, o.cause).bind(3, o.start_ns).bind(4, o.start_uncertainty_ns);
    if (o.root_outage_id)
      ins.bind(5, o.root_outage_id);
    else
      ins.bind_null(5);
    if (ins.step() != SQLITE_DONE) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
    Stmt id(db_, "SELECT id, root_outage_id FROM outages WHERE entity_id = ?1 AND start_ns = ?2");
    id.bind(1, e.id).bind(2, o.start_ns);
    if (id.step() != SQLITE_ROW) return Status::error(file_ + ": outage row vanished");
    o.id = id.i64(0);
    o.root_outage_id = id.null(1) ? 0 : id.i64(1);
    if (auto s = save_entity_state(e); !s) return s;
    return add_change(e, o.start_ns, "outage start: " + o.cause);
  }();
  if (!st) {
    (void)exec("ROLLBACK");
    return st;
  }
  return exec("COMMIT");
}

Status OutageStore::end_outage(const EntityRow& e, const OutageRow& o) {
  if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
  Status st = [&]() -> Status {
    Stmt up(db_,
            "UPDATE outages SET end_ns = ?2, end_uncertainty_ns = ?3, flap = ?4, "
            "maintenance_ns = ?5, end_reason = ?6 WHERE id = ?1");
    if (!up.ok()) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
    up.bind(1, o.id)
        .bind(2, o.end_ns)
        .bind(3, o.end_uncertainty_ns)
        .bind(4, o.flap ? 1 : 0)
        .bind(5, o.maintenance_ns)
        .bind(6, o.end_reason);
    if (up.step() != SQLITE_DONE) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
    if (auto s = save_entity_state(e); !s) return s;
    return add_change(e, o.end_ns,
                      std::string(o.flap ? "flap end: " : "outage end: ") + o.end_reason);
  }();
  if (!st) {
    (void)exec("ROLLBACK");
    return st;
  }
  return exec("COMMIT");
}

Status OutageStore::load_outage(std::int64_t id, OutageRow& out) const {
  Stmt q(db_, (std::string(kOutageColumns) + "WHERE id = ?1").c_str());
  if (!q.ok()) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
  q.bind(1, id);
  if (q.step() != SQLITE_ROW) return Status::error(file_ + ": no outage " + std::to_string(id));
  out = read_outage(q);
  return Status::ok();
}

Status OutageStore::attach(std::int64_t outage_id, std::int64_t root_id) {
  if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
  Status st = [&]() -> Status {
    // The outage and everything attached to it move under the root: roots are never nested.
    Stmt up(db_, "UPDATE outages SET root_outage_id = ?2 WHERE id = ?1 OR root_outage_id = ?1");
    if (!up.ok()) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
    up.bind(1, outage_id).bind(2, root_id);
    if (up.step() != SQLITE_DONE) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
    return Status::ok();
  }();
  if (!st) {
    (void)exec("ROLLBACK");
    return st;
  }
  return exec("COMMIT");
}

Status OutageStore::set_root(std::int64_t outage_id, std::int64_t root_id) {
  Stmt up(db_, "UPDATE outages SET root_outage_id = ?2 WHERE id = ?1");
  if (!up.ok()) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
  up.bind(1, outage_id);
  if (root_id)
    up.bind(2, root_id);
  else
    up.bind_null(2);
  if (up.step() != SQLITE_DONE) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
  return Status::ok();
}

Status OutageStore::split_outage(const EntityRow& e, const OutageRow& ended, OutageRow& next) {
  if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
  Status st = [&]() -> Status {
    Stmt up(db_,
            "UPDATE outages SET end_ns = ?2, end_uncertainty_ns = 0, flap = ?3, "
            "maintenance_ns = ?4, end_reason = ?5 WHERE id = ?1");
    if (!up.ok()) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
    up.bind(1, ended.id)
        .bind(2, ended.end_ns)
        .bind(3, ended.flap ? 1 : 0)
        .bind(4, ended.maintenance_ns)
        .bind(5, ended.end_reason);
    if (up.step() != SQLITE_DONE) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
    Stmt ins(db_,
             "INSERT INTO outages(entity_id, cause, start_ns, start_uncertainty_ns, "
             "root_outage_id) VALUES(?1, ?2, ?3, 0, ?4) RETURNING id");
    if (!ins.ok()) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
    ins.bind(1, e.id).bind(2, next.cause).bind(3, next.start_ns);
    if (next.root_outage_id)
      ins.bind(4, next.root_outage_id);
    else
      ins.bind_null(4);
    if (ins.step() != SQLITE_ROW) return Status::error(file_ + ": " + sqlite3_errmsg(db_));
    next.id = ins.i64(0);
    return add_change(e, next.start_ns, "outage continues on its own: " + ended.end_reason);
  }();
  if (!st) {
    (void)exec("ROLLBACK");
    return st;
  }
  return exec("COMMIT");
}

Status OutageStore::record_state(const EntityRow& e, std::int64_t time_ns,
                                 const std::string& detail) {
  if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
  Status st = save_entity_state(e);
  if (st) st = add_change(e, time_ns, detail);
  if (!st) {
    (void)exec("ROLLBACK");
    return st;
  }
  return exec("COMMIT");
}

}  // namespace citywatch::collector::uptime
