// Seeds for flow_state_fuzz: decodes export captures (templates, options, sampling) with one
// FlowDecoder and saves its state file, as the agent does.
// usage: flow_state_corpus OUT_FILE FILE...
#include <cstdio>

#include "agent/flow/export_pcap.h"
#include "agent/flow/flow_decoder.h"

namespace {
struct NullSink : citywatch::RecordSink {
  void add(const citywatch::Record&) override {}
};
}  // namespace

int main(int argc, char** argv) {
  using namespace citywatch::agent::flow;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OUT_FILE FILE...\n", argv[0]);
    return 2;
  }
  NullSink sink;
  FlowDecoder d({}, sink);
  ExportPcapStats stats;
  for (int i = 2; i < argc; ++i)
    if (auto s = decode_export_pcap(argv[i], 0, d, stats); !s)
      std::fprintf(stderr, "%s: %s\n", argv[i], s.message().c_str());
  if (auto s = d.save(argv[1]); !s) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  std::printf("flow_state_corpus: %zu templates from %llu datagrams\n", d.templates().size(),
              static_cast<unsigned long long>(stats.datagrams));
  return 0;
}
