// Transparent huge pages for the start of the process heap.
//
// Both daemons allocate their batch buffers, records and decoder state from glibc's main
// heap, which is faulted in 4 KiB page by page. Where a page
// fault is dear (a virtual machine: about 15 us each on the CI host) that is a cost a short
// run such as `citywatch-agent -r` feels: 1,325 faults on a 1M-packet file, 811 with this
// (bench/vs_softflowd.sh's input; docs/packet-capture.md). prefer_huge_heap() makes
// the heap grow in steps of `reserve` bytes, kept when freed (glibc's M_TOP_PAD), and asks
// for transparent huge pages over the first step (MADV_HUGEPAGE; honoured when the kernel's
// THP mode is `madvise` or `always`), so that memory costs one fault per 2 MiB. The small
// pages between the heap's current top and the first whole huge page, where start-up's many
// small blocks and the first batch buffers land next, are written in one call instead
// (MADV_POPULATE_WRITE: up to 2.5 MiB, resident from the start).
//
// Blocks up to 4 MiB come from the heap (glibc would map blocks from 128 KiB up on their own
// once the pad is set). Advice only: with THP off, or when the heap cannot grow, nothing
// changes but the growth step and that threshold; under another allocator (ASan, which
// ignores mallopt) nothing changes at all. Resident memory can exceed a 4 KiB-paged heap's
// by up to one huge page per 2 MiB touched; and the pad applies to every arena: glibc keeps
// up to `reserve` of freed memory in each (the main heap and each thread's, e.g. a capture
// worker's after a backlog drains) instead of returning it, and maps new thread arenas at
// least that large (address space; counted against the commit limit only with
// vm.overcommit_memory=2). Call once at the start of main(), before threads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace citywatch {

struct HugeHeap {
  std::uintptr_t start = 0;  // the advised range; bytes == 0 if nothing was advised
  std::size_t bytes = 0;
};
HugeHeap prefer_huge_heap(std::size_t reserve);

}  // namespace citywatch
