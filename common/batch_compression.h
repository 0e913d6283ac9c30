// Batch compression on the wire (docs/wire-protocol.md, "Compression"): an agent on a thin
// link to a branch site may send BATCH payloads as one zstd frame each, once the collector's
// HELLO_ACK has said it reads them. Spools keep batches uncompressed: a batch is compressed
// for the session it is sent on, so it can go to a collector that does not read zstd.
//
// The reader is bounded: a frame must declare its decompressed size, at most kMaxPayload
// (what an uncompressed BATCH may be), and must decompress to exactly that; anything else is
// refused before memory for it is taken, so a small frame cannot expand without bound.
//
// Packed batches (docs/wire-protocol.md, "Packed batches") are the other way: the agent
// packs each batch with lz4 as it seals it, so the spool, its syncs, TLS and the link all
// carry about a fifth of the bytes, and sends it as it is to a collector that reads packed
// batches (unpacking it first for one that does not). A packed batch keeps the batch's
// 12-byte header, with kPackedCount set in its record count, so its sequence reads as any
// batch's; then a u32 with the length of the batch's body (the bytes after its header) and
// one lz4 block of that body. unpack() is bounded like the zstd reader: the declared length
// is checked against max_size before memory is taken, and the block must decode to exactly it.
//
// Thread-safety: none; one compressor or decompressor per session (each holds a zstd
// context, reused from batch to batch). pack() and unpack() are free functions, safe anywhere.
#pragma once

#include <cstddef>
#include <cstdint>
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

enum class DecompressError {
  kOk,
  kNotZstd,
  kNoSize,
  kTooLarge,
  kCorrupt,
  kPackedTooLarge,  // a packed batch declares a body over the bound
  kPackedCorrupt,   // not a packed batch, or its block does not decode to what it declares
};
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

// The record-count bit of a packed batch (bit 31 is the compact encoding's).
inline constexpr std::uint32_t kPackedCount = 0x4000'0000u;
inline constexpr std::size_t kPackedHeaderSize = 16;  // seq, count, body length

// True if payload is a packed batch (its header says so; its body is not checked).
bool is_packed(std::span<const std::byte> payload);
// Replaces out with batch packed; false (out cleared) if batch is shorter than a batch header
// or already packed. lz4's fast mode: about 1.6 GB/s and 4-5x smaller for the agent's batches.
bool pack(std::span<const std::byte> batch, std::vector<std::byte>& out);
// The size of the batch that a packed batch holds, as it declares (0 if not packed).
std::size_t unpacked_size(std::span<const std::byte> packed);
// Replaces out with the batch that packed holds, at most max_size bytes.
DecompressError unpack(std::span<const std::byte> packed, std::vector<std::byte>& out,
                       std::size_t max_size);

}  // namespace citywatch::wire
