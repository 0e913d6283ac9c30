// libFuzzer target: the collector's decoders for untrusted agent frames.
// The first byte picks the decoder; the rest is the input. A batch that decodes is
// decoded both ways (into Records and into the collector's RecordBatch, which must agree,
// and be left as it was when the payload is refused), then re-encoded, decoded and encoded
// again: the encodings must be the same bytes. (A field a reader dropped would be missing
// from both; the unit test WireCodec.BatchRoundTripEveryKind checks each field's value.)
// Selector 0x5a: a zstd BATCH payload (batch.compression), through the collector's bounded
// decompressor; what it accepts must decompress to at most the frame limit and come back
// the same through a compress/decompress round trip, then is decoded as a batch.
// Selector 0x4c: a packed (lz4) BATCH payload, through the collector's bounded unpack; what
// it accepts must be the declared size, within the frame limit, pack and unpack to the same
// bytes, and is then decoded as a batch.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "common/batch_compression.h"
#include "common/record_batch.h"
#include "common/wire_codec.h"

using namespace citywatch;

namespace {

Record to_record(const RecordRef& r) {
  Record out;
  out.event_time_ns = r.event_time_ns;
  out.agent = r.agent;
  out.segment = r.segment;
  switch (r.kind()) {
    case RecordKind::kFlow:
      out.body = r.get<FlowRecord>();
      break;
    case RecordKind::kInterfaceSample:
      out.body = r.get<InterfaceSample>();
      break;
    case RecordKind::kDeviceStatus:
      out.body = r.get<DeviceStatus>();
      break;
    case RecordKind::kSnmpTrap:
      out.body = r.get<SnmpTrap>();
      break;
    case RecordKind::kPacketEvent:
      out.body = r.get<PacketEvent>();
      break;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const auto in =
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  if (data[0] == 0x5a) {
    static wire::BatchDecompressor unzstd;
    static std::vector<std::byte> plain, packed, again;
    if (unzstd.decompress(in, plain, wire::kMaxPayload) != wire::DecompressError::kOk) return 0;
    if (plain.size() > wire::kMaxPayload) std::abort();
    static wire::BatchCompressor zstd;
    if (!zstd.compress(plain, packed) ||
        unzstd.decompress(packed, again, wire::kMaxPayload) != wire::DecompressError::kOk ||
        again != plain)
      std::abort();
    static RecordBatch batch;
    batch.reset(ShortName("fuzz"), ShortName("seg"));
    std::uint64_t seq = 0;
    std::uint32_t unknown = 0;
    (void)wire::decode_batch(plain, seq, batch, unknown);
    return 0;
  }
  if (data[0] == 0x4c) {
    static std::vector<std::byte> plain, packed, again;
    if (wire::unpack(in, plain, wire::kMaxPayload) != wire::DecompressError::kOk) return 0;
    if (plain.size() > wire::kMaxPayload || plain.size() != wire::unpacked_size(in)) std::abort();
    if (!wire::pack(plain, packed) ||
        wire::unpack(packed, again, wire::kMaxPayload) != wire::DecompressError::kOk ||
        again != plain)
      std::abort();
    static RecordBatch batch;
    batch.reset(ShortName("fuzz"), ShortName("seg"));
    std::uint64_t seq = 0;
    std::uint32_t unknown = 0;
    (void)wire::decode_batch(plain, seq, batch, unknown);
    return 0;
  }
  switch (data[0] % 4) {
    case 0: {
      if (in.size() < wire::kHeaderSize) return 0;
      wire::FrameHeader h;
      if (wire::decode_header(in.first<wire::kHeaderSize>(), h) == wire::DecodeError::kOk)
        (void)wire::verify_payload(h, in.subspan(wire::kHeaderSize));
      break;
    }
    case 1: {
      static std::vector<Record> out, again;
      out.clear();
      std::uint64_t seq = 0;
      std::uint32_t unknown = 0;
      const ShortName agent("fuzz"), segment("seg");
      const auto code = wire::decode_batch(in, agent, segment, seq, out, unknown);
      // The collector's path: into a RecordBatch that already holds a record. It must agree
      // with the vector path, and a payload refused must leave the batch as it was.
      static RecordBatch batch;
      batch.reset(agent, segment);
      batch.add(Record{});
      std::uint64_t batch_seq = 0;
      std::uint32_t batch_unknown = 0;
      if (wire::decode_batch(in, batch_seq, batch, batch_unknown) != code) std::abort();
      if (code != wire::DecodeError::kOk) {
        if (batch.size() != 1 || batch.count<FlowRecord>() != 1) std::abort();
        return 0;
      }
      if (batch.size() != out.size() + 1 || batch_seq != seq || batch_unknown != unknown)
        std::abort();
      // Stable re-encoding: what decoded, encoded, decoded and encoded again is the same
      // bytes; and the batch's records encode to those bytes too.
      // In the payload's own record encoding; and a compact payload re-encoded fixed (what
      // an agent sends an older collector) holds the same records.
      const wire::Encoding encoding = wire::batch_encoding(in);
      static wire::BatchEncoder enc;
      enc.begin(encoding);
      for (const Record& r : out) enc.add(r);
      const auto first = enc.finish(seq);
      const std::vector<std::byte> canonical(first.begin(), first.end());
      again.clear();
      std::uint64_t seq2 = 0;
      if (wire::decode_batch(canonical, agent, segment, seq2, again, unknown) !=
              wire::DecodeError::kOk ||
          seq2 != seq || again.size() != out.size())
        std::abort();
      enc.begin(encoding);
      for (const Record& r : again) enc.add(r);
      const auto second = enc.finish(seq2);
      if (second.size() != canonical.size() ||
          !std::equal(second.begin(), second.end(), canonical.begin()))
        std::abort();
      enc.begin(encoding);
      for (std::size_t i = 1; i < batch.size(); ++i) enc.add(to_record(batch[i]));
      const auto third = enc.finish(seq);
      if (third.size() != canonical.size() ||
          !std::equal(third.begin(), third.end(), canonical.begin()))
        std::abort();
      static std::vector<std::byte> fixed;
      if (wire::to_fixed(in, fixed) != wire::DecodeError::kOk) std::abort();
      again.clear();
      if (wire::decode_batch(fixed, agent, segment, seq2, again, unknown) !=
              wire::DecodeError::kOk ||
          seq2 != seq || again.size() != out.size() ||
          wire::batch_encoding(fixed) != wire::Encoding::kFixed)
        std::abort();
      break;
    }
    case 2: {
      wire::Hello h;
      (void)wire::decode_hello(in, h);
      break;
    }
    case 3: {
      std::uint64_t seq;
      (void)wire::decode_sequence(in, seq);
      break;
    }
  }
  return 0;
}
