// Rules engine throughput: records/s and ns per record through the whole municipal pack
// (rules/) with a 100,000-entry blocklist loaded, on a realistic mix (mostly ordinary flows,
// some SYN-only probes, DNS queries). Also the 100,000-CIDR list load time and lookup cost.
//
//   build/bench/citywatch_rules_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "collector/rules_engine/rules_config.h"
#include "collector/rules_engine/rules_engine.h"
#include "tests/collector/rules_engine/test_records.h"

namespace cw = citywatch;
namespace col = citywatch::collector;
using namespace citywatch::collector::testing;

namespace {

// A directory with the pack's rule files plus a lists file whose blocklist has 100,000
// random IPv4 and IPv6 CIDRs (the pack's own blocklist is replaced), and two threat feeds of
// 100,000 entries each, one in Spamhaus DROP format and one in Suricata iprep format, with a
// conversation list rule on each (docs/rules.md, "Lists and feeds").
struct PackWithBigList {
  PackWithBigList() {
    dir = std::filesystem::temp_directory_path() / ("rules-bench-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir / "lists");
    const std::filesystem::path src = std::filesystem::path(CITYWATCH_SOURCE_DIR) / "rules";
    for (const auto& e : std::filesystem::directory_iterator(src))
      if (e.path().extension() == ".yaml")
        std::filesystem::copy_file(e.path(), dir / e.path().filename());
    for (const auto& e : std::filesystem::directory_iterator(src / "lists"))
      std::filesystem::copy_file(e.path(), dir / "lists" / e.path().filename());
    std::mt19937_64 rng(7);
    std::ofstream out(dir / "lists" / "blocklist.txt");
    for (int i = 0; i < 100000; ++i) {
      if (i % 4 == 3) {
        char b[64];
        std::snprintf(b, sizeof b, "2a0%x:%x:%x::/48", static_cast<unsigned>(rng() % 10),
                      static_cast<unsigned>(rng() & 0xffff), static_cast<unsigned>(rng() & 0xffff));
        out << b << "\n";
      } else {
        const std::uint32_t a = static_cast<std::uint32_t>(rng()) | 0x01000000;
        out << (a >> 24) << '.' << ((a >> 16) & 255) << '.' << ((a >> 8) & 255) << '.' << (a & 255)
            << '/' << (20 + rng() % 13) << "\n";
      }
    }
    std::ofstream drop(dir / "lists" / "drop.txt");
    std::ofstream iprep(dir / "lists" / "reputation.csv");
    drop << "; Spamhaus DROP List (generated for the benchmark)\n";
    for (int i = 0; i < 100000; ++i) {
      const std::uint32_t a = static_cast<std::uint32_t>(rng()) | 0x01000000;
      const std::uint32_t b = static_cast<std::uint32_t>(rng()) | 0x01000000;
      drop << (a >> 24) << '.' << ((a >> 16) & 255) << '.' << ((a >> 8) & 255) << ".0/"
           << (18 + rng() % 7) << " ; SBL" << 100000 + i << "\n";
      iprep << (b >> 24) << '.' << ((b >> 16) & 255) << '.' << ((b >> 8) & 255) << '.' << (b & 255)
            << ',' << 1 + rng() % 40 << ',' << rng() % 128 << "\n";
    }
    std::ofstream(dir / "feeds.yaml") << R"(lists:
  - name: drop
    file: lists/drop.txt
    format: spamhaus_drop
  - name: reputation
    file: lists/reputation.csv
    format: iprep
    min_score: 30
rules:
  - name: drop_listed
    kind: list
    description: d
    runbook: r
    list: drop
    fields: [src, dst]
    conversation: true
  - name: bad_reputation
    kind: list
    description: d
    runbook: r
    list: reputation
    fields: [src, dst]
    conversation: true
)";
  }
  ~PackWithBigList() { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
};

std::vector<cw::Record> mix(std::size_t n) {
  std::mt19937_64 rng(1);
  std::vector<cw::Record> v;
  v.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t t =
        kT0 + static_cast<std::int64_t>(i) * 100000;  // 10k records/s of event time
    const auto host = [&](int net) {
      return "10." + std::to_string(net) + "." + std::to_string(rng() % 256) + "." +
             std::to_string(rng() % 256);
    };
    const int k = static_cast<int>(rng() % 20);
    if (k < 14) {
      v.push_back(flow(t, host(1), host(2), 1024 + static_cast<int>(rng() % 60000),
                       k < 8 ? 443 : 80, 6, kSyn | kAck | kPsh | kFin, 20, 9000));
    } else if (k < 16) {
      v.push_back(
          flow(t, host(1), "93.184.216." + std::to_string(rng() % 256), 40000, 53, 17, 0, 1, 70));
    } else if (k < 18) {
      v.push_back(flow(t, host(3), host(2), 50000, static_cast<int>(rng() % 1024), 6, kSyn, 1, 40));
    } else {
      v.push_back(packet(t, cw::PacketEventKind::kDnsQuery, host(1), "10.0.0.53",
                         "host" + std::to_string(rng() % 1000) + ".city.example"));
    }
  }
  return v;
}

void BM_LoadHundredThousandCidrs(benchmark::State& state) {
  PackWithBigList pack;
  for (auto _ : state) {
    col::IpSet s;
    if (!col::IpSet::load_file((pack.dir / "lists" / "blocklist.txt").string(), s).is_ok())
      state.SkipWithError("load failed");
    benchmark::DoNotOptimize(s.v4_ranges());
  }
}
BENCHMARK(BM_LoadHundredThousandCidrs)->Unit(benchmark::kMillisecond);

void BM_LookupHundredThousandCidrs(benchmark::State& state) {
  PackWithBigList pack;
  col::IpSet s;
  (void)col::IpSet::load_file((pack.dir / "lists" / "blocklist.txt").string(), s);
  std::mt19937 rng(3);
  std::vector<cw::IpAddr> probes;
  for (int i = 0; i < 4096; ++i) {
    const std::uint32_t a = rng();
    const std::uint8_t b[4] = {static_cast<std::uint8_t>(a >> 24),
                               static_cast<std::uint8_t>(a >> 16),
                               static_cast<std::uint8_t>(a >> 8), static_cast<std::uint8_t>(a)};
    probes.push_back(cw::IpAddr::v4(b));
  }
  std::size_t i = 0, hits = 0;
  for (auto _ : state) hits += s.contains(probes[i++ & 4095]);
  benchmark::DoNotOptimize(hits);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LookupHundredThousandCidrs);

// The whole pack, 100k-entry blocklist, two 100k-entry feeds (DROP, iprep) with their
// conversation rules, 1M-record mix; items/s = records/s.
void BM_EngineWholePack(benchmark::State& state) {
  PackWithBigList pack;
  auto set = std::make_shared<col::RuleSet>();
  if (auto s = col::load_rule_set(col::expand_rule_paths({pack.dir.string()}), *set); !s) {
    state.SkipWithError(s.message().c_str());
    return;
  }
  const std::vector<cw::Record> records = mix(1 << 20);
  prometheus::Registry registry;
  col::AlertMetrics metrics(registry);
  col::AlertLifecycle lifecycle(metrics);
  col::RulesEngine engine(lifecycle, registry, [] { return kT0; });
  engine.load(set);
  constexpr std::size_t kBatch = 1024;  // what a batch from one agent typically holds
  // The records as the ingest session hands them over: batches, each kind stored apart.
  // The mix has flows from one segment and packet events from another: each 1,024 records
  // become one batch per segment, as two agents would send them.
  std::vector<cw::RecordBatch> batches;
  for (std::size_t pos = 0; pos + kBatch <= records.size(); pos += kBatch) {
    std::map<std::string_view, cw::RecordBatch> by_segment;
    for (std::size_t i = pos; i < pos + kBatch; ++i) {
      const cw::Record& r = records[i];
      auto [it, fresh] = by_segment.try_emplace(r.segment.view(), r.agent, r.segment);
      it->second.add(r);
    }
    for (auto& [segment, batch] : by_segment) batches.push_back(std::move(batch));
  }
  std::size_t i = 0, processed = 0;
  for (auto _ : state) {
    engine.consume(batches[i]);
    processed += batches[i].size();
    i = (i + 1) % batches.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(processed));
  state.counters["ns_per_record"] = benchmark::Counter(
      static_cast<double>(processed), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["rules"] = static_cast<double>(set->rules.size());
  state.counters["alerts_firing"] = static_cast<double>(lifecycle.firing());
}
BENCHMARK(BM_EngineWholePack)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
