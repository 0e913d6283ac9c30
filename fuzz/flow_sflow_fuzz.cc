// libFuzzer target: sFlow v5 decoding, raw packet headers included (they go through the
// capture decoder). Any crash, sanitizer report or leak is a bug.
#include <cstddef>
#include <cstdint>

#include "agent/flow/flow_decoder.h"

namespace {
struct NullSink : citywatch::RecordSink {
  void add(const citywatch::Record&) override {}
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace citywatch::agent::flow;
  static NullSink sink;
  static FlowDecoder* decoder = new FlowDecoder({}, sink);  // sFlow keeps no state
  const std::uint8_t src[4] = {192, 0, 2, 1};
  decoder->decode({reinterpret_cast<const std::byte*>(data), size}, citywatch::IpAddr::v4(src), 1,
                  static_cast<std::uint8_t>(FlowFormat::kSflow));
  return 0;
}
