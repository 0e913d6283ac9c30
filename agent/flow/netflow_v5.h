// NetFlow v5 decoder (Cisco's fixed format: a 24-byte header and up to 30 48-byte records).
//
// Times are sysUptime-relative in the records and absolute in the header; a record's start
// and end are the header's wall time minus (sysUptime - first/last), computed in 32-bit
// modular arithmetic so a sysUptime that wrapped (every 49.7 days) still gives the right
// answer. The header's sampling interval (low 14 bits; the top 2 are the mode) is the
// record's sampling rate unless configuration overrides it.
//
// Thread-safety: a pure function over the caller's state.
#pragma once

#include <span>

#include "agent/flow/flow_types.h"

namespace citywatch::agent::flow {

inline constexpr std::size_t kV5HeaderSize = 24;
inline constexpr std::size_t kV5RecordSize = 48;
inline constexpr std::uint16_t kV5MaxRecords = 30;

// Decodes one datagram whose version field is 5 and emits its flows. kOk or the reason the
// whole datagram was dropped (nothing is emitted then).
FlowError decode_netflow_v5(std::span<const std::byte> d, const IpAddr& exporter, FlowOutput& out);

}  // namespace citywatch::agent::flow
