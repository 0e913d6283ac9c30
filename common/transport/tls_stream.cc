#include "common/transport/tls_stream.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <limits>

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

namespace {

// A write-only BIO appending to the std::vector<unsigned char> it holds as its data.
int sealed_write(BIO* b, const char* data, int len) {
  auto* out = static_cast<std::vector<unsigned char>*>(BIO_get_data(b));
  if (out == nullptr || len < 0) return -1;
  // As unsigned char, so the copy is one memmove rather than a conversion per byte.
  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  out->insert(out->end(), bytes, bytes + len);
  return len;
}

long sealed_ctrl(BIO*, int cmd, long, void*) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;  // nothing is buffered; nothing else is supported
}

const BIO_METHOD* sealed_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "citywatch sealed");
    if (m != nullptr &&
        (BIO_meth_set_write(m, sealed_write) != 1 || BIO_meth_set_ctrl(m, sealed_ctrl) != 1)) {
      BIO_meth_free(m);
      m = nullptr;
    }
    return m;
  }();
  return method;
}

}  // namespace

TlsStream::~TlsStream() {
  if (sealed_bio_ != nullptr) BIO_free(sealed_bio_);
}

awaitable<std::size_t> TlsStream::write_some(std::span<const std::byte> buf,
                                             boost::system::error_code& ec) {
  co_return co_await write_some_joined({}, buf, ec);
}

awaitable<std::size_t> TlsStream::write_some_joined(std::span<const std::byte> head,
                                                    std::span<const std::byte> tail,
                                                    boost::system::error_code& ec) {
  SSL* ssl = stream_.native_handle();
  if (sealed_bio_ == nullptr && sealed_method() != nullptr) {
    sealed_bio_ = BIO_new(sealed_method());
    if (sealed_bio_ != nullptr) {
      BIO_set_data(sealed_bio_, &sealed_);
      BIO_set_init(sealed_bio_, 1);
    }
  }
  if (sealed_bio_ == nullptr || !SSL_is_init_finished(ssl)) {
    const std::span<const std::byte> buf = head.empty() ? tail : head;
    co_return co_await stream_.async_write_some(asio::buffer(buf.data(), buf.size()),
                                                asio::redirect_error(asio::use_awaitable, ec));
  }
  // OpenSSL writes through sealed_bio_ for this call, then through the engine's BIO again.
  // SSL_set0_wbio() takes over a reference to the BIO it is given and drops one of the BIO
  // it replaces: the engine's is the read BIO too, so it gets a reference for the meantime.
  sealed_.clear();
  BIO* engine = SSL_get_wbio(ssl);
  BIO_up_ref(engine);
  BIO_up_ref(sealed_bio_);
  SSL_set0_wbio(ssl, sealed_bio_);
  // The engine sets SSL_MODE_ENABLE_PARTIAL_WRITE: each call writes one record, so head and
  // tail never share one (the caller decides what goes in a record).
  const std::size_t want = std::min(head.size() + tail.size(), kMaxWrite);
  std::size_t written = 0;
  unsigned long failed = 0;
  bool ok = true;
  for (const std::span<const std::byte> part : {head, tail}) {
    std::size_t done = 0;
    while (ok && done < part.size() && written < want) {
      ERR_clear_error();
      std::size_t n = 0;
      ok = SSL_write_ex(ssl, part.data() + done, std::min(part.size() - done, want - written),
                        &n) == 1;
      if (ok) {
        done += n;
        written += n;
      } else {
        failed = ERR_get_error();
      }
    }
  }
  SSL_set0_wbio(ssl, engine);
  if (!ok) {  // only a broken session: the BIO takes every byte
    ec = failed != 0
             ? boost::system::error_code(static_cast<int>(failed), asio::error::get_ssl_category())
             : boost::system::error_code(asio::error::broken_pipe);
    co_return 0;
  }
  // All of it per call: async_write's own conditions hand the socket at most 64 KiB at a
  // time, three calls (and as many wake-ups of a local reader) for what the kernel takes in
  // one.
  const auto whole = [](const boost::system::error_code& err, std::size_t) -> std::size_t {
    return err ? 0 : std::numeric_limits<std::size_t>::max();
  };
  co_await asio::async_write(stream_.next_layer(), asio::buffer(sealed_), whole,
                             asio::redirect_error(asio::use_awaitable, ec));
  co_return ec ? 0 : written;
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
  // An address needs no resolver: Boost.Asio's runs getaddrinfo on a thread it starts for
  // the first lookup, and collectors are mostly configured by address.
  boost::system::error_code not_address;
  const asio::ip::address address = asio::ip::make_address(target.host, not_address);
  tcp::resolver::results_type resolved;
  if (not_address) {
    tcp::resolver resolver(stream_.get_executor());
    const std::string service =
        std::to_string(target.port);  // named, not a temporary in co_await (GCC 12)
    resolved = co_await resolver.async_resolve(target.host, service,
                                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }
  // The resolver does not see close(), and async_connect would open a new socket after it.
  if (closed_) {
    ec = asio::error::operation_aborted;
    co_return;
  }
  if (not_address) {
    co_await asio::async_connect(stream_.lowest_layer(), resolved,
                                 asio::redirect_error(asio::use_awaitable, ec));
  } else {
    const tcp::endpoint endpoint(address, target.port);
    co_await stream_.lowest_layer().async_connect(endpoint,
                                                  asio::redirect_error(asio::use_awaitable, ec));
  }
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
