#include "common/huge_heap.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>

namespace citywatch {
namespace {

constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;  // x86-64 and arm64 PMD size
// Blocks below the mmap threshold come from the heap; these make it grow.
constexpr std::size_t kProbe = std::size_t{120} << 10;
// Above a batch's 1 MiB default limit (agent_config.h), below its 16 MiB maximum.
constexpr std::size_t kMmapThreshold = std::size_t{4} << 20;

char* heap_end() { return static_cast<char*>(sbrk(0)); }

}  // namespace

std::size_t prefer_huge_heap(std::size_t reserve) {
  // Every growth of the heap now asks for `reserve` more, and a trim keeps that much. Setting
  // the pad also fixes glibc's mmap threshold (otherwise raised as big blocks are freed) at
  // 128 KiB, which would map and unmap, and fault in, every batch buffer between that and a
  // batch's 1 MiB default limit: so the threshold is set above it.
  if (mallopt(M_TOP_PAD, static_cast<int>(reserve)) != 1) return 0;
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMmapThreshold));
  // Make the heap grow once now, so the step to advise is in place: a few small blocks,
  // freed at once (the top pad keeps the memory in the heap).
  char* const before = heap_end();
  std::array<void*, 4> probes{};
  for (void*& p : probes) {
    if (heap_end() - before >= static_cast<std::ptrdiff_t>(reserve)) break;
    p = std::malloc(kProbe);
  }
  char* const after = heap_end();
  for (void* p : probes) std::free(p);
  // Only whole, aligned 2 MiB ranges can be huge pages.
  const auto lo = (reinterpret_cast<std::uintptr_t>(before) + kHuge - 1) & ~(kHuge - 1);
  const auto hi = reinterpret_cast<std::uintptr_t>(after) & ~(kHuge - 1);
  if (hi <= lo) return 0;
#ifdef MADV_HUGEPAGE
  if (madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE) != 0) return 0;
  return hi - lo;
#else
  return 0;
#endif
}

}  // namespace citywatch
