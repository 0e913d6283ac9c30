// Writes a seed corpus for wire_codec_fuzz: a valid frame, batch, HELLO and ACK, each
// prefixed with the byte that selects its decoder.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "common/batch_compression.h"
#include "common/wire_codec.h"

using namespace citywatch;

namespace {
// wire_codec_fuzz's selector for a zstd BATCH payload.
constexpr std::uint8_t kZstdSelector = 0x5a;
// ... and for a packed (lz4) BATCH payload.
constexpr std::uint8_t kPackedSelector = 0x4c;

void put(const std::string& dir, const std::string& name, std::uint8_t selector,
         const std::vector<std::byte>& body) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f.put(static_cast<char>(selector));
  f.write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: wire_corpus OUTDIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  Record r;
  r.event_time_ns = 1'700'000'000'000'000'000;
  FlowRecord f;
  const std::uint8_t a[4] = {10, 0, 0, 1};
  f.src = IpAddr::v4(a);
  f.packets = 3;
  f.bytes = 180;
  f.protocol = 6;
  r.body = f;
  PacketEvent pe;
  pe.name.assign("example.city");
  // One batch of every kind in each record encoding (the compact one is what agents write).
  auto every_kind = [&](wire::Encoding encoding) {
    wire::BatchEncoder enc;
    enc.begin(encoding);
    Record x = r;
    enc.add(x);
    x.body = InterfaceSample{};
    enc.add(x);
    x.body = DeviceStatus{};
    enc.add(x);
    x.body = SnmpTrap{};
    enc.add(x);
    x.body = pe;
    x.event_time_ns += 1'000'000;
    enc.add(x);
    const auto batch = enc.finish(42);
    return std::vector<std::byte>(batch.begin(), batch.end());
  };
  put(dir, "batch-fixed", 1, every_kind(wire::Encoding::kFixed));
  const std::vector<std::byte> b = every_kind(wire::Encoding::kCompact);
  put(dir, "batch", 1, b);
  std::vector<std::byte> frame;
  wire::encode_frame(wire::FrameType::kBatch, b, frame);
  put(dir, "frame", 0, frame);
  std::vector<std::byte> hello;
  wire::Hello h;
  h.agent_id.assign("agent");
  h.segment.assign("segment");
  wire::encode_hello(h, hello);
  put(dir, "hello", 2, hello);
  std::vector<std::byte> seq;
  wire::encode_sequence(7, seq);
  put(dir, "ack", 3, seq);
  std::vector<std::byte> packed;
  wire::BatchCompressor zstd;
  if (!zstd.compress(b, packed)) return 1;
  put(dir, "batch-zstd", kZstdSelector, packed);
  if (!wire::pack(b, packed)) return 1;
  put(dir, "batch-lz4", kPackedSelector, packed);
  std::printf("7 seeds in %s\n", dir.c_str());
  return 0;
}
