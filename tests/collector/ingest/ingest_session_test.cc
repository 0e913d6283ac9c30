// The collector's ingest session over an in-memory transport (tests/support/memory_pipe.h),
// with a real ledger (SQLite in a temporary directory) and the real metrics: a test plays
// the agent frame by frame, then the agent's real Forwarder and Spool deliver through a
// connection cut again and again at arbitrary bytes. Each batch is committed, counted and
// passed on exactly once; a bad frame ends the session with nothing committed.
#include "collector/ingest/ingest_server.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>

#include "agent/forward/forwarder.h"
#include "agent/spool/spool.h"
#include "tests/support/frames.h"
#include "tests/support/memory_pipe.h"

namespace citywatch::collector {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::awaitable;
using citywatch::testing::flow_batch;
using citywatch::testing::make_pipe;
using citywatch::testing::MemoryStream;
using citywatch::testing::PipeOptions;
using citywatch::testing::recv_frame;
using citywatch::testing::send_frame;
using citywatch::testing::send_sequence;

// Counts what the session passes on, by batch: a batch seen twice is a double count.
class CountingConsumer : public RecordConsumer {
 public:
  void consume(const RecordBatch& batch) override {
    for (const RecordRef r : batch) {
      ++records_;
      if (const auto* f = r.get_if<FlowRecord>()) packets_ += f->packets;
    }
    ++batches_;
  }
  void on_agent_session(const std::string& agent, const std::string& segment, bool connected,
                        std::int64_t) override {
    sessions_.push_back(agent + "/" + segment + (connected ? " up" : " down"));
  }
  std::uint64_t records_ = 0;
  std::uint64_t packets_ = 0;
  std::uint64_t batches_ = 0;
  std::vector<std::string> sessions_;
};

double metric(prometheus::Registry& r, const std::string& name, const std::string& label = "",
              const std::string& value = "") {
  double sum = 0;
  for (const auto& family : r.Collect())
    if (family.name == name)
      for (const auto& m : family.metric) {
        bool match = label.empty();
        for (const auto& l : m.label) match = match || (l.name == label && l.value == value);
        if (match) sum += m.counter.value + m.gauge.value;
      }
  return sum;
}

wire::Hello hello(const std::string& agent, std::uint64_t stream = 7) {
  wire::Hello h;
  h.agent_id.assign(agent);
  h.segment.assign("segment-a");
  h.software.assign("ingest_session_test");
  h.stream_id = stream;
  return h;
}

std::vector<std::byte> hello_payload(const std::string& agent, std::uint64_t stream = 7) {
  std::vector<std::byte> p;
  wire::encode_hello(hello(agent, stream), p);
  return p;
}

class IngestSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cw-ingest-session-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ASSERT_TRUE(IngestLedger::open(dir_ / "ledger.db", ledger_).is_ok());
    metrics_ = std::make_unique<CollectorMetrics>(registry_);
  }
  void TearDown() override {
    if (server_) server_->drain();
    server_.reset();
    ledger_.reset();
    fs::remove_all(dir_);
  }

  IngestServer& server(IngestOptions options = {}) {
    server_ = std::make_unique<IngestServer>(io_, tls_, *ledger_, *metrics_, std::move(options));
    server_->add_consumer(&consumer_);
    return *server_;
  }

  // Serves one in-memory connection authenticated as `agent` and runs `client` on its other
  // end until it returns (bounded).
  void talk(const std::string& agent, std::function<awaitable<void>(MemoryStream&)> client,
            PipeOptions options = {}) {
    if (!server_) server();
    auto [agent_end, collector_end] = make_pipe(io_, options);
    server_->serve(std::move(collector_end), agent);
    std::shared_ptr<MemoryStream> end(std::move(agent_end));
    bool done = false;
    asio::co_spawn(
        io_,
        [client, end, &done, this]() -> awaitable<void> {
          co_await client(*end);
          done = true;
          io_.stop();
        },
        asio::detached);
    io_.restart();
    io_.run_for(std::chrono::seconds(20));
    ASSERT_TRUE(done) << "the client script did not finish within 20 s";
    // The session takes its last steps (a frame that arrived before the hang-up).
    io_.restart();
    for (int i = 0; i < 100 && io_.poll(); ++i) {
    }
  }

  std::uint64_t last_seq(const std::string& agent = "agent-a") {
    return ledger_->last_seq(agent, 7);
  }

  fs::path dir_;
  asio::io_context io_{1};
  asio::ssl::context tls_{asio::ssl::context::tls_server};  // unused by serve()
  prometheus::Registry registry_;
  std::unique_ptr<CollectorMetrics> metrics_;
  std::unique_ptr<IngestLedger> ledger_;
  CountingConsumer consumer_;
  std::unique_ptr<IngestServer> server_;
};

TEST_F(IngestSessionTest, CommitsAcksAndPassesOnEachBatchOnceAByteAtATime) {
  PipeOptions bytewise;
  bytewise.max_write = 1;
  bytewise.max_read = 1;
  std::vector<std::uint64_t> acks;
  std::uint64_t hello_ack = 99;
  talk(
      "agent-a",
      [&](MemoryStream& s) -> awaitable<void> {
        wire::FrameHeader h;
        std::vector<std::byte> p;
        co_await send_frame(s, wire::FrameType::kHello, hello_payload("agent-a"));
        if (!co_await recv_frame(s, h, p) || h.type != wire::FrameType::kHelloAck) co_return;
        wire::decode_sequence(p, hello_ack);
        // Batches 1, 2, then 2 again (a resend after a lost ack), then 3.
        for (std::uint64_t seq : {1, 2, 2, 3}) {
          co_await send_frame(s, wire::FrameType::kBatch, flow_batch(seq, 10, 10, 1000));
          if (!co_await recv_frame(s, h, p) || h.type != wire::FrameType::kAck) co_return;
          std::uint64_t acked = 0;
          wire::decode_sequence(p, acked);
          acks.push_back(acked);
        }
        s.close();
      },
      bytewise);
  EXPECT_EQ(hello_ack, 0u);
  EXPECT_EQ(acks, (std::vector<std::uint64_t>{1, 2, 2, 3}));
  EXPECT_EQ(last_seq(), 3u);
  EXPECT_EQ(consumer_.batches_, 3u);
  EXPECT_EQ(consumer_.records_, 30u);
  EXPECT_EQ(metric(registry_, "citywatch_flow_packets_total"), 300);
  EXPECT_EQ(metric(registry_, "citywatch_collector_batches_duplicate_total"), 1);
  ASSERT_FALSE(consumer_.sessions_.empty());
  EXPECT_EQ(consumer_.sessions_.front(), "agent-a/segment-a up");
}

TEST_F(IngestSessionTest, ALostAckIsNotCountedTwiceOnTheNextSession) {
  // The first session's ack is lost; the second starts with HELLO_ACK 1, the resent batch 1
  // is acked as a duplicate and only batch 2 is new.
  talk("agent-a", [&](MemoryStream& s) -> awaitable<void> {
    wire::FrameHeader h;
    std::vector<std::byte> p;
    co_await send_frame(s, wire::FrameType::kHello, hello_payload("agent-a"));
    co_await recv_frame(s, h, p);
    co_await send_frame(s, wire::FrameType::kBatch, flow_batch(1, 10, 10, 1000));
    s.close();  // before the ACK arrives
  });
  // The session commits what arrived before the hang-up; the ack has nowhere to go.
  EXPECT_EQ(last_seq(), 1u);
  std::uint64_t has = 99;
  std::vector<std::uint64_t> acks;
  talk("agent-a", [&](MemoryStream& s) -> awaitable<void> {
    wire::FrameHeader h;
    std::vector<std::byte> p;
    co_await send_frame(s, wire::FrameType::kHello, hello_payload("agent-a"));
    co_await recv_frame(s, h, p);
    wire::decode_sequence(p, has);
    for (std::uint64_t seq : {1, 2}) {
      co_await send_frame(s, wire::FrameType::kBatch, flow_batch(seq, 10, 10, 1000));
      if (!co_await recv_frame(s, h, p)) co_return;
      std::uint64_t acked = 0;
      wire::decode_sequence(p, acked);
      acks.push_back(acked);
    }
    s.close();
  });
  EXPECT_EQ(has, 1u);
  EXPECT_EQ(acks, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(consumer_.records_, 20u);
  EXPECT_EQ(metric(registry_, "citywatch_flow_packets_total"), 200);
  EXPECT_EQ(metric(registry_, "citywatch_collector_batches_duplicate_total"), 1);
}

// Frames the session must refuse: each ends the session with nothing committed, counted by
// reason.
class IngestSessionRefusalTest : public IngestSessionTest {
 protected:
  // Sends HELLO (unless `frames` starts with something else), then `frames`; returns what
  // came back until the collector hung up.
  std::vector<wire::FrameType> exchange(const std::string& agent, bool send_hello,
                                        std::vector<std::vector<std::byte>> frames) {
    std::vector<wire::FrameType> got;
    talk(agent, [&](MemoryStream& s) -> awaitable<void> {
      boost::system::error_code ec;
      if (send_hello) co_await send_frame(s, wire::FrameType::kHello, hello_payload("agent-a"));
      for (const auto& f : frames) co_await write_all(s, f, ec);
      wire::FrameHeader h;
      std::vector<std::byte> p;
      while (co_await recv_frame(s, h, p)) {
        got.push_back(h.type);
        if (h.type == wire::FrameType::kError) {
          std::uint16_t code = static_cast<std::uint16_t>(p[0]) |
                               static_cast<std::uint16_t>(static_cast<unsigned>(p[1]) << 8);
          error_code_ = code;
        }
      }
      s.close();
    });
    return got;
  }
  static std::vector<std::byte> frame(wire::FrameType type, const std::vector<std::byte>& payload) {
    std::vector<std::byte> out;
    wire::encode_frame(type, payload, out);
    return out;
  }
  std::uint16_t error_code_ = 0;
};

TEST_F(IngestSessionRefusalTest, ABadChecksumEndsTheSessionWithNothingCommitted) {
  auto bad = frame(wire::FrameType::kBatch, flow_batch(1, 10, 10, 1000));
  bad[wire::kHeaderSize + 20] ^= std::byte{0x40};
  const auto got = exchange("agent-a", true, {bad});
  EXPECT_EQ(got, (std::vector<wire::FrameType>{wire::FrameType::kHelloAck}));
  EXPECT_EQ(last_seq(), 0u);
  EXPECT_EQ(consumer_.records_, 0u);
  EXPECT_EQ(
      metric(registry_, "citywatch_collector_frames_rejected_total", "reason", "bad_checksum"), 1);
}

TEST_F(IngestSessionRefusalTest, AHeaderClaimingMoreThanTheLimitIsRefusedUnread) {
  auto big = frame(wire::FrameType::kBatch, flow_batch(1, 1, 1, 1));
  const std::uint32_t huge = wire::kMaxPayload + 1;
  for (int i = 0; i < 4; ++i) big[8 + i] = static_cast<std::byte>(huge >> (8 * i));
  const auto got = exchange("agent-a", true, {big});
  EXPECT_EQ(got, (std::vector<wire::FrameType>{wire::FrameType::kHelloAck}));
  EXPECT_EQ(last_seq(), 0u);
  EXPECT_EQ(metric(registry_, "citywatch_collector_frames_rejected_total", "reason", "too_large"),
            1);
}

TEST_F(IngestSessionRefusalTest, TheFirstFrameMustBeHello) {
  const auto got =
      exchange("agent-a", false, {frame(wire::FrameType::kBatch, flow_batch(1, 1, 1, 1))});
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(last_seq(), 0u);
  EXPECT_EQ(
      metric(registry_, "citywatch_collector_connections_rejected_total", "reason", "protocol"), 1);
  EXPECT_TRUE(consumer_.sessions_.empty()) << "a refused peer was reported as an agent session";
}

TEST_F(IngestSessionRefusalTest, AHelloNamingAnotherAgentIsRefused) {
  // The stream is authenticated as agent-b; its HELLO says agent-a.
  const auto got = exchange("agent-b", true, {});
  EXPECT_EQ(got, (std::vector<wire::FrameType>{wire::FrameType::kError}));
  EXPECT_EQ(error_code_, static_cast<std::uint16_t>(wire::ErrorCode::kAgentIdMismatch));
  EXPECT_EQ(metric(registry_, "citywatch_collector_connections_rejected_total", "reason",
                   "agent_id_mismatch"),
            1);
}

TEST_F(IngestSessionRefusalTest, AnAgentOffTheAllowListIsRefused) {
  IngestOptions o;
  o.allowed_agents = {"agent-b"};
  server(o);
  const auto got =
      exchange("agent-a", true, {frame(wire::FrameType::kBatch, flow_batch(1, 1, 1, 1))});
  EXPECT_EQ(got, (std::vector<wire::FrameType>{wire::FrameType::kError}));
  EXPECT_EQ(error_code_, static_cast<std::uint16_t>(wire::ErrorCode::kUnknownAgent));
  EXPECT_EQ(last_seq(), 0u);
}

TEST_F(IngestSessionRefusalTest, AFrameThatStallsHalfWayIsCutOffAtTheFrameDeadline) {
  IngestOptions o;
  o.frame_timeout = std::chrono::milliseconds(100);
  server(o);
  auto half = frame(wire::FrameType::kBatch, flow_batch(1, 10, 10, 1000));
  half.resize(wire::kHeaderSize + 10);
  // The script then waits for the collector to hang up: it does, at the deadline.
  const auto got = exchange("agent-a", true, {half});
  EXPECT_EQ(got, (std::vector<wire::FrameType>{wire::FrameType::kHelloAck}));
  EXPECT_EQ(last_seq(), 0u);
  EXPECT_EQ(consumer_.records_, 0u);
}

// The agent's real forwarder and spool against the session, through connections cut after
// 1, 2, 3, ... bytes and then at growing offsets, writes of 7 bytes: whatever the cut
// interrupts (a header, a payload, an ack) is resent and counted once.
TEST_F(IngestSessionTest, AForwarderDeliversExactlyOnceThroughConnectionsCutAnywhere) {
  server();
  const fs::path spool_dir = dir_ / "spool";
  agent::SpoolOptions so;
  so.dir = spool_dir;
  std::unique_ptr<agent::Spool> spool;
  ASSERT_TRUE(agent::Spool::open(so, spool).is_ok());
  constexpr int kBatches = 40;
  for (int b = 1; b <= kBatches; ++b)
    ASSERT_TRUE(spool->append(b, flow_batch(b, 10, 10, 1000)).is_ok());
  std::uint64_t attempts = 0;
  auto factory = [&]() -> std::unique_ptr<ClientStream> {
    PipeOptions po;
    po.max_write = 7;
    // Cuts at 1..60 bytes (inside HELLO, HELLO_ACK and the first header), then at 97-byte
    // steps (inside headers, payloads and acks); from the 121st attempt on, or when a cut
    // lies beyond what is left to send, the connection holds.
    const std::uint64_t n = ++attempts;
    if (n <= 60)
      po.cut_after = n;
    else if (n <= 120)
      po.cut_after = 60 + (n - 60) * 97;
    auto [client, collector] = make_pipe(io_, po);
    server_->serve(std::move(collector), "agent-a");
    return std::move(client);
  };
  agent::ForwarderOptions fo;
  fo.collectors.push_back({"collector", 7443, ""});
  wire::Hello h = hello("agent-a", spool->stream_id());
  fo.hello = h;
  fo.initial_backoff = std::chrono::microseconds(100);
  fo.max_backoff = std::chrono::microseconds(200);
  agent::Forwarder forwarder(io_, factory, *spool, fo);
  bool drained = false;
  forwarder.on_drained([&] {
    if (spool->acked_seq() < spool->last_seq()) return;
    drained = true;
    io_.stop();
  });
  forwarder.start();
  forwarder.notify();
  io_.run_for(std::chrono::seconds(60));
  forwarder.stop();
  // Let the forwarder's coroutines see their streams closed before it is destroyed.
  io_.restart();
  for (int i = 0; i < 100 && io_.poll(); ++i) {
  }
  ASSERT_TRUE(drained) << "not drained after " << attempts << " connections";
  EXPECT_GT(attempts, 60u) << "fewer connections than cuts";
  EXPECT_EQ(ledger_->last_seq("agent-a", spool->stream_id()), std::uint64_t{kBatches});
  EXPECT_EQ(consumer_.batches_, std::uint64_t{kBatches});
  EXPECT_EQ(consumer_.records_, kBatches * 10u);
  EXPECT_EQ(consumer_.packets_, kBatches * 100u);
  EXPECT_EQ(metric(registry_, "citywatch_flow_packets_total"), kBatches * 100);
  EXPECT_EQ(metric(registry_, "citywatch_flow_bytes_total"), kBatches * 10'000);
  EXPECT_EQ(metric(registry_, "citywatch_collector_frames_rejected_total"), 0)
      << "a cut frame was counted as a bad one";
  std::cout << "delivered " << kBatches << " batches over " << attempts << " connections, "
            << metric(registry_, "citywatch_collector_batches_duplicate_total")
            << " duplicates acked uncounted\n";
}

}  // namespace
}  // namespace citywatch::collector
