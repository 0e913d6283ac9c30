// libFuzzer target: capture files as `citywatch-agent -r` reads them (PacketSource's own
// reader for classic pcap, with O_DIRECT and through the page cache; libpcap for the rest,
// and for any file with a BPF filter, which the agent applies per record), from a file whose
// bytes are the input: any header, record lengths, truncation. Every frame is read to the end
// or to the error; nothing may read outside the buffer, hang or grow without bound.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/capture/packet_source.h"

using namespace citywatch;
using namespace citywatch::agent;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const int fd = memfd_create("pcap-fuzz", MFD_CLOEXEC);
  if (fd < 0) return 0;
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  // Both ways the fast path reads a classic pcap file: with O_DIRECT (memfd is shmem, which
  // takes it) and through the page cache; then through libpcap with a filter.
  for (const int way : {0, 1, 2}) {
    CaptureOptions o;
    o.file = "/proc/self/fd/" + std::to_string(fd);
    o.file_direct_io = way == 0;
    if (way == 2) o.bpf_filter = "tcp or udp port 53 or arp";
    Status err;
    if (auto src = PacketSource::open(o, err)) {
      std::uint64_t bytes = 0;
      const auto fn = [&bytes](std::int64_t, std::span<const std::byte> frame, std::uint32_t) {
        for (std::byte b : frame) bytes += static_cast<std::uint8_t>(b);  // touch every byte
      };
      // A record is at least 16 bytes: the input cannot hold more records than this.
      for (std::size_t reads = 0; reads <= size / 16 + 1; ++reads)
        if (src->dispatch(64, fn, err) != PacketSource::ReadResult::kPackets) break;
    }
  }
  ::close(fd);
  return 0;
}
