#include "common/zeroed_array.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdint>
#include <cstring>
#include <utility>

namespace citywatch {
namespace {

struct Slot {
  std::uint64_t key = 0;
  std::int64_t when = 0;
  std::uint32_t count = 0;
};

TEST(ZeroedArray, StartsAllZeroAtEverySize) {
  // Below a page, a few pages, and past the huge-page threshold (aligned and trimmed).
  for (std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{5000}, std::size_t{300000}}) {
    ZeroedArray<Slot> a(n);
    ASSERT_EQ(a.size(), n);
    for (const Slot& s : a) {
      ASSERT_EQ(s.key, 0u);
      ASSERT_EQ(s.when, 0);
      ASSERT_EQ(s.count, 0u);
    }
    a[n - 1].key = 7;  // the last element is writable
    EXPECT_EQ(a[n - 1].key, 7u);
  }
}

TEST(ZeroedArray, HugeTablesStartOnA2MiBBoundary) {
  ZeroedArray<std::uint32_t> a(std::size_t{1} << 20);  // 4 MiB
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % (std::uintptr_t{2} << 20), 0u);
  // From 1 MiB (the packet-event extractor's 1.5 MiB budget table): one huge page.
  ZeroedArray<Slot> b(65536);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % (std::uintptr_t{2} << 20), 0u);
  b[65535].key = 1;                                         // the last element is writable
  ZeroedArray<std::uint8_t> c((std::size_t{1} << 20) - 1);  // under 1 MiB: small pages
  c[c.size() - 1] = 1;
}

long minor_faults() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return r.ru_minflt;
}

// A prefaulted table's pages are written at construction: filling it later takes no faults,
// where the same table made plainly takes one per 4 KiB page (128 for 512 KiB). Still zero.
TEST(ZeroedArray, APrefaultedTableFillsWithoutFaults) {
  constexpr std::size_t kBytes = 512 << 10;
  ZeroedArray<std::uint8_t> plain(kBytes);
  long before = minor_faults();
  std::memset(plain.data(), 1, kBytes);
  const long plain_faults = minor_faults() - before;

  ZeroedArray<std::uint8_t> ring(kBytes, ZeroedArray<std::uint8_t>::Prefault{});
  for (std::size_t i = 0; i < kBytes; i += 4096) ASSERT_EQ(ring[i], 0u) << "at byte " << i;
  before = minor_faults();
  std::memset(ring.data(), 1, kBytes);
  const long ring_faults = minor_faults() - before;

  EXPECT_GE(plain_faults, 100) << "the plain table should fault page by page";
  // A few may come from a sanitizer's shadow memory.
  EXPECT_LT(ring_faults, 24) << "filling a prefaulted 512 KiB table took " << ring_faults
                             << " faults (a plain one: " << plain_faults << ")";
}

TEST(ZeroedArray, ClearZeroesAgain) {
  ZeroedArray<std::uint64_t> a(70000);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = i + 1;
  a.clear();
  for (std::uint64_t v : a) ASSERT_EQ(v, 0u);
}

TEST(ZeroedArray, MovesOwnership) {
  ZeroedArray<std::uint64_t> a(1000);
  a[3] = 42;
  ZeroedArray<std::uint64_t> b(std::move(a));
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b[3], 42u);
  ZeroedArray<std::uint64_t> c(10);
  c = std::move(b);
  EXPECT_EQ(c.size(), 1000u);
  EXPECT_EQ(c[3], 42u);
  ZeroedArray<std::uint64_t> empty;
  EXPECT_EQ(empty.size(), 0u);
}

}  // namespace
}  // namespace citywatch
