// MeterPipeline (agent/capture/meter_frame.h) against handling each frame the moment it is
// read, on the real segment-a capture (HTTP, DNS, ARP, ICMP, an nmap scan, an hping3 flood):
// the flow records and the packet events must come out identical, in the same order, however
// the reads are sliced, and the pipeline must not read a frame's bytes after frame() returned
// (each frame is given in a scratch buffer that is overwritten right after the call).
#include <gtest/gtest.h>
#include <pcap/dlt.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/capture/flow_meter.h"
#include "agent/capture/meter_frame.h"
#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_events.h"
#include "agent/capture/packet_source.h"
#include "tests/agent/capture/test_frames.h"

namespace citywatch::agent {
namespace {

using test_frames::arp_frame;
using test_frames::Bytes;
using test_frames::udp_frame;

const std::string kCapture =
    std::string(CITYWATCH_SHARED_DIR) + "/testdata/captures/segment-a.pcap";

struct Output {
  std::vector<FlowRecord> flows;
  std::vector<std::pair<PacketEvent, std::int64_t>> events;
  DecodeCounters counters;
};

std::unique_ptr<PacketSource> open_capture() {
  CaptureOptions opts;
  opts.file = kCapture;
  Status err;
  auto src = PacketSource::open(opts, err);
  EXPECT_NE(src, nullptr) << err.message();
  return src;
}

// Smaller tables than the defaults, so the run also evicts flows and budget keys.
FlowMeterConfig meter_config() {
  FlowMeterConfig c;
  c.idle_timeout_ns = 15'000'000'000;
  c.active_timeout_ns = 2'000'000'000;
  c.max_flows = 512;
  return c;
}
PacketEventConfig event_config() {
  PacketEventConfig c;
  c.key_slots = 256;
  c.probe_slots = 64;
  return c;
}

// The reference: every frame decoded and handled at once, as before the pipeline.
Output direct() {
  Output out;
  FlowMeter meter(meter_config(), [&](const FlowRecord& r) { out.flows.push_back(r); });
  PacketEventExtractor events(event_config(), [&](const PacketEvent& e, std::int64_t ts) {
    out.events.emplace_back(e, ts);
  });
  auto src = open_capture();
  if (!src) return out;
  DecodedPacket pkt;
  std::int64_t last_advance = 0;
  Status err;
  const int linktype = src->linktype();
  while (src->dispatch(
             4096,
             [&](std::int64_t ts, std::span<const std::byte> frame, std::uint32_t) {
               const DecodeResult r = decode_packet(linktype, frame, pkt);
               out.counters.count(r);
               events.add(r, pkt, frame, ts);
               if (r == DecodeResult::kOk) meter.add(pkt, ts);
               // Every frame moves the packet clock, IP or not.
               if (ts - last_advance >= 1'000'000'000) {
                 last_advance = ts;
                 meter.advance(ts);
               }
             },
             err) == PacketSource::ReadResult::kPackets) {
  }
  meter.flush();
  events.flush();
  return out;
}

// Through the pipeline, `slice` frames per read, each frame in a buffer scribbled over after.
Output pipelined(int slice) {
  Output out;
  FlowMeter meter(meter_config(), [&](const FlowRecord& r) { out.flows.push_back(r); });
  PacketEventExtractor events(event_config(), [&](const PacketEvent& e, std::int64_t ts) {
    out.events.emplace_back(e, ts);
  });
  MeterPipeline pipeline(meter, events, /*packet_clock=*/true);
  auto src = open_capture();
  if (!src) return out;
  std::vector<std::byte> scratch(65536);
  Status err;
  const int linktype = src->linktype();
  while (src->dispatch(
             slice,
             [&](std::int64_t ts, std::span<const std::byte> frame, std::uint32_t) {
               std::memcpy(scratch.data(), frame.data(), frame.size());
               pipeline.frame(linktype, ts, {scratch.data(), frame.size()}, out.counters);
               std::fill(scratch.begin(), scratch.end(), std::byte{0xaa});
             },
             err) == PacketSource::ReadResult::kPackets) {
    pipeline.drain();
  }
  pipeline.drain();
  meter.flush();
  events.flush();
  return out;
}

bool same_flow(const FlowRecord& a, const FlowRecord& b) {
  return a.start_ns == b.start_ns && a.end_ns == b.end_ns && a.src == b.src && a.dst == b.dst &&
         a.src_port == b.src_port && a.dst_port == b.dst_port && a.protocol == b.protocol &&
         a.packets == b.packets && a.bytes == b.bytes && a.tcp_flags == b.tcp_flags &&
         a.vlan == b.vlan;
}

bool same_event(const PacketEvent& a, const PacketEvent& b) {
  return a.kind == b.kind && a.src == b.src && a.dst == b.dst && a.src_port == b.src_port &&
         a.dst_port == b.dst_port && a.protocol == b.protocol && a.vlan == b.vlan &&
         a.mac == b.mac && a.flags == b.flags && a.count == b.count &&
         a.name.view() == b.name.view() && a.dns_rcode == b.dns_rcode &&
         a.dns_qtype == b.dns_qtype && a.icmp_code == b.icmp_code && a.prev_mac == b.prev_mac;
}

class MeterPipelineTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kCapture))
        << "shared test capture not found at " << kCapture
        << " (the shared test data lives beside the repository)";
  }
};

TEST_P(MeterPipelineTest, SameFlowsAndEventsInTheSameOrderAsFrameByFrame) {
  const Output want = direct();
  const Output got = pipelined(GetParam());
  ASSERT_GT(want.flows.size(), 1000u);
  ASSERT_GT(want.events.size(), 500u);
  EXPECT_EQ(got.counters.by_result, want.counters.by_result);
  ASSERT_EQ(got.flows.size(), want.flows.size());
  for (std::size_t i = 0; i < want.flows.size(); ++i)
    ASSERT_TRUE(same_flow(got.flows[i], want.flows[i])) << "flow " << i;
  ASSERT_EQ(got.events.size(), want.events.size());
  for (std::size_t i = 0; i < want.events.size(); ++i) {
    ASSERT_TRUE(same_event(got.events[i].first, want.events[i].first))
        << "event " << i << " (" << to_string(want.events[i].first.kind) << ")";
    ASSERT_EQ(got.events[i].second, want.events[i].second) << "event " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Slices, MeterPipelineTest, ::testing::Values(1, 3, 4096));

// A replay's clock is its frames', not only its IP packets': a flow goes idle during a spell of
// ARP frames and comes out then (as live traffic's would on the wall clock), not with the next
// IP packet or at the end of the file.
TEST(MeterPipeline, NonIpFramesMoveThePacketClock) {
  std::vector<FlowRecord> flows;
  FlowMeter meter(FlowMeterConfig{},  // idle 15 s, active 60 s
                  [&](const FlowRecord& r) { flows.push_back(r); });
  PacketEventExtractor events(event_config(), [](const PacketEvent&, std::int64_t) {});
  MeterPipeline pipeline(meter, events, /*packet_clock=*/true);
  DecodeCounters counters;
  const Bytes udp = udp_frame(5000, 6000);                                 // a flow without FIN
  const Bytes arp = arp_frame(1, 0x0a, {10, 99, 1, 10}, {10, 99, 1, 20});  // who-has .20
  constexpr std::int64_t kS = 1'000'000'000;
  const std::int64_t t0 = 1'700'000'000 * kS;
  ASSERT_EQ(pipeline.frame(DLT_EN10MB, t0, udp.b, counters), DecodeResult::kOk);
  for (int s = 1; s <= 14; ++s) pipeline.frame(DLT_EN10MB, t0 + s * kS, arp.b, counters);
  EXPECT_TRUE(flows.empty()) << "idle for 14 s of a 15 s timeout";
  pipeline.frame(DLT_EN10MB, t0 + 15 * kS, arp.b, counters);
  ASSERT_EQ(flows.size(), 1u) << "the ARP frame 15 s on expires the flow";
  EXPECT_EQ(flows[0].packets, 1u);
  EXPECT_EQ(flows[0].dst_port, 6000);
}

}  // namespace
}  // namespace citywatch::agent
