#include "common/transport/tls_stream.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/tls.h"

namespace citywatch {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;

TlsStream::TlsStream(asio::io_context& io, asio::ssl::context& tls) : stream_(io, tls) {}

TlsStream::TlsStream(tcp::socket socket, asio::ssl::context& tls)
    : stream_(std::move(socket), tls) {
  boost::system::error_code ec;
  const auto ep = stream_.lowest_layer().remote_endpoint(ec);
  peer_ = ec ? "unknown peer" : ep.address().to_string() + ":" + std::to_string(ep.port());
}

awaitable<std::size_t> TlsStream::read_some(std::span<std::byte> buf,
                                            boost::system::error_code& ec) {
  co_return co_await stream_.async_read_some(asio::buffer(buf.data(), buf.size()),
                                             asio::redirect_error(asio::use_awaitable, ec));
}

awaitable<std::size_t> TlsStream::write_some(std::span<const std::byte> buf,
                                             boost::system::error_code& ec) {
  co_return co_await stream_.async_write_some(asio::buffer(buf.data(), buf.size()),
                                              asio::redirect_error(asio::use_awaitable, ec));
}

void TlsStream::close() {
  closed_ = true;
  boost::system::error_code ignored;
  stream_.lowest_layer().close(ignored);
}

awaitable<void> TlsStream::connect(const ConnectTarget& target, boost::system::error_code& ec,
                                   const char*& stage) {
  peer_ = target.host + ":" + std::to_string(target.port);
  stage = "connect";
  tcp::resolver resolver(stream_.get_executor());
  auto endpoints = co_await resolver.async_resolve(target.host, std::to_string(target.port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
  // The resolver does not see close(); async_connect would open a new socket.
  if (!ec && closed_) ec = asio::error::operation_aborted;
  if (ec) co_return;
  co_await asio::async_connect(stream_.lowest_layer(), endpoints,
                               asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  stage = "TLS handshake";
  stream_.lowest_layer().set_option(tcp::no_delay(true), ec);
  const std::string& name = target.server_name.empty() ? target.host : target.server_name;
  stream_.set_verify_callback(asio::ssl::host_name_verification(name));
  SSL_set_tlsext_host_name(stream_.native_handle(), name.c_str());
  co_await stream_.async_handshake(asio::ssl::stream_base::client,
                                   asio::redirect_error(asio::use_awaitable, ec));
}

awaitable<void> TlsStream::accept_handshake(boost::system::error_code& ec) {
  co_await stream_.async_handshake(asio::ssl::stream_base::server,
                                   asio::redirect_error(asio::use_awaitable, ec));
}

std::string TlsStream::peer_common_name() {
  return citywatch::peer_common_name(stream_.native_handle());
}

ClientStreamFactory tls_stream_factory(asio::io_context& io, asio::ssl::context& tls) {
  return [&io, &tls] { return std::make_unique<TlsStream>(io, tls); };
}

}  // namespace citywatch
