// The forwarder over an in-memory transport (tests/support/memory_pipe.h), with a real spool
// on disk and a scripted collector on the other end of each connection: batches arrive in
// order a byte at a time, lost acks resend only what the collector lacks, a refusing, a
// black-holed and a garbling collector each make the agent move on without acking anything
// it should not, and an agent whose collector is ahead of it continues above.
#include "agent/forward/forwarder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <deque>
#include <filesystem>
#include <functional>
#include <numeric>
#include <vector>

#include "common/batch_compression.h"
#include "tests/support/frames.h"
#include "tests/support/memory_pipe.h"

namespace citywatch::agent {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::awaitable;
using citywatch::testing::make_pipe;
using citywatch::testing::MemoryStream;
using citywatch::testing::PipeOptions;
using citywatch::testing::recv_frame;
using citywatch::testing::send_frame;
using citywatch::testing::send_sequence;

// What one connection's collector saw.
struct Seen {
  std::string agent;
  std::vector<std::uint64_t> batches;
  std::vector<std::vector<std::byte>> payloads;
  std::vector<std::uint16_t> flags;  // of each BATCH frame
  std::uint16_t offered = 0;         // HELLO flags
};

// A collector script runs on the server end of one connection.
using Script = std::function<awaitable<void>(MemoryStream&, Seen&)>;

// A well-behaved collector that already holds batches up to `has`; it acks each batch
// unless `ack` is false, and hangs up after `hang_up_after` batches (0: never). It reads
// compact batches unless `reads_compact` is false (a collector older than them), and packed
// (lz4) batches if `reads_packed`.
Script collector(std::uint64_t has, bool ack = true, std::size_t hang_up_after = 0,
                 bool reads_compact = true, bool reads_packed = false) {
  return [=](MemoryStream& s, Seen& seen) -> awaitable<void> {
    wire::FrameHeader h;
    std::vector<std::byte> payload;
    if (!co_await recv_frame(s, h, payload) || h.type != wire::FrameType::kHello) co_return;
    wire::Hello hello;
    if (wire::decode_hello(payload, hello) != wire::DecodeError::kOk) co_return;
    seen.agent = std::string(hello.agent_id.view());
    seen.offered = h.flags;
    const std::uint16_t accept = (reads_compact ? h.flags & wire::kFlagCompact : 0) |
                                 (reads_packed ? h.flags & wire::kFlagLz4 : 0);
    if (!co_await send_sequence(s, wire::FrameType::kHelloAck, has, accept)) co_return;
    while (co_await recv_frame(s, h, payload)) {
      std::uint64_t seq = 0;
      if (h.type != wire::FrameType::kBatch ||
          wire::peek_batch_sequence(payload, seq) != wire::DecodeError::kOk)
        break;
      seen.batches.push_back(seq);
      seen.payloads.push_back(payload);
      seen.flags.push_back(h.flags);
      if (ack && !co_await send_sequence(s, wire::FrameType::kAck, seq)) break;
      if (hang_up_after && seen.batches.size() >= hang_up_after) break;
    }
    s.close();
  };
}

class ForwarderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cw-forwarder-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    SpoolOptions so;
    so.dir = dir_;
    ASSERT_TRUE(Spool::open(so, spool_).is_ok());
  }
  void TearDown() override {
    spool_.reset();
    fs::remove_all(dir_);
  }

  // Spools `n` batches of 3 flows each (packed with lz4 if `packed`, as the agent does by
  // default); expected_ gets each batch as it was before packing.
  void spool_batches(int n, bool packed = false) {
    for (int b = 0; b < n; ++b) {
      const std::uint64_t seq = spool_->last_seq() + 1;
      auto payload = citywatch::testing::flow_batch(seq, 3, 10, 1000 + seq);
      expected_.push_back(payload);
      std::vector<std::byte> spooled;
      if (packed) {
        ASSERT_TRUE(wire::pack(payload, spooled));
      }
      ASSERT_TRUE(spool_->append(seq, packed ? spooled : payload).is_ok());
    }
  }

  // Runs a forwarder whose i-th connection attempt gets pipes_[i] and scripts_[i] (the last
  // entry repeats), until the spool drains or `limit` passes.
  void run(std::size_t collectors = 1, std::chrono::seconds limit = std::chrono::seconds(20)) {
    ForwarderOptions fo;
    for (std::size_t i = 0; i < collectors; ++i)
      fo.collectors.push_back({"collector-" + std::to_string(i), 7443, ""});
    fo.hello.agent_id.assign("agent-a");
    fo.hello.segment.assign("segment-a");
    fo.hello.stream_id = spool_->stream_id();
    fo.initial_backoff = std::chrono::milliseconds(2);
    fo.max_backoff = std::chrono::milliseconds(20);
    fo.connect_timeout = std::chrono::milliseconds(200);
    fo.max_in_flight = 4;
    fo.group_commit = group_commit_;
    auto factory = [this]() -> std::unique_ptr<ClientStream> {
      const std::size_t i = attempts_++;
      PipeOptions po = pipes_.empty() ? PipeOptions{} : pipes_[std::min(i, pipes_.size() - 1)];
      po.on_connect = [this](const ConnectTarget& t) { targets_.push_back(t.host); };
      auto [client, server] = make_pipe(io_, po);
      const Script script = scripts_[std::min(i, scripts_.size() - 1)];
      seen_.emplace_back();
      std::shared_ptr<MemoryStream> end(std::move(server));
      asio::co_spawn(
          io_, [script, end, this, i]() -> awaitable<void> { co_await script(*end, seen_[i]); },
          asio::detached);
      return std::move(client);
    };
    forwarder_ = std::make_unique<Forwarder>(io_, factory, *spool_, fo);
    forwarder_->on_drained([this] {
      if (spool_->acked_seq() < spool_->last_seq()) return;
      drained_ = true;
      io_.stop();
    });
    forwarder_->on_collector_ahead([this](std::uint64_t seq) { ahead_ = seq; });
    forwarder_->on_taken([this] {
      if (on_taken_) on_taken_(++taken_);
    });
    forwarder_->start();
    forwarder_->notify();
    io_.run_for(limit);
    // Let every coroutine see its stream closed and end before anything is destroyed.
    forwarder_->stop();
    io_.restart();
    for (int i = 0; i < 100 && io_.poll(); ++i) {
    }
  }

  std::vector<std::uint64_t> all_batches() const {
    std::vector<std::uint64_t> all;
    for (const Seen& s : seen_) all.insert(all.end(), s.batches.begin(), s.batches.end());
    return all;
  }

  fs::path dir_;
  asio::io_context io_{1};
  std::unique_ptr<Spool> spool_;
  std::vector<std::vector<std::byte>> expected_;
  std::vector<PipeOptions> pipes_;
  std::vector<Script> scripts_;
  std::deque<Seen> seen_;  // a deque: scripts hold references into it while it grows
  std::vector<std::string> targets_;
  std::size_t attempts_ = 0;
  std::unique_ptr<Forwarder> forwarder_;
  bool drained_ = false;
  std::uint64_t ahead_ = 0;
  std::chrono::nanoseconds group_commit_ = std::chrono::milliseconds(20);
  std::function<void(std::size_t)> on_taken_;  // with the count of batches taken so far
  std::size_t taken_ = 0;
};

TEST_F(ForwarderTest, StreamsEveryBatchInOrderAByteAtATime) {
  spool_batches(12);
  PipeOptions bytewise;
  bytewise.max_write = 1;
  bytewise.max_read = 1;
  pipes_ = {bytewise};
  scripts_ = {collector(0)};
  run();
  ASSERT_TRUE(drained_);
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].agent, "agent-a");
  std::vector<std::uint64_t> want(12);
  std::iota(want.begin(), want.end(), 1);
  EXPECT_EQ(seen_[0].batches, want);
  ASSERT_EQ(seen_[0].payloads.size(), expected_.size());
  for (std::size_t i = 0; i < expected_.size(); ++i)
    EXPECT_EQ(seen_[0].payloads[i], expected_[i]) << "batch " << i + 1 << " changed on the way";
  EXPECT_EQ(spool_->acked_seq(), 12u);
  EXPECT_EQ(forwarder_->stats().batches_sent, 12u);
  EXPECT_EQ(forwarder_->stats().batches_reencoded, 0u);
  EXPECT_EQ(forwarder_->stats().acks, 12u);
  EXPECT_EQ(forwarder_->stats().sessions, 1u);
}

TEST_F(ForwarderTest, ACollectorThatDoesNotReadCompactBatchesGetsTheSameRecordsFixed) {
  // The spool holds compact batches; a collector older than them leaves kFlagCompact off its
  // HELLO_ACK, and each batch goes out re-encoded, with the same sequence and records.
  spool_batches(5);
  scripts_ = {collector(0, true, 0, /*reads_compact=*/false)};
  run();
  ASSERT_TRUE(drained_);
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].offered & wire::kFlagCompact, wire::kFlagCompact);
  ASSERT_EQ(seen_[0].payloads.size(), expected_.size());
  const ShortName agent("agent-a"), segment("segment-a");
  for (std::size_t i = 0; i < expected_.size(); ++i) {
    const auto& got = seen_[0].payloads[i];
    ASSERT_EQ(wire::batch_encoding(expected_[i]), wire::Encoding::kCompact);
    EXPECT_EQ(wire::batch_encoding(got), wire::Encoding::kFixed) << "batch " << i + 1;
    EXPECT_GT(got.size(), expected_[i].size());
    std::vector<Record> want, have;
    std::uint64_t want_seq = 0, have_seq = 0;
    std::uint32_t unknown = 0;
    ASSERT_EQ(wire::decode_batch(expected_[i], agent, segment, want_seq, want, unknown),
              wire::DecodeError::kOk);
    ASSERT_EQ(wire::decode_batch(got, agent, segment, have_seq, have, unknown),
              wire::DecodeError::kOk);
    EXPECT_EQ(have_seq, want_seq);
    ASSERT_EQ(have.size(), want.size());
    for (std::size_t r = 0; r < want.size(); ++r) {
      EXPECT_EQ(have[r].event_time_ns, want[r].event_time_ns);
      const auto& a = std::get<FlowRecord>(have[r].body);
      const auto& b = std::get<FlowRecord>(want[r].body);
      EXPECT_TRUE(a.src == b.src && a.dst == b.dst && a.src_port == b.src_port &&
                  a.dst_port == b.dst_port && a.protocol == b.protocol && a.packets == b.packets &&
                  a.bytes == b.bytes && a.start_ns == b.start_ns && a.end_ns == b.end_ns)
          << "batch " << i + 1 << " record " << r;
    }
  }
  EXPECT_EQ(forwarder_->stats().batches_reencoded, 5u);
  EXPECT_EQ(spool_->acked_seq(), 5u);
}

TEST_F(ForwarderTest, PackedBatchesGoOutAsTheyAreToACollectorThatReadsThem) {
  spool_batches(6, /*packed=*/true);
  scripts_ = {collector(0, true, 0, true, /*reads_packed=*/true)};
  run();
  ASSERT_TRUE(drained_);
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].offered & wire::kFlagLz4, wire::kFlagLz4);
  ASSERT_EQ(seen_[0].payloads.size(), expected_.size());
  std::size_t plain_bytes = 0;
  for (std::size_t i = 0; i < expected_.size(); ++i) {
    const auto& got = seen_[0].payloads[i];
    EXPECT_EQ(seen_[0].flags[i], wire::kFlagLz4) << "batch " << i + 1;
    ASSERT_TRUE(wire::is_packed(got)) << "batch " << i + 1;
    std::vector<std::byte> batch;
    ASSERT_EQ(wire::unpack(got, batch, wire::kMaxPayload), wire::DecompressError::kOk);
    EXPECT_EQ(batch, expected_[i]) << "batch " << i + 1 << " changed on the way";
    plain_bytes += expected_[i].size();
  }
  EXPECT_EQ(forwarder_->stats().batches_unpacked, 0u);
  // batch_bytes counts the batches as they were before packing (the agent's
  // citywatch_agent_batch_bytes_total), bytes_sent what went on the wire.
  EXPECT_EQ(forwarder_->stats().batch_bytes, plain_bytes);
  EXPECT_EQ(spool_->acked_seq(), 6u);
}

TEST_F(ForwarderTest, ACollectorThatDoesNotReadPackedBatchesGetsThemUnpacked) {
  // An older collector leaves kFlagLz4 off its HELLO_ACK: each packed batch goes out as the
  // batch it holds, byte for byte, with no lz4 flag; one that does not read compact batches
  // either gets them unpacked and then re-encoded fixed.
  spool_batches(4, /*packed=*/true);
  scripts_ = {collector(0, true, 2), collector(2, true, 0, /*reads_compact=*/false)};
  run();
  ASSERT_TRUE(drained_);
  ASSERT_EQ(seen_.size(), 2u);
  ASSERT_EQ(seen_[0].payloads.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(seen_[0].flags[i], 0) << "batch " << i + 1;
    EXPECT_EQ(seen_[0].payloads[i], expected_[i]) << "batch " << i + 1;
  }
  ASSERT_EQ(seen_[1].payloads.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& got = seen_[1].payloads[i];
    EXPECT_FALSE(wire::is_packed(got));
    EXPECT_EQ(wire::batch_encoding(got), wire::Encoding::kFixed) << "batch " << i + 3;
    std::vector<std::byte> fixed;
    ASSERT_EQ(wire::to_fixed(expected_[i + 2], fixed), wire::DecodeError::kOk);
    EXPECT_EQ(got, fixed) << "batch " << i + 3;
  }
  // Every batch was unpacked at least once (one in flight when the first collector hung up
  // goes twice).
  EXPECT_GE(forwarder_->stats().batches_unpacked, 4u);
  EXPECT_GE(forwarder_->stats().batches_reencoded, 2u);
  EXPECT_EQ(spool_->acked_seq(), 4u);
}

TEST_F(ForwarderTest, ABatchWaitingForTheGroupCommitGoesOutFromMemory) {
  // Batches 1-2 are covered by the first sync. Batches 3-5 are appended after it, while the
  // forwarder sends batch 2: batch 3, taken from the spool's memory, must wait out the group
  // commit interval in hand and go out as it is, not be read again from the segment file.
  spool_batches(2);
  group_commit_ = std::chrono::milliseconds(100);
  on_taken_ = [this](std::size_t taken) {
    if (taken != 2) return;
    spool_batches(3);
    forwarder_->notify();
  };
  scripts_ = {collector(0)};
  run();
  ASSERT_TRUE(drained_);
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].batches, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  ASSERT_EQ(seen_[0].payloads.size(), expected_.size());
  for (std::size_t i = 0; i < expected_.size(); ++i)
    EXPECT_EQ(seen_[0].payloads[i], expected_[i]) << "batch " << i + 1;
  EXPECT_EQ(taken_, 5u) << "each batch taken from the spool once";
  EXPECT_EQ(spool_->stats().batches_read_from_disk, 0u);
}

TEST_F(ForwarderTest, LostAcksResendOnlyWhatTheCollectorLacks) {
  spool_batches(10);
  // First session: the collector reads the first 4 batches (the agent's in-flight limit),
  // commits 3 of them (says so on the next HELLO_ACK) and hangs up before any ack reaches the
  // agent.
  scripts_ = {collector(0, /*ack=*/false, /*hang_up_after=*/4), collector(3)};
  run();
  ASSERT_TRUE(drained_);
  ASSERT_EQ(seen_.size(), 2u);
  EXPECT_EQ(seen_[0].batches, (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(seen_[1].batches, (std::vector<std::uint64_t>{4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(spool_->acked_seq(), 10u);
}

TEST_F(ForwarderTest, ARefusingCollectorMakesItFailOverToTheNext) {
  spool_batches(3);
  scripts_ = {[](MemoryStream& s, Seen&) -> awaitable<void> {
                wire::FrameHeader h;
                std::vector<std::byte> payload;
                co_await recv_frame(s, h, payload);  // HELLO
                payload.clear();
                wire::encode_error(wire::ErrorCode::kUnknownAgent, "agent not allowed", payload);
                co_await send_frame(s, wire::FrameType::kError, payload);
                s.close();
              },
              collector(0)};
  run(/*collectors=*/2);
  ASSERT_TRUE(drained_);
  EXPECT_EQ(forwarder_->stats().refusals, 1u);
  EXPECT_EQ(forwarder_->stats().connect_failures, 1u);
  ASSERT_EQ(targets_.size(), 2u);
  EXPECT_EQ(targets_[0], "collector-0");
  EXPECT_EQ(targets_[1], "collector-1");
  EXPECT_EQ(all_batches(), (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST_F(ForwarderTest, ABlackHoledCollectorIsGivenUpAtTheConnectDeadlineForTheNext) {
  spool_batches(2);
  PipeOptions hole;
  hole.black_hole = true;
  pipes_ = {hole, PipeOptions{}};
  scripts_ = {collector(0)};
  run(/*collectors=*/2);
  ASSERT_TRUE(drained_);
  EXPECT_EQ(forwarder_->stats().connect_failures, 1u);
  EXPECT_EQ(targets_, (std::vector<std::string>{"collector-0", "collector-1"}));
  EXPECT_EQ(all_batches(), (std::vector<std::uint64_t>{1, 2}));
}

TEST_F(ForwarderTest, ARefusedConnectionIsRetriedWithoutLosingAnything) {
  spool_batches(2);
  PipeOptions refuse;
  refuse.refuse = true;
  pipes_ = {refuse, refuse, refuse, PipeOptions{}};
  scripts_ = {collector(0)};
  run();
  ASSERT_TRUE(drained_);
  EXPECT_EQ(forwarder_->stats().connect_attempts, 4u);
  EXPECT_EQ(forwarder_->stats().connect_failures, 3u);
  EXPECT_EQ(all_batches(), (std::vector<std::uint64_t>{1, 2}));
}

// A frame from the collector that does not verify (a flipped bit in an ACK for everything,
// then an oversized header) ends the session; nothing is taken as acked.
TEST_F(ForwarderTest, AGarbledAckEndsTheSessionAndAcksNothing) {
  spool_batches(4);
  auto garbling = [](bool oversized) {
    return [oversized](MemoryStream& s, Seen& seen) -> awaitable<void> {
      wire::FrameHeader h;
      std::vector<std::byte> payload;
      co_await recv_frame(s, h, payload);
      co_await send_sequence(s, wire::FrameType::kHelloAck, 0);
      co_await recv_frame(s, h, payload);
      std::uint64_t seq = 0;
      wire::peek_batch_sequence(payload, seq);
      seen.batches.push_back(seq);
      std::vector<std::byte> frame, ack;
      wire::encode_sequence(4, ack);
      wire::encode_frame(wire::FrameType::kAck, ack, frame);
      if (oversized) {
        // Only a header, announcing a 1 MiB payload that never comes: no collector frame is
        // that large, so the agent hangs up at once. (Were it to wait for the payload, this
        // session would never end and the spool would not drain.)
        frame.resize(wire::kHeaderSize);
        const std::uint32_t big = 1u << 20;
        for (int i = 0; i < 4; ++i) frame[8 + i] = static_cast<std::byte>(big >> (8 * i));
      } else {
        frame.back() ^= std::byte{0x01};
      }
      boost::system::error_code ec;
      co_await write_all(s, frame, ec);
      // Wait for the agent to hang up.
      while (co_await recv_frame(s, h, payload)) {
      }
      s.close();
    };
  };
  scripts_ = {garbling(false), garbling(true), collector(0)};
  run();
  ASSERT_TRUE(drained_);
  ASSERT_EQ(seen_.size(), 3u);
  // Had either garbled frame been taken as ACK 4, the third session would start after 4.
  EXPECT_EQ(seen_[2].batches, (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(forwarder_->stats().acks, 4u);
}

TEST_F(ForwarderTest, ACollectorAheadOfTheSpoolMovesTheAgentAboveIt) {
  spool_batches(3);
  scripts_ = {collector(100)};
  run();
  ASSERT_TRUE(drained_);
  EXPECT_EQ(ahead_, 100u);
  EXPECT_EQ(spool_->acked_seq(), 3u);
  EXPECT_TRUE(all_batches().empty()) << "batches the collector already holds were sent";
}

}  // namespace
}  // namespace citywatch::agent
