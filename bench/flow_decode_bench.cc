// Google Benchmark kernels for flow export decoding: FlowDecoder::decode over the export
// datagrams of real exporters held in memory (../shared/testdata/flows: softflowd NetFlow
// v5/v9/IPFIX, pmacctd sFlow), into a sink that only counts. Reports items (flow records)
// per second on one core; skips a format whose capture is absent.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <string>
#include <vector>

#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_source.h"
#include "agent/flow/export_pcap.h"
#include "agent/flow/flow_decoder.h"

namespace citywatch::agent::flow {
namespace {

const std::string kFlows = CITYWATCH_SHARED_DIR "/testdata/flows/";

struct Datagram {
  std::vector<std::byte> bytes;
  IpAddr source;
};

std::vector<Datagram> load(const std::string& file) {
  std::vector<Datagram> out;
  CaptureOptions o;
  o.file = file;
  Status err;
  auto src = PacketSource::open(o, err);
  if (!src) return out;
  DecodedPacket p;
  const int lt = src->linktype();
  for (;;) {
    const auto r = src->dispatch(
        4096,
        [&](std::int64_t, std::span<const std::byte> f, std::uint32_t) {
          if (decode_packet(lt, f, p) != DecodeResult::kOk || p.protocol != 17 || !p.payload_offset)
            return;
          out.push_back({{f.begin() + p.payload_offset, f.end()}, p.src});
        },
        err);
    if (r != PacketSource::ReadResult::kPackets) break;
  }
  return out;
}

struct CountingSink : RecordSink {
  void add(const Record& r) override {
    ++records;
    benchmark::DoNotOptimize(&r);
  }
  std::uint64_t records = 0;
};

void BM_Decode(benchmark::State& state, const char* name) {
  const auto datagrams = load(kFlows + name + ".pcap");
  if (datagrams.empty()) {
    state.SkipWithError("shared test capture not found");
    return;
  }
  CountingSink sink;
  FlowDecoder d({}, sink);
  std::int64_t t = 0;
  for (auto _ : state)
    for (const Datagram& g : datagrams) d.decode(g.bytes, g.source, ++t);
  state.SetItemsProcessed(static_cast<std::int64_t>(sink.records));
  state.counters["records_per_datagram"] =
      static_cast<double>(sink.records) /
      static_cast<double>(state.iterations() * datagrams.size());
}

BENCHMARK_CAPTURE(BM_Decode, netflow_v5, "softflowd-v5");
BENCHMARK_CAPTURE(BM_Decode, netflow_v9, "softflowd-v9");
BENCHMARK_CAPTURE(BM_Decode, ipfix, "softflowd-v10");
BENCHMARK_CAPTURE(BM_Decode, ipfix_pmacct, "pmacct-v10");
BENCHMARK_CAPTURE(BM_Decode, sflow, "pmacct-sflow");

}  // namespace
}  // namespace citywatch::agent::flow

BENCHMARK_MAIN();
