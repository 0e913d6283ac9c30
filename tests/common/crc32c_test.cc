#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string_view>
#include <vector>

namespace citywatch {
namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> out(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) out[i] = static_cast<std::byte>(s[i]);
  return out;
}

// Bit-at-a-time definition, to check the slice-by-8 tables against.
std::uint32_t reference_crc32c(std::span<const std::byte> data) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::byte b : data) {
    c ^= static_cast<std::uint32_t>(b);
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1u) ? 0x82F63B78u : 0u);
  }
  return ~c;
}

// RFC 3720 appendix B.4.
TEST(Crc32cTest, Rfc3720Vectors) {
  std::vector<std::byte> buf(32, std::byte{0});
  EXPECT_EQ(crc32c(buf), 0x8A9136AAu);
  std::fill(buf.begin(), buf.end(), std::byte{0xFF});
  EXPECT_EQ(crc32c(buf), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<std::byte>(i);
  EXPECT_EQ(crc32c(buf), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<std::byte>(31 - i);
  EXPECT_EQ(crc32c(buf), 0x113FDB5Cu);
}

TEST(Crc32cTest, CheckValue) { EXPECT_EQ(crc32c(bytes_of("123456789")), 0xE3069283u); }

TEST(Crc32cTest, Empty) { EXPECT_EQ(crc32c({}), 0u); }

TEST(Crc32cTest, MatchesBitwiseReferenceAtEveryLengthAndAlignment) {
  std::vector<std::byte> buf(300);
  std::uint32_t x = 12345;
  for (auto& b : buf) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::byte>(x >> 16);
  }
  for (std::size_t start = 0; start < 8; ++start) {
    for (std::size_t len = 0; start + len <= buf.size(); len += 7) {
      std::span<const std::byte> s(buf.data() + start, len);
      ASSERT_EQ(crc32c(s), reference_crc32c(s)) << "start " << start << " len " << len;
    }
  }
}

TEST(Crc32cTest, LongBuffersMatchTheTableAcrossTheThreeWayBlockBoundaries) {
  // The hardware path cuts buffers of 3 x 8 KiB and 3 x 256 bytes into three interleaved
  // streams and joins them: every length around those sizes, at odd starts, against the
  // table-driven path (itself checked bit by bit above).
  std::vector<std::byte> buf(3 * 8192 * 2 + 1024);
  std::uint32_t x = 987654321;
  for (auto& b : buf) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<std::byte>(x >> 24);
  }
  std::vector<std::size_t> lens;
  for (std::size_t base : {std::size_t{768}, std::size_t{3 * 8192}, std::size_t{2 * 3 * 8192}})
    for (std::size_t d = 0; d < 24; ++d) {
      lens.push_back(base + d);
      if (base >= d) lens.push_back(base - d);
    }
  for (std::size_t len = 700; len < 1000; len += 13) lens.push_back(len);
  for (std::size_t len : {std::size_t{1000}, std::size_t{8191}, std::size_t{40000},
                          std::size_t{73507}, buf.size() - 8})
    lens.push_back(len);
  for (std::size_t start : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{7}})
    for (std::size_t len : lens) {
      if (start + len > buf.size()) continue;
      ASSERT_EQ(crc32c_extend(0x1234567u, buf.data() + start, len),
                crc32c_extend_portable(0x1234567u, buf.data() + start, len))
          << "start " << start << " len " << len;
    }
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  const auto data = bytes_of("The quick brown fox jumps over the lazy dog, twice over.");
  const std::uint32_t whole = crc32c(data);
  for (std::size_t split = 0; split <= data.size(); ++split) {
    std::span<const std::byte> all(data);
    EXPECT_EQ(crc32c_extend(crc32c(all.first(split)), all.subspan(split)), whole) << split;
  }
}

}  // namespace
}  // namespace citywatch

namespace citywatch {
namespace {

// The hardware path (when the CPU has SSE4.2) and the table must agree everywhere.
TEST(Crc32cTest, PortablePathMatchesDispatchedPath) {
  std::vector<std::byte> buf(300);
  std::uint32_t x = 777;
  for (auto& b : buf) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::byte>(x >> 16);
  }
  for (std::size_t start = 0; start < 8; ++start) {
    for (std::size_t len = 0; start + len <= buf.size(); len += 5) {
      const std::byte* p = buf.data() + start;
      ASSERT_EQ(crc32c_extend(0x1234u, p, len), crc32c_extend_portable(0x1234u, p, len))
          << "start " << start << " len " << len;
    }
  }
}

}  // namespace
}  // namespace citywatch
