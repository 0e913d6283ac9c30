#include "common/huge_heap.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
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
// The most written below the advised range: up to one huge page of alignment, and the
// probes' blocks (below). Start-up's small blocks land there first, then batch buffers.
constexpr std::uintptr_t kPopulate = kHuge + 4 * kProbe;

char* heap_end() { return static_cast<char*>(sbrk(0)); }

// Writes the small pages from the heap's free top up to `lo`, where the huge pages start, in
// one call: what is allocated next (TLS contexts, configuration: a few hundred KiB in many
// small blocks; then the first batch buffers) lands there, and each page would otherwise cost
// a fault of its own (12-15 us in the bench's virtual machine against 0.7-1.2 us per page
// written this way). Writing only the first 1 MiB left the agent's first batches 170 faults
// (bench/vs_softflowd.sh). Linux 5.14 and later; elsewhere the pages are faulted in as before.
void populate_below(std::uintptr_t lo) {
#ifdef MADV_POPULATE_WRITE
  void* first = std::malloc(kProbe);
  if (first == nullptr) return;
  const std::uintptr_t page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const std::uintptr_t from = reinterpret_cast<std::uintptr_t>(first) & ~(page - 1);
  std::free(first);
  if (from >= lo) return;
  madvise(reinterpret_cast<void*>(from), std::min<std::uintptr_t>(lo - from, kPopulate),
          MADV_POPULATE_WRITE);
#else
  (void)lo;
#endif
}

}  // namespace

HugeHeap prefer_huge_heap(std::size_t reserve) {
  // Every growth of the heap now asks for `reserve` more, and a trim keeps that much. Setting
  // the pad also fixes glibc's mmap threshold (otherwise raised as big blocks are freed) at
  // 128 KiB, which would map and unmap, and fault in, every batch buffer between that and a
  // batch's 1 MiB default limit: so the threshold is set above it.
  if (mallopt(M_TOP_PAD, static_cast<int>(reserve)) != 1) return {};
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMmapThreshold));
  // Make the heap grow once now, so the step to advise is in place: a few small blocks,
  // freed at once (the top pad keeps the memory in the heap).
  char* const before = heap_end();
  std::array<void*, 4> probes{};
  std::uintptr_t touched = reinterpret_cast<std::uintptr_t>(before);
  for (void*& p : probes) {
    if (heap_end() - before >= static_cast<std::ptrdiff_t>(reserve)) break;
    p = std::malloc(kProbe);
    // malloc wrote a chunk header just past each block: the 2 MiB range holding it already
    // has small pages, so the advice starts above it.
    if (p) touched = std::max(touched, reinterpret_cast<std::uintptr_t>(p) + kProbe + 64);
  }
  for (void* p : probes) std::free(p);
  // The end after the frees: freeing the probes trims the heap back to the pad.
  const auto end = reinterpret_cast<std::uintptr_t>(heap_end());
  // Only whole, aligned 2 MiB ranges can be huge pages.
  const std::uintptr_t lo = (touched + kHuge - 1) & ~(kHuge - 1);
  const std::uintptr_t hi = end & ~(kHuge - 1);
  if (hi <= lo) return {};
#ifdef MADV_HUGEPAGE
  if (madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE) != 0) return {};
  populate_below(lo);
  return {lo, hi - lo};
#else
  return {};
#endif
}

}  // namespace citywatch
