// libFuzzer target: the flow-template state file (STATE_DIR/flow-templates.state), which the
// agent reads at start and an intruder with write access to the state directory, or a torn
// write, could corrupt. The bytes are loaded as a state file, then a v9 and an IPFIX
// datagram are decoded with whatever templates and sampling rates it defined, and the state
// is saved again. Seeds: state files the decoder wrote after real exports (flow_state_corpus).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "agent/flow/flow_decoder.h"

namespace {
struct NullSink : citywatch::RecordSink {
  void add(const citywatch::Record&) override {}
};
// A v9 datagram with one data set for template 256 and an IPFIX message with one for 256:
// decoded against whatever the state file defined.
const std::vector<std::uint8_t> kV9 = {0, 9, 0, 1, 0, 0, 0, 1,  0x68, 0x9a, 0, 0, 0,  0, 0, 1,
                                       0, 0, 0, 0, 1, 0, 0, 12, 10,   0,    0, 1, 10, 0, 0, 2};
const std::vector<std::uint8_t> kIpfix = {0, 10, 0, 28, 0x68, 0x9a, 0,  0, 0, 0, 0,  1, 0, 0,
                                          0, 0,  1, 0,  0,    12,   10, 0, 0, 1, 10, 0, 0, 2};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace citywatch::agent::flow;
  static const std::filesystem::path dir = std::filesystem::temp_directory_path();
  static const auto in = dir / ("cw-state-fuzz-" + std::to_string(::getpid()) + ".state");
  static const auto out = dir / ("cw-state-fuzz-" + std::to_string(::getpid()) + ".out");
  {
    std::ofstream f(in, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  NullSink sink;
  FlowDecoderOptions o;
  o.templates.max_templates = 64;
  FlowDecoder d(o, sink);
  std::size_t loaded = 0, skipped = 0;
  (void)d.load(in, loaded, skipped);
  const std::uint8_t src[4] = {192, 0, 2, 1};
  const auto exporter = citywatch::IpAddr::v4(src);
  (void)d.decode(std::as_bytes(std::span(kV9)), exporter, 1);
  (void)d.decode(std::as_bytes(std::span(kIpfix)), exporter, 2);
  (void)d.save(out);
  return 0;
}
