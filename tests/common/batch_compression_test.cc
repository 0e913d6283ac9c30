#include "common/batch_compression.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <cstring>

#include "common/wire_codec.h"

namespace citywatch::wire {
namespace {

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

TEST(BatchCompression, RoundTripsAndShrinksARepetitiveBatch) {
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "flow 10.0.0." + std::to_string(i % 50) + ":443 tcp ";
  const auto in = bytes_of(text);
  BatchCompressor c;
  BatchDecompressor d;
  std::vector<std::byte> packed, out;
  ASSERT_TRUE(c.compress(in, packed));
  EXPECT_LT(packed.size() * 10, in.size());
  ASSERT_EQ(d.decompress(packed, out, kMaxPayload), DecompressError::kOk);
  EXPECT_EQ(out, in);
  // The context is reused: a second batch through the same pair.
  ASSERT_TRUE(c.compress(out, packed));
  ASSERT_EQ(d.decompress(packed, out, kMaxPayload), DecompressError::kOk);
  EXPECT_EQ(out, in);
}

// A frame that declares more than the limit is refused from its header, before any memory
// is taken for it: 16 MiB of zeros compress to a few hundred bytes.
TEST(BatchCompression, RefusesAFrameDeclaringMoreThanTheLimit) {
  const std::vector<std::byte> zeros(kMaxPayload + 1);
  BatchCompressor c;
  BatchDecompressor d;
  std::vector<std::byte> packed, out;
  ASSERT_TRUE(c.compress(zeros, packed));
  EXPECT_LT(packed.size(), 4096u);
  EXPECT_EQ(d.decompress(packed, out, kMaxPayload), DecompressError::kTooLarge);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(d.decompress(packed, out, 1000), DecompressError::kTooLarge);
}

TEST(BatchCompression, RefusesFramesWithoutASizeGarbageTruncatedAndTrailing) {
  const auto in = bytes_of(std::string(5000, 'x'));
  BatchDecompressor d;
  std::vector<std::byte> out;
  // A frame that does not declare its size: no bound to check, refused.
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  std::vector<std::byte> streamed(ZSTD_compressBound(in.size()));
  ZSTD_outBuffer ob{streamed.data(), streamed.size(), 0};
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  ASSERT_EQ(ZSTD_compressStream2(cctx, &ob, &ib, ZSTD_e_end), 0u);
  ZSTD_freeCCtx(cctx);
  streamed.resize(ob.pos);
  EXPECT_EQ(d.decompress(streamed, out, kMaxPayload), DecompressError::kNoSize);
  EXPECT_EQ(d.decompress(in, out, kMaxPayload), DecompressError::kNotZstd);
  EXPECT_EQ(d.decompress({}, out, kMaxPayload), DecompressError::kNotZstd);
  BatchCompressor c;
  std::vector<std::byte> packed;
  ASSERT_TRUE(c.compress(in, packed));
  const std::vector<std::byte> truncated(packed.begin(), packed.end() - 3);
  EXPECT_NE(d.decompress(truncated, out, kMaxPayload), DecompressError::kOk);
  std::vector<std::byte> twice = packed;
  twice.insert(twice.end(), packed.begin(), packed.end());
  EXPECT_EQ(d.decompress(twice, out, kMaxPayload), DecompressError::kCorrupt);
  std::vector<std::byte> flipped = packed;
  flipped[flipped.size() / 2] ^= std::byte{0x55};
  EXPECT_NE(d.decompress(flipped, out, kMaxPayload), DecompressError::kOk);
}

}  // namespace
}  // namespace citywatch::wire
