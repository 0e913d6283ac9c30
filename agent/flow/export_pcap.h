// Reading flow exports back from a packet capture: each frame is decoded down to UDP with
// the agent's packet decoder (agent/capture), and the UDP payload is handed to a
// FlowDecoder as if it had arrived on a listener, stamped with the frame's capture time.
// This is what `citywatch-agent decode`, the conformance tests and the benchmarks run.
//
// With a port, every datagram to that port is decoded (and what fails is counted as a
// decode error). Without one, a datagram is taken as an export when its first bytes carry
// a version the decoder knows (16-bit 5, 9 or 10, or sFlow's 32-bit 5); other UDP traffic
// in the capture (DNS, VXLAN, ...) is skipped, not counted as an error.
//
// Thread-safety: none; the caller's thread, the caller's decoder.
#pragma once

#include <cstdint>
#include <string>

#include "agent/flow/flow_decoder.h"
#include "common/status.h"

namespace citywatch::agent::flow {

struct ExportPcapStats {
  std::uint64_t frames = 0;
  std::uint64_t datagrams = 0;   // handed to the decoder
  std::uint64_t not_udp = 0;     // frames that are not (first-fragment) UDP over IP
  std::uint64_t not_export = 0;  // UDP to another port, or no known version (no --port)
  std::uint64_t fragments = 0;   // IP fragments: not reassembled, skipped
  std::uint64_t failed = 0;      // datagrams the decoder dropped (by reason in its stats)
};

// Reads one pcap/pcapng file. port 0: detect exports by their version field.
Status decode_export_pcap(const std::string& file, std::uint16_t port, FlowDecoder& decoder,
                          ExportPcapStats& stats);

// True when a UDP payload starts like an export the decoder knows.
bool looks_like_export(std::span<const std::byte> payload);

}  // namespace citywatch::agent::flow
