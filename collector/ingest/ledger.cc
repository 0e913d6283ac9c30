#include "collector/ingest/ledger.h"

#include <arpa/inet.h>

#include <algorithm>
#include <iterator>
#include <tuple>

// GCC 12 warns that a std::variant holding a std::string "may be used uninitialized" when a
// vector of them grows (a known false positive of its variant move); the code is plain.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace citywatch::collector {

namespace {

using store::SqlRows;
using store::SqlValue;

constexpr const char* kComponent = "ledger";
constexpr int kSchemaVersion = 3;
// Version 3: stream positions (`agents`) are shared by every collector on the database;
// totals are per collector.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS agents (
  agent TEXT PRIMARY KEY,
  stream {INT} NOT NULL,
  last_seq {INT} NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_totals (
  collector TEXT NOT NULL,
  agent TEXT NOT NULL,
  batches {INT} NOT NULL DEFAULT 0,
  flow_records {INT} NOT NULL DEFAULT 0,
  interface_records {INT} NOT NULL DEFAULT 0,
  device_records {INT} NOT NULL DEFAULT 0,
  trap_records {INT} NOT NULL DEFAULT 0,
  event_records {INT} NOT NULL DEFAULT 0,
  PRIMARY KEY (collector, agent)
);
CREATE TABLE IF NOT EXISTS flow_totals (
  collector TEXT NOT NULL,
  segment TEXT NOT NULL,
  agent TEXT NOT NULL,
  exporter TEXT NOT NULL,
  protocol {INT} NOT NULL,
  direction TEXT NOT NULL,
  flows {INT} NOT NULL,
  packets {INT} NOT NULL,
  bytes {INT} NOT NULL,
  PRIMARY KEY (collector, segment, agent, exporter, protocol, direction)
);
CREATE TABLE IF NOT EXISTS interface_totals (
  collector TEXT NOT NULL,
  segment TEXT NOT NULL,
  agent TEXT NOT NULL,
  exporter TEXT NOT NULL,
  if_index TEXT NOT NULL,
  direction TEXT NOT NULL,
  packets {INT} NOT NULL,
  bytes {INT} NOT NULL,
  PRIMARY KEY (collector, segment, agent, exporter, if_index, direction)
);
)sql";

// kMigrations[N - 1] turns schema N into N + 1; each runs inside its own transaction.
// 1 -> 2 (0.1.0 before per-exporter totals): flow totals gain the exporter and direction
// keys. Version 1 kept one row per protocol for everything an agent sent, so its rows become
// the agent's own rows (exporter 'capture', direction 'unknown'): every flow in them came
// through the agent.
// 2 -> 3 (collector pairs): positions apart from totals, totals keyed by collector; a
// single collector's rows keep the empty collector key.
constexpr const char* kMigrations[] = {
    R"sql(
ALTER TABLE flow_totals RENAME TO flow_totals_v1;
CREATE TABLE flow_totals (
  segment TEXT NOT NULL,
  agent TEXT NOT NULL,
  exporter TEXT NOT NULL,
  protocol {INT} NOT NULL,
  direction TEXT NOT NULL,
  flows {INT} NOT NULL,
  packets {INT} NOT NULL,
  bytes {INT} NOT NULL,
  PRIMARY KEY (segment, agent, exporter, protocol, direction)
);
INSERT INTO flow_totals
  SELECT segment, agent, 'capture', protocol, 'unknown', flows, packets, bytes FROM flow_totals_v1;
DROP TABLE flow_totals_v1;
)sql",
    R"sql(
ALTER TABLE agents RENAME TO agents_v2;
ALTER TABLE flow_totals RENAME TO flow_totals_v2;
ALTER TABLE interface_totals RENAME TO interface_totals_v2;
{SCHEMA}
INSERT INTO agents SELECT agent, stream, last_seq FROM agents_v2;
INSERT INTO agent_totals SELECT '', agent, batches, flow_records, interface_records,
  device_records, trap_records, event_records FROM agents_v2;
INSERT INTO flow_totals SELECT '', segment, agent, exporter, protocol, direction, flows, packets,
  bytes FROM flow_totals_v2;
INSERT INTO interface_totals SELECT '', segment, agent, exporter, if_index, direction, packets,
  bytes FROM interface_totals_v2;
DROP TABLE agents_v2;
DROP TABLE flow_totals_v2;
DROP TABLE interface_totals_v2;
)sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion - 1, "one migration per schema step");
// A version-1 ledger has no interface_totals: the 2 -> 3 step needs one to rename.
constexpr const char* kInterfaceTotalsV2 = R"sql(
CREATE TABLE IF NOT EXISTS interface_totals (
  segment TEXT NOT NULL,
  agent TEXT NOT NULL,
  exporter TEXT NOT NULL,
  if_index TEXT NOT NULL,
  direction TEXT NOT NULL,
  packets {INT} NOT NULL,
  bytes {INT} NOT NULL,
  PRIMARY KEY (segment, agent, exporter, if_index, direction)
);
)sql";

// Rows per multi-row upsert: a batch's groups go in one statement unless there are very many.
constexpr std::size_t kRowsPerStatement = 200;

// Integers are signed 64-bit in both engines; counters are stored as their bit pattern.
std::int64_t to_db(std::uint64_t v) { return static_cast<std::int64_t>(v); }
std::uint64_t from_db(std::int64_t v) { return static_cast<std::uint64_t>(v); }

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

template <typename... Values>
void push(std::vector<SqlValue>& v, Values&&... values) {
  (v.emplace_back(std::forward<Values>(values)), ...);
}

// "INSERT ... VALUES ($1, ..., $k), ($k+1, ...) ..." for rows of k columns.
std::string values_clause(std::size_t rows, std::size_t columns) {
  std::string v = " VALUES";
  int n = 1;
  for (std::size_t r = 0; r < rows; ++r) {
    v += r ? ",(" : "(";
    for (std::size_t c = 0; c < columns; ++c) v += (c ? ",$" : "$") + std::to_string(n++);
    v += ')';
  }
  return v;
}

// Appends multi-row upserts of rows (kRowsPerStatement per statement): insert, then one
// ($N, ...) of `columns` parameters per row (push_row adds them), then the conflict clause.
template <typename Row, typename PushRow>
void add_upserts(std::vector<store::SqlStatement>& sts, const std::vector<Row>& rows,
                 const char* insert, std::size_t columns, const char* on_conflict,
                 PushRow push_row) {
  for (std::size_t at = 0; at < rows.size(); at += kRowsPerStatement) {
    const std::size_t n = std::min(kRowsPerStatement, rows.size() - at);
    store::SqlStatement& st = sts.emplace_back();
    st.sql = insert + values_clause(n, columns) + on_conflict;
    for (std::size_t i = at; i < at + n; ++i) push_row(st.params, rows[i]);
  }
}

}  // namespace

Status IngestLedger::open(const std::filesystem::path& file, std::unique_ptr<IngestLedger>& out) {
  std::unique_ptr<store::SqlDb> db;
  if (auto s = store::open_sqlite(file, db); !s) return Status::error("ledger: " + s.message());
  return open(std::move(db), "", out);
}

Status IngestLedger::open(std::unique_ptr<store::SqlDb> db, const std::string& collector,
                          std::unique_ptr<IngestLedger>& out) {
  std::unique_ptr<IngestLedger> l(new IngestLedger());
  l->db_ = std::move(db);
  l->collector_ = collector;
  if (auto s = l->migrate(); !s) return s;
  if (auto s = l->load(); !s) return s;
  out = std::move(l);
  return Status::ok();
}

Status IngestLedger::migrate() {
  const store::Schema schema{kComponent, "ledger", kSchemaVersion, kSchema, [](int from) {
                               std::string step = kMigrations[from - 1];
                               if (from == 2) step = kInterfaceTotalsV2 + step;
                               if (const auto at = step.find("{SCHEMA}"); at != std::string::npos)
                                 step.replace(at, 8, kSchema);
                               return step;
                             }};
  return store::migrate(*db_, schema, migrated_from_);
}

Status IngestLedger::load() {
  SqlRows r;
  if (auto s = db_->run("SELECT agent, stream, last_seq FROM agents", {}, &r); !s) return s;
  for (std::size_t i = 0; i < r.size(); ++i)
    positions_[r.text(i, 0)] = {from_db(r.i64(i, 1)), from_db(r.i64(i, 2))};
  for_each_flow_total([&](const std::string&, const std::string& agent, const FlowRow& row) {
    exporters_[agent].insert(row.exporter);
  });
  for_each_interface_total(
      [&](const std::string&, const std::string& agent, const InterfaceRow& row) {
        interfaces_[agent + "/" + row.exporter].insert(row.if_index);
      });
  return Status::ok();
}

IngestLedger::~IngestLedger() = default;

std::uint64_t IngestLedger::last_seq(const std::string& agent, std::uint64_t stream) const {
  auto it = positions_.find(agent);
  return it == positions_.end() || it->second.stream != stream ? 0 : it->second.seq;
}

Status IngestLedger::refresh(const std::string& agent) {
  SqlRows r;
  if (auto s = db_->run("SELECT stream, last_seq FROM agents WHERE agent = $1", {agent}, &r); !s)
    return s;
  if (!r.empty()) positions_[agent] = {from_db(r.i64(0, 0)), from_db(r.i64(0, 1))};
  return Status::ok();
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
                            std::vector<InterfaceRow>& interfaces, bool& duplicate) {
  duplicate = false;
  flows.clear();
  interfaces.clear();
  // Rows that share labels (past a cap) are one row: an upsert may touch a row once.
  for (const FlowGroup& g : b.flows) {
    FlowRow row{exporter_label(b.agent, g.exporter), g.protocol, direction_label(g.direction),
                g.totals};
    auto same = std::find_if(flows.begin(), flows.end(), [&](const FlowRow& f) {
      return f.protocol == row.protocol && f.exporter == row.exporter &&
             f.direction == row.direction;
    });
    if (same == flows.end()) {
      flows.push_back(std::move(row));
    } else {
      same->totals.flows += row.totals.flows;
      same->totals.packets += row.totals.packets;
      same->totals.bytes += row.totals.bytes;
    }
  }
  for (const InterfaceGroup& g : b.interfaces) {
    std::string exporter = exporter_label(b.agent, g.exporter);
    std::string if_index = if_index_label(b.agent, exporter, g.if_index);
    const char* direction = g.input ? "in" : "out";
    auto same = std::find_if(interfaces.begin(), interfaces.end(), [&](const InterfaceRow& r) {
      return r.if_index == if_index && r.exporter == exporter && r.direction == direction;
    });
    if (same == interfaces.end()) {
      interfaces.push_back(
          {std::move(exporter), std::move(if_index), direction, g.packets, g.bytes});
    } else {
      same->packets += g.packets;
      same->bytes += g.bytes;
    }
  }
  // Two exchanges with the database (one round trip each on PostgreSQL, pipelined): the
  // transaction, the agent's lock and its position; then, unless another collector has
  // committed this batch since the session began, the totals, the position and COMMIT.
  store::SqlDb& db = *db_;
  std::vector<store::SqlStatement>& sts = statements_;
  sts.clear();
  sts.push_back({db.begin_sql(), {}});
  if (std::string lock = db.lock_sql(); !lock.empty())
    sts.push_back({std::move(lock), {std::string("agent/") + b.agent}});
  sts.push_back({"SELECT stream, last_seq FROM agents WHERE agent = $1", {b.agent}});
  if (auto s = db.run_all(sts, &results_); !s) {
    db.rollback();
    return Status::error("ledger: " + s.message());
  }
  if (const SqlRows& r = results_.back(); !r.empty()) {
    const Position stored{from_db(r.i64(0, 0)), from_db(r.i64(0, 1))};
    if (stored.stream == b.stream && stored.seq >= b.seq) {
      db.rollback();
      duplicate = true;
      positions_[b.agent] = stored;
      return Status::ok();
    }
  }
  sts.clear();
  add_upserts(sts, flows,
              "INSERT INTO flow_totals(collector, segment, agent, exporter, protocol, "
              "direction, flows, packets, bytes)",
              9,
              " ON CONFLICT(collector, segment, agent, exporter, protocol, direction) DO UPDATE "
              "SET flows = flow_totals.flows + excluded.flows, packets = flow_totals.packets + "
              "excluded.packets, bytes = flow_totals.bytes + excluded.bytes",
              [&](std::vector<SqlValue>& p, const FlowRow& f) {
                push(p, collector_, b.segment, b.agent, f.exporter, std::int64_t{f.protocol},
                     f.direction, to_db(f.totals.flows), to_db(f.totals.packets),
                     to_db(f.totals.bytes));
              });
  add_upserts(sts, interfaces,
              "INSERT INTO interface_totals(collector, segment, agent, exporter, if_index, "
              "direction, packets, bytes)",
              8,
              " ON CONFLICT(collector, segment, agent, exporter, if_index, direction) DO UPDATE "
              "SET packets = interface_totals.packets + excluded.packets, bytes = "
              "interface_totals.bytes + excluded.bytes",
              [&](std::vector<SqlValue>& p, const InterfaceRow& f) {
                push(p, collector_, b.segment, b.agent, f.exporter, f.if_index, f.direction,
                     to_db(f.packets), to_db(f.bytes));
              });
  store::SqlStatement& totals = sts.emplace_back();
  totals.sql =
      "INSERT INTO agent_totals(collector, agent, batches, flow_records, interface_records, "
      "device_records, trap_records, event_records) VALUES($1, $2, 1, $3, $4, $5, $6, $7) "
      "ON CONFLICT(collector, agent) DO UPDATE SET batches = agent_totals.batches + 1, "
      "flow_records = agent_totals.flow_records + excluded.flow_records, "
      "interface_records = agent_totals.interface_records + excluded.interface_records, "
      "device_records = agent_totals.device_records + excluded.device_records, "
      "trap_records = agent_totals.trap_records + excluded.trap_records, "
      "event_records = agent_totals.event_records + excluded.event_records";
  push(totals.params, collector_, b.agent);
  for (int k = 1; k <= 5; ++k)
    totals.params.push_back(to_db(b.records_by_kind[static_cast<std::size_t>(k)]));
  store::SqlStatement& position = sts.emplace_back();
  position.sql =
      "INSERT INTO agents(agent, stream, last_seq) VALUES($1, $2, $3) ON CONFLICT(agent) DO "
      "UPDATE SET stream = excluded.stream, last_seq = excluded.last_seq";
  push(position.params, b.agent, to_db(b.stream), to_db(b.seq));
  sts.push_back({"COMMIT", {}});
  if (auto s = db.run_all(sts); !s) {
    db.rollback();
    return Status::error("ledger: " + s.message());
  }
  positions_[b.agent] = {b.stream, b.seq};
  return Status::ok();
}

void IngestLedger::for_each_flow_total(
    const std::function<void(const std::string&, const std::string&, const FlowRow&)>& fn) const {
  SqlRows r;
  if (!db_->run("SELECT segment, agent, exporter, protocol, direction, flows, packets, bytes "
                "FROM flow_totals WHERE collector = $1",
                {collector_}, &r))
    return;
  for (std::size_t i = 0; i < r.size(); ++i) {
    FlowRow row{r.text(i, 2),
                static_cast<int>(r.i64(i, 3)),
                r.text(i, 4),
                {from_db(r.i64(i, 5)), from_db(r.i64(i, 6)), from_db(r.i64(i, 7))}};
    fn(r.text(i, 0), r.text(i, 1), row);
  }
}

void IngestLedger::for_each_interface_total(
    const std::function<void(const std::string&, const std::string&, const InterfaceRow&)>& fn)
    const {
  SqlRows r;
  if (!db_->run("SELECT segment, agent, exporter, if_index, direction, packets, bytes "
                "FROM interface_totals WHERE collector = $1",
                {collector_}, &r))
    return;
  for (std::size_t i = 0; i < r.size(); ++i) {
    InterfaceRow row{r.text(i, 2), r.text(i, 3), r.text(i, 4), from_db(r.i64(i, 5)),
                     from_db(r.i64(i, 6))};
    fn(r.text(i, 0), r.text(i, 1), row);
  }
}

void IngestLedger::for_each_agent(
    const std::function<void(const std::string&, std::uint64_t,
                             const PerRecordKind<std::uint64_t>&)>& fn) const {
  SqlRows r;
  if (!db_->run("SELECT agent, batches, flow_records, interface_records, device_records, "
                "trap_records, event_records FROM agent_totals WHERE collector = $1",
                {collector_}, &r))
    return;
  for (std::size_t i = 0; i < r.size(); ++i) {
    PerRecordKind<std::uint64_t> rec{};
    for (int k = 1; k <= 5; ++k) rec[static_cast<std::size_t>(k)] = from_db(r.i64(i, k + 1));
    fn(r.text(i, 0), from_db(r.i64(i, 1)), rec);
  }
}

}  // namespace citywatch::collector
