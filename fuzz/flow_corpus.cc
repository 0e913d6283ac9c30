// Seeds for the flow fuzz targets: the UDP payloads of export captures (pcap/pcapng), one
// file per datagram, sorted into OUT/v5, OUT/v9 (v9 and IPFIX) and OUT/sflow by version.
// usage: flow_corpus OUT_DIR MAX_PER_FORMAT FILE...
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_source.h"
#include "agent/flow/export_pcap.h"
#include "agent/flow/flow_types.h"

int main(int argc, char** argv) {
  using namespace citywatch::agent;
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s OUT_DIR MAX_PER_FORMAT FILE...\n", argv[0]);
    return 2;
  }
  const std::filesystem::path out = argv[1];
  const long max = std::atol(argv[2]);
  std::map<std::string, long> count;
  for (const char* d : {"v5", "v9", "sflow"}) std::filesystem::create_directories(out / d);
  for (int i = 3; i < argc; ++i) {
    CaptureOptions o;
    o.file = argv[i];
    citywatch::Status err;
    auto src = PacketSource::open(o, err);
    if (!src) {
      std::fprintf(stderr, "%s: %s\n", argv[i], err.message().c_str());
      continue;
    }
    DecodedPacket p;
    const int lt = src->linktype();
    for (;;) {
      const auto r = src->dispatch(
          4096,
          [&](std::int64_t, std::span<const std::byte> f, std::uint32_t) {
            if (decode_packet(lt, f, p) != DecodeResult::kOk || p.protocol != 17 ||
                !p.payload_offset)
              return;
            const auto payload = f.subspan(p.payload_offset);
            if (!flow::looks_like_export(payload)) return;
            const std::string kind = flow::rd32(payload.data()) == 5   ? "sflow"
                                     : flow::rd16(payload.data()) == 5 ? "v5"
                                                                       : "v9";
            if (count[kind] >= max) return;
            std::ofstream(out / kind / (std::to_string(count[kind]++) + ".bin"), std::ios::binary)
                .write(reinterpret_cast<const char*>(payload.data()),
                       static_cast<std::streamsize>(payload.size()));
          },
          err);
      if (r != PacketSource::ReadResult::kPackets) break;
    }
  }
  for (const auto& [k, n] : count) std::printf("flow_corpus: %s: %ld seeds\n", k.c_str(), n);
  return 0;
}
