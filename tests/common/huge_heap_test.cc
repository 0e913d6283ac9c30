// prefer_huge_heap() in a process of its own (it changes the allocator for the whole
// process): the heap's first step is advised for huge pages, and blocks up to a batch's
// size still come from the heap.
#include "common/huge_heap.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace citywatch {
namespace {

constexpr std::size_t kReserve = std::size_t{16} << 20;

// From the mapping in /proc/self/smaps that holds `addr`: its header line (which ends in
// the mapping's name) and its VmFlags line; both "" if no mapping holds it.
struct Mapping {
  std::string header, flags;
};
[[maybe_unused]] Mapping mapping_at(std::uintptr_t addr) {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  Mapping m;
  bool inside = false;
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    char dash = 0;
    if (std::sscanf(line.c_str(), "%lx%c%lx ", &lo, &dash, &hi) == 3 && dash == '-') {
      inside = addr >= lo && addr < hi;
      if (inside) m.header = line;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      m.flags = line;
      return m;
    }
  }
  return {};
}

[[maybe_unused]] std::string thp_mode() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string s;
  std::getline(in, s);
  return s;
}

[[maybe_unused]] long minor_faults() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return r.ru_minflt;
}

TEST(HugeHeap, AdvisesTheHeapsFirstStepAndKeepsBatchesInIt) {
  const auto heap_before = reinterpret_cast<std::uintptr_t>(sbrk(0));
  const std::size_t advised = prefer_huge_heap(kReserve);
#ifdef __SANITIZE_ADDRESS__
  // ASan's allocator ignores mallopt(): nothing is advised and nothing else changes.
  EXPECT_EQ(advised, 0u);
  (void)heap_before;
#else
  // 16 MiB of growth holds at least seven whole, aligned 2 MiB ranges.
  ASSERT_GE(advised, std::size_t{14} << 20);
  // The advised range: from the first 2 MiB boundary past the old end.
  const std::uintptr_t lo =
      (heap_before + (std::uintptr_t{2} << 20) - 1) & ~((std::uintptr_t{2} << 20) - 1);
  EXPECT_NE(mapping_at(lo).flags.find(" hg"), std::string::npos) << mapping_at(lo).flags;
  EXPECT_NE(mapping_at(lo + advised - 1).flags.find(" hg"), std::string::npos);

  // A 600 KiB block (a batch under the 1 MiB default) comes from the heap, not from a
  // mapping of its own that would be faulted in anew each time.
  std::vector<std::byte> batch(600 << 10);
  const Mapping m = mapping_at(reinterpret_cast<std::uintptr_t>(batch.data()));
  EXPECT_TRUE(m.header.ends_with("[heap]")) << m.header;

  // Where the kernel gives huge pages on advice, touching 8 MiB of the advised heap costs a
  // handful of faults instead of 2,048.
  if (thp_mode().find("[never]") == std::string::npos) {
    const long before = minor_faults();
    std::vector<std::vector<std::byte> > blocks;
    for (int i = 0; i < 16; ++i) blocks.emplace_back(std::size_t{512} << 10, std::byte{1});
    const long faults = minor_faults() - before;
    EXPECT_LT(faults, 256) << "8 MiB of heap took " << faults << " faults (THP: " << thp_mode()
                           << ")";
  }
#endif
}

}  // namespace
}  // namespace citywatch
