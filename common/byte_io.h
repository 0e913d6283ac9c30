// Bounds-checked little-endian readers and writers for the wire codec.
//
// ByteReader never reads past its span: every get_* checks the remaining length first and,
// on a short read, sets a sticky failure flag and returns zero. Decoders read a whole
// structure and test ok() once, which keeps them short without giving up safety.
// ByteWriter appends to a caller-owned vector (reused across batches, so no per-record
// allocation once it has grown).
//
// Thread-safety: plain values over caller-owned memory.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace citywatch {

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> data) : data_(data) {}

  bool ok() const { return ok_; }
  std::size_t remaining() const { return data_.size() - pos_; }
  std::size_t position() const { return pos_; }

  std::uint8_t u8() { return static_cast<std::uint8_t>(get<1>()); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(get<2>()); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(get<4>()); }
  std::uint64_t u64() { return get<8>(); }
  std::int64_t i64() { return static_cast<std::int64_t>(get<8>()); }

  // Copies n bytes into out; fails (and copies nothing) if fewer remain.
  bool bytes(void* out, std::size_t n) {
    if (!take(n)) return false;
    std::memcpy(out, data_.data() + pos_ - n, n);
    return true;
  }
  // A view of the next n bytes, consumed; empty and failed if fewer remain.
  std::span<const std::byte> view(std::size_t n) {
    if (!take(n)) return {};
    return data_.subspan(pos_ - n, n);
  }
  bool skip(std::size_t n) { return take(n); }
  void fail() { ok_ = false; }
  // An unsigned LEB128 varint (7 bits a byte, low first): at most 10 bytes, the tenth
  // holding bit 63 alone; a longer or truncated one fails and reads as 0.
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!take(1)) return 0;
      const auto b = std::to_integer<std::uint8_t>(data_[pos_ - 1]);
      if (shift == 63 && b > 1) break;
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    ok_ = false;
    return 0;
  }

 private:
  bool take(std::size_t n) {
    if (!ok_ || n > remaining()) {
      ok_ = false;
      return false;
    }
    pos_ += n;
    return true;
  }
  template <int N>
  std::uint64_t get() {
    if (!take(N)) return 0;
    std::uint64_t v = 0;
    for (int i = N - 1; i >= 0; --i)
      v = (v << 8) | std::to_integer<std::uint8_t>(data_[pos_ - N + static_cast<std::size_t>(i)]);
    return v;
  }

  std::span<const std::byte> data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<std::byte>& out) : out_(out) {}

  void u8(std::uint8_t v) { put(v, 1); }
  void u16(std::uint16_t v) { put(v, 2); }
  void u32(std::uint32_t v) { put(v, 4); }
  void u64(std::uint64_t v) { put(v, 8); }
  void i64(std::int64_t v) { put(static_cast<std::uint64_t>(v), 8); }
  void bytes(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  // A string with a one-byte length; longer strings are cut at 255 bytes.
  void str8(std::string_view s) {
    const std::size_t n = s.size() < 255 ? s.size() : 255;
    u8(static_cast<std::uint8_t>(n));
    bytes(s.data(), n);
  }
  std::size_t size() const { return out_.size(); }
  // Overwrites a u16/u32 written earlier (lengths and counts known only at the end).
  void patch_u16(std::size_t at, std::uint16_t v) { patch(at, v, 2); }
  void patch_u32(std::size_t at, std::uint32_t v) { patch(at, v, 4); }

 private:
  void put(std::uint64_t v, int n) {
    const std::size_t at = out_.size();
    out_.resize(at + static_cast<std::size_t>(n));
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(out_.data() + at, &v, static_cast<std::size_t>(n));
    } else {
      for (int i = 0; i < n; ++i)
        out_[at + static_cast<std::size_t>(i)] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
    }
  }
  void patch(std::size_t at, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i)
      out_[at + static_cast<std::size_t>(i)] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
  }
  std::vector<std::byte>& out_;
};

}  // namespace citywatch
