// Benchmarks of the forwarding hot path: what each flow record costs between the meter and
// the collector's ledger. Run: build/bench/citywatch_pipeline_bench
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "agent/spool/spool.h"
#include "common/crc32c.h"
#include "common/wire_codec.h"

namespace {

using namespace citywatch;

Record sample_flow(std::uint32_t i) {
  Record r;
  r.event_time_ns = 1'700'000'000'000'000'000 + i;
  FlowRecord f;
  const std::uint8_t src[4] = {10, 99, 1, static_cast<std::uint8_t>(i)};
  const std::uint8_t dst[4] = {10, 99, 1, 20};
  f.src = IpAddr::v4(src);
  f.dst = IpAddr::v4(dst);
  f.src_port = static_cast<std::uint16_t>(40000 + i % 20000);
  f.dst_port = 443;
  f.protocol = 6;
  f.packets = 10 + i % 100;
  f.bytes = f.packets * 800;
  f.start_ns = r.event_time_ns - 1'000'000'000;
  f.end_ns = r.event_time_ns;
  r.body = f;
  return r;
}

void BM_BatchEncode(benchmark::State& state) {
  const auto n = static_cast<std::uint32_t>(state.range(0));
  std::vector<Record> records;
  for (std::uint32_t i = 0; i < n; ++i) records.push_back(sample_flow(i));
  const auto encoding = static_cast<wire::Encoding>(state.range(1));
  state.SetLabel(encoding == wire::Encoding::kCompact ? "compact" : "fixed");
  wire::BatchEncoder enc;
  std::uint64_t seq = 0;
  for (auto _ : state) {
    enc.begin(encoding);
    for (const Record& r : records) enc.add(r);
    benchmark::DoNotOptimize(enc.finish(++seq).data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * n);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * enc.size()));
}
// Second argument: the record encoding (0 fixed, 1 compact: what the agent writes).
BENCHMARK(BM_BatchEncode)->Args({1000, 0})->Args({1000, 1});

void BM_BatchDecode(benchmark::State& state) {
  const auto n = static_cast<std::uint32_t>(state.range(0));
  const auto encoding = static_cast<wire::Encoding>(state.range(1));
  state.SetLabel(encoding == wire::Encoding::kCompact ? "compact" : "fixed");
  wire::BatchEncoder enc;
  enc.begin(encoding);
  for (std::uint32_t i = 0; i < n; ++i) enc.add(sample_flow(i));
  const auto payload = enc.finish(1);
  std::vector<Record> out;
  out.reserve(n);
  const ShortName agent("bench-agent"), segment("bench");
  for (auto _ : state) {
    out.clear();
    std::uint64_t seq;
    std::uint32_t unknown;
    if (wire::decode_batch(payload, agent, segment, seq, out, unknown) != wire::DecodeError::kOk)
      state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * n);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * payload.size()));
}
BENCHMARK(BM_BatchDecode)->Args({1000, 0})->Args({1000, 1});

void BM_Crc32c(benchmark::State& state) {
  std::vector<std::byte> data(static_cast<std::size_t>(state.range(0)), std::byte{0x5a});
  for (auto _ : state) benchmark::DoNotOptimize(crc32c(data));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Crc32c)->Arg(64)->Arg(1024)->Arg(64 << 10);

// Appends of a 1000-flow batch (~85 KB fixed, as the agent wrote before compact records), acked
// behind the writer so disk use stays bounded; the agent syncs once a second, here once every 100
// appends.
void BM_SpoolAppend(benchmark::State& state) {
  std::string tmpl = std::filesystem::temp_directory_path() / "cw-spool-bench-XXXXXX";
  if (!mkdtemp(tmpl.data())) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  wire::BatchEncoder enc;
  enc.begin(wire::Encoding::kFixed);
  for (std::uint32_t i = 0; i < 1000; ++i) enc.add(sample_flow(i));
  const auto payload = enc.finish(1);
  {
    std::unique_ptr<agent::Spool> spool;
    agent::SpoolOptions opts;
    opts.dir = tmpl;
    if (!agent::Spool::open(opts, spool)) {
      state.SkipWithError("spool open failed");
      return;
    }
    std::uint64_t seq = 0;
    for (auto _ : state) {
      (void)spool->append(++seq, payload);
      if (seq % 100 == 0) {
        (void)spool->sync();
        (void)spool->ack(seq - 50);
      }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 1000);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * payload.size()));
  }
  std::filesystem::remove_all(tmpl);
}
BENCHMARK(BM_SpoolAppend);

}  // namespace

BENCHMARK_MAIN();
