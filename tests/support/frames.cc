#include "tests/support/frames.h"

#include <array>

namespace citywatch::testing {

boost::asio::awaitable<bool> recv_frame(ByteStream& s, wire::FrameHeader& h,
                                        std::vector<std::byte>& payload) {
  boost::system::error_code ec;
  std::array<std::byte, wire::kHeaderSize> head;
  if (!co_await read_exactly(s, head, ec) || wire::decode_header(head, h) != wire::DecodeError::kOk)
    co_return false;
  payload.resize(h.length);
  co_return co_await read_exactly(s, payload, ec) &&
      wire::verify_payload(h, payload) == wire::DecodeError::kOk;
}

boost::asio::awaitable<bool> send_frame(ByteStream& s, wire::FrameType type,
                                        std::vector<std::byte> payload, std::uint16_t flags) {
  std::vector<std::byte> frame;
  wire::encode_frame(type, payload, frame, flags);
  boost::system::error_code ec;
  co_return co_await write_all(s, frame, ec);
}

boost::asio::awaitable<bool> send_sequence(ByteStream& s, wire::FrameType type, std::uint64_t seq,
                                           std::uint16_t flags) {
  std::vector<std::byte> payload;
  wire::encode_sequence(seq, payload);
  co_return co_await send_frame(s, type, std::move(payload), flags);
}

std::vector<std::byte> flow_batch(std::uint64_t seq, int flows, std::uint64_t packets,
                                  std::uint64_t bytes) {
  wire::BatchEncoder enc;
  enc.begin();
  for (int i = 0; i < flows; ++i) {
    Record r;
    r.event_time_ns =
        1'700'000'000'000'000'000 + static_cast<std::int64_t>(seq) * 1'000'000'000 + i * 1'000'000;
    FlowRecord f;
    const std::uint8_t src[4] = {10, 0, 0, 1}, dst[4] = {10, 0, 1, static_cast<std::uint8_t>(i)};
    f.src = IpAddr::v4(src);
    f.dst = IpAddr::v4(dst);
    f.src_port = 40000;
    f.dst_port = 53;
    f.protocol = 17;
    f.packets = packets;
    f.bytes = bytes;
    f.start_ns = f.end_ns = r.event_time_ns;
    r.body = f;
    enc.add(r);
  }
  const auto payload = enc.finish(seq);
  return {payload.begin(), payload.end()};
}

}  // namespace citywatch::testing
