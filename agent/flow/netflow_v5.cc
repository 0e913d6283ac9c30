#include "agent/flow/netflow_v5.h"

#include "agent/flow/sampling.h"

namespace citywatch::agent::flow {

FlowError decode_netflow_v5(std::span<const std::byte> d, const IpAddr& exporter, FlowOutput& out) {
  if (d.size() < kV5HeaderSize) return FlowError::kTruncatedHeader;
  const std::byte* h = d.data();
  const std::uint16_t count = rd16(h + 2);
  if (count == 0 || count > kV5MaxRecords || d.size() < kV5HeaderSize + count * kV5RecordSize)
    return FlowError::kBadRecordCount;
  const std::uint32_t uptime_ms = rd32(h + 4);
  const std::int64_t export_ns =
      std::int64_t{rd32(h + 8)} * 1'000'000'000 + std::int64_t{rd32(h + 12) % 1'000'000'000};
  const std::uint32_t engine = std::uint32_t{std::to_integer<std::uint8_t>(h[20])} << 8 |
                               std::to_integer<std::uint8_t>(h[21]);
  // Bits 15-14: sampling mode; 13-0: the interval (1 in N).
  const std::uint32_t interval = rd16(h + 22) & 0x3fff;
  out.sampling_decision =
      out.sampling.decide_stated(exporter, interval, SamplingSource::kV5Header, *out.stats);

  FlowRecord f;
  f.exporter = exporter;
  f.observation_domain = engine;
  f.source = FlowSource::kNetflowV5;
  for (std::uint16_t i = 0; i < count; ++i) {
    const std::byte* r = h + kV5HeaderSize + i * kV5RecordSize;
    f.src = IpAddr::v4(reinterpret_cast<const std::uint8_t*>(r));
    f.dst = IpAddr::v4(reinterpret_cast<const std::uint8_t*>(r + 4));
    f.input_if = rd16(r + 12);
    f.output_if = rd16(r + 14);
    f.packets = rd32(r + 16);
    f.bytes = rd32(r + 20);
    // Signed 32-bit differences: right across a sysUptime wrap, and a record stamped a
    // little after the header (exporter clock skew) does not land 49 days in the past.
    const auto first_ago = static_cast<std::int32_t>(uptime_ms - rd32(r + 24));
    const auto last_ago = static_cast<std::int32_t>(uptime_ms - rd32(r + 28));
    f.start_ns = export_ns - std::int64_t{first_ago} * 1'000'000;
    f.end_ns = export_ns - std::int64_t{last_ago} * 1'000'000;
    f.src_port = rd16(r + 32);
    f.dst_port = rd16(r + 34);
    f.tcp_flags = std::to_integer<std::uint8_t>(r[37]);
    f.protocol = std::to_integer<std::uint8_t>(r[38]);
    f.sampling_rate = 1;
    SamplingTable::apply(f, out.sampling_decision);
    out.emit(f);
  }
  return FlowError::kOk;
}

}  // namespace citywatch::agent::flow
