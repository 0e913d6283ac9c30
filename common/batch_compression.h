// Batch compression on the wire (docs/wire-protocol.md, "Compression"): an agent on a thin
// link to a branch site may send BATCH payloads as one zstd frame each, once the collector's
// HELLO_ACK has said it reads them. Spools keep batches uncompressed: a batch is compressed
// for the session it is sent on, so it can go to a collector that does not read zstd.
//
// The reader is bounded: a frame must declare its decompressed size, at most kMaxPayload
// (what an uncompressed BATCH may be), and must decompress to exactly that; anything else is
// refused before memory for it is taken, so a small frame cannot expand without bound.
//
// Thread-safety: none; one compressor or decompressor per session (each holds a zstd
// context, reused from batch to batch).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

typedef struct ZSTD_CCtx_s ZSTD_CCtx;
typedef struct ZSTD_DCtx_s ZSTD_DCtx;

namespace citywatch::wire {

class BatchCompressor {
 public:
  explicit BatchCompressor(int level = 1);
  ~BatchCompressor();
  BatchCompressor(const BatchCompressor&) = delete;
  BatchCompressor& operator=(const BatchCompressor&) = delete;
  // Replaces out with the zstd frame of in. False only if zstd fails (out of memory).
  bool compress(std::span<const std::byte> in, std::vector<std::byte>& out);

 private:
  ZSTD_CCtx* ctx_;
  int level_;
};

enum class DecompressError { kOk, kNotZstd, kNoSize, kTooLarge, kCorrupt };
const char* to_string(DecompressError e);

class BatchDecompressor {
 public:
  BatchDecompressor();
  ~BatchDecompressor();
  BatchDecompressor(const BatchDecompressor&) = delete;
  BatchDecompressor& operator=(const BatchDecompressor&) = delete;
  // Replaces out with the content of the zstd frame in, at most max_size bytes.
  DecompressError decompress(std::span<const std::byte> in, std::vector<std::byte>& out,
                             std::size_t max_size);

 private:
  ZSTD_DCtx* ctx_;
};

}  // namespace citywatch::wire
