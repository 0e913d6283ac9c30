// Writes the frames of pcap files as a libFuzzer seed corpus for packet_decoder_fuzz: one
// file per distinct frame (at most --max), prefixed with the byte that selects its link type.
#include <pcap/dlt.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "agent/capture/packet_source.h"
#include "common/crc32c.h"

using namespace citywatch;
using namespace citywatch::agent;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: pcap_to_corpus OUTDIR MAX FILE.pcap...\n");
    return 2;
  }
  const std::string out = argv[1];
  const std::size_t max = std::stoul(argv[2]);
  std::set<std::uint32_t> seen;
  for (int i = 3; i < argc && seen.size() < max; ++i) {
    CaptureOptions o;
    o.file = argv[i];
    Status err;
    auto src = PacketSource::open(o, err);
    if (!src) {
      std::fprintf(stderr, "%s\n", err.message().c_str());
      continue;
    }
    std::uint8_t selector = 0;
    switch (src->linktype()) {
      case DLT_EN10MB:
        selector = 0;
        break;
      case DLT_LINUX_SLL:
        selector = 1;
        break;
      case DLT_LINUX_SLL2:
        selector = 2;
        break;
      case DLT_RAW:
        selector = 3;
        break;
      case DLT_NULL:
        selector = 4;
        break;
      default:
        continue;
    }
    while (seen.size() < max &&
           src->dispatch(
               1024,
               [&](std::int64_t, std::span<const std::byte> frame, std::uint32_t) {
                 // Frames differing only in payload add nothing: key on the headers.
                 const auto head = frame.first(std::min<std::size_t>(frame.size(), 64));
                 const std::uint32_t key = crc32c(head);
                 if (seen.size() >= max || !seen.insert(key).second) return;
                 std::ofstream f(out + "/" + std::to_string(key), std::ios::binary);
                 f.put(static_cast<char>(selector));
                 f.write(reinterpret_cast<const char*>(frame.data()),
                         static_cast<std::streamsize>(frame.size()));
               },
               err) == PacketSource::ReadResult::kPackets) {
    }
  }
  std::printf("%zu seeds in %s\n", seen.size(), out.c_str());
  return 0;
}
