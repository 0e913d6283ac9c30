#include "agent/flow/export_pcap.h"

#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_source.h"

namespace citywatch::agent::flow {

bool looks_like_export(std::span<const std::byte> p) {
  if (p.size() < 4) return false;
  if (rd32(p.data()) == 5) return true;  // sFlow v5
  const std::uint16_t v = rd16(p.data());
  return v == 5 || v == 9 || v == 10;
}

Status decode_export_pcap(const std::string& file, std::uint16_t port, FlowDecoder& decoder,
                          ExportPcapStats& stats) {
  CaptureOptions opts;
  opts.file = file;
  Status err;
  auto src = PacketSource::open(opts, err);
  if (!src) return err;
  DecodedPacket pkt;
  const int linktype = src->linktype();
  auto on_frame = [&](std::int64_t ts, std::span<const std::byte> frame, std::uint32_t) {
    ++stats.frames;
    if (decode_packet(linktype, frame, pkt) != DecodeResult::kOk || pkt.protocol != 17) {
      ++stats.not_udp;
      return;
    }
    if (pkt.is_fragment && pkt.fragment_offset != 0) {
      ++stats.fragments;
      return;
    }
    if (pkt.payload_offset == 0 || pkt.l4_offset + 8 > frame.size()) {
      ++stats.not_udp;
      return;
    }
    // The UDP length field bounds the payload (Ethernet may pad short frames).
    const std::size_t udp_len = rd16(frame.data() + pkt.l4_offset + 4);
    if (udp_len < 8) {
      ++stats.not_udp;
      return;
    }
    std::size_t len = udp_len - 8;
    if (pkt.payload_offset + len > frame.size()) {
      if (pkt.is_fragment) {
        ++stats.fragments;
        return;
      }
      len = frame.size() - pkt.payload_offset;  // cut by the capture's snaplen
    }
    const auto payload = frame.subspan(pkt.payload_offset, len);
    if (port ? pkt.dst_port != port : !looks_like_export(payload)) {
      ++stats.not_export;
      return;
    }
    ++stats.datagrams;
    if (decoder.decode(payload, pkt.src, ts) != FlowError::kOk) ++stats.failed;
  };
  for (;;) {
    const auto r = src->dispatch(4096, on_frame, err);
    if (r == PacketSource::ReadResult::kError) return err;
    if (r == PacketSource::ReadResult::kEnd) break;
  }
  return Status::ok();
}

}  // namespace citywatch::agent::flow
