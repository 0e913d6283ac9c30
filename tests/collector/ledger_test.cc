#include "collector/ingest/ledger.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "collector/store/sql_db.h"
#include "tests/support/test_db.h"

namespace citywatch::collector {
namespace {

// Every ledger test runs on both engines (SQLite, PostgreSQL).
class LedgerTest : public ::testing::TestWithParam<store::Engine> {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "ledgerXXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    const Status s = citywatch::testing::fresh_db(GetParam(), dir_);
    ASSERT_TRUE(s) << s.message();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<store::SqlDb> db() {
    std::unique_ptr<store::SqlDb> d;
    const Status s = citywatch::testing::open_db(GetParam(), dir_ / "ingest.sqlite", d);
    EXPECT_TRUE(s) << s.message();
    return d;
  }
  std::unique_ptr<IngestLedger> open(const std::string& collector = "") {
    std::unique_ptr<IngestLedger> l;
    const Status s = IngestLedger::open(db(), collector, l);
    EXPECT_TRUE(s) << s.message();
    return l;
  }
  static BatchSummary batch(std::uint64_t stream, std::uint64_t seq, std::uint64_t packets) {
    BatchSummary b;
    b.agent = "agent-1";
    b.segment = "library";
    b.stream = stream;
    b.seq = seq;
    Record r;
    FlowRecord f;
    f.protocol = 6;
    f.packets = packets;
    f.bytes = packets * 100;
    r.body = f;
    b.add(RecordRef(r));
    return b;
  }
  static Status commit(IngestLedger& l, const BatchSummary& b) {
    std::vector<FlowRow> flows;
    std::vector<InterfaceRow> interfaces;
    return l.commit(b, flows, interfaces);
  }
  // Packets over every flow total the ledger holds.
  static std::uint64_t flow_packets(IngestLedger& l) {
    std::uint64_t packets = 0;
    l.for_each_flow_total([&](const std::string&, const std::string&, const FlowRow& r) {
      packets += r.totals.packets;
    });
    return packets;
  }
  std::filesystem::path dir_;
};

TEST_P(LedgerTest, PositionAndTotalsSurviveReopen) {
  {
    auto l = open();
    EXPECT_EQ(l->last_seq("agent-1", 7), 0u);
    ASSERT_TRUE(commit(*l, batch(7, 1, 10)));
    ASSERT_TRUE(commit(*l, batch(7, 2, 5)));
    EXPECT_EQ(l->last_seq("agent-1", 7), 2u);
  }
  auto l = open();
  EXPECT_EQ(l->last_seq("agent-1", 7), 2u);
  int rows = 0;
  l->for_each_flow_total([&](const std::string& seg, const std::string& agent, const FlowRow& r) {
    ++rows;
    const FlowTotals& t = r.totals;
    EXPECT_EQ(seg, "library");
    EXPECT_EQ(agent, "agent-1");
    EXPECT_EQ(r.exporter, "capture");
    EXPECT_EQ(r.protocol, 6);
    EXPECT_EQ(r.direction, "unknown");
    EXPECT_EQ(t.flows, 2u);
    EXPECT_EQ(t.packets, 15u);
    EXPECT_EQ(t.bytes, 1500u);
  });
  EXPECT_EQ(rows, 1);
  l->for_each_agent(
      [&](const std::string&, std::uint64_t batches, const PerRecordKind<std::uint64_t>& records) {
        EXPECT_EQ(batches, 2u);
        EXPECT_EQ(records[static_cast<std::size_t>(RecordKind::kFlow)], 2u);
      });
}

TEST_P(LedgerTest, ExportedFlowsAreLabelledByExporterAndInterfaceWithCaps) {
  auto l = open();
  BatchSummary b;
  b.agent = "agent-1";
  b.segment = "core";
  b.stream = 1;
  b.seq = 1;
  // One more exporter than the cap allows; each flow in on ifIndex 3, out on ifIndex 7.
  for (std::uint32_t e = 0; e <= kMaxExportersPerAgent; ++e) {
    Record r;
    FlowRecord f;
    const std::uint8_t addr[4] = {192, 0, 2, static_cast<std::uint8_t>(e)};
    f.exporter = IpAddr::v4(addr);
    f.source = FlowSource::kIpfix;
    f.direction = FlowDirection::kIngress;
    f.protocol = 17;
    f.packets = 2;
    f.bytes = 200;
    f.input_if = 3;
    f.output_if = 7;
    r.body = f;
    b.add(RecordRef(r));
  }
  std::vector<FlowRow> flows;
  std::vector<InterfaceRow> interfaces;
  ASSERT_TRUE(l->commit(b, flows, interfaces));
  ASSERT_EQ(flows.size(), kMaxExportersPerAgent + 1);
  EXPECT_EQ(flows.front().exporter, "192.0.2.0");
  EXPECT_EQ(flows.front().direction, "ingress");
  EXPECT_EQ(flows.back().exporter, "other");  // past the cap, still counted
  EXPECT_EQ(flows.back().totals.bytes, 200u);
  ASSERT_EQ(interfaces.size(), 2 * (kMaxExportersPerAgent + 1));
  EXPECT_EQ(interfaces[0].if_index, "3");
  EXPECT_EQ(interfaces[0].direction, "in");
  EXPECT_EQ(interfaces[1].if_index, "7");
  EXPECT_EQ(interfaces[1].direction, "out");
  // The caps hold across a restart: the stored exporters still fill them.
  l.reset();
  l = open();
  b.seq = 2;
  ASSERT_TRUE(l->commit(b, flows, interfaces));
  EXPECT_EQ(flows.back().exporter, "other");
  std::uint64_t other_bytes = 0;
  l->for_each_interface_total([&](const std::string&, const std::string&, const InterfaceRow& r) {
    if (r.exporter == "other") other_bytes += r.bytes;
  });
  EXPECT_EQ(other_bytes, 2u * 2 * 200);
}

TEST_P(LedgerTest, NewStreamStartsAFreshSequenceSpace) {
  auto l = open();
  ASSERT_TRUE(commit(*l, batch(7, 40, 1)));
  // The agent's spool was recreated: stream 9 has seen nothing, whatever stream 7 had.
  EXPECT_EQ(l->last_seq("agent-1", 9), 0u);
  ASSERT_TRUE(commit(*l, batch(9, 1, 1)));
  EXPECT_EQ(l->last_seq("agent-1", 9), 1u);
  EXPECT_EQ(l->last_seq("agent-1", 7), 0u);
  EXPECT_EQ(l->last_seq("agent-2", 9), 0u);
}

// A ledger written by 0.1.0 before per-exporter totals (schema 1, its DDL verbatim from that
// version): opening it migrates the totals and keeps every agent's delivery position, so an
// upgrade neither re-applies nor refuses the agents' next batches.
TEST_P(LedgerTest, MigratesASchemaOneLedgerKeepingTotalsAndPositions) {
  {
    auto d = db();
    const char* v1 = R"sql(
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
  protocol INTEGER NOT NULL,
  flows INTEGER NOT NULL,
  packets INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (segment, agent, protocol)
);
INSERT INTO agents VALUES ('agent-1', 7, 41, 41, 900, 0, 0, 0, 12);
INSERT INTO flow_totals VALUES ('library', 'agent-1', 6, 800, 29000, 6500000);
INSERT INTO flow_totals VALUES ('library', 'agent-1', 17, 100, 327, 13622);
)sql";
    ASSERT_TRUE(d->exec(v1));
    ASSERT_TRUE(d->set_schema_version("ledger", 1));
  }
  {
    auto l = open();
    ASSERT_TRUE(l);
    EXPECT_EQ(l->migrated_from(), 1);
    EXPECT_EQ(l->last_seq("agent-1", 7), 41u);
    std::uint64_t packets = 0, bytes = 0, flows = 0;
    l->for_each_flow_total([&](const std::string& seg, const std::string& agent, const FlowRow& r) {
      EXPECT_EQ(seg, "library");
      EXPECT_EQ(agent, "agent-1");
      EXPECT_EQ(r.exporter, "capture");
      EXPECT_EQ(r.direction, "unknown");
      packets += r.totals.packets;
      bytes += r.totals.bytes;
      flows += r.totals.flows;
    });
    EXPECT_EQ(packets, 29327u);
    EXPECT_EQ(bytes, 6513622u);
    EXPECT_EQ(flows, 900u);
    // The next batch lands on the migrated row: one row per protocol, as before.
    ASSERT_TRUE(commit(*l, batch(7, 42, 10)));
    EXPECT_EQ(l->last_seq("agent-1", 7), 42u);
  }
  auto l = open();
  EXPECT_EQ(l->migrated_from(), 0);  // already current
  std::uint64_t tcp_packets = 0;
  int rows = 0;
  l->for_each_flow_total([&](const std::string&, const std::string&, const FlowRow& r) {
    ++rows;
    if (r.protocol == 6) tcp_packets = r.totals.packets;
  });
  EXPECT_EQ(rows, 2);
  EXPECT_EQ(tcp_packets, 29010u);
  l->for_each_agent(
      [&](const std::string&, std::uint64_t batches, const PerRecordKind<std::uint64_t>& records) {
        EXPECT_EQ(batches, 42u);
        EXPECT_EQ(records[static_cast<std::size_t>(RecordKind::kFlow)], 901u);
      });
}

TEST_P(LedgerTest, RefusesALedgerOfAnotherSchemaVersion) {
  { auto l = open(); }
  ASSERT_TRUE(db()->set_schema_version("ledger", 99));
  std::unique_ptr<IngestLedger> l;
  const Status s = IngestLedger::open(db(), "", l);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("schema version 99"), std::string::npos) << s.message();
}

// Two collectors on one database (a pair): positions are shared, so a batch committed by
// one is a duplicate to the other, whatever that one last saw; totals are per collector and
// their sum is exact.
TEST_P(LedgerTest, APairSharesPositionsAndKeepsTotalsApart) {
  auto a = open("collector-a");
  auto b = open("collector-b");
  ASSERT_TRUE(commit(*a, batch(7, 1, 10)));
  ASSERT_TRUE(commit(*a, batch(7, 2, 10)));
  // The agent fails over to B: its session reads the position A left.
  ASSERT_TRUE(b->refresh("agent-1"));
  EXPECT_EQ(b->last_seq("agent-1", 7), 2u);
  ASSERT_TRUE(commit(*b, batch(7, 3, 5)));
  // A's session outlived the move and offers batch 3 again: refused, nothing counted.
  std::vector<FlowRow> flows;
  std::vector<InterfaceRow> interfaces;
  bool duplicate = false;
  ASSERT_TRUE(a->commit(batch(7, 3, 5), flows, interfaces, duplicate));
  EXPECT_TRUE(duplicate);
  EXPECT_EQ(a->last_seq("agent-1", 7), 3u);
  std::uint64_t packets_a = 0, packets_b = 0;
  a->for_each_flow_total([&](const std::string&, const std::string&, const FlowRow& r) {
    packets_a += r.totals.packets;
  });
  b->for_each_flow_total([&](const std::string&, const std::string&, const FlowRow& r) {
    packets_b += r.totals.packets;
  });
  EXPECT_EQ(packets_a, 20u);
  EXPECT_EQ(packets_b, 5u);
  // A restarted collector seeds its counters from its own rows only.
  a.reset();
  a = open("collector-a");
  std::uint64_t batches_a = 0;
  a->for_each_agent([&](const std::string&, std::uint64_t batches,
                        const PerRecordKind<std::uint64_t>&) { batches_a += batches; });
  EXPECT_EQ(batches_a, 2u);
}

// PostgreSQL restarts under a running collector (an upgrade, a failover of the database):
// the commit in flight fails (the batch is not acked, the agent keeps it), the next one
// reconnects, and nothing is lost or counted twice.
class LedgerRestartTest : public LedgerTest {};

TEST_P(LedgerRestartTest, ACommitAfterTheDatabaseRestartedReconnects) {
  auto l = open("collector-a");
  ASSERT_TRUE(commit(*l, batch(7, 1, 10)));
  const Status restarted = citywatch::testing::pg_restart();
  ASSERT_TRUE(restarted) << restarted.message();
  Status s = commit(*l, batch(7, 2, 10));
  if (!s) {
    EXPECT_NE(s.message().find("ledger"), std::string::npos) << s.message();
    s = commit(*l, batch(7, 2, 10));  // the agent resends it
  }
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(l->last_seq("agent-1", 7), 2u);
  EXPECT_EQ(flow_packets(*l), 20u);
}

// A statement that waits on a lock (a report's long transaction, an operator's session holding
// a table) fails at the connection's limit instead of holding the collector's event loop, and
// with it the systemd watchdog; the batch is not acked, and once the lock is gone the agent's
// resend is committed, once.
class LedgerLockTest : public LedgerTest {};

TEST_P(LedgerLockTest, ACommitWaitingOnALockFailsAtTheLimitAndTheResendIsCommitted) {
  auto l = open("collector-a");
  ASSERT_TRUE(commit(*l, batch(7, 1, 10)));
  ASSERT_TRUE(l->db().limit_statements(std::chrono::milliseconds(500)));
  auto other = db();
  ASSERT_TRUE(other->exec("BEGIN; LOCK TABLE agent_totals IN ACCESS EXCLUSIVE MODE"));
  Status s = commit(*l, batch(7, 2, 10));
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("statement timeout"), std::string::npos) << s.message();
  EXPECT_EQ(l->last_seq("agent-1", 7), 1u) << "the batch that failed is not recorded";
  ASSERT_TRUE(other->exec("ROLLBACK"));
  s = commit(*l, batch(7, 2, 10));  // the agent resends it
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(l->last_seq("agent-1", 7), 2u);
  EXPECT_EQ(flow_packets(*l), 20u);
}

std::string statement_timeout(store::SqlDb& db) {
  store::SqlRows r;
  const Status s = db.run("SELECT current_setting('statement_timeout')", {}, &r);
  EXPECT_TRUE(s) << s.message();
  return r.empty() ? "" : r.text(0, 0);
}

// The limit is set again on the connection made after the server restarted; a limit the
// server already applies to the session (here from the DSN's options) is left as it is.
TEST(PostgresStore, TheStatementLimitOutlivesAReconnectAndGivesWayToTheServers) {
  std::string dsn;
  Status s = citywatch::testing::pg_dsn(dsn);
  ASSERT_TRUE(s) << s.message();
  std::unique_ptr<store::SqlDb> db;
  s = store::open_postgres(dsn, db);
  ASSERT_TRUE(s) << s.message();
  ASSERT_EQ(statement_timeout(*db), "0");
  ASSERT_TRUE(db->limit_statements(std::chrono::milliseconds(1500)));
  EXPECT_EQ(statement_timeout(*db), "1500ms");
  s = citywatch::testing::pg_restart();
  ASSERT_TRUE(s) << s.message();
  store::SqlRows r;
  (void)db->run("SELECT 1", {}, &r);  // may fail: the old connection is found broken
  EXPECT_EQ(statement_timeout(*db), "1500ms");

  std::unique_ptr<store::SqlDb> own;
  s = store::open_postgres(dsn + " options='-c statement_timeout=2min'", own);
  ASSERT_TRUE(s) << s.message();
  ASSERT_TRUE(own->limit_statements(std::chrono::milliseconds(1500)));
  EXPECT_EQ(statement_timeout(*own), "2min");
}

// A database host that takes the connection and never answers (a half-dead server, a
// firewall that eats replies): the connection attempt fails after libpq's connect_timeout
// (10 s, the collector's default) with an error, instead of holding the collector's event
// loop, and with it ingest and the systemd watchdog, for as long as TCP lasts.
TEST(PostgresStore, AServerThatNeverAnswersFailsTheConnectionInsteadOfHanging) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 4), 0);  // the kernel completes handshakes; nobody ever reads
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const std::string dsn =
      "host=127.0.0.1 port=" + std::to_string(ntohs(a.sin_port)) + " dbname=cw user=cw";
  std::unique_ptr<store::SqlDb> db;
  const Status s = store::open_postgres(dsn, db);
  ::close(fd);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("timeout"), std::string::npos) << s.message();
}

INSTANTIATE_TEST_SUITE_P(Engines, LedgerTest, citywatch::testing::kEngines,
                         citywatch::testing::engine_name);
INSTANTIATE_TEST_SUITE_P(Server, LedgerLockTest, ::testing::Values(store::Engine::kPostgres),
                         citywatch::testing::engine_name);
INSTANTIATE_TEST_SUITE_P(Server, LedgerRestartTest, ::testing::Values(store::Engine::kPostgres),
                         citywatch::testing::engine_name);

}  // namespace
}  // namespace citywatch::collector
