// sFlow version 5 decoder (sflow.org, "sFlow Version 5", July 2004).
//
// Flow samples (compact and expanded, §5: sample formats 1 and 3) become flow records: the
// raw packet header record (§5.5, format 1) is decoded by the agent's own packet decoder
// (agent/capture), sampled IPv4/IPv6 records (formats 3, 4) are read directly, and the
// extended switch record (format 1001) gives the VLAN. Each sample stands for one packet of
// frame_length bytes; the sample's sampling rate scales it, through SamplingTable::apply
// like every other format. sFlow counts the whole frame (the L2 header included), and so do
// these records. A sample whose output interface is marked as a discard (format 1) is still
// traffic the device saw: it is emitted with output_if 0. Generic interface counter records
// (counter samples, §5.3, format 1) become InterfaceSample records with the sFlow agent
// address as device.
//
// The exporter of every record is the sFlow agent address in the datagram, not the UDP
// source (which NAT or a relay may have changed).
//
// Thread-safety: pure functions over the caller's state.
#pragma once

#include <span>

#include "agent/flow/flow_types.h"

namespace citywatch::agent::flow {

inline constexpr std::size_t kSflowMinHeader = 28;  // with an IPv4 agent address

// The agent address of an sFlow v5 datagram (for per-exporter accounting before decoding).
bool sflow_agent_address(std::span<const std::byte> d, IpAddr& out);

// Decodes one datagram whose first 32-bit word is 5. Returns kOk or the reason the rest of
// the datagram was dropped (samples before it are emitted).
FlowError decode_sflow(std::span<const std::byte> d, std::int64_t receive_ns, FlowOutput& out);

}  // namespace citywatch::agent::flow
