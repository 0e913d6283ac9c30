// Test databases for the store suites, which run unchanged on both engines
// (collector/store/sql_db.h): SQLite files in the test's directory, or one PostgreSQL server
// per test process (tests/support/pg_server.h), started on first use and emptied for each test.
//
//   class MyTest : public ::testing::TestWithParam<store::Engine> { ... };
//   ASSERT_TRUE(testing::fresh_db(GetParam(), dir));             // in SetUp: empty store
//   ASSERT_TRUE(testing::open_db(GetParam(), dir / "x.sqlite", db));  // a connection to it
//   INSTANTIATE_TEST_SUITE_P(Engines, MyTest, testing::kEngines, testing::engine_name);
//
// Thread-safety: none; the test's thread.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "collector/store/sql_db.h"
#include "common/status.h"

namespace citywatch::testing {

using collector::store::Engine;

inline const auto kEngines = ::testing::Values(Engine::kSqlite, Engine::kPostgres);
std::string engine_name(const ::testing::TestParamInfo<Engine>& info);

// Empties the test's store: removes dir (SQLite), or drops and recreates the test
// database's schema on the process's PostgreSQL server (starting it on first use).
Status fresh_db(Engine engine, const std::filesystem::path& dir);
// A new connection: the SQLite file, or the PostgreSQL test database (file ignored).
Status open_db(Engine engine, const std::filesystem::path& file,
               std::unique_ptr<collector::store::SqlDb>& out);
// The PostgreSQL test database's connection string (starts the server on first use).
Status pg_dsn(std::string& out);
// Restarts the PostgreSQL test server (open connections break, committed data stays).
Status pg_restart();

}  // namespace citywatch::testing
