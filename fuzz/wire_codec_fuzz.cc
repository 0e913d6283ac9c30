// libFuzzer target: the collector's decoders for untrusted agent frames.
// The first byte picks the decoder; the rest is the input. A batch that decodes is
// re-encoded and decoded again: the round trip must give the same records.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "common/wire_codec.h"

using namespace citywatch;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const auto in =
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      if (in.size() < wire::kHeaderSize) return 0;
      wire::FrameHeader h;
      if (wire::decode_header(in.first<wire::kHeaderSize>(), h) == wire::DecodeError::kOk)
        (void)wire::verify_payload(h, in.subspan(wire::kHeaderSize));
      break;
    }
    case 1: {
      static std::vector<Record> out, again;
      out.clear();
      std::uint64_t seq = 0;
      std::uint32_t unknown = 0;
      const ShortName agent("fuzz"), segment("seg");
      if (wire::decode_batch(in, agent, segment, seq, out, unknown) != wire::DecodeError::kOk)
        return 0;
      wire::BatchEncoder enc;
      enc.begin();
      for (const Record& r : out) enc.add(r);
      const auto payload = enc.finish(seq);
      again.clear();
      std::uint64_t seq2 = 0;
      if (wire::decode_batch(payload, agent, segment, seq2, again, unknown) !=
              wire::DecodeError::kOk ||
          seq2 != seq || again.size() != out.size())
        std::abort();
      break;
    }
    case 2: {
      wire::Hello h;
      (void)wire::decode_hello(in, h);
      break;
    }
    case 3: {
      std::uint64_t seq;
      (void)wire::decode_sequence(in, seq);
      break;
    }
  }
  return 0;
}
