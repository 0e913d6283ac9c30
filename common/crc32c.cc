#include "common/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace citywatch {
namespace {

constexpr std::uint32_t kPoly = 0x82F63B78u;  // reversed Castagnoli polynomial

constexpr std::array<std::array<std::uint32_t, 256>, 8> make_tables() {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][i] = c;
  }
  for (std::size_t s = 1; s < 8; ++s)
    for (std::size_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  return t;
}

constexpr auto kTables = make_tables();

std::uint32_t crc32c_table(std::uint32_t crc, const void* data, std::size_t n) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::uint32_t c = ~crc;
  while (n >= 8) {
    const std::uint32_t lo = c ^ (std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 |
                                  std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24);
    c = kTables[7][lo & 0xff] ^ kTables[6][(lo >> 8) & 0xff] ^ kTables[5][(lo >> 16) & 0xff] ^
        kTables[4][lo >> 24] ^ kTables[3][p[4]] ^ kTables[2][p[5]] ^ kTables[1][p[6]] ^
        kTables[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ kTables[0][(c ^ *p++) & 0xff];
  return ~c;
}

#if defined(__x86_64__)
// Three streams at once. The CRC32 instruction takes 3 cycles but issues one per cycle, so a
// single chain of them runs at a third of the unit's speed. A long buffer is cut in three
// equal blocks whose CRCs run interleaved; the first block's CRC is then carried across the
// second and third (as if followed by that many zero bytes: a 32x32 GF(2) operator, applied
// through four byte tables) and the others XORed in. The technique is Mark Adler's
// (crc32c.c, 2013); block lengths are powers of two so the operators are squarings.
constexpr std::size_t kLongBlock = 8192;
constexpr std::size_t kShortBlock = 256;

constexpr std::uint32_t gf2_times(const std::array<std::uint32_t, 32>& mat, std::uint32_t vec) {
  std::uint32_t sum = 0;
  for (int i = 0; vec != 0; ++i, vec >>= 1)
    if (vec & 1) sum ^= mat[static_cast<std::size_t>(i)];
  return sum;
}

constexpr std::array<std::uint32_t, 32> gf2_square(const std::array<std::uint32_t, 32>& mat) {
  std::array<std::uint32_t, 32> sq{};
  for (std::size_t n = 0; n < 32; ++n) sq[n] = gf2_times(mat, mat[n]);
  return sq;
}

// Byte tables of the operator that runs a CRC register through `len` zero bytes (a power of
// two), so that shift(crc) == the register after those zeros.
struct ZerosOp {
  std::array<std::array<std::uint32_t, 256>, 4> table{};
  constexpr explicit ZerosOp(std::size_t len) {
    std::array<std::uint32_t, 32> op{};
    op[0] = kPoly;  // one zero bit: bit 0 out feeds the polynomial back, the rest shift down
    for (std::size_t n = 1; n < 32; ++n) op[n] = std::uint32_t{1} << (n - 1);
    for (std::size_t bits = 1; bits < 8 * len; bits *= 2) op = gf2_square(op);
    for (std::uint32_t b = 0; b < 256; ++b)
      for (std::size_t k = 0; k < 4; ++k) table[k][b] = gf2_times(op, b << (8 * k));
  }
  std::uint32_t shift(std::uint32_t crc) const {
    return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^ table[2][(crc >> 16) & 0xff] ^
           table[3][crc >> 24];
  }
};

constexpr ZerosOp kLongShift(kLongBlock);
constexpr ZerosOp kShortShift(kShortBlock);

__attribute__((target("sse4.2"))) inline std::uint64_t crc_word(std::uint64_t c,
                                                                const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm_crc32_u64(c, v);
}

__attribute__((target("sse4.2"))) std::uint64_t crc_three_ways(std::uint64_t c0,
                                                               const std::uint8_t*& p,
                                                               std::size_t& n, std::size_t block,
                                                               const ZerosOp& shift) {
  while (n >= 3 * block) {
    std::uint64_t c1 = 0, c2 = 0;
    for (const std::uint8_t* end = p + block; p < end; p += 8) {
      c0 = crc_word(c0, p);
      c1 = crc_word(c1, p + block);
      c2 = crc_word(c2, p + 2 * block);
    }
    c0 = shift.shift(static_cast<std::uint32_t>(c0)) ^ c1;
    c0 = shift.shift(static_cast<std::uint32_t>(c0)) ^ c2;
    p += 2 * block;
    n -= 3 * block;
  }
  return c0;
}

// SSE4.2's CRC32 instruction computes exactly this polynomial, 8 bytes per instruction.
// Compiled for SSE4.2 here only and called only after the runtime CPU check below, so the
// binary still runs on any x86-64.
__attribute__((target("sse4.2"))) std::uint32_t crc32c_hw(std::uint32_t crc, const void* data,
                                                          std::size_t n) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::uint64_t c = ~crc;
  if (n >= 3 * kShortBlock) [[unlikely]] {  // frames and batches, not headers
    c = crc_three_ways(c, p, n, kLongBlock, kLongShift);
    c = crc_three_ways(c, p, n, kShortBlock, kShortShift);
  }
  for (; n >= 8; p += 8, n -= 8) c = crc_word(c, p);
  auto c32 = static_cast<std::uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}

using CrcFn = std::uint32_t (*)(std::uint32_t, const void*, std::size_t);
// Chosen once, at static initialisation; constant afterwards (not mutable state).
const CrcFn kCrc = __builtin_cpu_supports("sse4.2") ? crc32c_hw : crc32c_table;
#endif

}  // namespace

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n) {
#if defined(__x86_64__)
  return kCrc(crc, data, n);
#else
  return crc32c_table(crc, data, n);
#endif
}

std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data, std::size_t n) {
  return crc32c_table(crc, data, n);
}

}  // namespace citywatch
