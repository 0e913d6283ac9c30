#include "common/batch_compression.h"

#include <endian.h>
#include <lz4.h>
#include <zstd.h>

#include <cstring>
#include <memory>

namespace citywatch::wire {

namespace {

constexpr std::size_t kBatchHeader = 12;  // u64 seq, u32 record count and encoding bits

std::uint32_t load_u32(const std::byte* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return le32toh(v);
}
void store_u32(std::byte* p, std::uint32_t v) {
  v = htole32(v);
  std::memcpy(p, &v, 4);
}

// Where zstd and lz4 write a batch before it is copied out, kept per thread: sizing the
// output vector to the compressor's bound instead would zero-fill it (a vector
// value-initialises) for the compressor to overwrite, several times the bytes of the copy on
// the agent's batches.
char* compress_block(std::size_t bound) {
  thread_local std::unique_ptr<char[]> block;
  thread_local std::size_t size = 0;
  if (size < bound) {
    block = std::make_unique_for_overwrite<char[]>(bound);
    size = bound;
  }
  return block.get();
}

// out becomes the n bytes compressed into block. `out` is often a buffer reused from an
// earlier batch: resizing it zero-fills only what it grows by, which the copy overwrites.
void copy_out(const char* block, std::size_t n, std::vector<std::byte>& out,
              std::size_t offset = 0) {
  out.resize(offset + n);
  if (n > 0) std::memcpy(out.data() + offset, block, n);
}

}  // namespace

BatchCompressor::BatchCompressor(int level) : ctx_(ZSTD_createCCtx()), level_(level) {
  if (!ctx_) return;
  ZSTD_CCtx_setParameter(ctx_, ZSTD_c_compressionLevel, level_);
  // A content checksum (4 bytes): the frame CRC covers the wire, this the decompressor.
  ZSTD_CCtx_setParameter(ctx_, ZSTD_c_checksumFlag, 1);
}
BatchCompressor::~BatchCompressor() { ZSTD_freeCCtx(ctx_); }

bool BatchCompressor::compress(std::span<const std::byte> in, std::vector<std::byte>& out) {
  if (!ctx_) return false;
  const std::size_t bound = ZSTD_compressBound(in.size());
  char* block = compress_block(bound);
  // The whole input is known, so the frame header carries its size: the reader's bound.
  const std::size_t n = ZSTD_compress2(ctx_, block, bound, in.data(), in.size());
  if (ZSTD_isError(n)) {
    out.clear();
    return false;
  }
  copy_out(block, n, out);
  return true;
}

const char* to_string(DecompressError e) {
  switch (e) {
    case DecompressError::kOk:
      return "ok";
    case DecompressError::kNotZstd:
      return "not_zstd";
    case DecompressError::kNoSize:
      return "zstd_no_size";
    case DecompressError::kTooLarge:
      return "zstd_too_large";
    case DecompressError::kCorrupt:
      return "zstd_corrupt";
    case DecompressError::kPackedTooLarge:
      return "lz4_too_large";
    case DecompressError::kPackedCorrupt:
      return "lz4_corrupt";
  }
  return "zstd_corrupt";
}

BatchDecompressor::BatchDecompressor() : ctx_(ZSTD_createDCtx()) {}
BatchDecompressor::~BatchDecompressor() { ZSTD_freeDCtx(ctx_); }

DecompressError BatchDecompressor::decompress(std::span<const std::byte> in,
                                              std::vector<std::byte>& out, std::size_t max_size) {
  out.clear();
  const unsigned long long size = ZSTD_getFrameContentSize(in.data(), in.size());
  if (size == ZSTD_CONTENTSIZE_ERROR) return DecompressError::kNotZstd;
  if (size == ZSTD_CONTENTSIZE_UNKNOWN) return DecompressError::kNoSize;
  if (size > max_size) return DecompressError::kTooLarge;
  // One frame, exactly: trailing bytes (a second frame, padding) are not a batch.
  if (ZSTD_findFrameCompressedSize(in.data(), in.size()) != in.size())
    return DecompressError::kCorrupt;
  if (!ctx_) return DecompressError::kCorrupt;
  out.resize(static_cast<std::size_t>(size));
  const std::size_t n = ZSTD_decompressDCtx(ctx_, out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n) || n != size) {
    out.clear();
    return DecompressError::kCorrupt;
  }
  return DecompressError::kOk;
}

bool is_packed(std::span<const std::byte> payload) {
  return payload.size() >= kPackedHeaderSize && (load_u32(payload.data() + 8) & kPackedCount) != 0;
}

std::size_t unpacked_size(std::span<const std::byte> packed) {
  return is_packed(packed) ? kBatchHeader + load_u32(packed.data() + 12) : 0;
}

bool pack(std::span<const std::byte> batch, std::vector<std::byte>& out) {
  if (batch.size() < kBatchHeader || batch.size() - kBatchHeader > LZ4_MAX_INPUT_SIZE ||
      is_packed(batch)) {
    out.clear();
    return false;
  }
  const auto body = batch.subspan(kBatchHeader);
  const int bound = LZ4_compressBound(static_cast<int>(body.size()));
  char* block = compress_block(static_cast<std::size_t>(bound));
  const int n = LZ4_compress_default(reinterpret_cast<const char*>(body.data()), block,
                                     static_cast<int>(body.size()), bound);
  if (n <= 0 && !body.empty()) {
    out.clear();
    return false;
  }
  copy_out(block, static_cast<std::size_t>(n), out, kPackedHeaderSize);
  std::memcpy(out.data(), batch.data(), kBatchHeader);
  store_u32(out.data() + 8, load_u32(batch.data() + 8) | kPackedCount);
  store_u32(out.data() + 12, static_cast<std::uint32_t>(body.size()));
  return true;
}

DecompressError unpack(std::span<const std::byte> packed, std::vector<std::byte>& out,
                       std::size_t max_size) {
  out.clear();
  if (!is_packed(packed)) return DecompressError::kPackedCorrupt;
  const std::size_t body = load_u32(packed.data() + 12);
  if (max_size < kBatchHeader || body > max_size - kBatchHeader)
    return DecompressError::kPackedTooLarge;
  const auto block = packed.subspan(kPackedHeaderSize);
  // An lz4 block decodes to less than 256 bytes per byte of block (a match's length grows by
  // at most 255 per byte that encodes it): a body longer than that is refused before memory
  // is taken for it, so a small frame cannot make the collector allocate 16 MiB.
  if (block.size() > static_cast<std::size_t>(LZ4_MAX_INPUT_SIZE) || body > block.size() * 256 + 16)
    return DecompressError::kPackedCorrupt;
  out.resize(kBatchHeader + body);
  std::memcpy(out.data(), packed.data(), kBatchHeader);
  store_u32(out.data() + 8, load_u32(packed.data() + 8) & ~kPackedCount);
  // Safe decoding: never reads past the block nor writes past body bytes; a block that
  // decodes to fewer bytes than declared is as corrupt as one that does not decode.
  const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(block.data()),
                                    reinterpret_cast<char*>(out.data() + kBatchHeader),
                                    static_cast<int>(block.size()), static_cast<int>(body));
  if (n < 0 || static_cast<std::size_t>(n) != body) {
    out.clear();
    return DecompressError::kPackedCorrupt;
  }
  return DecompressError::kOk;
}

}  // namespace citywatch::wire
