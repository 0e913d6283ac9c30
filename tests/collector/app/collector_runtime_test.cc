// CollectorRuntime, built as main() builds it, on port 0 and a temporary state directory,
// fed by the agent's real Forwarder over mutual TLS (certificates from scripts/make-certs.sh)
// from a real Spool: what a delivered batch does to the metrics and the alerts, that a
// resent batch is not counted twice, that a restart on the same state continues the totals,
// and that a runtime with sessions still open is destroyed cleanly (ASan checks the order).
#include "collector/app/collector_runtime.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "agent/forward/forwarder.h"
#include "agent/spool/spool.h"
#include "common/tls.h"
#include "common/wire_codec.h"

namespace citywatch::collector {
namespace {

namespace fs = std::filesystem;

double metric_sum(prometheus::Registry& r, const std::string& name) {
  double sum = 0;
  for (const auto& family : r.Collect())
    if (family.name == name)
      for (const auto& m : family.metric) sum += m.counter.value + m.gauge.value;
  return sum;
}

class CollectorRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cw-runtime-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string cmd = "bash " CITYWATCH_SOURCE_DIR "/scripts/make-certs.sh " +
                            (dir_ / "pki").string() + " test-agent >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<CollectorRuntime> make_runtime() {
    std::ofstream(dir_ / "collector.yaml")
        << "listen: {ingest: 127.0.0.1:0, metrics: 127.0.0.1:0}\n"
           "tls: {ca: pki/ca.pem, cert: pki/collector.pem, "
           "key: pki/collector.key}\n"
           "state_dir: state\n"
           "rules:\n  files: [" CITYWATCH_SOURCE_DIR
           "/rules]\n"
           "alerts:\n  jsonl: alerts.jsonl\n";
    CollectorConfig cfg;
    EXPECT_TRUE(load_collector_config((dir_ / "collector.yaml").string(), cfg).is_ok());
    RuntimeOptions options;
    options.handle_signals = false;
    std::unique_ptr<CollectorRuntime> rt;
    const Status s = CollectorRuntime::create(std::move(cfg), options, rt);
    EXPECT_TRUE(s.is_ok()) << s.message();
    if (rt) {
      const Status started = rt->start();
      EXPECT_TRUE(started.is_ok()) << started.message();
    }
    return rt;
  }

  // An agent: spools `batches` batches of 10 flows (10 packets, 1,000 bytes each) and
  // forwards them until every one is acked (bounded).
  void deliver(std::uint16_t port, int batches, const std::string& spool_dir) {
    boost::asio::io_context io(1);
    std::unique_ptr<boost::asio::ssl::context> tls;
    const TlsFiles files{(dir_ / "pki/ca.pem").string(), (dir_ / "pki/test-agent.pem").string(),
                         (dir_ / "pki/test-agent.key").string()};
    ASSERT_TRUE(make_tls_context(TlsRole::kClient, files, tls).is_ok());
    agent::SpoolOptions so;
    so.dir = spool_dir;
    std::unique_ptr<agent::Spool> spool;
    ASSERT_TRUE(agent::Spool::open(so, spool).is_ok());
    wire::BatchEncoder enc;
    for (int b = 0; b < batches; ++b) {
      enc.begin();
      for (int i = 0; i < 10; ++i) {
        Record r;
        r.event_time_ns = 1'700'000'000'000'000'000 + (b * 10 + i) * 1'000'000;
        FlowRecord f;
        const std::uint8_t src[4] = {10, 0, 0, 1},
                           dst[4] = {10, 0, 1, static_cast<std::uint8_t>(i)};
        f.src = IpAddr::v4(src);
        f.dst = IpAddr::v4(dst);
        f.src_port = 40000;
        f.dst_port = 443;
        f.protocol = 6;
        f.tcp_flags = 0x1b;
        f.packets = 10;
        f.bytes = 1000;
        r.body = f;
        enc.add(r);
      }
      const std::uint64_t seq = spool->last_seq() + 1;
      ASSERT_TRUE(spool->append(seq, enc.finish(seq)).is_ok());
    }
    agent::ForwarderOptions fo;
    fo.collectors.push_back({"127.0.0.1", port, "localhost"});
    fo.hello.agent_id.assign("test-agent");
    fo.hello.segment.assign("test-segment");
    fo.hello.software.assign("collector_runtime_test");
    fo.hello.stream_id = spool->stream_id();
    fo.initial_backoff = std::chrono::milliseconds(50);
    agent::Forwarder forwarder(io, *tls, *spool, fo);
    bool drained = false;
    forwarder.on_drained([&] {
      drained = true;
      forwarder.stop();
      io.stop();
    });
    boost::asio::steady_timer limit(io, std::chrono::seconds(60));
    limit.async_wait([&](boost::system::error_code ec) {
      if (!ec) io.stop();
    });
    forwarder.start();
    forwarder.notify();
    io.run();
    EXPECT_TRUE(drained) << "not every batch was acked within 60 s";
  }

  fs::path dir_;
};

TEST_F(CollectorRuntimeTest, DeliversCountsOnceAndContinuesAfterARestart) {
  {
    auto rt = make_runtime();
    ASSERT_TRUE(rt);
    std::thread collector([&] { rt->run(); });
    deliver(rt->ingest_port(), 3, (dir_ / "spool").string());
    rt->stop();
    collector.join();
    EXPECT_EQ(metric_sum(rt->registry(), "citywatch_flows_total"), 30);
    EXPECT_EQ(metric_sum(rt->registry(), "citywatch_flow_packets_total"), 300);
    EXPECT_EQ(metric_sum(rt->registry(), "citywatch_flow_bytes_total"), 30000);
    EXPECT_EQ(metric_sum(rt->registry(), "citywatch_collector_batches_received_total"), 3);
  }
  // A new runtime on the same state: the totals continue from the ledger. The same spool,
  // with everything acked, sends nothing; a fresh spool's batches are new batches.
  auto rt = make_runtime();
  ASSERT_TRUE(rt);
  EXPECT_EQ(metric_sum(rt->registry(), "citywatch_flow_packets_total"), 300);
  std::thread collector([&] { rt->run(); });
  deliver(rt->ingest_port(), 0, (dir_ / "spool").string());
  deliver(rt->ingest_port(), 2, (dir_ / "spool-2").string());
  rt->stop();
  collector.join();
  EXPECT_EQ(metric_sum(rt->registry(), "citywatch_flow_packets_total"), 500);
  EXPECT_EQ(metric_sum(rt->registry(), "citywatch_collector_batches_duplicate_total"), 0);
  // The rules ran: each session's end raised agent_disconnected in the JSON lines log.
  std::ifstream log(dir_ / "alerts.jsonl");
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_NE(text.str().find("\"rule\":\"agent_disconnected\""), std::string::npos) << text.str();
}

TEST_F(CollectorRuntimeTest, DestroyedWithASessionOpenEndsItFirst) {
  auto rt = make_runtime();
  ASSERT_TRUE(rt);
  std::thread collector([&] { rt->run(); });
  // A client that completes TCP and never speaks: a session the destructor must end.
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket s(io);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), rt->ingest_port()});
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let it accept (or not)
  rt->stop();
  collector.join();
  rt.reset();  // ASan/UBSan: no session may outlive what it reports to
  SUCCEED();
}

TEST_F(CollectorRuntimeTest, ABrokenRuleFileFailsCreation) {
  std::ofstream(dir_ / "bad.yaml") << "rules:\n  - name: x\n    kind: nonsense\n";
  std::ofstream(dir_ / "collector.yaml") << "listen: {ingest: 127.0.0.1:0, metrics: 127.0.0.1:0}\n"
                                            "tls: {ca: pki/ca.pem, cert: pki/collector.pem, key: "
                                            "pki/collector.key}\n"
                                            "state_dir: state\n"
                                            "rules:\n  files: [bad.yaml]\n";
  CollectorConfig cfg;
  ASSERT_TRUE(load_collector_config((dir_ / "collector.yaml").string(), cfg).is_ok());
  std::unique_ptr<CollectorRuntime> rt;
  const Status s = CollectorRuntime::create(std::move(cfg), {}, rt);
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("bad.yaml:3"), std::string::npos) << s.message();
  EXPECT_EQ(rt, nullptr);
}

}  // namespace
}  // namespace citywatch::collector
