// TlsStream: a ByteStream over mutual TLS on TCP (the production transport).
//
// A client stream connects with a deadline set by its user (close() aborts it), verifies
// that the server's certificate is signed by the context's CA and names the target's
// server_name (SNI carries the same name). A server stream wraps an accepted socket;
// accept_handshake() requires a client certificate signed by the CA, and peer_common_name()
// then says whose it is.
//
// Writes after the handshake do not go through Boost.Asio's TLS engine, which passes every
// 16 KiB record through a 17 KiB BIO pair (two copies) and sends it on its own: OpenSSL
// encrypts up to kMaxWrite bytes into a buffer of the stream's, as many records as that
// takes, and one write sends them all. Reads and the handshake still go through the engine.
// The two never write to the socket at once: once the handshake is done OpenSSL writes
// nothing while reading (TLS 1.3 has no renegotiation, and neither side asks for a key
// update).
//
// Thread-safety: see ByteStream.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <string>
#include <vector>

#include "common/transport/byte_stream.h"

struct bio_st;  // OpenSSL's BIO

namespace citywatch {

class TlsStream final : public ClientStream {
 public:
  // A client stream, not yet connected.
  TlsStream(boost::asio::io_context& io, boost::asio::ssl::context& tls);
  // The server side of an accepted connection; accept_handshake() comes next.
  TlsStream(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& tls);

  boost::asio::awaitable<std::size_t> read_some(std::span<std::byte> buf,
                                                boost::system::error_code& ec) override;
  // Writes min(buf.size(), kMaxWrite) bytes (see above).
  boost::asio::awaitable<std::size_t> write_some(std::span<const std::byte> buf,
                                                 boost::system::error_code& ec) override;
  // Writes min(head.size() + tail.size(), kMaxWrite) bytes the same way: head's records, then
  // tail's, sent with one write.
  boost::asio::awaitable<std::size_t> write_some_joined(std::span<const std::byte> head,
                                                        std::span<const std::byte> tail,
                                                        boost::system::error_code& ec) override;
  void close() override;
  ~TlsStream() override;

  static constexpr std::size_t kMaxWrite = std::size_t{256} << 10;
  std::string peer() const override { return peer_; }

  boost::asio::awaitable<void> connect(const ConnectTarget& target, boost::system::error_code& ec,
                                       const char*& stage) override;
  boost::asio::awaitable<void> accept_handshake(boost::system::error_code& ec);
  // The verified client certificate's subject CN after accept_handshake(), or "".
  std::string peer_common_name();

 private:
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream_;
  std::vector<unsigned char> sealed_;  // records encrypted by write_some(), being sent
  bio_st* sealed_bio_ = nullptr;       // the BIO OpenSSL writes them through, into sealed_
  std::string peer_;
  bool closed_ = false;  // close() came first: a connect in progress must not reopen
};

// The factory the forwarder uses in production.
ClientStreamFactory tls_stream_factory(boost::asio::io_context& io, boost::asio::ssl::context& tls);

}  // namespace citywatch
