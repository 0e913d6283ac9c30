// ByteStream: the seam between the wire protocol and what carries it.
//
// The agent's forwarder and the collector's ingest session speak the wire protocol
// (common/wire_codec.h) over a ByteStream: mutual TLS over TCP in production
// (common/transport/tls_stream.h), an in-memory pipe in unit tests (tests/support/memory_pipe.h),
// which can deliver a byte at a time, cut the connection after any byte, or never connect. What is
// authenticated, and how, belongs to the stream: a session starts on a stream whose peer is already
// known.
//
// Thread-safety: none; a stream and its user run on one io_context thread. At most one read
// and one write are pending at a time; close() may be called while they are, and makes them
// complete with an error.
#pragma once

#include <utility>  // boost/asio/awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

namespace citywatch {

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Reads at least one byte into `buf` and returns how many (fewer than asked is normal);
  // 0 with `ec` set at the end of the stream or on an error.
  virtual boost::asio::awaitable<std::size_t> read_some(std::span<std::byte> buf,
                                                        boost::system::error_code& ec) = 0;
  // Writes at least one byte of `buf` and returns how many (fewer than asked is normal);
  // 0 with `ec` set on an error.
  virtual boost::asio::awaitable<std::size_t> write_some(std::span<const std::byte> buf,
                                                         boost::system::error_code& ec) = 0;
  // The same for `head` followed by `tail`, as if they were one buffer: how many bytes of the
  // two were written, from head on. By default it writes from one of them (head while it has
  // bytes); a stream that can send both at once overrides it (TlsStream: one buffer of
  // records, one system call), so a frame's header need not be copied in front of its payload
  // nor cost a write of its own.
  virtual boost::asio::awaitable<std::size_t> write_some_joined(std::span<const std::byte> head,
                                                                std::span<const std::byte> tail,
                                                                boost::system::error_code& ec);
  // Ends the stream at once; idempotent. Pending and later operations fail.
  virtual void close() = 0;
  // The peer, for logs ("10.1.2.3:7443").
  virtual std::string peer() const = 0;
};

// Where a client stream connects, and the name the server must prove it holds.
struct ConnectTarget {
  std::string host;
  std::uint16_t port = 0;
  std::string server_name;  // expected in the server's certificate
};

// A stream the agent opens: connect() reaches and authenticates the server.
class ClientStream : public ByteStream {
 public:
  // On failure `ec` says why and `stage` names the step that failed ("connect", "TLS
  // handshake"). close() during connect() makes it fail.
  virtual boost::asio::awaitable<void> connect(const ConnectTarget& target,
                                               boost::system::error_code& ec,
                                               const char*& stage) = 0;
};

// Makes a new, unconnected client stream for each attempt.
using ClientStreamFactory = std::function<std::unique_ptr<ClientStream>()>;

// Reads exactly buf.size() bytes; false (and `ec`) if the stream ended or failed first.
boost::asio::awaitable<bool> read_exactly(ByteStream& s, std::span<std::byte> buf,
                                          boost::system::error_code& ec);
// Writes all of buf; false (and `ec`) if the stream failed first.
boost::asio::awaitable<bool> write_all(ByteStream& s, std::span<const std::byte> buf,
                                       boost::system::error_code& ec);
// Writes all of head, then all of tail, through write_some_joined().
boost::asio::awaitable<bool> write_all(ByteStream& s, std::span<const std::byte> head,
                                       std::span<const std::byte> tail,
                                       boost::system::error_code& ec);

}  // namespace citywatch
