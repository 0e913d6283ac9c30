// RecordBatch: records of every kind stored apart, read back in arrival order with their
// time, agent and segment; decoded from the wire like a vector of Records; a flow costing
// about what it weighs; and a header's record count unable to reserve more than the order.
#include "common/record_batch.h"

#include <gtest/gtest.h>

#include <iostream>

#include "common/wire_codec.h"

namespace citywatch {
namespace {

Record flow(std::int64_t t, std::uint64_t packets) {
  Record r;
  r.event_time_ns = t;
  r.agent.assign("agent-a");
  r.segment.assign("segment-a");
  FlowRecord f;
  f.packets = packets;
  f.bytes = packets * 100;
  f.protocol = 6;
  r.body = f;
  return r;
}

Record device(std::int64_t t, bool reachable) {
  Record r;
  r.event_time_ns = t;
  r.agent.assign("agent-a");
  r.segment.assign("segment-a");
  DeviceStatus d;
  d.target.assign("core-1");
  d.reachable = reachable;
  d.cause = reachable ? SnmpCause::kNone : SnmpCause::kTimeout;
  r.body = d;
  return r;
}

TEST(RecordBatch, KeepsArrivalOrderAcrossKinds) {
  const std::vector<Record> in = {flow(1, 10), device(2, false), flow(3, 30), device(4, true)};
  std::size_t batches = 0;
  for_each_batch(in, [&](const RecordBatch& b) {
    ++batches;
    ASSERT_EQ(b.size(), 4u);
    EXPECT_EQ(b.count<FlowRecord>(), 2u);
    EXPECT_EQ(b.count<DeviceStatus>(), 2u);
    std::int64_t t = 0;
    for (const RecordRef r : b) {
      EXPECT_EQ(r.event_time_ns, ++t);
      EXPECT_EQ(r.agent.view(), "agent-a");
      EXPECT_EQ(r.segment.view(), "segment-a");
    }
    EXPECT_EQ(b[0].get<FlowRecord>().packets, 10u);
    EXPECT_EQ(b[1].get_if<FlowRecord>(), nullptr);
    EXPECT_EQ(b[1].get<DeviceStatus>().cause, SnmpCause::kTimeout);
    EXPECT_EQ(b[2].get<FlowRecord>().packets, 30u);
    EXPECT_EQ(b[3].kind(), RecordKind::kDeviceStatus);
  });
  EXPECT_EQ(batches, 1u);
}

TEST(RecordBatch, SplitsRecordsOfAnotherSegmentIntoTheirOwnBatch) {
  std::vector<Record> in = {flow(1, 1), flow(2, 2), flow(3, 3)};
  in[2].segment.assign("segment-b");
  std::vector<std::string> got;
  for_each_batch(in, [&](const RecordBatch& b) {
    got.push_back(std::string(b.segment().view()) + ":" + std::to_string(b.size()));
  });
  EXPECT_EQ(got, (std::vector<std::string>{"segment-a:2", "segment-b:1"}));
}

TEST(RecordBatch, DecodesTheWireLikeAVectorOfRecords) {
  wire::BatchEncoder enc;
  enc.begin();
  const std::vector<Record> in = {flow(1, 10), device(2, false), flow(3, 30)};
  for (const Record& r : in) enc.add(r);
  const auto payload = enc.finish(9);
  std::uint64_t seq = 0;
  std::uint32_t unknown = 0;
  RecordBatch batch(ShortName("agent-a"), ShortName("segment-a"));
  ASSERT_EQ(wire::decode_batch(payload, seq, batch, unknown), wire::DecodeError::kOk);
  EXPECT_EQ(seq, 9u);
  std::vector<Record> records;
  ASSERT_EQ(wire::decode_batch(payload, ShortName("agent-a"), ShortName("segment-a"), seq, records,
                               unknown),
            wire::DecodeError::kOk);
  ASSERT_EQ(batch.size(), records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(batch[i].kind(), records[i].kind());
    EXPECT_EQ(batch[i].event_time_ns, records[i].event_time_ns);
  }
  EXPECT_EQ(batch[2].get<FlowRecord>().bytes, 3000u);
  EXPECT_EQ(batch[1].get<DeviceStatus>().target.view(), "core-1");

  // A payload cut short leaves the batch as it was.
  const auto before = batch.size();
  EXPECT_NE(wire::decode_batch(std::span(payload).first(payload.size() - 5), seq, batch, unknown),
            wire::DecodeError::kOk);
  EXPECT_EQ(batch.size(), before);
  EXPECT_EQ(batch.count<FlowRecord>(), 2u);
  EXPECT_EQ(batch.count<DeviceStatus>(), 1u);
  EXPECT_EQ(batch[1].get<DeviceStatus>().target.view(), "core-1");
  EXPECT_EQ(batch[2].get<FlowRecord>().bytes, 3000u);
}

TEST(RecordBatch, AFlowCostsAboutWhatItWeighs) {
  RecordBatch batch(ShortName("agent-a"), ShortName("segment-a"));
  constexpr std::size_t kFlows = 10'000;
  for (std::size_t i = 0; i < kFlows; ++i) batch.add(flow(static_cast<std::int64_t>(i), 1));
  const double per_flow = static_cast<double>(batch.capacity_bytes()) / kFlows;
  // Body + time + its place in the order, with vector growth slack: far from a Record's size.
  EXPECT_LE(per_flow, 2.0 * (sizeof(FlowRecord) + 16));
  EXPECT_LT(per_flow, sizeof(Record) / 2.0);
  std::cout << "per flow: " << per_flow << " bytes in a RecordBatch, " << sizeof(Record)
            << " as a Record\n";
}

TEST(RecordBatch, AClaimedCountReservesOnlyTheOrder) {
  // 100,000 records of an unknown kind, 3 bytes each: they decode (and are counted as
  // unknown) without reserving a body for any of them.
  std::vector<std::byte> payload;
  auto put = [&](std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) payload.push_back(static_cast<std::byte>(v >> (8 * i)));
  };
  constexpr std::uint32_t kCount = 100'000;
  put(1, 8);
  put(kCount, 4);
  for (std::uint32_t i = 0; i < kCount; ++i) {
    put(200, 1);  // kind
    put(0, 2);    // length
  }
  RecordBatch batch(ShortName("agent-a"), ShortName("segment-a"));
  std::uint64_t seq = 0;
  std::uint32_t unknown = 0;
  ASSERT_EQ(wire::decode_batch(payload, seq, batch, unknown), wire::DecodeError::kOk);
  EXPECT_EQ(unknown, kCount);
  EXPECT_EQ(batch.size(), 0u);
  EXPECT_LE(batch.capacity_bytes(), kCount * 8u + 64u);
}

}  // namespace
}  // namespace citywatch
