// libFuzzer target: NetFlow v9 / IPFIX decoding with template state. The input is a
// sequence of datagrams, each prefixed by a 2-byte big-endian length, decoded in order by
// one FlowDecoder: templates (and options) defined by earlier datagrams shape how later
// ones decode, data before its template is held, released, evicted and expired, and the
// state file is saved and reloaded half-way. Any crash, sanitizer report or leak is a bug.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "agent/flow/flow_decoder.h"

namespace {
struct NullSink : citywatch::RecordSink {
  void add(const citywatch::Record&) override {}
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace citywatch::agent::flow;
  NullSink sink;
  FlowDecoderOptions o;
  o.templates.max_templates = 64;
  o.hold.max_sets = 4;
  o.hold.max_set_bytes = 2048;
  o.hold.hold_ns = 5;
  FlowDecoder d(o, sink);
  const std::uint8_t src[4] = {192, 0, 2, 1};
  const auto exporter = citywatch::IpAddr::v4(src);
  static const auto state = std::filesystem::temp_directory_path() /
                            ("cw-v9-fuzz-" + std::to_string(::getpid()) + ".state");
  std::size_t pos = 0;
  std::int64_t t = 0;
  int n = 0;
  while (pos + 2 <= size) {
    const std::size_t len = static_cast<std::size_t>(data[pos]) << 8 | data[pos + 1];
    pos += 2;
    const std::size_t take = len < size - pos ? len : size - pos;
    // A single datagram may also be the whole input (seeds are plain datagrams).
    d.decode({reinterpret_cast<const std::byte*>(data + pos), take}, exporter, ++t,
             static_cast<std::uint8_t>(FlowFormat::kNetflowV9) |
                 static_cast<std::uint8_t>(FlowFormat::kIpfix));
    pos += take;
    if (++n == 2) {  // round-trip the state through its file, as a restart would
      (void)d.save(state);
      NullSink sink2;
      FlowDecoder reloaded(o, sink2);
      std::size_t loaded = 0, skipped = 0;
      (void)reloaded.load(state, loaded, skipped);
    }
  }
  // Seeds are single datagrams without a length prefix: decode the whole input too.
  d.decode({reinterpret_cast<const std::byte*>(data), size}, exporter, ++t);
  d.expire(t + 10);
  return 0;
}
