// libFuzzer target: the agent's packet decoder, flow meter, packet-event extractor (ARP,
// DNS with compression pointers, ICMP quotes, TCP) and DNS decoder on hostile frames.
// The first byte picks the link type; the rest is the frame as libpcap would hand it over.
// The frame is also fed to decode_dns() whole, so DNS parsing sees arbitrary messages.
#include <pcap/dlt.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "agent/capture/dns_decoder.h"
#include "agent/capture/flow_meter.h"
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
  static std::int64_t now = 0;
  if (size < 1) return 0;
  const int linktype = kLinktypes[data[0] % (sizeof kLinktypes / sizeof kLinktypes[0])];
  DecodedPacket p;
  const auto frame =
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  const DecodeResult r = decode_packet(linktype, frame, p);
  now += 1'000'000;
  events.add(r, p, frame, now);
  if (data[0] & 0x80) events.advance(now);  // a live source's tick
  if (r == DecodeResult::kOk) {
    meter.add(p, now);
    meter.advance(now);
  }
  DnsMessage dns;
  (void)decode_dns(frame, dns);
  return 0;
}
