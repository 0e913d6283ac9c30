#include "collector/ingest/ledger.h"

#include <arpa/inet.h>
#include <sqlite3.h>

#include <algorithm>
#include <iterator>

namespace citywatch::collector {

namespace {

constexpr int kSchemaVersion = 2;
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
  exporter TEXT NOT NULL,
  protocol INTEGER NOT NULL,
  direction TEXT NOT NULL,
  flows INTEGER NOT NULL,
  packets INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (segment, agent, exporter, protocol, direction)
);
CREATE TABLE IF NOT EXISTS interface_totals (
  segment TEXT NOT NULL,
  agent TEXT NOT NULL,
  exporter TEXT NOT NULL,
  if_index TEXT NOT NULL,
  direction TEXT NOT NULL,
  packets INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (segment, agent, exporter, if_index, direction)
);
)sql";

// kMigrations[N - 1] turns schema N into N + 1; each runs inside its own transaction.
// 1 -> 2 (0.1.0 before per-exporter totals): flow totals gain the exporter and direction
// keys. Version 1 kept one row per protocol for everything an agent sent, so its rows become
// the agent's own rows (exporter 'capture', direction 'unknown'): every flow in them came
// through the agent.
constexpr const char* kMigrations[] = {
    R"sql(
ALTER TABLE flow_totals RENAME TO flow_totals_v1;
CREATE TABLE flow_totals (
  segment TEXT NOT NULL,
  agent TEXT NOT NULL,
  exporter TEXT NOT NULL,
  protocol INTEGER NOT NULL,
  direction TEXT NOT NULL,
  flows INTEGER NOT NULL,
  packets INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (segment, agent, exporter, protocol, direction)
);
INSERT INTO flow_totals
  SELECT segment, agent, 'capture', protocol, 'unknown', flows, packets, bytes FROM flow_totals_v1;
DROP TABLE flow_totals_v1;
)sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion - 1, "one migration per schema step");

// SQLite integers are signed 64-bit; counters are stored as their bit pattern.
sqlite3_int64 to_db(std::uint64_t v) { return static_cast<sqlite3_int64>(v); }
std::uint64_t from_db(sqlite3_int64 v) { return static_cast<std::uint64_t>(v); }

std::string text(sqlite3_stmt* q, int col) {
  const auto* p = sqlite3_column_text(q, col);
  return p ? reinterpret_cast<const char*>(p) : "";
}

const char* direction_label(FlowDirection d) {
  switch (d) {
    case FlowDirection::kIngress:
      return "ingress";
    case FlowDirection::kEgress:
      return "egress";
    case FlowDirection::kUnknown:
      break;
  }
  return "unknown";
}

std::string address_text(const IpAddr& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.family == IpAddr::Family::kV4) inet_ntop(AF_INET, a.bytes.data(), buf, sizeof buf);
  if (a.family == IpAddr::Family::kV6) inet_ntop(AF_INET6, a.bytes.data(), buf, sizeof buf);
  return buf;
}

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
  // user_version names the schema. An older ledger is migrated in one transaction (so a
  // crash mid-way leaves the old one intact); a newer or unknown one is refused, not guessed at.
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
  if (!empty && version != kSchemaVersion) {
    if (version < 1 || version > kSchemaVersion)
      return Status::error(file.string() + ": ledger schema version " + std::to_string(version) +
                           ", this collector reads 1 to " + std::to_string(kSchemaVersion) +
                           "; move the file aside to start a new ledger");
    for (int from = version; from < kSchemaVersion; ++from) {
      const std::string step = std::string("BEGIN IMMEDIATE;") + kMigrations[from - 1] +
                               "PRAGMA user_version=" + std::to_string(from + 1) + "; COMMIT;";
      if (auto s = l->exec(step.c_str()); !s) {
        (void)l->exec("ROLLBACK");  // best effort: the failed step may have ended it
        return Status::error(file.string() + ": migrating the ledger from schema " +
                             std::to_string(from) + ": " + s.message());
      }
    }
    l->migrated_from_ = version;
  }
  if (auto s = l->exec(kSchema); !s) return s;
  if (auto s = l->exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str()); !s)
    return s;
  const char* upsert_flow =
      "INSERT INTO flow_totals(segment, agent, exporter, protocol, direction, flows, packets, "
      "bytes) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
      "ON CONFLICT(segment, agent, exporter, protocol, direction) DO UPDATE SET "
      "flows = flows + ?6, packets = packets + ?7, bytes = bytes + ?8";
  const char* upsert_interface =
      "INSERT INTO interface_totals(segment, agent, exporter, if_index, direction, packets, "
      "bytes) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) "
      "ON CONFLICT(segment, agent, exporter, if_index, direction) DO UPDATE SET "
      "packets = packets + ?6, bytes = bytes + ?7";
  const char* upsert_agent =
      "INSERT INTO agents(agent, last_seq, batches, flow_records, interface_records, "
      "device_records, trap_records, event_records, stream) "
      "VALUES(?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8) "
      "ON CONFLICT(agent) DO UPDATE SET last_seq = ?2, stream = ?8, batches = batches + 1, "
      "flow_records = flow_records + ?3, interface_records = interface_records + ?4, "
      "device_records = device_records + ?5, trap_records = trap_records + ?6, "
      "event_records = event_records + ?7";
  if (sqlite3_prepare_v2(l->db_, upsert_flow, -1, &l->upsert_flow_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(l->db_, upsert_agent, -1, &l->upsert_agent_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(l->db_, upsert_interface, -1, &l->upsert_interface_, nullptr) != SQLITE_OK)
    return Status::error(file.string() + ": " + sqlite3_errmsg(l->db_));

  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(l->db_, "SELECT agent, stream, last_seq FROM agents", -1, &q, nullptr);
  while (sqlite3_step(q) == SQLITE_ROW)
    l->positions_[reinterpret_cast<const char*>(sqlite3_column_text(q, 0))] = {
        from_db(sqlite3_column_int64(q, 1)), from_db(sqlite3_column_int64(q, 2))};
  sqlite3_finalize(q);
  l->for_each_flow_total([&](const std::string&, const std::string& agent, const FlowRow& r) {
    l->exporters_[agent].insert(r.exporter);
  });
  l->for_each_interface_total(
      [&](const std::string&, const std::string& agent, const InterfaceRow& r) {
        l->interfaces_[agent + "/" + r.exporter].insert(r.if_index);
      });
  out = std::move(l);
  return Status::ok();
}

IngestLedger::~IngestLedger() {
  sqlite3_finalize(upsert_flow_);
  sqlite3_finalize(upsert_agent_);
  sqlite3_finalize(upsert_interface_);
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

std::string IngestLedger::exporter_label(const std::string& agent, const IpAddr& exporter) {
  if (exporter.family == IpAddr::Family::kNone) return "capture";
  std::string label = address_text(exporter);
  auto& known = exporters_[agent];
  if (known.count(label)) return label;
  if (known.size() >= kMaxExportersPerAgent) return "other";
  known.insert(label);
  return label;
}

std::string IngestLedger::if_index_label(const std::string& agent, const std::string& exporter,
                                         std::uint32_t if_index) {
  std::string label = std::to_string(if_index);
  auto& known = interfaces_[agent + "/" + exporter];
  if (known.count(label)) return label;
  if (known.size() >= kMaxInterfacesPerExporter) return "other";
  known.insert(label);
  return label;
}

Status IngestLedger::commit(const BatchSummary& b, std::vector<FlowRow>& flows,
                            std::vector<InterfaceRow>& interfaces) {
  flows.clear();
  interfaces.clear();
  for (const FlowGroup& g : b.flows)
    flows.push_back(
        {exporter_label(b.agent, g.exporter), g.protocol, direction_label(g.direction), g.totals});
  for (const InterfaceGroup& g : b.interfaces) {
    std::string exporter = exporter_label(b.agent, g.exporter);
    std::string if_index = if_index_label(b.agent, exporter, g.if_index);
    interfaces.push_back(
        {std::move(exporter), std::move(if_index), g.input ? "in" : "out", g.packets, g.bytes});
  }
  if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
  bool ok = true;
  for (const FlowRow& r : flows) {
    if (!ok) break;
    sqlite3_reset(upsert_flow_);
    sqlite3_bind_text(upsert_flow_, 1, b.segment.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(upsert_flow_, 2, b.agent.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(upsert_flow_, 3, r.exporter.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int(upsert_flow_, 4, r.protocol);
    sqlite3_bind_text(upsert_flow_, 5, r.direction.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(upsert_flow_, 6, to_db(r.totals.flows));
    sqlite3_bind_int64(upsert_flow_, 7, to_db(r.totals.packets));
    sqlite3_bind_int64(upsert_flow_, 8, to_db(r.totals.bytes));
    ok = sqlite3_step(upsert_flow_) == SQLITE_DONE;
  }
  for (const InterfaceRow& r : interfaces) {
    if (!ok) break;
    sqlite3_reset(upsert_interface_);
    sqlite3_bind_text(upsert_interface_, 1, b.segment.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(upsert_interface_, 2, b.agent.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(upsert_interface_, 3, r.exporter.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(upsert_interface_, 4, r.if_index.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(upsert_interface_, 5, r.direction.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(upsert_interface_, 6, to_db(r.packets));
    sqlite3_bind_int64(upsert_interface_, 7, to_db(r.bytes));
    ok = sqlite3_step(upsert_interface_) == SQLITE_DONE;
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
    const std::function<void(const std::string&, const std::string&, const FlowRow&)>& fn) const {
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db_,
                     "SELECT segment, agent, exporter, protocol, direction, flows, packets, bytes "
                     "FROM flow_totals",
                     -1, &q, nullptr);
  while (sqlite3_step(q) == SQLITE_ROW) {
    FlowRow r{text(q, 2),
              sqlite3_column_int(q, 3),
              text(q, 4),
              {from_db(sqlite3_column_int64(q, 5)), from_db(sqlite3_column_int64(q, 6)),
               from_db(sqlite3_column_int64(q, 7))}};
    fn(text(q, 0), text(q, 1), r);
  }
  sqlite3_finalize(q);
}

void IngestLedger::for_each_interface_total(
    const std::function<void(const std::string&, const std::string&, const InterfaceRow&)>& fn)
    const {
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db_,
                     "SELECT segment, agent, exporter, if_index, direction, packets, bytes "
                     "FROM interface_totals",
                     -1, &q, nullptr);
  while (sqlite3_step(q) == SQLITE_ROW) {
    InterfaceRow r{text(q, 2), text(q, 3), text(q, 4), from_db(sqlite3_column_int64(q, 5)),
                   from_db(sqlite3_column_int64(q, 6))};
    fn(text(q, 0), text(q, 1), r);
  }
  sqlite3_finalize(q);
}

void IngestLedger::for_each_agent(
    const std::function<void(const std::string&, std::uint64_t,
                             const PerRecordKind<std::uint64_t>&)>& fn) const {
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db_,
                     "SELECT agent, batches, flow_records, interface_records, device_records, "
                     "trap_records, event_records FROM agents",
                     -1, &q, nullptr);
  while (sqlite3_step(q) == SQLITE_ROW) {
    PerRecordKind<std::uint64_t> rec{};
    for (int k = 1; k <= 5; ++k)
      rec[static_cast<std::size_t>(k)] = from_db(sqlite3_column_int64(q, k + 1));
    fn(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)),
       from_db(sqlite3_column_int64(q, 1)), rec);
  }
  sqlite3_finalize(q);
}

}  // namespace citywatch::collector
