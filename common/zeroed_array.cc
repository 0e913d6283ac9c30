#include "common/zeroed_array.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <new>

namespace citywatch::zeroed_detail {
namespace {

constexpr std::size_t kHuge = std::size_t{2} << 20;  // x86-64 and arm64 (4 KiB pages) PMD size

std::size_t page_size() {
  const long p = sysconf(_SC_PAGESIZE);
  return p > 0 ? static_cast<std::size_t>(p) : 4096;
}

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

}  // namespace

void* map(std::size_t bytes, std::size_t& mapped) {
  const int prot = PROT_READ | PROT_WRITE;
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  // From half a huge page up, a table is rounded up to a whole one: a table probed at random
  // soon touches every page, and one 2 MiB fault costs far less than 256 or more small ones.
  if (bytes < kHuge / 2) {
    mapped = round_up(bytes, page_size());
    void* p = mmap(nullptr, mapped, prot, flags, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return p;
  }
  // Over-map by one huge page and trim, so the table starts on a 2 MiB boundary: only an
  // aligned 2 MiB range can be backed by a huge page.
  mapped = round_up(bytes, kHuge);
  void* raw = mmap(nullptr, mapped + kHuge, prot, flags, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = round_up(start, kHuge);
  if (aligned > start) munmap(raw, aligned - start);
  const std::size_t tail = (start + mapped + kHuge) - (aligned + mapped);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + mapped), tail);
  void* p = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
  madvise(p, mapped, MADV_HUGEPAGE);  // advice only: without THP the table has 4 KiB pages
#endif
  return p;
}

void prefault(void* p, std::size_t bytes) noexcept {
#ifdef MADV_POPULATE_WRITE
  madvise(p, bytes, MADV_POPULATE_WRITE);  // EINVAL before Linux 5.14: pages fault in as used
#else
  (void)p;
  (void)bytes;
#endif
}

void unmap(void* p, std::size_t mapped) noexcept { munmap(p, mapped); }

void rezero(void* p, std::size_t bytes) noexcept { std::memset(p, 0, bytes); }

}  // namespace citywatch::zeroed_detail
