#include "common/batch_compression.h"

#include <zstd.h>

namespace citywatch::wire {

BatchCompressor::BatchCompressor(int level) : ctx_(ZSTD_createCCtx()), level_(level) {
  if (!ctx_) return;
  ZSTD_CCtx_setParameter(ctx_, ZSTD_c_compressionLevel, level_);
  // A content checksum (4 bytes): the frame CRC covers the wire, this the decompressor.
  ZSTD_CCtx_setParameter(ctx_, ZSTD_c_checksumFlag, 1);
}
BatchCompressor::~BatchCompressor() { ZSTD_freeCCtx(ctx_); }

bool BatchCompressor::compress(std::span<const std::byte> in, std::vector<std::byte>& out) {
  if (!ctx_) return false;
  out.resize(ZSTD_compressBound(in.size()));
  // The whole input is known, so the frame header carries its size: the reader's bound.
  const std::size_t n = ZSTD_compress2(ctx_, out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n)) {
    out.clear();
    return false;
  }
  out.resize(n);
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

}  // namespace citywatch::wire
