// SqlDb: the one seam between CityWatch's durable state (ingest ledger, outage store) and the
// database engine under it: SQLite (one file per store, the embedded default for one machine)
// or PostgreSQL (one database shared by every collector of a city; docs/scaling.md).
//
// The stores write one SQL dialect: numbered parameters ($1, $2, ...), `ON CONFLICT ...
// DO UPDATE/NOTHING`, `RETURNING`, partial indexes; schema text may use {ID} (an
// auto-numbered 64-bit primary key) and {INT} (a 64-bit integer column), which each engine
// spells its own way. Values go in and come out as 64-bit integers, text or NULL.
//
// Schema versions are kept per component ("ledger", "outages"): SQLite in the file's
// user_version (one component per file, as before), PostgreSQL in a `citywatch_schema`
// table. open_* never migrates; the stores do, inside a transaction holding schema_lock(),
// so two collectors starting at once on one PostgreSQL migrate it once.
//
// Failure: every call returns a Status naming the store; a PostgreSQL connection that broke
// is re-established on the next call (what was in flight fails; its transaction is gone).
//
// Thread-safety: none; one owner thread per SqlDb.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "common/status.h"

namespace citywatch::collector::store {

enum class Engine : std::uint8_t { kSqlite, kPostgres };

using SqlValue = std::variant<std::nullptr_t, std::int64_t, std::string>;

// The rows of one statement, as text (integers in decimal), and the rows it changed.
class SqlRows {
 public:
  std::size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  bool null(std::size_t row, int col) const { return !cell(row, col).has_value(); }
  std::int64_t i64(std::size_t row, int col) const;
  std::string text(std::size_t row, int col) const { return cell(row, col).value_or(""); }
  std::int64_t changed() const { return changed_; }

  void clear() {
    rows_.clear();
    changed_ = 0;
  }
  std::vector<std::optional<std::string>>& add_row() { return rows_.emplace_back(); }
  void set_changed(std::int64_t n) { changed_ = n; }

 private:
  const std::optional<std::string>& cell(std::size_t row, int col) const;
  std::vector<std::vector<std::optional<std::string>>> rows_;
  std::int64_t changed_ = 0;
};

// One statement of run_all().
struct SqlStatement {
  std::string sql;
  std::vector<SqlValue> params;
};

class SqlDb {
 public:
  virtual ~SqlDb() = default;
  virtual Engine engine() const = 0;
  // For messages: the file, or host:port/dbname (never a password).
  virtual const std::string& name() const = 0;

  // Statements without parameters or rows (schema, several separated by ';').
  virtual Status exec(const std::string& sql) = 0;
  // One statement with $N parameters. rows (optional) receives its rows and change count.
  virtual Status run(const std::string& sql, std::span<const SqlValue> params,
                     SqlRows* rows = nullptr) = 0;
  Status run(const std::string& sql, std::initializer_list<SqlValue> params,
             SqlRows* rows = nullptr) {
    return run(sql, std::span<const SqlValue>(params.begin(), params.size()), rows);
  }

  // The statements in order, as one exchange with the server: PostgreSQL sends them in one
  // pipeline (one round trip instead of one each), SQLite runs them one by one. Stops at the
  // first error (on PostgreSQL the rest are not executed). results (optional) receives each
  // statement's rows.
  virtual Status run_all(std::span<const SqlStatement> statements,
                         std::vector<SqlRows>* results = nullptr);

  // A write transaction: SQLite takes the write lock at once (BEGIN IMMEDIATE).
  virtual Status begin() = 0;
  // The same as statements, for run_all(): begin_sql(), and lock_sql() with the key as $1
  // (empty: the engine needs no lock statement).
  virtual std::string begin_sql() const = 0;
  virtual std::string lock_sql() const = 0;
  Status commit() { return exec("COMMIT"); }
  void rollback() { (void)exec("ROLLBACK"); }
  // Within a transaction: serialises every transaction, in any process, that takes the same
  // key until this one ends (PostgreSQL advisory lock; SQLite's write lock already does).
  virtual Status lock(const std::string& key) = 0;

  // Statements of this connection that run (or wait on a lock) longer than `limit` fail,
  // instead of holding their caller: a collector's event loop, and with it ingest, metrics and
  // the systemd watchdog. Kept across reconnections. A limit the server already applies (the
  // DSN's options, ALTER ROLE or ALTER DATABASE ... SET statement_timeout) is left as it is.
  // SQLite: nothing to do (a writer waits at most its busy timeout, 5 s).
  virtual Status limit_statements(std::chrono::milliseconds limit) {
    (void)limit;
    return Status::ok();
  }

  // The component's schema version; empty: nothing of it exists yet.
  virtual Status schema_version(const std::string& component, int& version, bool& empty) = 0;
  virtual Status set_schema_version(const std::string& component, int version) = 0;

  // {ID}, {INT} and {VIEW} (create or replace a view) spelled for this engine.
  std::string dialect(const std::string& schema) const;
};

// A store's schema: what migrate() needs to bring a database to it.
struct Schema {
  const char* component;  // its version's key ("ledger", "outages")
  const char* what;       // for messages ("ledger", "outage store")
  int version;            // the current one
  std::string layout;     // the current layout, CREATE ... IF NOT EXISTS: run after any steps
  std::function<std::string(int from)> step;  // the SQL taking version `from` to from + 1
};

// Brings the component to s.version in one transaction under the schema lock (collectors
// starting together on one PostgreSQL take turns): nothing yet, the layout; an older version,
// one step after another, then the layout; a newer or unknown one is refused, not guessed
// at. migrated_from: the version it had, 0 if none or already current.
Status migrate(SqlDb& db, const Schema& s, int& migrated_from);

// Opens (creating unless create is false) a SQLite file in WAL mode, synchronous=FULL.
Status open_sqlite(const std::filesystem::path& file, std::unique_ptr<SqlDb>& out,
                   bool create = true);
// Connects to PostgreSQL with a libpq connection string (key=value or postgresql:// URI).
Status open_postgres(const std::string& dsn, std::unique_ptr<SqlDb>& out);

// Runs fn inside a write transaction; commits if it succeeds, rolls back otherwise.
template <typename Fn>
Status transaction(SqlDb& db, Fn&& fn) {
  if (auto s = db.begin(); !s) return s;
  Status st = fn();
  if (!st) {
    db.rollback();
    return st;
  }
  if (auto s = db.commit(); !s) {
    db.rollback();
    return s;
  }
  return Status::ok();
}

}  // namespace citywatch::collector::store
