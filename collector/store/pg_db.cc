// SqlDb on PostgreSQL through libpq: statements prepared once per connection, parameters
// and results as text, a broken connection re-established on the next call.
#include <libpq-fe.h>

#include <chrono>
#include <map>

#include "collector/store/sql_db.h"

namespace citywatch::collector::store {

namespace {

constexpr std::size_t kMaxCached = 64;

class PgDb final : public SqlDb {
 public:
  ~PgDb() override {
    if (conn_) PQfinish(conn_);
  }
  using SqlDb::run;
  Engine engine() const override { return Engine::kPostgres; }
  const std::string& name() const override { return name_; }

  Status connect() {
    if (conn_) PQfinish(conn_);
    prepared_.clear();
    // Bounds for a database that stops answering (a failover, a host gone from the network):
    // the collector's statements run on its event loop, so an unbounded wait would stall
    // ingest, metrics and the systemd watchdog alike. A connection attempt gives up after
    // 10 s, a statement sent and not acknowledged by TCP after 10 s, an idle connection whose
    // peer is gone is found by keepalives in 15 s. Listed before the DSN, so the DSN's own
    // settings win (libpq: later keywords override earlier ones).
    static constexpr const char* kKeys[] = {
        "connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "dbname",          nullptr};
    const char* values[] = {"10", "1", "5", "5", "2", "10000", dsn_.c_str(), nullptr};
    conn_ = PQconnectdbParams(kKeys, values, /*expand_dbname=*/1);
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      std::string msg = conn_ ? PQerrorMessage(conn_) : "out of memory";
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      return Status::error("postgresql: cannot connect: " + msg);
    }
    name_ = std::string("postgresql ") + PQhost(conn_) + ":" + PQport(conn_) + "/" + PQdb(conn_);
    // Notices (CREATE ... IF NOT EXISTS on an existing table) are not errors; stderr is the
    // journal, keep it for what an operator must read.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    if (auto s = apply_statement_limit(); !s) {
      PQfinish(conn_);  // made again, limit and all, on the next call
      conn_ = nullptr;
      return s;
    }
    return Status::ok();
  }

  Status limit_statements(std::chrono::milliseconds limit) override {
    statement_limit_ = limit;
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) return apply_statement_limit();
    return connect();  // applies it
  }

  // The session's statement_timeout, unless the server already has one for it (0: none).
  Status apply_statement_limit() {
    if (statement_limit_.count() <= 0) return Status::ok();
    PGresult* r = PQexec(conn_, "SHOW statement_timeout");
    Status st = check(r, "SHOW statement_timeout");
    const bool unset = st && PQntuples(r) == 1 && std::string(PQgetvalue(r, 0, 0)) == "0";
    PQclear(r);
    if (!st || !unset) return st;
    return exec_now("SET statement_timeout = " + std::to_string(statement_limit_.count()));
  }

  // A connection that broke (server restarted, network) is made again before the next
  // statement; a transaction in flight is lost with it, and its caller sees the error.
  Status ensure() {
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) return Status::ok();
    return connect();
  }

  Status exec(const std::string& sql) override {
    if (auto s = ensure(); !s) return s;
    return exec_now(sql);
  }

  Status exec_now(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    Status st = check(r, sql);
    PQclear(r);
    return st;
  }

  Status run(const std::string& sql, std::span<const SqlValue> params, SqlRows* rows) override {
    if (auto s = ensure(); !s) return s;
    std::vector<std::string> text(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (const auto* v = std::get_if<std::int64_t>(&params[i])) {
        text[i] = std::to_string(*v);
        values[i] = text[i].c_str();
      } else if (const auto* s = std::get_if<std::string>(&params[i])) {
        values[i] = s->c_str();
      }
    }
    const int n = static_cast<int>(params.size());
    PGresult* r = nullptr;
    auto it = prepared_.find(sql);
    if (it == prepared_.end() && prepared_.size() < kMaxCached) {
      const std::string stmt = "cw" + std::to_string(prepared_.size());
      PGresult* p = PQprepare(conn_, stmt.c_str(), sql.c_str(), n, nullptr);
      Status st = check(p, sql);
      PQclear(p);
      if (!st) return st;
      it = prepared_.emplace(sql, stmt).first;
    }
    if (it != prepared_.end())
      r = PQexecPrepared(conn_, it->second.c_str(), n, values.data(), nullptr, nullptr, 0);
    else
      r = PQexecParams(conn_, sql.c_str(), n, nullptr, values.data(), nullptr, nullptr, 0);
    Status st = check(r, sql);
    if (st && rows) copy_rows(r, *rows);
    PQclear(r);
    return st;
  }

  // Pipeline mode (libpq 14+): every statement is sent, then one sync; the results come
  // back in order. After an error the server skips the rest (PGRES_PIPELINE_ABORTED) up to
  // the sync, so a transaction in the pipeline is left failed for the caller to roll back.
  Status run_all(std::span<const SqlStatement> statements, std::vector<SqlRows>* results) override {
    if (auto s = ensure(); !s) return s;
    if (results) results->assign(statements.size(), SqlRows{});
    if (PQenterPipelineMode(conn_) != 1) return SqlDb::run_all(statements, results);
    Status first = Status::ok();
    std::size_t sent = 0;
    std::vector<std::string> text;
    std::vector<const char*> values;
    for (const SqlStatement& st : statements) {
      text.assign(st.params.size(), {});
      values.assign(st.params.size(), nullptr);
      for (std::size_t i = 0; i < st.params.size(); ++i) {
        if (const auto* v = std::get_if<std::int64_t>(&st.params[i])) {
          text[i] = std::to_string(*v);
          values[i] = text[i].c_str();
        } else if (const auto* t = std::get_if<std::string>(&st.params[i])) {
          values[i] = t->c_str();
        }
      }
      if (PQsendQueryParams(conn_, st.sql.c_str(), static_cast<int>(values.size()), nullptr,
                            values.data(), nullptr, nullptr, 0) != 1) {
        first = check(nullptr, st.sql);
        break;
      }
      ++sent;
    }
    if ((PQpipelineSync(conn_) != 1 || PQflush(conn_) != 0) && first)
      first = check(nullptr, "pipeline sync");
    // Every result of what was sent, then the sync; a broken connection ends it early.
    for (std::size_t i = 0; i < sent; ++i) {
      PGresult* r = PQgetResult(conn_);
      if (!r) {
        if (first) first = check(nullptr, statements[i].sql);
        break;
      }
      if (first && PQresultStatus(r) == PGRES_PIPELINE_ABORTED) {
        first = Status::error(name_ + ": pipeline aborted [" + statements[i].sql + "]");
      } else if (first) {
        first = check(r, statements[i].sql);
        if (first && results) copy_rows(r, (*results)[i]);
      }
      PQclear(r);
      while ((r = PQgetResult(conn_)) != nullptr) PQclear(r);  // the end of this query
    }
    for (PGresult* r = PQgetResult(conn_); r != nullptr; r = PQgetResult(conn_)) {
      const bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
      PQclear(r);
      if (sync) break;
    }
    if (PQexitPipelineMode(conn_) != 1) {
      // Results left unread: the connection's state is unknown; the next call reconnects.
      PQfinish(conn_);
      conn_ = nullptr;
      prepared_.clear();
      if (first) first = Status::error(name_ + ": pipeline did not end cleanly; reconnecting");
    }
    return first;
  }

  static void copy_rows(PGresult* r, SqlRows& rows) {
    rows.clear();
    const int nt = PQntuples(r);
    const int nf = PQnfields(r);
    for (int t = 0; t < nt; ++t) {
      auto& row = rows.add_row();
      for (int f = 0; f < nf; ++f) {
        if (PQgetisnull(r, t, f))
          row.emplace_back();
        else
          row.emplace_back(
              std::string(PQgetvalue(r, t, f), static_cast<std::size_t>(PQgetlength(r, t, f))));
      }
    }
    const char* changed = PQcmdTuples(r);
    rows.set_changed(changed && *changed ? std::stoll(changed) : 0);
  }

  Status begin() override { return exec("BEGIN"); }
  std::string begin_sql() const override { return "BEGIN"; }
  std::string lock_sql() const override {
    return "SELECT pg_advisory_xact_lock(hashtextextended($1, 7243))";
  }
  Status lock(const std::string& key) override { return run(lock_sql(), {key}); }

  Status schema_version(const std::string& component, int& version, bool& empty) override {
    SqlRows r;
    if (auto s = run("SELECT to_regclass('citywatch_schema') IS NULL", {}, &r); !s) return s;
    version = 0;
    empty = true;
    if (r.text(0, 0) == "t") return Status::ok();
    if (auto s = run("SELECT version FROM citywatch_schema WHERE component = $1", {component}, &r);
        !s)
      return s;
    if (r.empty()) return Status::ok();
    empty = false;
    version = static_cast<int>(r.i64(0, 0));
    return Status::ok();
  }
  Status set_schema_version(const std::string& component, int version) override {
    if (auto s = exec("CREATE TABLE IF NOT EXISTS citywatch_schema (component TEXT PRIMARY KEY, "
                      "version INTEGER NOT NULL)");
        !s)
      return s;
    return run(
        "INSERT INTO citywatch_schema(component, version) VALUES($1, $2) "
        "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
        {component, std::int64_t{version}});
  }

  Status check(PGresult* r, const std::string& sql) {
    const ExecStatusType t = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK) return Status::ok();
    std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn_);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    if (PQstatus(conn_) != CONNECTION_OK) msg += " (connection lost; reconnecting on next use)";
    const std::string what = sql.substr(0, sql.find_first_of("\n("));
    return Status::error(name_ + ": " + msg + " [" + what + "]");
  }

  std::string dsn_;
  std::chrono::milliseconds statement_limit_{0};  // 0: none set by us
  std::string name_ = "postgresql";
  PGconn* conn_ = nullptr;
  std::map<std::string, std::string, std::less<>> prepared_;
};

}  // namespace

Status open_postgres(const std::string& dsn, std::unique_ptr<SqlDb>& out) {
  auto db = std::make_unique<PgDb>();
  db->dsn_ = dsn;
  if (auto s = db->connect(); !s) return s;
  out = std::move(db);
  return Status::ok();
}

}  // namespace citywatch::collector::store
