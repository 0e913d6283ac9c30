// PgServer: a private, throw-away PostgreSQL server for one test process.
//
//   std::unique_ptr<citywatch::testing::PgServer> pg;
//   citywatch::Status s = citywatch::testing::PgServer::start(pg);
//   ASSERT_TRUE(s) << s.message();
//   PGconn* c = PQconnectdb(pg->dsn().c_str());            // database "citywatch"
//   std::string other = pg->create_database("alpha");      // a fresh, empty database
//
// start() runs initdb in a new temp dir (under $TMPDIR, else /tmp) and starts `postgres`
// from /usr/lib/postgresql/<newest>/bin (or $CITYWATCH_PG_BINDIR) as a child of this process,
// listening on 127.0.0.1 only, on a port the kernel picked free (it retries on a lost race),
// with its unix socket in the temp dir. PostgreSQL refuses to run as root: when this process
// is root, initdb and postgres run as the system user `postgres` (else `nobody`), and the temp
// dir is chowned to it. Startup is bounded (initdb 60 s, readiness 30 s); on any failure the
// message says what is missing and the server's log is printed to stderr. Nothing is skipped
// silently: a missing binary or user is an error.
//
// Roles: `citywatch` (LOGIN, not a superuser, SCRAM password over TCP) owns the database
// `citywatch` and every database create_database() makes; that is the role the collector
// uses, through dsn(). The bootstrap superuser `postgres` is reachable only over the unix
// socket (trust), through admin_dsn().
//
// The destructor (and stop()) shuts the server down immediately (SIGQUIT, SIGKILL after 10 s),
// reaps it and removes the temp dir; set CITYWATCH_PG_KEEP=1 to keep the dir for a post-mortem.
// If this process dies first, the kernel sends the server SIGQUIT (PR_SET_PDEATHSIG), so no
// server outlives a crashed test; for that reason start() must be called from a thread that
// outlives the server (the test's own thread, or SetUpTestSuite), not a short-lived helper.
//
// Thread-safety: none; one thread owns a PgServer. Not copyable or movable.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "common/status.h"

namespace citywatch::testing {

class PgServer {
 public:
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // Creates the cluster, starts the server and waits until the role `citywatch` can log in
  // to the database `citywatch` over TCP. On error `out` is left empty.
  static Status start(std::unique_ptr<PgServer>& out);

  // libpq connection string for the collector's role and database:
  // "host=127.0.0.1 port=N dbname=citywatch user=citywatch password=P connect_timeout=10".
  std::string dsn() const;
  // The same for another database on this server.
  std::string dsn(const std::string& dbname) const;
  // Superuser `postgres` over the unix socket in the temp dir, database `postgres`.
  std::string admin_dsn() const;

  // Creates an empty database NAME (from template0) owned by `citywatch` and returns its DSN.
  // NAME must match [a-z_][a-z0-9_]{0,62} and not exist yet. On error prints the reason to
  // stderr and returns an empty string (ASSERT_FALSE(dsn.empty()) in the caller), or use the
  // overload that returns a Status.
  std::string create_database(const std::string& name);
  Status create_database(const std::string& name, std::string* dsn_out);

  // Immediate shutdown (SIGQUIT, then SIGKILL after 10 s) and reap. Idempotent; the temp dir
  // stays until destruction, so restart() can bring the same cluster back.
  Status stop();
  // Fast shutdown (SIGINT: open connections break, committed data stays) unless already
  // stopped, then start the same cluster on the same port. stop() + restart() is a crash
  // restart instead: the server runs crash recovery first (seconds: it fsyncs the data dir).
  Status restart();

  int port() const { return port_; }
  pid_t pid() const { return pid_; }               // the postmaster; 0 when stopped
  const std::string& dir() const { return dir_; }  // temp dir: data/, socket, logs
  const std::string& password() const { return password_; }
  // The server's log (stdout and stderr of postgres) so far; empty when unreadable.
  std::string log() const;

 private:
  PgServer() = default;
  Status init();
  Status launch();
  Status wait_ready();
  Status shutdown(int sig);
  Status admin_exec(const std::string& sql) const;

  std::string bindir_;
  std::string dir_;
  std::string sockdir_;
  std::string password_;
  std::string log_path_;
  int port_ = 0;
  pid_t pid_ = 0;
  bool as_other_user_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  std::string user_;
};

}  // namespace citywatch::testing
