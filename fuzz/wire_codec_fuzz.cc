// libFuzzer target: the collector's decoders for untrusted agent frames.
// The first byte picks the decoder; the rest is the input. A batch that decodes is
// re-encoded, decoded and encoded again: both encodings must be the same bytes, so every
// field survives the round trip.
#include <algorithm>
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
      // Every field must survive: the re-encoding of what decoded, decoded and encoded once
      // more, must give the same bytes (the first encoding is canonical; the input need not
      // be, e.g. its derived interface-status bytes).
      static wire::BatchEncoder enc;
      enc.begin();
      for (const Record& r : out) enc.add(r);
      const auto first = enc.finish(seq);
      const std::vector<std::byte> canonical(first.begin(), first.end());
      again.clear();
      std::uint64_t seq2 = 0;
      if (wire::decode_batch(canonical, agent, segment, seq2, again, unknown) !=
              wire::DecodeError::kOk ||
          seq2 != seq || again.size() != out.size())
        std::abort();
      enc.begin();
      for (const Record& r : again) enc.add(r);
      const auto second = enc.finish(seq2);
      if (second.size() != canonical.size() ||
          !std::equal(second.begin(), second.end(), canonical.begin()))
        std::abort();
      for (std::size_t i = 0; i < out.size(); ++i)
        if (again[i].kind() != out[i].kind() || again[i].event_time_ns != out[i].event_time_ns)
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
