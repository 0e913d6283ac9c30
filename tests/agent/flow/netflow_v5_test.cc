// NetFlow v5: header fields, sysUptime-relative times (including a wrap), the header's
// sampling interval and a configured override, and every malformed shape dropped by reason.
#include <gtest/gtest.h>

#include "agent/flow/flow_decoder.h"
#include "agent/flow/netflow_v5.h"
#include "tests/agent/flow/test_sink.h"

namespace citywatch::agent::flow {
namespace {

Bytes v5(std::uint16_t count, std::uint32_t uptime, std::uint16_t sampling, std::uint32_t first,
         std::uint32_t last) {
  Bytes b;
  b.u16(5).u16(count).u32(uptime).u32(1700000000).u32(500'000'000).u32(1).u8(0).u8(7).u16(sampling);
  for (int i = 0; i < count; ++i) {
    b.ip4({10, 0, 0, 1}).ip4({10, 0, 0, 2}).ip4({0, 0, 0, 0}).u16(3).u16(4);
    b.u32(10).u32(1500).u32(first).u32(last).u16(40000).u16(443).u8(0).u8(0x1b).u8(6).u8(0);
    b.u16(0).u16(0).u8(24).u8(24).u16(0);
  }
  return b;
}

TEST(NetflowV5, DecodesRecordsAndTimes) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  const Bytes b = v5(2, 100'000, 0, 90'000, 99'000);
  EXPECT_EQ(d.decode(b.data, ip4(192, 0, 2, 1), 0), FlowError::kOk);
  const auto flows = sink.flows();
  ASSERT_EQ(flows.size(), 2u);
  const FlowRecord& f = flows[0];
  EXPECT_EQ(f.source, FlowSource::kNetflowV5);
  EXPECT_EQ(f.exporter, ip4(192, 0, 2, 1));
  EXPECT_EQ(f.src, ip4(10, 0, 0, 1));
  EXPECT_EQ(f.dst, ip4(10, 0, 0, 2));
  EXPECT_EQ(f.packets, 10u);
  EXPECT_EQ(f.bytes, 1500u);
  EXPECT_EQ(f.src_port, 40000);
  EXPECT_EQ(f.dst_port, 443);
  EXPECT_EQ(f.protocol, 6);
  EXPECT_EQ(f.tcp_flags, 0x1b);
  EXPECT_EQ(f.input_if, 3u);
  EXPECT_EQ(f.output_if, 4u);
  EXPECT_EQ(f.observation_domain, 7u);
  EXPECT_EQ(f.sampling_rate, 1u);
  const std::int64_t export_ns = 1700000000'500000000;
  EXPECT_EQ(f.start_ns, export_ns - 10'000'000'000);
  EXPECT_EQ(f.end_ns, export_ns - 1'000'000'000);
}

TEST(NetflowV5, SysUptimeWrap) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  // The exporter's uptime wrapped past 2^32 ms between the flow's start and the export.
  const Bytes b = v5(1, 5'000, 0, 0xffffffffu - 4'999, 1'000);
  ASSERT_EQ(d.decode(b.data, ip4(192, 0, 2, 1), 0), FlowError::kOk);
  const FlowRecord f = sink.flows().at(0);
  const std::int64_t export_ns = 1700000000'500000000;
  EXPECT_EQ(f.start_ns, export_ns - 10'000'000'000);
  EXPECT_EQ(f.end_ns, export_ns - 4'000'000'000);
}

TEST(NetflowV5, HeaderSamplingAndOverride) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  // Mode 01 (deterministic) in the top bits, interval 100.
  const Bytes b = v5(1, 100'000, 0x4000 | 100, 90'000, 99'000);
  ASSERT_EQ(d.decode(b.data, ip4(192, 0, 2, 1), 0), FlowError::kOk);
  EXPECT_EQ(sink.flows().at(0).sampling_rate, 100u);
  EXPECT_EQ(sink.flows().at(0).packets, 1000u);
  EXPECT_EQ(sink.flows().at(0).bytes, 150000u);
  d.sampling().set_override(ip4(192, 0, 2, 1), 7);
  ASSERT_EQ(d.decode(b.data, ip4(192, 0, 2, 1), 0), FlowError::kOk);
  EXPECT_EQ(sink.flows().at(1).sampling_rate, 7u);
  EXPECT_EQ(sink.flows().at(1).packets, 70u);
}

TEST(NetflowV5, MalformedDroppedByReason) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  const IpAddr e = ip4(192, 0, 2, 9);
  Bytes b = v5(2, 1, 0, 1, 1);
  auto cut = b.data;
  cut.resize(kV5HeaderSize - 1);
  EXPECT_EQ(d.decode(cut, e, 0), FlowError::kTruncatedHeader);
  cut = b.data;
  cut.resize(kV5HeaderSize + kV5RecordSize);  // says 2, holds 1
  EXPECT_EQ(d.decode(cut, e, 0), FlowError::kBadRecordCount);
  Bytes zero = v5(0, 1, 0, 1, 1);
  EXPECT_EQ(d.decode(zero.data, e, 0), FlowError::kBadRecordCount);
  Bytes many = v5(31, 1, 0, 1, 1);
  EXPECT_EQ(d.decode(many.data, e, 0), FlowError::kBadRecordCount);
  EXPECT_TRUE(sink.records.empty());
  const ExporterStats t = d.totals();
  EXPECT_EQ(t.errors[static_cast<std::size_t>(FlowError::kTruncatedHeader)], 1u);
  EXPECT_EQ(t.errors[static_cast<std::size_t>(FlowError::kBadRecordCount)], 3u);
  EXPECT_EQ(t.datagrams, 4u);
}

TEST(NetflowV5, FormatNotEnabledOnListener) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  const Bytes b = v5(1, 1, 0, 1, 1);
  EXPECT_EQ(d.decode(b.data, ip4(192, 0, 2, 1), 0, static_cast<std::uint8_t>(FlowFormat::kIpfix)),
            FlowError::kFormatNotEnabled);
  EXPECT_TRUE(sink.records.empty());
}

}  // namespace
}  // namespace citywatch::agent::flow
