// prefer_huge_heap() in a process of its own (it changes the allocator for the whole
// process): the heap's first step is advised for huge pages, and blocks up to a batch's
// size still come from the heap.
#include "common/huge_heap.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
  // The heap's free top just past a 2 MiB boundary (small blocks, kept), so that nearly 2 MiB
  // of small pages lie between it and the advised range: the case where writing only the
  // first 1 MiB of them left the rest to fault page by page.
  std::vector<void*> padding;
  padding.reserve(256);
  for (int i = 0; i < 256; ++i) {
    void* p = std::malloc(std::size_t{16} << 10);
    ASSERT_NE(p, nullptr);
    padding.push_back(p);
    if (reinterpret_cast<std::uintptr_t>(p) % (std::uintptr_t{2} << 20) < (32u << 10)) break;
  }
  struct FreeAll {
    std::vector<void*>& blocks;
    ~FreeAll() {
      for (void* p : blocks) std::free(p);
    }
  } free_padding{padding};
  const HugeHeap advised = prefer_huge_heap(kReserve);
#ifdef __SANITIZE_ADDRESS__
  // ASan's allocator ignores mallopt(): nothing is advised and nothing else changes.
  EXPECT_EQ(advised.bytes, 0u);
#else
  // 16 MiB of growth, less the 2 MiB ranges the probes touched and the alignment at either
  // end, holds at least five whole, aligned 2 MiB ranges.
  ASSERT_GE(advised.bytes, std::size_t{10} << 20);
  const std::uintptr_t lo = advised.start, hi = advised.start + advised.bytes;
  EXPECT_EQ(lo % (std::uintptr_t{2} << 20), 0u);
  EXPECT_TRUE(mapping_at(lo).header.ends_with("[heap]")) << mapping_at(lo).header;
  EXPECT_NE(mapping_at(lo).flags.find(" hg"), std::string::npos) << mapping_at(lo).flags;
  EXPECT_NE(mapping_at(hi - 1).flags.find(" hg"), std::string::npos);

  // What is allocated right after the call is already in memory: below the advised range
  // its pages were written in one call, inside it they are huge.
  if (thp_mode().find("[never]") == std::string::npos) {
    constexpr std::size_t kSmall = std::size_t{256} << 10;
    void* p = std::malloc(kSmall);
    ASSERT_NE(p, nullptr);
    const long before = minor_faults();
    std::memset(p, 1, kSmall);
    const long faults = minor_faults() - before;
    std::free(p);
    EXPECT_LT(faults, 4) << "writing 256 KiB allocated after the call took " << faults << " faults";
  }

  // Everything the heap hands out below the advised range is in memory already: blocks of
  // 64 KiB (batch buffers, say) written from the heap's free top up to the range.
  {
    constexpr std::size_t kBlock = std::size_t{64} << 10;
    std::vector<void*> below;
    for (int i = 0; i < 64; ++i) {
      void* p = std::malloc(kBlock);
      ASSERT_NE(p, nullptr);
      below.push_back(p);
      if (reinterpret_cast<std::uintptr_t>(p) + kBlock > lo) break;
    }
    const long before = minor_faults();
    for (std::size_t i = 0; i + 1 < below.size(); ++i) std::memset(below[i], 1, kBlock);
    const long faults = minor_faults() - before;
    for (void* p : below) std::free(p);
    EXPECT_LT(faults, 4) << below.size() - 1 << " blocks of 64 KiB below the advised range took "
                         << faults << " faults";
  }

  // A 600 KiB block (a batch under the 1 MiB default) comes from the heap, not from a
  // mapping of its own that would be faulted in anew each time.
  std::vector<std::byte> batch(600 << 10);
  const Mapping m = mapping_at(reinterpret_cast<std::uintptr_t>(batch.data()));
  EXPECT_TRUE(m.header.ends_with("[heap]")) << m.header;

  // Where the kernel gives huge pages on advice, writing 6 MiB or more of heap blocks inside
  // the advised range costs a few faults per 2 MiB instead of one per 4 KiB (1,536 or more).
  // Blocks below the range are taken and left untouched.
  if (thp_mode().find("[never]") == std::string::npos) {
    constexpr std::size_t kBlock = std::size_t{512} << 10;
    std::vector<void*> blocks;
    std::vector<void*> inside;
    for (int i = 0; i < 64 && inside.size() < 16; ++i) {
      void* p = std::malloc(kBlock);
      ASSERT_NE(p, nullptr);
      blocks.push_back(p);
      const auto at = reinterpret_cast<std::uintptr_t>(p);
      if (at >= lo && at + kBlock <= hi) inside.push_back(p);
    }
    ASSERT_GE(inside.size(), 12u) << "too few heap blocks inside the advised range";
    const long before = minor_faults();
    for (void* p : inside) std::memset(p, 1, kBlock);
    const long faults = minor_faults() - before;
    for (void* p : blocks) std::free(p);
    EXPECT_LT(faults, 64) << inside.size() << " blocks of 512 KiB took " << faults
                          << " faults (THP: " << thp_mode() << ")";
  }
#endif
}

}  // namespace
}  // namespace citywatch
