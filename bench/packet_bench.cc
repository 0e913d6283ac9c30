// Google Benchmark kernels for the capture data path, over frames held in memory
// (segment-a.pcap from the shared test data when present, else synthetic TCP/UDP/IPv6
// frames): decode_packet alone; decode plus FlowMeter::add; the packet-event extractor alone
// (frames decoded beforehand); and MeterPipeline::frame, the whole per-frame step the agent
// runs (decode, one hash for both, prefetch, meter and events a few frames later). Each pass
// over the corpus runs 20 s later in packet time, so flows and attempts expire as in a long
// capture. Reports items (frames) per second.
#include <benchmark/benchmark.h>
#include <pcap/dlt.h>

#include <cstdint>
#include <filesystem>
#include <vector>

#include "agent/capture/flow_meter.h"
#include "agent/capture/meter_frame.h"
#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_events.h"
#include "agent/capture/packet_source.h"

namespace citywatch::agent {
namespace {

struct Corpus {
  int linktype = DLT_EN10MB;
  std::vector<std::vector<std::byte>> frames;
  std::vector<std::int64_t> ts;
};

std::vector<std::byte> synth(std::uint16_t i) {
  const bool v6 = i % 8 == 0;
  const std::uint8_t proto = i % 3 == 0 ? 17 : 6;
  std::vector<std::uint8_t> f = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
  if (v6) {
    f.insert(f.end(), {0x86, 0xdd, 0x60, 0, 0, 0, 0, 20, proto, 64});
    for (int k = 0; k < 32; ++k) f.push_back(static_cast<std::uint8_t>(k == 15 ? i : k));
  } else {
    f.insert(f.end(), {0x08,
                       0x00,
                       0x45,
                       0,
                       0,
                       40,
                       0,
                       0,
                       0,
                       0,
                       64,
                       proto,
                       0,
                       0,
                       10,
                       0,
                       static_cast<std::uint8_t>(i >> 8),
                       static_cast<std::uint8_t>(i),
                       10,
                       1,
                       0,
                       1});
  }
  f.insert(f.end(), {static_cast<std::uint8_t>(i >> 8),
                     static_cast<std::uint8_t>(i),
                     0,
                     80,
                     0,
                     0,
                     0,
                     1,
                     0,
                     0,
                     0,
                     0,
                     0x50,
                     0x10,
                     0xff,
                     0xff,
                     0,
                     0,
                     0,
                     0});
  std::vector<std::byte> out(f.size());
  for (std::size_t k = 0; k < f.size(); ++k) out[k] = std::byte{f[k]};
  return out;
}

const Corpus& corpus() {
  static const Corpus c = [] {
    Corpus k;
    CaptureOptions o;
    o.file = std::string(CITYWATCH_SHARED_DIR) + "/testdata/captures/segment-a.pcap";
    Status err;
    if (std::filesystem::exists(o.file)) {
      if (auto src = PacketSource::open(o, err)) {
        k.linktype = src->linktype();
        const auto fn = [&](std::int64_t ts, std::span<const std::byte> f, std::uint32_t) {
          k.frames.emplace_back(f.begin(), f.end());
          k.ts.push_back(ts);
        };
        while (src->dispatch(0, fn, err) == PacketSource::ReadResult::kPackets) {
        }
      }
    }
    if (k.frames.empty()) {
      for (std::uint16_t i = 0; i < 30000; ++i) {
        k.frames.push_back(synth(i % 4000));
        k.ts.push_back(std::int64_t{i} * 100'000);
      }
    }
    return k;
  }();
  return c;
}

void BM_Decode(benchmark::State& state) {
  const Corpus& c = corpus();
  DecodedPacket p;
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(decode_packet(c.linktype, c.frames[i], p));
    benchmark::DoNotOptimize(p);
    if (++i == c.frames.size()) i = 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_Decode);

void BM_DecodeAndMeter(benchmark::State& state) {
  const Corpus& c = corpus();
  std::uint64_t flows = 0;
  FlowMeterConfig cfg;
  cfg.max_flows = static_cast<std::size_t>(state.range(0));
  FlowMeter m(cfg, [&](const FlowRecord&) { ++flows; });
  DecodedPacket p;
  std::size_t i = 0;
  std::int64_t base = 0;  // each pass over the corpus runs later in time
  for (auto _ : state) {
    if (decode_packet(c.linktype, c.frames[i], p) == DecodeResult::kOk) m.add(p, base + c.ts[i]);
    if (++i == c.frames.size()) {
      i = 0;
      base += 20'000'000'000;
      m.advance(base + c.ts[0]);
    }
  }
  benchmark::DoNotOptimize(flows);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["frames_in_corpus"] = static_cast<double>(c.frames.size());
}
BENCHMARK(BM_DecodeAndMeter)->Arg(262144)->Arg(4096);

// The extractor with its default budgets, on frames decoded once beforehand: segment-a is
// 89 % SYN, SYN-ACK and RST (a scan and a flood), the packets it does the most for.
void BM_PacketEvents(benchmark::State& state) {
  const Corpus& c = corpus();
  std::vector<DecodedPacket> pkts(c.frames.size());
  std::vector<DecodeResult> results(c.frames.size());
  for (std::size_t k = 0; k < c.frames.size(); ++k)
    results[k] = decode_packet(c.linktype, c.frames[k], pkts[k]);
  std::uint64_t events = 0;
  PacketEventExtractor x(PacketEventConfig{}, [&](const PacketEvent&, std::int64_t) { ++events; });
  std::size_t i = 0;
  std::int64_t base = 0;
  for (auto _ : state) {
    x.add(results[i], pkts[i], c.frames[i], base + c.ts[i]);
    if (++i == c.frames.size()) {
      i = 0;
      base += 20'000'000'000;
    }
  }
  benchmark::DoNotOptimize(events);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["events_per_frame"] =
      benchmark::Counter(static_cast<double>(events) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_PacketEvents);

// What `citywatch-agent -r` and each capture thread run per frame (meter_frame.h).
void BM_MeterPipeline(benchmark::State& state) {
  const Corpus& c = corpus();
  std::uint64_t flows = 0, events = 0;
  FlowMeter meter(FlowMeterConfig{}, [&](const FlowRecord&) { ++flows; });
  PacketEventExtractor x(PacketEventConfig{}, [&](const PacketEvent&, std::int64_t) { ++events; });
  MeterPipeline pipeline(meter, x, /*packet_clock=*/true);
  DecodeCounters counters;
  std::size_t i = 0;
  std::int64_t base = 0;
  for (auto _ : state) {
    pipeline.frame(c.linktype, base + c.ts[i], c.frames[i], counters);
    if (++i == c.frames.size()) {
      i = 0;
      base += 20'000'000'000;
    }
  }
  pipeline.drain();
  benchmark::DoNotOptimize(flows);
  benchmark::DoNotOptimize(events);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_MeterPipeline);

}  // namespace
}  // namespace citywatch::agent

BENCHMARK_MAIN();
