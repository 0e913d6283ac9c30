#include "collector/ingest/ledger.h"

#include <sqlite3.h>

namespace citywatch::collector {

void BatchSummary::add(const Record& r) {
  ++records_by_kind[static_cast<std::size_t>(r.kind())];
  if (const auto* f = std::get_if<FlowRecord>(&r.body)) {
    FlowTotals& t = flows_by_protocol[f->protocol];
    ++t.flows;
    t.packets += f->packets;
    t.bytes += f->bytes;
  }
}

namespace {

constexpr int kSchemaVersion = 1;
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS agents (
  agent TEXT PRIMARY KEY,
  stream INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  batches INTEGER NOT NULL DEFAULT 0,
  flow_records INTEGER NOT NULL DEFAULT 0,
  interface_records INTEGER NOT NULL DEFAULT 0,
  device_records INTEGER NOT NULL DEFAULT 0,
  trap_records INTEGER NOT NULL DEFAULT 0,
  event_records INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS flow_totals (
  segment TEXT NOT NULL,
  agent TEXT NOT NULL,
  protocol INTEGER NOT NULL,
  flows INTEGER NOT NULL,
  packets INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (segment, agent, protocol)
);
)sql";

// SQLite integers are signed 64-bit; counters are stored as their bit pattern.
sqlite3_int64 to_db(std::uint64_t v) { return static_cast<sqlite3_int64>(v); }
std::uint64_t from_db(sqlite3_int64 v) { return static_cast<std::uint64_t>(v); }

}  // namespace

Status IngestLedger::open(const std::filesystem::path& file, std::unique_ptr<IngestLedger>& out) {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  std::unique_ptr<IngestLedger> l(new IngestLedger());
  if (sqlite3_open(file.c_str(), &l->db_) != SQLITE_OK)
    return Status::error(file.string() + ": cannot open ledger: " +
                         (l->db_ ? sqlite3_errmsg(l->db_) : "out of memory"));
  sqlite3_busy_timeout(l->db_, 5000);
  // WAL + synchronous=FULL: a commit is on disk before the batch is acked, so neither a kill
  // nor a power loss can take back a batch the agent has already deleted from its spool.
  if (auto s = l->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"); !s) return s;
  // user_version names the schema; a ledger from another version is refused, not guessed at.
  sqlite3_stmt* v = nullptr;
  int version = -1;
  if (sqlite3_prepare_v2(l->db_, "PRAGMA user_version", -1, &v, nullptr) == SQLITE_OK &&
      sqlite3_step(v) == SQLITE_ROW)
    version = sqlite3_column_int(v, 0);
  sqlite3_finalize(v);
  sqlite3_stmt* t = nullptr;
  bool empty = true;
  if (sqlite3_prepare_v2(l->db_, "SELECT 1 FROM sqlite_master LIMIT 1", -1, &t, nullptr) ==
          SQLITE_OK &&
      sqlite3_step(t) == SQLITE_ROW)
    empty = false;
  sqlite3_finalize(t);
  if (!empty && version != kSchemaVersion)
    return Status::error(file.string() + ": ledger schema version " + std::to_string(version) +
                         ", this collector needs " + std::to_string(kSchemaVersion) +
                         "; move the file aside to start a new ledger");
  if (auto s = l->exec(kSchema); !s) return s;
  if (auto s = l->exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str()); !s)
    return s;
  const char* upsert_flow =
      "INSERT INTO flow_totals(segment, agent, protocol, flows, packets, bytes) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(segment, agent, protocol) DO UPDATE SET "
      "flows = flows + ?4, packets = packets + ?5, bytes = bytes + ?6";
  const char* upsert_agent =
      "INSERT INTO agents(agent, last_seq, batches, flow_records, interface_records, "
      "device_records, trap_records, event_records, stream) "
      "VALUES(?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8) "
      "ON CONFLICT(agent) DO UPDATE SET last_seq = ?2, stream = ?8, batches = batches + 1, "
      "flow_records = flow_records + ?3, interface_records = interface_records + ?4, "
      "device_records = device_records + ?5, trap_records = trap_records + ?6, "
      "event_records = event_records + ?7";
  if (sqlite3_prepare_v2(l->db_, upsert_flow, -1, &l->upsert_flow_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(l->db_, upsert_agent, -1, &l->upsert_agent_, nullptr) != SQLITE_OK)
    return Status::error(file.string() + ": " + sqlite3_errmsg(l->db_));

  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(l->db_, "SELECT agent, stream, last_seq FROM agents", -1, &q, nullptr);
  while (sqlite3_step(q) == SQLITE_ROW)
    l->positions_[reinterpret_cast<const char*>(sqlite3_column_text(q, 0))] = {
        from_db(sqlite3_column_int64(q, 1)), from_db(sqlite3_column_int64(q, 2))};
  sqlite3_finalize(q);
  out = std::move(l);
  return Status::ok();
}

IngestLedger::~IngestLedger() {
  sqlite3_finalize(upsert_flow_);
  sqlite3_finalize(upsert_agent_);
  sqlite3_close(db_);
}

Status IngestLedger::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = std::string("ledger: ") + (err ? err : "unknown error");
    sqlite3_free(err);
    return Status::error(msg);
  }
  return Status::ok();
}

std::uint64_t IngestLedger::last_seq(const std::string& agent, std::uint64_t stream) const {
  auto it = positions_.find(agent);
  return it == positions_.end() || it->second.stream != stream ? 0 : it->second.seq;
}

Status IngestLedger::commit(const BatchSummary& b) {
  if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
  bool ok = true;
  for (int proto = 0; proto < 256 && ok; ++proto) {
    const FlowTotals& t = b.flows_by_protocol[static_cast<std::size_t>(proto)];
    if (t.flows == 0) continue;
    sqlite3_reset(upsert_flow_);
    sqlite3_bind_text(upsert_flow_, 1, b.segment.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(upsert_flow_, 2, b.agent.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int(upsert_flow_, 3, proto);
    sqlite3_bind_int64(upsert_flow_, 4, to_db(t.flows));
    sqlite3_bind_int64(upsert_flow_, 5, to_db(t.packets));
    sqlite3_bind_int64(upsert_flow_, 6, to_db(t.bytes));
    ok = sqlite3_step(upsert_flow_) == SQLITE_DONE;
  }
  if (ok) {
    sqlite3_reset(upsert_agent_);
    sqlite3_bind_text(upsert_agent_, 1, b.agent.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(upsert_agent_, 2, to_db(b.seq));
    sqlite3_bind_int64(upsert_agent_, 8, to_db(b.stream));
    for (int k = 1; k <= 5; ++k)
      sqlite3_bind_int64(upsert_agent_, k + 2,
                         to_db(b.records_by_kind[static_cast<std::size_t>(k)]));
    ok = sqlite3_step(upsert_agent_) == SQLITE_DONE;
  }
  if (!ok) {
    const std::string msg = std::string("ledger: ") + sqlite3_errmsg(db_);
    (void)exec("ROLLBACK");
    return Status::error(msg);
  }
  if (auto s = exec("COMMIT"); !s) {
    (void)exec("ROLLBACK");
    return s;
  }
  positions_[b.agent] = {b.stream, b.seq};
  return Status::ok();
}

void IngestLedger::for_each_flow_total(
    const std::function<void(const std::string&, const std::string&, int, const FlowTotals&)>& fn)
    const {
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db_, "SELECT segment, agent, protocol, flows, packets, bytes FROM flow_totals",
                     -1, &q, nullptr);
  while (sqlite3_step(q) == SQLITE_ROW) {
    FlowTotals t{from_db(sqlite3_column_int64(q, 3)), from_db(sqlite3_column_int64(q, 4)),
                 from_db(sqlite3_column_int64(q, 5))};
    fn(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)),
       reinterpret_cast<const char*>(sqlite3_column_text(q, 1)), sqlite3_column_int(q, 2), t);
  }
  sqlite3_finalize(q);
}

void IngestLedger::for_each_agent(
    const std::function<void(const std::string&, std::uint64_t,
                             const std::array<std::uint64_t, 6>&)>& fn) const {
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db_,
                     "SELECT agent, batches, flow_records, interface_records, device_records, "
                     "trap_records, event_records FROM agents",
                     -1, &q, nullptr);
  while (sqlite3_step(q) == SQLITE_ROW) {
    std::array<std::uint64_t, 6> rec{};
    for (int k = 1; k <= 5; ++k)
      rec[static_cast<std::size_t>(k)] = from_db(sqlite3_column_int64(q, k + 1));
    fn(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)),
       from_db(sqlite3_column_int64(q, 1)), rec);
  }
  sqlite3_finalize(q);
}

}  // namespace citywatch::collector
