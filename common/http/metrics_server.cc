#include "common/http/metrics_server.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/text_serializer.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "common/http/basic_auth.h"
#include "common/http/request_reading.h"
#include "common/log.h"
#include "common/tls.h"

namespace citywatch::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// Where a connection is; only those waiting on the client may be evicted.
enum class Phase { kHandshake, kIdle, kHeader, kAuth, kWriting };

Status make_server_tls(const TlsServerConfig& c, std::unique_ptr<asio::ssl::context>& out) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
  SSL_CTX_set_min_proto_version(native, c.min_version);
  if (c.max_version) SSL_CTX_set_max_proto_version(native, c.max_version);
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(native, c.cert_file.c_str()) != 1)
    return Status::error("web config: " + c.cert_file +
                         ": cannot load certificate: " + openssl_errors());
  if (SSL_CTX_use_PrivateKey_file(native, c.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return Status::error("web config: " + c.key_file +
                         ": cannot load private key: " + openssl_errors());
  if (SSL_CTX_check_private_key(native) != 1)
    return Status::error("web config: " + c.key_file + " does not match " + c.cert_file);
  if (!c.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(native, c.client_ca_file.c_str(), nullptr) != 1)
      return Status::error("web config: " + c.client_ca_file +
                           ": cannot load client CA: " + openssl_errors());
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(c.client_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(native, names);
  }
  static const unsigned char kSessionContext[] = "citywatch-metrics";
  SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
  // Go's tls.ClientAuthType, as exporter-toolkit maps client_auth_type onto it.
  const auto accept_any = [](int, X509_STORE_CTX*) { return 1; };
  switch (c.client_auth) {
    case ClientAuth::kNoClientCert:
      SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
      break;
    case ClientAuth::kRequestClientCert:
      SSL_CTX_set_verify(native, SSL_VERIFY_PEER, accept_any);
      break;
    case ClientAuth::kRequireAnyClientCert:
      SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
      break;
    case ClientAuth::kVerifyClientCertIfGiven:
      SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
      break;
    case ClientAuth::kRequireAndVerifyClientCert:
      SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  out = std::move(ctx);
  return Status::ok();
}

}  // namespace

struct SessionBase {
  virtual ~SessionBase() = default;
  virtual void close() = 0;
  Phase phase = Phase::kHandshake;
  Clock::time_point since = Clock::now();  // when the current phase began
};

struct MetricsServer::Impl {
  Impl(MetricsServerOptions o, prometheus::Registry& r);

  void accept();
  void on_accept(tcp::socket socket);
  template <class Stream>
  void run_session(Stream stream);
  // Collects every source and serializes it in the text format.
  std::string render();
  void count_request(unsigned code);

  MetricsServerOptions options;
  std::vector<std::shared_ptr<prometheus::Collectable>> sources;
  // Declared before io and the pool: sessions destroyed with their pending handlers
  // unregister here.
  std::unordered_set<SessionBase*> sessions;
  std::unique_ptr<asio::ssl::context> tls;
  std::unique_ptr<BasicAuth> auth;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_backoff{io};
  asio::thread_pool auth_pool{1};
  std::thread thread;
  std::uint16_t bound_port = 0;
  bool started = false;

  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Counter>& auth_failures;
  prometheus::Counter& handshake_failures;
  prometheus::Family<prometheus::Counter>& refused;
  prometheus::Counter& evicted;
  prometheus::Counter& header_timeouts;
  prometheus::Gauge& open_connections;
};

namespace {

template <class Stream>
beast::tcp_stream& tcp_of(Stream& s) {
  return beast::get_lowest_layer(s);
}

// One connection. Lives as long as an operation of it is pending (shared_from_this).
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(MetricsServer::Impl& server, Stream stream)
      : server_(server), stream_(std::move(stream)) {
    server_.sessions.insert(this);
    server_.open_connections.Increment();
  }
  ~Session() override {
    server_.sessions.erase(this);
    server_.open_connections.Decrement();
  }

  void start() {
    // The handshake and the first request's headers share one deadline.
    tcp_of(stream_).expires_after(server_.options.header_timeout);
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      read_header();
    } else {
      enter(Phase::kHandshake);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) {
                                  if (!self->closed_) {
                                    self->server_.handshake_failures.Increment();
                                    if (ec == beast::error::timeout)
                                      self->server_.header_timeouts.Increment();
                                  }
                                  return self->close();
                                }
                                self->read_header();
                              });
    }
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    tcp_of(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp_of(stream_).socket().close(ec);
  }

 private:
  void enter(Phase p) {
    phase = p;
    since = Clock::now();
  }

  // Between requests of a kept-alive connection: wait (idle_timeout) for the first byte.
  void wait_request() {
    if (buffer_.size() > 0) {
      tcp_of(stream_).expires_after(server_.options.header_timeout);
      return read_header();
    }
    enter(Phase::kIdle);
    tcp_of(stream_).expires_after(server_.options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(512), [self = this->shared_from_this()](
                                                      beast::error_code ec, std::size_t n) {
      if (ec) return self->close();
      self->buffer_.commit(n);
      tcp_of(self->stream_).expires_after(self->server_.options.header_timeout);
      self->read_header();
    });
  }

  // The caller has set the deadline.
  void read_header() {
    enter(Phase::kHeader);
    parser_.emplace();
    limit_request_parser(*parser_, server_.options.max_header_bytes);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        self->on_read(ec);
                      });
  }

  void on_read(beast::error_code ec) {
    if (closed_) return;
    if (ec == beast::error::timeout) server_.header_timeouts.Increment();
    if (ec) {
      switch (status_for_read_error(ec)) {
        case 0:
          return close();
        case 431:
          return respond(431, "request headers too large\n", false);
        case 413:
          return respond(413, "request body not accepted\n", false);
        default:
          return respond(400, "bad request\n", false);
      }
    }
    const auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == bhttp::verb::head;
    if (req.method() != bhttp::verb::get && !head_)
      return respond(405, "only GET and HEAD\n", keep_alive_, true);
    target_ = std::string(req.target());
    if (!server_.auth || !server_.auth->enabled()) return route();
    const std::string authorization(req[bhttp::field::authorization]);
    if (server_.auth->cached(authorization)) return route();
    // bcrypt is slow by design: verify on the worker, continue on the io thread.
    enter(Phase::kAuth);
    asio::post(server_.auth_pool, [self = this->shared_from_this(), authorization] {
      const AuthResult r = self->server_.auth->verify(authorization);
      asio::post(self->server_.io, [self, r] { self->on_auth(r); });
    });
  }

  void on_auth(AuthResult r) {
    if (closed_) return;
    if (r == AuthResult::kOk) return route();
    server_.auth_failures.Add({{"reason", auth_result_name(r)}}).Increment();
    respond(401, "unauthorized\n", keep_alive_);
  }

  void route() {
    const std::string path = target_.substr(0, target_.find('?'));
    if (path == "/metrics") return respond(200, server_.render(), keep_alive_);
    if (path == "/-/healthy") return respond(200, "OK\n", keep_alive_);
    respond(404, "not found; metrics are at /metrics\n", keep_alive_);
  }

  void respond(unsigned code, std::string body, bool keep_alive, bool allow = false) {
    server_.count_request(code);
    res_ = {};
    res_.version(11);
    res_.result(code);
    res_.set(bhttp::field::server, "citywatch");
    res_.set(bhttp::field::content_type, code == 200 && body.size() > 3
                                             ? "text/plain; version=0.0.4; charset=utf-8"
                                             : "text/plain; charset=utf-8");
    if (code == 401) res_.set(bhttp::field::www_authenticate, "Basic realm=\"citywatch\"");
    if (allow) res_.set(bhttp::field::allow, "GET, HEAD");
    res_.keep_alive(keep_alive);
    res_.body() = std::move(body);
    res_.prepare_payload();
    if (head_) res_.body().clear();  // Content-Length stays that of the GET answer
    keep_alive_ = keep_alive;
    enter(Phase::kWriting);
    tcp_of(stream_).expires_after(server_.options.write_timeout);
    bhttp::async_write(stream_, res_,
                       [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                         if (ec || !self->keep_alive_) return self->close();
                         self->head_ = false;
                         self->wait_request();
                       });
  }

  MetricsServer::Impl& server_;
  Stream stream_;
  beast::flat_buffer buffer_{kRequestBufferBytes};
  std::optional<RequestParser> parser_;
  bhttp::response<bhttp::string_body> res_;
  std::string target_;
  bool keep_alive_ = false;
  bool head_ = false;
  bool closed_ = false;
};

}  // namespace

MetricsServer::Impl::Impl(MetricsServerOptions o, prometheus::Registry& r)
    : options(std::move(o)),
      requests(prometheus::BuildCounter()
                   .Name("citywatch_http_requests_total")
                   .Help("Metrics endpoint requests answered, by HTTP status code")
                   .Register(r)),
      auth_failures(prometheus::BuildCounter()
                        .Name("citywatch_http_auth_failures_total")
                        .Help("Metrics endpoint requests refused by basic auth, by reason")
                        .Register(r)),
      handshake_failures(prometheus::BuildCounter()
                             .Name("citywatch_http_tls_handshake_failures_total")
                             .Help("Metrics endpoint TLS handshakes that failed or timed out")
                             .Register(r)
                             .Add({})),
      refused(prometheus::BuildCounter()
                  .Name("citywatch_http_connections_refused_total")
                  .Help("Metrics endpoint connections refused, by reason")
                  .Register(r)),
      evicted(prometheus::BuildCounter()
                  .Name("citywatch_http_connections_evicted_total")
                  .Help("Metrics endpoint connections closed at the connection limit because "
                        "they had waited longest for a request")
                  .Register(r)
                  .Add({})),
      header_timeouts(prometheus::BuildCounter()
                          .Name("citywatch_http_header_timeouts_total")
                          .Help("Metrics endpoint connections closed because the TLS handshake "
                                "or request headers did not arrive in time")
                          .Register(r)
                          .Add({})),
      open_connections(prometheus::BuildGauge()
                           .Name("citywatch_http_connections")
                           .Help("Open connections to the metrics endpoint")
                           .Register(r)
                           .Add({})) {
  for (unsigned code : {200u, 401u}) requests.Add({{"code", std::to_string(code)}});
  for (const char* reason : {"limit", "accept_error"}) refused.Add({{"reason", reason}});
}

void MetricsServer::Impl::count_request(unsigned code) {
  requests.Add({{"code", std::to_string(code)}}).Increment();
}

std::string MetricsServer::Impl::render() {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& source : sources) {
    auto f = source->Collect();
    families.insert(families.end(), std::make_move_iterator(f.begin()),
                    std::make_move_iterator(f.end()));
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();
}

void MetricsServer::Impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors (EMFILE) and the like: count, and pause instead of spinning.
      refused.Add({{"reason", "accept_error"}}).Increment();
      log::warning("metrics: accept failed: " + ec.message() + "; pausing 100 ms");
      accept_backoff.expires_after(std::chrono::milliseconds(100));
      accept_backoff.async_wait([this](beast::error_code e) {
        if (!e) accept();
      });
      return;
    }
    on_accept(std::move(socket));
    accept();
  });
}

void MetricsServer::Impl::on_accept(tcp::socket socket) {
  if (sessions.size() >= options.max_connections) {
    SessionBase* oldest = nullptr;
    for (SessionBase* s : sessions)
      if ((s->phase == Phase::kHandshake || s->phase == Phase::kIdle ||
           s->phase == Phase::kHeader) &&
          (!oldest || s->since < oldest->since))
        oldest = s;
    if (!oldest) {
      refused.Add({{"reason", "limit"}}).Increment();
      beast::error_code ec;
      socket.close(ec);
      return;
    }
    evicted.Increment();
    // Marks it closed and unregisters it once its pending operation returns.
    oldest->close();
    oldest->phase = Phase::kWriting;  // not chosen twice
  }
  beast::tcp_stream tcp_stream(std::move(socket));
  if (tls) {
    auto s = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
        *this, beast::ssl_stream<beast::tcp_stream>(std::move(tcp_stream), *tls));
    s->start();
  } else {
    auto s = std::make_shared<Session<beast::tcp_stream>>(*this, std::move(tcp_stream));
    s->start();
  }
}

MetricsServer::MetricsServer(MetricsServerOptions options, prometheus::Registry& self_metrics)
    : impl_(std::make_unique<Impl>(std::move(options), self_metrics)) {}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::add(std::shared_ptr<prometheus::Collectable> source) {
  impl_->sources.push_back(std::move(source));
}

Status MetricsServer::start() {
  Impl& s = *impl_;
  if (s.options.web.tls)
    if (auto st = make_server_tls(*s.options.web.tls, s.tls); !st) return st;
  if (!s.options.web.basic_auth_users.empty())
    s.auth = std::make_unique<BasicAuth>(s.options.web.basic_auth_users, s.options.auth_cache_ttl);
  beast::error_code ec;
  const auto address = asio::ip::make_address(s.options.host, ec);
  if (ec) return Status::error("metrics: cannot listen on '" + s.options.host + "': not an IP");
  const tcp::endpoint ep(address, s.options.port);
  const std::string where = s.options.host + ":" + std::to_string(s.options.port);
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::error("metrics: cannot listen on " + where + ": " + ec.message());
  s.bound_port = s.acceptor.local_endpoint().port();
  s.accept();
  s.started = true;
  s.thread = std::thread([&s] { s.io.run(); });
  return Status::ok();
}

void MetricsServer::stop() {
  Impl& s = *impl_;
  if (!s.started) return;
  s.started = false;
  asio::post(s.io, [&s] {
    beast::error_code ec;
    s.acceptor.close(ec);
    s.accept_backoff.cancel();
    for (SessionBase* session : s.sessions) session->close();
  });
  s.auth_pool.join();
  // Connections closed above finish on their own; the io context is stopped once the
  // handlers they leave have run.
  asio::post(s.io, [&s] { s.io.stop(); });
  if (s.thread.joinable()) s.thread.join();
}

std::uint16_t MetricsServer::port() const { return impl_->bound_port; }

std::string MetricsServer::url() const {
  const std::string& h = impl_->options.host;
  return std::string(impl_->options.web.tls ? "https://" : "http://") +
         (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + std::to_string(port()) +
         "/metrics";
}

}  // namespace citywatch::http
