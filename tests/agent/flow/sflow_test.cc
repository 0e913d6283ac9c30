// sFlow v5: a flow sample's raw Ethernet header decoded into a flow record scaled by the
// sampling rate, expanded samples, discards, counter samples into interface samples, and
// malformed datagrams dropped by reason.
#include <gtest/gtest.h>

#include "agent/flow/flow_decoder.h"
#include "tests/agent/flow/test_sink.h"

namespace citywatch::agent::flow {
namespace {

// Ethernet + IPv4 (total length 1000) + TCP SYN 1234 -> 80, cut at 54 bytes.
std::vector<std::byte> frame() {
  Bytes b;
  b.u32(0x02000000).u16(0x0001).u32(0x02000000).u16(0x0002).u16(0x0800);
  b.u8(0x45).u8(0).u16(1000).u16(1).u16(0).u8(64).u8(6).u16(0);
  b.ip4({10, 2, 0, 1}).ip4({10, 2, 0, 2});
  b.u16(1234).u16(80).u32(1).u32(0).u8(0x50).u8(0x02).u16(1024).u16(0).u16(0);
  return b.data;
}

Bytes header(std::uint32_t samples) {
  Bytes b;
  b.u32(5).u32(1).ip4({192, 0, 2, 50}).u32(3).u32(1).u32(1000).u32(samples);
  return b;
}

void raw_header_record(Bytes& b) {
  const auto f = frame();
  b.u32(1).u32(16 + f.size() + 2);  // padded to 4
  b.u32(1).u32(1018).u32(4).u32(f.size()).raw(f).u16(0);
}

TEST(Sflow, FlowSampleWithRawHeader) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  Bytes b = header(1);
  const std::size_t at = b.size();
  b.u32(1).u32(0);  // compact flow sample, length patched below
  b.u32(1).u32(5).u32(256).u32(1000).u32(0).u32(5).u32(7).u32(2);
  raw_header_record(b);
  b.u32(1001).u32(16).u32(42).u32(0).u32(43).u32(0);  // extended switch: VLAN 42
  b.patch32(at + 4, b.size() - at - 8);
  ASSERT_EQ(d.decode(b.data, ip4(127, 0, 0, 1), 5 * 1'000'000'000ll), FlowError::kOk);
  const auto flows = sink.flows();
  ASSERT_EQ(flows.size(), 1u);
  const FlowRecord& f = flows[0];
  EXPECT_EQ(f.source, FlowSource::kSflow);
  EXPECT_EQ(f.exporter, ip4(192, 0, 2, 50));  // the agent address, not the UDP source
  EXPECT_EQ(f.observation_domain, 3u);
  EXPECT_EQ(f.src, ip4(10, 2, 0, 1));
  EXPECT_EQ(f.dst, ip4(10, 2, 0, 2));
  EXPECT_EQ(f.protocol, 6);
  EXPECT_EQ(f.src_port, 1234);
  EXPECT_EQ(f.dst_port, 80);
  EXPECT_EQ(f.tcp_flags, 0x02);
  EXPECT_EQ(f.vlan, 42);
  EXPECT_EQ(f.input_if, 5u);
  EXPECT_EQ(f.output_if, 7u);
  EXPECT_EQ(f.sampling_rate, 256u);
  EXPECT_EQ(f.packets, 256u);
  EXPECT_EQ(f.bytes, 1018u * 256);
  EXPECT_EQ(f.end_ns, 5 * 1'000'000'000ll);
}

TEST(Sflow, ExpandedSampleAndDiscard) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  Bytes b = header(1);
  const std::size_t at = b.size();
  b.u32(3).u32(0);
  // seq, source type, source index, rate, pool, drops, input (fmt 0, 9), output (fmt 1:
  // discarded, reason 258), one record.
  b.u32(1).u32(0).u32(9).u32(10).u32(0).u32(0).u32(0).u32(9).u32(1).u32(258).u32(1);
  raw_header_record(b);
  b.patch32(at + 4, b.size() - at - 8);
  ASSERT_EQ(d.decode(b.data, ip4(127, 0, 0, 1), 0), FlowError::kOk);
  const FlowRecord f = sink.flows().at(0);
  EXPECT_EQ(f.input_if, 9u);
  EXPECT_EQ(f.output_if, 0u);
  EXPECT_EQ(f.sampling_rate, 10u);
}

TEST(Sflow, CounterSampleBecomesInterfaceSample) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  Bytes b = header(1);
  b.u32(2).u32(4 * 3 + 8 + 88);
  b.u32(1).u32(4).u32(1);
  b.u32(1).u32(88);
  b.u32(4).u32(6).u64(1'000'000'000).u32(1).u32(3);  // ifIndex 4, 1 Gb/s, admin+oper up
  b.u64(5000).u32(10).u32(2).u32(1).u32(3).u32(4).u32(0);
  b.u64(7000).u32(20).u32(0).u32(0).u32(5).u32(6).u32(0);
  ASSERT_EQ(d.decode(b.data, ip4(127, 0, 0, 1), 77), FlowError::kOk);
  ASSERT_EQ(sink.records.size(), 1u);
  const auto& s = std::get<InterfaceSample>(sink.records[0].body);
  EXPECT_EQ(s.device, ip4(192, 0, 2, 50));
  EXPECT_EQ(s.if_index, 4u);
  EXPECT_EQ(s.speed_bps, 1'000'000'000u);
  EXPECT_EQ(s.admin_status, 1);  // ifStatus bits 0 and 1 set
  EXPECT_EQ(s.oper_status, 1);
  EXPECT_EQ(s.in_octets, 5000u);
  EXPECT_EQ(s.in_packets, 13u);
  EXPECT_EQ(s.in_discards, 3u);
  EXPECT_EQ(s.in_errors, 4u);
  EXPECT_EQ(s.out_octets, 7000u);
  EXPECT_EQ(s.out_packets, 20u);
  EXPECT_EQ(s.out_discards, 5u);
  EXPECT_EQ(s.out_errors, 6u);
  EXPECT_EQ(sink.records[0].event_time_ns, 77);
}

TEST(Sflow, MalformedDroppedByReason) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  Bytes bad_addr;
  bad_addr.u32(5).u32(9).u32(0).u32(0).u32(0).u32(0).u32(0);
  EXPECT_EQ(d.decode(bad_addr.data, ip4(127, 0, 0, 1), 0), FlowError::kSflowBadAddress);
  Bytes many = header(1000000);
  EXPECT_EQ(d.decode(many.data, ip4(127, 0, 0, 1), 0), FlowError::kSflowTooManySamples);
  Bytes cut = header(1);
  cut.u32(1).u32(4000).u32(0);
  EXPECT_EQ(d.decode(cut.data, ip4(127, 0, 0, 1), 0), FlowError::kSflowTruncatedSample);
  Bytes short_hdr;
  short_hdr.u32(5).u32(1);
  EXPECT_EQ(d.decode(short_hdr.data, ip4(127, 0, 0, 1), 0), FlowError::kTruncatedHeader);
  EXPECT_TRUE(sink.records.empty());
}

}  // namespace
}  // namespace citywatch::agent::flow
