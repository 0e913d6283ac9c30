// Wire-protocol helpers for tests that play one side of a session by hand: read and write
// whole frames on a ByteStream, and build a BATCH of flows.
#pragma once

#include <utility>  // boost/asio/awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <vector>

#include "common/transport/byte_stream.h"
#include "common/wire_codec.h"

namespace citywatch::testing {

// Reads one frame; false at the end of the stream or on a frame that does not verify.
boost::asio::awaitable<bool> recv_frame(ByteStream& s, wire::FrameHeader& h,
                                        std::vector<std::byte>& payload);
// Writes one frame with `payload` and `flags`; false if the stream failed.
boost::asio::awaitable<bool> send_frame(ByteStream& s, wire::FrameType type,
                                        std::vector<std::byte> payload, std::uint16_t flags = 0);
// HELLO_ACK or ACK carrying `seq`.
boost::asio::awaitable<bool> send_sequence(ByteStream& s, wire::FrameType type, std::uint64_t seq,
                                           std::uint16_t flags = 0);

// A BATCH payload numbered `seq` with `flows` UDP flows of `packets` packets and `bytes`
// bytes each, 10.0.0.1 -> 10.0.1.<i>, one millisecond apart from seq * 1 s after 2023-11-14.
std::vector<std::byte> flow_batch(std::uint64_t seq, int flows, std::uint64_t packets,
                                  std::uint64_t bytes);

}  // namespace citywatch::testing
