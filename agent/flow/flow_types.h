// Shared vocabulary of the flow decoders (NetFlow v5, v9, IPFIX, sFlow v5): the export
// formats, the reasons a datagram or part of one is dropped, and the per-exporter counters
// the agent exports as metrics.
//
// Every decoder in agent/flow counts what it drops here, by reason, and never throws: a
// datagram from the network is untrusted input. The reason names are the `reason` label of
// citywatch_agent_flow_decode_errors_total, so they are stable.
//
// Thread-safety: plain values owned by one FlowDecoder (one io thread).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/flow/sampling.h"
#include "common/ip_text.h"
#include "common/record.h"
#include "common/record_sink.h"

namespace citywatch::agent::flow {

// Export formats a listener accepts; a bit set, so one port can take several.
enum class FlowFormat : std::uint8_t {
  kNetflowV5 = 1 << 0,
  kNetflowV9 = 1 << 1,
  kIpfix = 1 << 2,
  kSflow = 1 << 3,
};
inline constexpr std::uint8_t kAllFormats = 0x0f;
const char* to_string(FlowFormat f);
// "netflow_v5", "netflow_v9", "ipfix", "sflow"; false for anything else.
bool parse_format(const char* name, FlowFormat& out);

// Why (part of) a datagram was dropped.
enum class FlowError : std::uint8_t {
  kOk = 0,
  kUnknownVersion,        // the version field names no format we decode
  kFormatNotEnabled,      // a format the listener was not configured for
  kTruncatedHeader,       // shorter than the format's fixed header
  kBadRecordCount,        // v5: count 0 or > 30, or the datagram does not hold count records
  kBadSetLength,          // v9/IPFIX: a set (flowset) length < 4 or beyond the datagram
  kBadMessageLength,      // IPFIX: header length beyond the datagram or < 16
  kBadTemplate,           // a template or options template that cannot be right
  kTemplateLimit,         // template cache full: the template was not stored
  kTruncatedRecord,       // a data record (or its variable-length field) cut short
  kTemplateMissing,       // data whose template never came (held, then expired or evicted)
  kPendingTooLarge,       // data before its template, too large to hold
  kSflowBadAddress,       // sFlow agent address type other than IPv4/IPv6
  kSflowTruncatedSample,  // a sample or flow record longer than what encloses it
  kSflowTooManySamples,   // sample or record count beyond what the datagram could hold
  kCount,
};
inline constexpr std::size_t kFlowErrorCount = static_cast<std::size_t>(FlowError::kCount);
const char* to_string(FlowError e);

// What one exporter has sent; the hot path only increments.
struct ExporterStats {
  std::array<std::uint64_t, kFlowErrorCount> errors{};
  std::uint64_t datagrams = 0;
  std::uint64_t flows = 0;                   // flow records emitted
  std::uint64_t interface_samples = 0;       // sFlow counter samples emitted
  std::uint64_t held = 0;                    // data sets held for a template not yet seen
  std::uint64_t released = 0;                // held sets decoded once their template came
  std::uint64_t header_not_ip = 0;           // sFlow raw headers our packet decoder could not read
  std::uint64_t sampling_above_ceiling = 0;  // records whose stated rate was not applied
  std::uint64_t sampling_rate_changes = 0;   // learned rates that changed
  std::uint64_t sampling_not_learned = 0;    // stated rates the table could not keep
  std::int64_t last_seen_ns = 0;             // receive time of the last datagram
  FlowSource last_format = FlowSource::kNetflowV5;
  void count(FlowError e) { ++errors[static_cast<std::size_t>(e)]; }
};

// Big-endian reads from a pointer the caller has bounds-checked. rd_be reads a reduced-size
// (RFC 7011 §6.2) unsigned integer of 1..8 bytes; longer fields keep their last 8 bytes.
inline std::uint16_t rd16(const std::byte* p) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) << 8 |
                                    std::to_integer<unsigned>(p[1]));
}
inline std::uint32_t rd32(const std::byte* p) { return std::uint32_t{rd16(p)} << 16 | rd16(p + 2); }
inline std::uint64_t rd64(const std::byte* p) { return std::uint64_t{rd32(p)} << 32 | rd32(p + 4); }
inline std::uint64_t rd_be(const std::byte* p, std::size_t len) {
  if (len > 8) {
    p += len - 8;
    len = 8;
  }
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < len; ++i) v = v << 8 | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

// Where decoders put what they decode: counts it against the exporter and hands it to the
// sink as a Record (one reused scratch Record: no allocation per flow).
struct FlowOutput {
  RecordSink& sink;
  SamplingTable& sampling;
  ExporterStats* stats = nullptr;      // the current datagram's exporter
  SamplingDecision sampling_decision;  // of the last flow emitted (decode prints its source)
  Record record;
  void emit(const FlowRecord& f) {
    ++stats->flows;
    record.event_time_ns = f.end_ns;
    record.body = f;
    sink.add(record);
  }
  void emit(const InterfaceSample& s, std::int64_t time_ns) {
    ++stats->interface_samples;
    record.event_time_ns = time_ns;
    record.body = s;
    sink.add(record);
  }
};

// Text of an address: citywatch::to_string (common/ip_text.h), found by argument lookup.
bool parse_ip(const std::string& text, IpAddr& out);

}  // namespace citywatch::agent::flow
