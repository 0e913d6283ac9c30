#include "tests/support/test_db.h"

#include "tests/support/pg_server.h"

namespace citywatch::testing {

namespace {

PgServer* server(Status& status) {
  static std::unique_ptr<PgServer> pg;
  static Status started = PgServer::start(pg);
  status = started;
  return pg.get();
}

}  // namespace

std::string engine_name(const ::testing::TestParamInfo<Engine>& info) {
  return info.param == Engine::kPostgres ? "PostgreSQL" : "SQLite";
}

Status pg_dsn(std::string& out) {
  Status s;
  PgServer* pg = server(s);
  if (!pg) return Status::error("cannot start the test PostgreSQL server: " + s.message());
  out = pg->dsn();
  return Status::ok();
}

Status pg_restart() {
  Status s;
  PgServer* pg = server(s);
  if (!pg) return Status::error("cannot start the test PostgreSQL server: " + s.message());
  return pg->restart();
}

Status fresh_db(Engine engine, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  if (engine == Engine::kSqlite) return Status::ok();
  std::string dsn;
  if (auto s = pg_dsn(dsn); !s) return s;
  std::unique_ptr<collector::store::SqlDb> db;
  if (auto s = collector::store::open_postgres(dsn, db); !s) return s;
  return db->exec("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;");
}

Status open_db(Engine engine, const std::filesystem::path& file,
               std::unique_ptr<collector::store::SqlDb>& out) {
  if (engine == Engine::kSqlite) return collector::store::open_sqlite(file, out);
  std::string dsn;
  if (auto s = pg_dsn(dsn); !s) return s;
  return collector::store::open_postgres(dsn, out);
}

}  // namespace citywatch::testing
