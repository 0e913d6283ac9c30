// MeterPipeline: captured frames through the agent's capture path (docs/packet-capture.md),
// the same for live sources, `citywatch-agent -r`, `citywatch-agent decode` and the offline
// benchmark: each frame is decoded and counted, given to the packet-event extractor (ARP and
// other non-IP frames matter to it) and, if it is IP, to the flow meter.
//
// The meter's table and the extractor's connection-attempt index are far bigger than the CPU
// caches, so a packet handled the moment it is decoded would wait for memory several times.
// The pipeline holds the last kDepth decoded packets, their table lines prefetched (the
// meter's slot and the extractor's lines when decoded, the meter's flow entry half way along),
// and hands each to the extractor and the meter once kDepth newer ones arrived, or at drain().
// Every packet is still handled in capture order: a frame whose bytes the extractor reads
// beyond the decoded fields (DNS, ARP, ICMP quotes), or that is not a good IP packet, drains
// the pipeline and is handled at once, while its bytes are still there. Callers drain() before they
// expire, flush or read the meter and extractor, and at the end of each read (so nothing waits for
// the next frame).
//
// A capture file's clock is its packets': with `packet_clock` the pipeline expires the meter's
// flows once a second of that clock, as each frame is handled (ARP and other non-IP frames
// too, so a spell of them moves the clock as it would live), so a replay yields the flows
// when live traffic would; live sources leave it off (the runtime's tick expires on the wall
// clock).
//
// Thread-safety: as the meter and extractor it is given (one thread).
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "agent/capture/flow_meter.h"
#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_events.h"

namespace citywatch::agent {

class MeterPipeline {
 public:
  static constexpr unsigned kDepth = 8;  // about 8 decodes ahead: enough for a DRAM miss

  MeterPipeline(FlowMeter& meter, PacketEventExtractor& events, bool packet_clock)
      : meter_(meter), events_(events), clock_(packet_clock) {}
  MeterPipeline(const MeterPipeline&) = delete;
  MeterPipeline& operator=(const MeterPipeline&) = delete;

  // One captured frame; its bytes need to stay valid only during the call.
  DecodeResult frame(int linktype, std::int64_t ts_ns, std::span<const std::byte> frame,
                     DecodeCounters& counters) {
    if (count_ == kDepth) handle_oldest();
    Item& it = ring_[(head_ + count_) % kDepth];
    const DecodeResult r = decode_packet(linktype, frame, it.pkt);
    counters.count(r);
    if (r != DecodeResult::kOk || events_.needs_frame(r, it.pkt)) {
      drain();
      events_.add(r, it.pkt, frame, ts_ns);
      if (r == DecodeResult::kOk) meter_.add(it.pkt, ts_ns);
      tick(ts_ns);
      return r;
    }
    it.ts = ts_ns;
    const AddrHashes h = addr_hashes(it.pkt.src, it.pkt.dst);  // hashed once for both
    meter_.prepare(it.pkt, h, it.x);
    events_.prefetch(it.pkt, h, it.keys);
    ++count_;
    if (count_ > kDepth / 2)
      meter_.prefetch_entry(ring_[(head_ + count_ - 1 - kDepth / 2) % kDepth].x);
    return r;
  }

  // Handles every packet still held.
  void drain() {
    while (count_ != 0) handle_oldest();
  }

 private:
  struct Item {
    DecodedPacket pkt;
    FlowMeter::Prepared x;
    PacketEventExtractor::TcpKeys keys;  // hashed once, for the prefetch and for add()
    std::int64_t ts;
  };
  void handle_oldest() {
    Item& it = ring_[head_];
    events_.add(DecodeResult::kOk, it.pkt, {}, it.ts, &it.keys);
    meter_.add(it.x, it.ts);
    tick(it.ts);
    head_ = (head_ + 1) % kDepth;
    --count_;
  }
  void tick(std::int64_t ts) {
    if (clock_ && ts - last_advance_ns_ >= 1'000'000'000) {
      last_advance_ns_ = ts;
      meter_.advance(ts);
    }
  }

  FlowMeter& meter_;
  PacketEventExtractor& events_;
  const bool clock_;
  std::int64_t last_advance_ns_ = 0;
  std::array<Item, kDepth> ring_{};
  unsigned head_ = 0;
  unsigned count_ = 0;
};

}  // namespace citywatch::agent
