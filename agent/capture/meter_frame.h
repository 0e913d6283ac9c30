// meter_frame: one captured frame through the agent's capture path (docs/packet-capture.md),
// the same for live sources, `citywatch-agent -r`, `citywatch-agent decode` and the offline
// benchmark: decoded and counted, given to the packet-event extractor (ARP and other non-IP
// frames matter to it) and, if it is IP, to the flow meter. A capture file's clock is its
// packets': `file_clock` expires the meter's flows once a second of that clock, so a replay
// yields the flows live traffic would; live sources pass null (the runtime's tick expires).
//
// Thread-safety: as the meter and extractor it is given (one thread).
#pragma once

#include <cstdint>
#include <span>

#include "agent/capture/flow_meter.h"
#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_events.h"

namespace citywatch::agent {

struct FileClock {
  std::int64_t last_advance_ns = 0;
};

inline DecodeResult meter_frame(int linktype, std::int64_t ts_ns, std::span<const std::byte> frame,
                                DecodedPacket& pkt, DecodeCounters& counters,
                                PacketEventExtractor& events, FlowMeter& meter,
                                FileClock* file_clock) {
  const DecodeResult r = decode_packet(linktype, frame, pkt);
  counters.count(r);
  events.add(r, pkt, frame, ts_ns);
  if (r != DecodeResult::kOk) return r;
  meter.add(pkt, ts_ns);
  if (file_clock && ts_ns - file_clock->last_advance_ns >= 1'000'000'000) {
    file_clock->last_advance_ns = ts_ns;
    meter.advance(ts_ns);
  }
  return r;
}

}  // namespace citywatch::agent
