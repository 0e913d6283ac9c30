// SqlDb on PostgreSQL through libpq: statements prepared once per connection, parameters
// and results as text, a broken connection re-established on the next call.
#include <libpq-fe.h>

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
    conn_ = PQconnectdb(dsn_.c_str());
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
    return Status::ok();
  }

  // A connection that broke (server restarted, network) is made again before the next
  // statement; a transaction in flight is lost with it, and its caller sees the error.
  Status ensure() {
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) return Status::ok();
    return connect();
  }

  Status exec(const std::string& sql) override {
    if (auto s = ensure(); !s) return s;
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
    if (st && rows) {
      rows->clear();
      const int nt = PQntuples(r);
      const int nf = PQnfields(r);
      for (int t = 0; t < nt; ++t) {
        auto& row = rows->add_row();
        for (int f = 0; f < nf; ++f) {
          if (PQgetisnull(r, t, f))
            row.emplace_back();
          else
            row.emplace_back(
                std::string(PQgetvalue(r, t, f), static_cast<std::size_t>(PQgetlength(r, t, f))));
        }
      }
      const char* changed = PQcmdTuples(r);
      rows->set_changed(changed && *changed ? std::stoll(changed) : 0);
    }
    PQclear(r);
    return st;
  }

  Status begin() override { return exec("BEGIN"); }
  Status lock(const std::string& key) override {
    return run("SELECT pg_advisory_xact_lock(hashtextextended($1, 7243))", {key});
  }

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
