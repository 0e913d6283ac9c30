// libFuzzer target: the agent's packet decoder, flow meter, packet-event extractor (ARP,
// DNS with compression pointers, ICMP quotes, TCP) and DNS decoder on hostile frames, through
// the capture loop's MeterPipeline (which holds packets back: a frame's bytes are freed by
// libFuzzer after each input, so ASan catches the pipeline reading one late).
// The first byte picks the link type (low bits), drains the pipeline (0x40) and ticks the
// extractor as a live source's timer does (0x80); the rest is the frame as libpcap would hand
// it over.
// The frame is also fed to decode_dns() whole, so DNS parsing sees arbitrary messages.
#include <pcap/dlt.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "agent/capture/dns_decoder.h"
#include "agent/capture/flow_meter.h"
#include "agent/capture/meter_frame.h"
#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_events.h"

using namespace citywatch;
using namespace citywatch::agent;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static constexpr int kLinktypes[] = {DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW,
                                       DLT_NULL,   DLT_LOOP,      DLT_IPV4,       DLT_IPV6};
  static FlowMeter meter(FlowMeterConfig{1'000'000'000, 5'000'000'000, 1024},
                         [](const FlowRecord&) {});
  static PacketEventExtractor events(
      [] {
        PacketEventConfig c;
        c.key_slots = 1024;
        c.arp_table = 64;  // small tables: resets get exercised too
        c.mac_table = 64;
        c.probe_slots = 64;  // the probe ring fills and pushes attempts out
        c.probe_timeout_ns = 50'000'000;
        c.arp_reply_flood = 2;  // two replies a second from one MAC are a flood
        return c;
      }(),
      [](const PacketEvent&, std::int64_t) {});
  static MeterPipeline pipeline(meter, events, /*packet_clock=*/true);
  static DecodeCounters counters;
  static std::int64_t now = 0;
  if (size < 1) return 0;
  const int linktype = kLinktypes[data[0] % (sizeof kLinktypes / sizeof kLinktypes[0])];
  const auto frame =
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  now += 1'000'000;
  pipeline.frame(linktype, now, frame, counters);
  if (data[0] & 0x40) pipeline.drain();  // the end of a read
  if (data[0] & 0x80) {                  // a live source's tick
    pipeline.drain();
    events.advance(now);
    meter.advance(now);
  }
  DnsMessage dns;
  (void)decode_dns(frame, dns);
  return 0;
}
