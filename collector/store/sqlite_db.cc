// SqlDb on SQLite: one file, WAL, synchronous=FULL; statements prepared once and cached.
#include <sqlite3.h>

#include <map>

#include "collector/store/sql_db.h"

namespace citywatch::collector::store {

namespace {

// SQLite spells numbered parameters ?N; the stores write $N.
std::string to_sqlite(const std::string& sql) {
  std::string out = sql;
  for (std::size_t i = 0; i + 1 < out.size(); ++i)
    if (out[i] == '$' && out[i + 1] >= '0' && out[i + 1] <= '9') out[i] = '?';
  return out;
}

constexpr std::size_t kMaxCached = 64;  // statements built per batch size are not all kept

class SqliteDb final : public SqlDb {
 public:
  ~SqliteDb() override {
    for (auto& [sql, st] : cache_) sqlite3_finalize(st);
    sqlite3_close(db_);
  }
  using SqlDb::run;
  Engine engine() const override { return Engine::kSqlite; }
  const std::string& name() const override { return name_; }

  Status exec(const std::string& sql) override {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = name_ + ": " + (err ? err : "unknown error");
      sqlite3_free(err);
      return Status::error(msg);
    }
    return Status::ok();
  }

  Status run(const std::string& sql, std::span<const SqlValue> params, SqlRows* rows) override {
    sqlite3_stmt* st = nullptr;
    bool cached = false;
    if (auto it = cache_.find(sql); it != cache_.end()) {
      st = it->second;
      cached = true;
    } else {
      if (sqlite3_prepare_v2(db_, to_sqlite(sql).c_str(), -1, &st, nullptr) != SQLITE_OK)
        return error();
      if (cache_.size() < kMaxCached) {
        cache_.emplace(sql, st);
        cached = true;
      }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int n = static_cast<int>(i + 1);
      if (const auto* v = std::get_if<std::int64_t>(&params[i]))
        sqlite3_bind_int64(st, n, *v);
      else if (const auto* s = std::get_if<std::string>(&params[i]))
        sqlite3_bind_text(st, n, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
      else
        sqlite3_bind_null(st, n);
    }
    if (rows) rows->clear();
    int rc = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      if (!rows) continue;
      auto& row = rows->add_row();
      const int cols = sqlite3_column_count(st);
      for (int c = 0; c < cols; ++c) {
        if (sqlite3_column_type(st, c) == SQLITE_NULL) {
          row.emplace_back();
        } else {
          const auto* p = sqlite3_column_text(st, c);
          row.emplace_back(std::string(reinterpret_cast<const char*>(p),
                                       static_cast<std::size_t>(sqlite3_column_bytes(st, c))));
        }
      }
    }
    Status result = rc == SQLITE_DONE ? Status::ok() : error();
    if (rows && result) rows->set_changed(sqlite3_changes(db_));
    sqlite3_reset(st);
    if (!cached) sqlite3_finalize(st);
    return result;
  }

  Status begin() override { return exec("BEGIN IMMEDIATE"); }
  std::string begin_sql() const override { return "BEGIN IMMEDIATE"; }
  std::string lock_sql() const override { return {}; }
  Status lock(const std::string&) override { return Status::ok(); }

  Status schema_version(const std::string&, int& version, bool& empty) override {
    SqlRows r;
    if (auto s = run("PRAGMA user_version", {}, &r); !s) return s;
    version = static_cast<int>(r.i64(0, 0));
    if (auto s = run("SELECT 1 FROM sqlite_master LIMIT 1", {}, &r); !s) return s;
    empty = r.empty();
    return Status::ok();
  }
  Status set_schema_version(const std::string&, int version) override {
    return exec("PRAGMA user_version=" + std::to_string(version));
  }

  Status error() const { return Status::error(name_ + ": " + sqlite3_errmsg(db_)); }

  sqlite3* db_ = nullptr;
  std::string name_;
  std::map<std::string, sqlite3_stmt*, std::less<>> cache_;
};

}  // namespace

Status open_sqlite(const std::filesystem::path& file, std::unique_ptr<SqlDb>& out, bool create) {
  std::error_code ec;
  if (!create && !std::filesystem::exists(file, ec))
    return Status::error(file.string() + ": no such store");
  if (create) std::filesystem::create_directories(file.parent_path(), ec);
  auto db = std::make_unique<SqliteDb>();
  db->name_ = file.string();
  if (sqlite3_open(file.c_str(), &db->db_) != SQLITE_OK)
    return Status::error(file.string() +
                         ": cannot open: " + (db->db_ ? sqlite3_errmsg(db->db_) : "out of memory"));
  sqlite3_busy_timeout(db->db_, 5000);
  // WAL lets `citywatch report` read while the collector writes; FULL makes a commit
  // durable before it returns (before a batch is acked, before the next record is read).
  if (auto s = db->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"); !s) return s;
  out = std::move(db);
  return Status::ok();
}

}  // namespace citywatch::collector::store
