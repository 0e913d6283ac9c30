// The PostgreSQL test harness (tests/support/pg_server.h) against a real server: the
// collector's role logs in over TCP with its password, each database create_database() makes
// is separate and empty, restart() keeps committed data, and nothing outlives the PgServer.
#include "tests/support/pg_server.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <signal.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace citywatch::testing {
namespace {

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnCloser>;

Conn connect(const std::string& dsn) { return Conn(PQconnectdb(dsn.c_str())); }

// Runs sql; returns the first cell of the result ("" when there is none), or "ERROR: ...".
std::string query(PGconn* c, const std::string& sql) {
  PGresult* res = PQexec(c, sql.c_str());
  std::string out;
  const ExecStatusType st = PQresultStatus(res);
  if (st == PGRES_TUPLES_OK) {
    if (PQntuples(res) > 0 && PQnfields(res) > 0) out = PQgetvalue(res, 0, 0);
  } else if (st != PGRES_COMMAND_OK) {
    out = std::string("ERROR: ") + PQresultErrorMessage(res);
  }
  PQclear(res);
  return out;
}

// The real uid of a process, from /proc/PID/status; -1 when unreadable.
long uid_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Uid:", 0) == 0) return std::stol(line.substr(4));
  }
  return -1;
}

class PgServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status s = PgServer::start(pg_);
    ASSERT_TRUE(s) << s.message();
    ASSERT_NE(pg_, nullptr);
  }
  std::unique_ptr<PgServer> pg_;
};

TEST_F(PgServerTest, CollectorRoleRoundTripsARowOverTcp) {
  EXPECT_NE(uid_of(pg_->pid()), 0) << "the postmaster must not run as root";
  EXPECT_NE(pg_->dsn().find("host=127.0.0.1 port=" + std::to_string(pg_->port()) +
                            " dbname=citywatch user=citywatch password=" + pg_->password()),
            std::string::npos)
      << pg_->dsn();

  Conn c = connect(pg_->dsn());
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
  EXPECT_EQ(query(c.get(), "SELECT current_user"), "citywatch");
  EXPECT_EQ(query(c.get(), "SELECT current_database()"), "citywatch");
  EXPECT_EQ(query(c.get(), "SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user"),
            "false");
  EXPECT_EQ(query(c.get(), "SHOW listen_addresses"), "127.0.0.1");
  EXPECT_EQ(query(c.get(), "SELECT inet_server_addr()::text"), "127.0.0.1/32");

  ASSERT_EQ(query(c.get(),
                  "CREATE TABLE outages (id bigserial PRIMARY KEY, host text NOT NULL, "
                  "seconds integer NOT NULL)"),
            "");
  const char* params[] = {"router-7", "42"};
  PGresult* res = PQexecParams(c.get(), "INSERT INTO outages (host, seconds) VALUES ($1, $2)", 2,
                               nullptr, params, nullptr, nullptr, 0);
  ASSERT_EQ(PQresultStatus(res), PGRES_COMMAND_OK) << PQresultErrorMessage(res);
  EXPECT_STREQ(PQcmdTuples(res), "1");
  PQclear(res);
  EXPECT_EQ(query(c.get(), "SELECT host || ':' || seconds FROM outages"), "router-7:42");
  EXPECT_EQ(query(c.get(), "SELECT count(*) FROM outages"), "1");
}

TEST_F(PgServerTest, WrongPasswordIsRefused) {
  std::string dsn = pg_->dsn();
  const size_t at = dsn.find(pg_->password());
  ASSERT_NE(at, std::string::npos);
  dsn.replace(at, pg_->password().size(), "not-the-password");
  Conn c = connect(dsn);
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(c.get())).find("password authentication failed"),
            std::string::npos)
      << PQerrorMessage(c.get());
}

TEST_F(PgServerTest, EachCreatedDatabaseIsSeparateAndEmpty) {
  const std::string alpha = pg_->create_database("alpha");
  const std::string beta = pg_->create_database("beta");
  ASSERT_FALSE(alpha.empty());
  ASSERT_FALSE(beta.empty());
  ASSERT_NE(alpha, beta);

  Conn a = connect(alpha);
  Conn b = connect(beta);
  ASSERT_EQ(PQstatus(a.get()), CONNECTION_OK) << PQerrorMessage(a.get());
  ASSERT_EQ(PQstatus(b.get()), CONNECTION_OK) << PQerrorMessage(b.get());
  EXPECT_EQ(query(a.get(), "SELECT current_database()"), "alpha");
  EXPECT_EQ(query(b.get(), "SELECT current_database()"), "beta");
  // Empty: no table of the user's in either.
  EXPECT_EQ(query(a.get(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), "0");
  EXPECT_EQ(query(b.get(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), "0");

  ASSERT_EQ(query(a.get(), "CREATE TABLE t (v text)"), "");
  ASSERT_EQ(query(a.get(), "INSERT INTO t VALUES ('only in alpha')"), "");
  EXPECT_EQ(query(a.get(), "SELECT v FROM t"), "only in alpha");
  // beta has no table t, and may make its own with other contents.
  EXPECT_EQ(query(b.get(), "SELECT coalesce(to_regclass('t')::text, 'none')"), "none");
  ASSERT_EQ(query(b.get(), "CREATE TABLE t (v text)"), "");
  EXPECT_EQ(query(b.get(), "SELECT count(*) FROM t"), "0");
  EXPECT_EQ(query(a.get(), "SELECT count(*) FROM t"), "1");

  // The default database is a third one.
  Conn d = connect(pg_->dsn());
  ASSERT_EQ(PQstatus(d.get()), CONNECTION_OK) << PQerrorMessage(d.get());
  EXPECT_EQ(query(d.get(), "SELECT coalesce(to_regclass('t')::text, 'none')"), "none");
}

TEST_F(PgServerTest, CreateDatabaseRejectsBadAndDuplicateNames) {
  std::string dsn;
  Status s = pg_->create_database("Bad-Name", &dsn);
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("not a valid name"), std::string::npos) << s.message();
  s = pg_->create_database("x; DROP DATABASE citywatch", &dsn);
  EXPECT_FALSE(s);
  s = pg_->create_database("citywatch", &dsn);
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("already exists"), std::string::npos) << s.message();
  EXPECT_TRUE(dsn.empty());
  EXPECT_EQ(pg_->create_database("Bad-Name"), "");
}

TEST_F(PgServerTest, RestartKeepsCommittedDataAndBreaksOpenConnections) {
  const int port = pg_->port();
  const pid_t before = pg_->pid();
  Conn c = connect(pg_->dsn());
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
  ASSERT_EQ(query(c.get(), "CREATE TABLE kept (v int)"), "");
  ASSERT_EQ(query(c.get(), "INSERT INTO kept VALUES (7)"), "");

  Status s = pg_->restart();
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(pg_->port(), port);
  EXPECT_NE(pg_->pid(), before);
  EXPECT_EQ(::kill(before, 0), -1);

  EXPECT_EQ(query(c.get(), "SELECT 1").rfind("ERROR: ", 0), 0u) << "the old connection must break";
  Conn again = connect(pg_->dsn());
  ASSERT_EQ(PQstatus(again.get()), CONNECTION_OK) << PQerrorMessage(again.get());
  EXPECT_EQ(query(again.get(), "SELECT v FROM kept"), "7");
}

TEST(PgServerLifetime, DestructionStopsTheServerAndRemovesItsDir) {
  std::unique_ptr<PgServer> pg;
  Status s = PgServer::start(pg);
  ASSERT_TRUE(s) << s.message();
  const pid_t pid = pg->pid();
  const std::string dir = pg->dir();
  const std::string ping =
      "host=127.0.0.1 port=" + std::to_string(pg->port()) + " dbname=postgres connect_timeout=2";
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(std::filesystem::is_directory(dir + "/data"));
  ASSERT_EQ(PQping(ping.c_str()), PQPING_OK);
  Conn open = connect(pg->dsn());  // an open connection does not hold the server up
  ASSERT_EQ(PQstatus(open.get()), CONNECTION_OK) << PQerrorMessage(open.get());

  pg.reset();
  errno = 0;
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_EQ(PQping(ping.c_str()), PQPING_NO_RESPONSE);
}

}  // namespace
}  // namespace citywatch::testing
