#include "collector/ingest/ledger.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <sqlite3.h>

#include <filesystem>

namespace citywatch::collector {
namespace {

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "ledgerXXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<IngestLedger> open() {
    std::unique_ptr<IngestLedger> l;
    const Status s = IngestLedger::open(dir_ / "ingest.sqlite", l);
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
    b.add(r);
    return b;
  }
  std::filesystem::path dir_;
};

TEST_F(LedgerTest, PositionAndTotalsSurviveReopen) {
  {
    auto l = open();
    EXPECT_EQ(l->last_seq("agent-1", 7), 0u);
    ASSERT_TRUE(l->commit(batch(7, 1, 10)));
    ASSERT_TRUE(l->commit(batch(7, 2, 5)));
    EXPECT_EQ(l->last_seq("agent-1", 7), 2u);
  }
  auto l = open();
  EXPECT_EQ(l->last_seq("agent-1", 7), 2u);
  int rows = 0;
  l->for_each_flow_total(
      [&](const std::string& seg, const std::string& agent, int proto, const FlowTotals& t) {
        ++rows;
        EXPECT_EQ(seg, "library");
        EXPECT_EQ(agent, "agent-1");
        EXPECT_EQ(proto, 6);
        EXPECT_EQ(t.flows, 2u);
        EXPECT_EQ(t.packets, 15u);
        EXPECT_EQ(t.bytes, 1500u);
      });
  EXPECT_EQ(rows, 1);
  l->for_each_agent(
      [&](const std::string&, std::uint64_t batches, const std::array<std::uint64_t, 6>& records) {
        EXPECT_EQ(batches, 2u);
        EXPECT_EQ(records[static_cast<std::size_t>(RecordKind::kFlow)], 2u);
      });
}

TEST_F(LedgerTest, NewStreamStartsAFreshSequenceSpace) {
  auto l = open();
  ASSERT_TRUE(l->commit(batch(7, 40, 1)));
  // The agent's spool was recreated: stream 9 has seen nothing, whatever stream 7 had.
  EXPECT_EQ(l->last_seq("agent-1", 9), 0u);
  ASSERT_TRUE(l->commit(batch(9, 1, 1)));
  EXPECT_EQ(l->last_seq("agent-1", 9), 1u);
  EXPECT_EQ(l->last_seq("agent-1", 7), 0u);
  EXPECT_EQ(l->last_seq("agent-2", 9), 0u);
}

TEST_F(LedgerTest, RefusesALedgerOfAnotherSchemaVersion) {
  { auto l = open(); }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "ingest.sqlite").c_str(), &db), SQLITE_OK);
    sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  std::unique_ptr<IngestLedger> l;
  const Status s = IngestLedger::open(dir_ / "ingest.sqlite", l);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("schema version 99"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace citywatch::collector
