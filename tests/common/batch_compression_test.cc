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

// A compact batch of `flows` UDP flows, one millisecond apart, as an agent's flow batches.
std::vector<std::byte> flow_batch(std::uint64_t seq, int flows, std::uint64_t packets,
                                  std::uint64_t bytes) {
  BatchEncoder enc;
  enc.begin();
  for (int i = 0; i < flows; ++i) {
    const std::int64_t t = 1'700'000'000'000'000'000 + i * 1'000'000;
    FlowRecord f;
    const std::uint8_t src[4] = {10, 0, 0, 1}, dst[4] = {10, 0, 1, static_cast<std::uint8_t>(i)};
    f.src = IpAddr::v4(src);
    f.dst = IpAddr::v4(dst);
    f.src_port = static_cast<std::uint16_t>(40000 + i);
    f.dst_port = 53;
    f.protocol = 17;
    f.packets = packets;
    f.bytes = bytes + static_cast<std::uint64_t>(i);
    f.start_ns = f.end_ns = t;
    enc.add(t, f);
  }
  const auto payload = enc.finish(seq);
  return {payload.begin(), payload.end()};
}

// A packed batch keeps its sequence and encoding readable, is much smaller for real flow
// batches, and unpacks to the same bytes, which decode to the same records.
TEST(PackedBatch, RoundTripsAFlowBatchAndKeepsItsHeader) {
  const auto batch = flow_batch(77, 400, 10, 5000);
  std::vector<std::byte> packed, out;
  ASSERT_FALSE(is_packed(batch));
  ASSERT_TRUE(pack(batch, packed));
  ASSERT_TRUE(is_packed(packed));
  EXPECT_LT(packed.size() * 2, batch.size())
      << "packed " << packed.size() << " of " << batch.size();
  EXPECT_EQ(unpacked_size(packed), batch.size());
  std::uint64_t seq = 0;
  ASSERT_EQ(peek_batch_sequence(packed, seq), DecodeError::kOk);
  EXPECT_EQ(seq, 77u);
  // set_batch_sequence works on it as on any batch (the agent numbers worker batches late).
  set_batch_sequence(packed, 78);
  ASSERT_EQ(unpack(packed, out, kMaxPayload), DecompressError::kOk);
  std::vector<std::byte> want = batch;
  set_batch_sequence(want, 78);
  EXPECT_EQ(out, want);
  EXPECT_EQ(batch_encoding(out), Encoding::kCompact);
  // Packed twice is refused: the second would hide the first's header.
  std::vector<std::byte> twice;
  EXPECT_FALSE(pack(packed, twice));
  // A batch that is only a header (no records) packs and unpacks too, into a buffer that
  // held a larger packed batch (the agent packs into buffers reused from sent batches): it
  // is resized to exactly the packed batch, or unpack would find trailing bytes.
  const auto empty = flow_batch(5, 0, 10, 0);
  ASSERT_TRUE(pack(empty, packed));
  ASSERT_EQ(unpack(packed, out, kMaxPayload), DecompressError::kOk);
  EXPECT_EQ(out, empty);
  // And the other way: a smaller buffer grows to the larger batch.
  ASSERT_TRUE(pack(batch, packed));
  ASSERT_EQ(unpack(packed, out, kMaxPayload), DecompressError::kOk);
  EXPECT_EQ(out, batch);
  // A refusal leaves the buffer empty, not holding the last batch.
  EXPECT_FALSE(pack(std::span(empty).first(11), packed));
  EXPECT_TRUE(packed.empty());
}

// What an outsider could send with the lz4 flag: every refusal is named, nothing reads or
// writes out of bounds (the suite runs under ASan), and no memory is taken for a size that
// is only declared.
TEST(PackedBatch, RefusesWhatIsNotAPackedBatchOrDeclaresTooMuch) {
  const auto batch = flow_batch(9, 200, 10, 7000);
  std::vector<std::byte> packed, out;
  ASSERT_TRUE(pack(batch, packed));
  EXPECT_EQ(unpack(batch, out, kMaxPayload), DecompressError::kPackedCorrupt);  // not packed
  EXPECT_EQ(unpack({}, out, kMaxPayload), DecompressError::kPackedCorrupt);
  EXPECT_EQ(unpack(std::span(packed).first(15), out, kMaxPayload), DecompressError::kPackedCorrupt);
  // A body length over the bound: refused before the block is looked at.
  std::vector<std::byte> bomb = packed;
  bomb[12] = bomb[13] = bomb[14] = std::byte{0xff};
  bomb[15] = std::byte{0x7f};
  EXPECT_EQ(unpack(bomb, out, kMaxPayload), DecompressError::kPackedTooLarge);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(unpack(packed, out, 100), DecompressError::kPackedTooLarge);
  // Within the bound, but more than a block of that size can decode to: refused unread.
  std::vector<std::byte> tiny(packed.begin(), packed.begin() + 16);
  tiny.resize(36, std::byte{0});
  tiny[12] = tiny[13] = std::byte{0};
  tiny[14] = std::byte{0x10};  // 1 MiB from a 20-byte block
  tiny[15] = std::byte{0};
  EXPECT_EQ(unpack(tiny, out, kMaxPayload), DecompressError::kPackedCorrupt);
  // The most a block can hold: 4 MiB of zeros pack to about 16 KiB, and unpack.
  const std::vector<std::byte> zeros(4u << 20);
  std::vector<std::byte> zeros_packed;
  ASSERT_TRUE(pack(zeros, zeros_packed));
  EXPECT_LT(zeros_packed.size() * 200, zeros.size());
  ASSERT_EQ(unpack(zeros_packed, out, kMaxPayload), DecompressError::kOk);
  EXPECT_EQ(out, zeros);
  // A body length one off either way, a truncated block, trailing bytes, flipped bytes.
  std::vector<std::byte> off = packed;
  off[12] = static_cast<std::byte>(static_cast<std::uint8_t>(off[12]) + 1);
  EXPECT_EQ(unpack(off, out, kMaxPayload), DecompressError::kPackedCorrupt);
  off[12] = static_cast<std::byte>(static_cast<std::uint8_t>(off[12]) - 2);
  EXPECT_EQ(unpack(off, out, kMaxPayload), DecompressError::kPackedCorrupt);
  EXPECT_EQ(unpack(std::span(packed).first(packed.size() - 1), out, kMaxPayload),
            DecompressError::kPackedCorrupt);
  std::vector<std::byte> trailing = packed;
  trailing.push_back(std::byte{0});
  EXPECT_EQ(unpack(trailing, out, kMaxPayload), DecompressError::kPackedCorrupt);
  for (std::size_t at = 16; at < packed.size(); at += 7) {
    std::vector<std::byte> flipped = packed;
    flipped[at] ^= std::byte{0xa5};
    const auto e = unpack(flipped, out, kMaxPayload);
    // lz4 has no checksum of its own (the frame's CRC32C covers the wire): a flip may still
    // decode, to other bytes of the declared length; it must never decode to more.
    if (e == DecompressError::kOk) {
      EXPECT_EQ(out.size(), batch.size());
    }
  }
  EXPECT_STREQ(to_string(DecompressError::kPackedCorrupt), "lz4_corrupt");
  EXPECT_STREQ(to_string(DecompressError::kPackedTooLarge), "lz4_too_large");
}

}  // namespace
}  // namespace citywatch::wire
