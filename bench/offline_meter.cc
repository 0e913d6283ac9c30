// citywatch_offline_meter: reads a pcap file, decodes, meters into flows, extracts packet
// events (with the agent's default budgets) and flushes, then prints packets, flows, events
// and CPU seconds. It stands in for the agent's offline mode in
// bench/vs_softflowd.sh until the agent grows `--once`.
//
// usage: citywatch_offline_meter FILE.pcap [idle_s [active_s]]
// Defaults follow softflowd's as run by shared/tools/gen-flows.sh: general idle timeout
// 3600 s, maxlife (active) 60 s.
//
// Single-threaded; a benchmark tool, not part of the agent.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>

#include "agent/capture/flow_meter.h"
#include "agent/capture/meter_frame.h"
#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_events.h"
#include "agent/capture/packet_source.h"

namespace {

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace citywatch;
  using namespace citywatch::agent;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE.pcap [idle_s [active_s]]\n", argv[0]);
    return 2;
  }
  const double start_cpu = cpu_seconds();
  FlowMeterConfig cfg;
  cfg.idle_timeout_ns = static_cast<std::int64_t>((argc > 2 ? std::atof(argv[2]) : 3600) * 1e9);
  cfg.active_timeout_ns = static_cast<std::int64_t>((argc > 3 ? std::atof(argv[3]) : 60) * 1e9);

  CaptureOptions opts;
  opts.file = argv[1];
  Status err;
  auto src = PacketSource::open(opts, err);
  if (!src) {
    std::fprintf(stderr, "%s\n", err.message().c_str());
    return 1;
  }
  std::uint64_t flows = 0;
  std::uint64_t frames = 0;
  FlowMeter meter(cfg, [&](const FlowRecord&) { ++flows; });
  std::uint64_t events = 0;
  PacketEventExtractor extractor(PacketEventConfig{},
                                 [&](const PacketEvent&, std::int64_t) { ++events; });
  DecodeCounters counters;
  // Expiry once a second of packet time, like softflowd's expint.
  MeterPipeline pipeline(meter, extractor, /*packet_clock=*/true);
  const int linktype = src->linktype();
  const auto fn = [&](std::int64_t ts, std::span<const std::byte> frame, std::uint32_t) {
    ++frames;
    pipeline.frame(linktype, ts, frame, counters);
  };
  for (;;) {
    const auto rr = src->dispatch(1024, fn, err);
    pipeline.drain();
    if (rr == PacketSource::ReadResult::kEnd) break;
    if (rr == PacketSource::ReadResult::kError) {
      std::fprintf(stderr, "%s\n", err.message().c_str());
      return 1;
    }
  }
  meter.flush();
  extractor.flush();
  const double cpu = cpu_seconds() - start_cpu;
  const auto& st = meter.stats();
  std::printf("frames %llu\nip_packets %llu\nip_bytes %llu\nflows %llu\n",
              static_cast<unsigned long long>(frames), static_cast<unsigned long long>(st.packets),
              static_cast<unsigned long long>(st.bytes), static_cast<unsigned long long>(flows));
  std::printf("flows_ended_tcp %llu\nflows_expired_idle %llu\nflows_expired_active %llu\n",
              static_cast<unsigned long long>(st.flows_ended_tcp),
              static_cast<unsigned long long>(st.flows_expired_idle),
              static_cast<unsigned long long>(st.flows_expired_active));
  std::printf("events %llu\n", static_cast<unsigned long long>(events));
  const auto& es = extractor.stats();
  for (std::size_t k = 1; k < kPacketEventKinds; ++k) {
    std::printf("events_%s %llu (suppressed: budget %llu, rate %llu)\n",
                to_string(static_cast<PacketEventKind>(k)),
                static_cast<unsigned long long>(es.emitted[k]),
                static_cast<unsigned long long>(es.suppressed_budget[k]),
                static_cast<unsigned long long>(es.suppressed_rate[k]));
  }
  for (std::size_t i = 1; i < kDecodeResultCount; ++i) {
    if (counters.by_result[i] != 0) {
      std::printf("dropped_%s %llu\n", to_string(static_cast<DecodeResult>(i)),
                  static_cast<unsigned long long>(counters.by_result[i]));
    }
  }
  std::printf("cpu_seconds %.3f\npackets_per_second %.0f\n", cpu,
              cpu > 0 ? static_cast<double>(frames) / cpu : 0.0);
  return 0;
}
