// Transparent huge pages for the start of the process heap.
//
// Both daemons allocate their batch buffers, records and decoder state from glibc's main
// heap, which grows a few 4 KiB pages at a time and is faulted in page by page. Where a page
// fault is dear (a virtual machine: about 15 us each on the CI host) that is a cost a short
// run such as `citywatch-agent -r` feels: 1,325 faults on a 1M-packet file, 811 with this
// (bench/vs_softflowd.sh's input; docs/packet-capture.md). prefer_huge_heap() makes
// the heap grow in steps of `reserve` bytes, kept when freed (glibc's M_TOP_PAD), and asks
// for transparent huge pages over the first step (MADV_HUGEPAGE; honoured when the kernel's
// THP mode is `madvise` or `always`), so that memory costs one fault per 2 MiB.
//
// Blocks up to 4 MiB come from the heap (glibc would map blocks from 128 KiB up on their own
// once the pad is set). Advice only: with THP off, or when the heap cannot grow, nothing
// changes but the growth step and that threshold; under another allocator (ASan, which
// ignores mallopt) nothing changes at all. Resident memory can exceed a 4 KiB-paged heap's
// by up to one huge page per 2 MiB touched. Call once at the start of main(), before threads.
#pragma once

#include <cstddef>

namespace citywatch {

// Returns the bytes advised (0 if none).
std::size_t prefer_huge_heap(std::size_t reserve);

}  // namespace citywatch
