#include "collector/alerts/alertmanager_sink.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "collector/alerts/alert_json.h"
#include "collector/alerts/alertmanager_response.h"
#include "common/log.h"
#include "common/task_exit.h"
#include "common/tls.h"

namespace citywatch::collector {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

bool parse_http_url(const std::string& url, std::string& host, std::string& port, std::string& path,
                    bool* tls) {
  std::string rest = url;
  bool https = false;
  if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
  } else if (rest.rfind("https://", 0) == 0) {
    rest = rest.substr(8);
    https = true;
  } else if (rest.find("://") != std::string::npos) {
    return false;
  }
  if (tls) *tls = https;
  const std::string default_port = https ? "443" : "80";
  const auto slash = rest.find('/');
  path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.pop_back();
  path += "/api/v2/alerts";
  std::string hostport = rest.substr(0, slash);
  if (!hostport.empty() && hostport.front() == '[') {
    const auto close = hostport.find(']');
    if (close == std::string::npos) return false;
    host = hostport.substr(1, close - 1);
    port = close + 1 < hostport.size() && hostport[close + 1] == ':' ? hostport.substr(close + 2)
                                                                     : default_port;
  } else {
    const auto colon = hostport.rfind(':');
    host = hostport.substr(0, colon);
    port = colon == std::string::npos ? default_port : hostport.substr(colon + 1);
  }
  return !host.empty() && !port.empty();
}

struct AlertmanagerSink::Instance {
  explicit Instance(asio::io_context& io) : wake(io) {}
  std::string url, host, port, path;
  bool tls = false;
  std::deque<std::string> queue;
  asio::steady_timer wake;
  bool stopping = false;
  bool idle = false;                  // waiting for work (not backing off)
  std::size_t dropped_in_flight = 0;  // of the batch being posted, dropped by a full queue
};

AlertmanagerSink::AlertmanagerSink(asio::io_context& io, AlertmanagerOptions options,
                                   AlertMetrics& metrics)
    : io_(io),
      options_(std::move(options)),
      metrics_(metrics),
      counters_(metrics.sink("alertmanager")) {}

AlertmanagerSink::~AlertmanagerSink() { stop(); }

namespace {

std::string reason_of(const boost::system::error_code& ec, const char* otherwise) {
  if (ec == beast::error::timeout) return "timeout";
  if (ec.category() == asio::error::get_ssl_category() ||
      ec.category() == asio::ssl::error::get_stream_category())
    return "tls";
  return otherwise;
}

// Request and response over an established stream (plain or TLS).
template <class Stream>
asio::awaitable<bool> exchange(Stream& stream, http::request<http::string_body>& req,
                               PostError& error) {
  boost::system::error_code ec;
  co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    error = {reason_of(ec, "write"), "write: " + ec.message()};
    co_return false;
  }
  beast::flat_buffer buffer(kAlertmanagerResponseBuffer);
  AlertmanagerResponseParser parser;
  limit_response_parser(parser);
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    error = {reason_of(ec, "read"), "read: " + ec.message()};
    co_return false;
  }
  co_return judge_response(parser.get(), error);
}

// One POST of `body`; true on a 2xx answer. `client` is a copy in the coroutine's frame: the
// sink may be destroyed at shutdown while a connect is still completing (the io context is
// polled once more), and this must not read its options then.
asio::awaitable<bool> post(asio::io_context& io, asio::ssl::context* tls,
                           AlertmanagerClientConfig client, const std::string& host,
                           const std::string& port, const std::string& path,
                           const std::string& body, std::chrono::nanoseconds timeout,
                           PostError& error) {
  boost::system::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  auto endpoints =
      co_await resolver.async_resolve(host, port, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    error = {"resolve", "resolve: " + ec.message()};
    co_return false;
  }
  http::request<http::string_body> req{http::verb::post, path, 11};
  req.set(http::field::host, host + ":" + port);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::user_agent, "citywatch-collector");
  if (!client.basic_user.empty()) {
    const std::string raw = client.basic_user + ":" + client.basic_password;
    std::string b64(beast::detail::base64::encoded_size(raw.size()), '\0');
    b64.resize(beast::detail::base64::encode(b64.data(), raw.data(), raw.size()));
    req.set(http::field::authorization, "Basic " + b64);
  } else if (!client.auth_credentials.empty()) {
    req.set(http::field::authorization, client.auth_type + " " + client.auth_credentials);
  }
  req.body() = body;
  req.prepare_payload();
  if (!tls) {
    beast::tcp_stream stream(io);
    stream.expires_after(timeout);
    co_await stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      error = {reason_of(ec, "connect"), "connect: " + ec.message()};
      co_return false;
    }
    const bool ok = co_await exchange(stream, req, error);
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    co_return ok;
  }
  beast::ssl_stream<beast::tcp_stream> stream(io, *tls);
  auto& lowest = beast::get_lowest_layer(stream);
  lowest.expires_after(timeout);
  co_await lowest.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    error = {reason_of(ec, "connect"), "connect: " + ec.message()};
    co_return false;
  }
  // The name checked in Alertmanager's certificate: server_name, else the URL's host.
  const std::string& name = client.server_name.empty() ? host : client.server_name;
  SSL* ssl = stream.native_handle();
  boost::system::error_code addr_ec;
  asio::ip::make_address(name, addr_ec);
  if (!client.insecure_skip_verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (addr_ec)
      X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    else
      X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
  }
  if (addr_ec) SSL_set_tlsext_host_name(ssl, name.c_str());
  co_await stream.async_handshake(asio::ssl::stream_base::client,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    error = {ec == beast::error::timeout ? "timeout" : "tls", "TLS handshake: " + ec.message()};
    co_return false;
  }
  const bool ok = co_await exchange(stream, req, error);
  lowest.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  co_return ok;
}

}  // namespace

Status AlertmanagerSink::start() {
  for (const std::string& url : options_.urls) {
    auto inst = std::make_shared<Instance>(io_);
    inst->url = url;
    if (!parse_http_url(url, inst->host, inst->port, inst->path, &inst->tls))
      return Status::error("alertmanager url '" + url + "': expected http(s)://HOST:PORT");
    if (inst->tls && !tls_)
      if (auto s = make_client_tls(); !s) return s;
    instances_.push_back(inst);
    // The sender: waits for work, posts up to max_batch alerts, backs off on failure.
    asio::co_spawn(
        io_,
        [this, inst]() -> asio::awaitable<void> {
          std::chrono::nanoseconds backoff = options_.initial_backoff;
          while (!inst->stopping) {
            if (inst->queue.empty()) {
              boost::system::error_code ec;
              inst->wake.expires_after(std::chrono::hours(24));
              inst->idle = true;
              co_await inst->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
              inst->idle = false;
              continue;
            }
            const std::size_t n = std::min(inst->queue.size(), options_.max_batch);
            std::string body = "[";
            for (std::size_t i = 0; i < n; ++i) body += (i ? "," : "") + inst->queue[i];
            body += "]";
            PostError error;
            inst->dropped_in_flight = 0;
            const bool ok =
                co_await post(io_, inst->tls ? tls_.get() : nullptr, options_.client, inst->host,
                              inst->port, inst->path, body, options_.timeout, error);
            if (inst->stopping) break;
            // A full queue may have dropped some of this batch meanwhile (counted then).
            const std::size_t rest = n - std::min(n, inst->dropped_in_flight);
            if (ok) {
              for (std::size_t i = 0; i < rest && !inst->queue.empty(); ++i)
                inst->queue.pop_front();
              counters_.sent->Increment(static_cast<double>(rest));
              backoff = options_.initial_backoff;
            } else if (error.reason == "rejected") {
              // Sent again it would be refused again, and hold every later alert behind it.
              for (std::size_t i = 0; i < rest && !inst->queue.empty(); ++i)
                inst->queue.pop_front();
              counters_.dropped->Increment(static_cast<double>(rest));
              counters_.failures->Increment();
              metrics_.sink_failure("alertmanager", error.reason).Increment();
              log::warning("alertmanager " + inst->url + ": " + error.detail + "; " +
                           std::to_string(rest) + " alert(s) refused as invalid, not sent again");
              backoff = options_.initial_backoff;
            } else {
              counters_.failures->Increment();
              metrics_.sink_failure("alertmanager", error.reason).Increment();
              log::warning("alertmanager " + inst->url + ": " + error.detail + "; retrying in " +
                           std::to_string(backoff.count() / 1000000) + " ms");
              boost::system::error_code ec;
              inst->wake.expires_after(backoff);
              co_await inst->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
              backoff = std::min(backoff * 2, options_.max_backoff);
            }
            counters_.queued->Set(static_cast<double>(queued()));
          }
        },
        TaskExit("alertmanager sender for " + url, TaskExit::kFatal));
  }
  return Status::ok();
}

Status AlertmanagerSink::make_client_tls() {
  const AlertmanagerClientConfig& c = options_.client;
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ERR_clear_error();
  if (c.ca_file.empty()) {
    SSL_CTX_set_default_verify_paths(native);
  } else if (SSL_CTX_load_verify_locations(native, c.ca_file.c_str(), nullptr) != 1) {
    return Status::error("alertmanager tls_config: " + c.ca_file +
                         ": cannot load CA: " + openssl_errors());
  }
  if (!c.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(native, c.cert_file.c_str()) != 1)
      return Status::error("alertmanager tls_config: " + c.cert_file +
                           ": cannot load certificate: " + openssl_errors());
    if (SSL_CTX_use_PrivateKey_file(native, c.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(native) != 1)
      return Status::error("alertmanager tls_config: " + c.key_file +
                           ": cannot load a key matching " + c.cert_file + ": " + openssl_errors());
  }
  SSL_CTX_set_verify(native, c.insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nullptr);
  tls_ = std::move(ctx);
  return Status::ok();
}

void AlertmanagerSink::stop() {
  for (auto& inst : instances_) {
    inst->stopping = true;
    inst->wake.cancel();
  }
}

std::size_t AlertmanagerSink::queued() const {
  std::size_t n = 0;
  for (const auto& inst : instances_) n += inst->queue.size();
  return n;
}

void AlertmanagerSink::deliver(const Alert& alert, AlertEvent event, std::int64_t wall_ns) {
  const std::string json = alertmanager_json(alert, event, wall_ns, options_.ends_in.count());
  for (auto& inst : instances_) {
    if (inst->queue.size() >= options_.max_queue) {
      inst->queue.pop_front();
      ++inst->dropped_in_flight;
      counters_.dropped->Increment();
    }
    inst->queue.push_back(json);
    // Wakes an idle sender; one backing off keeps its pace so a dead instance is not hammered.
    if (inst->idle) inst->wake.cancel();
  }
  counters_.queued->Set(static_cast<double>(queued()));
}

}  // namespace citywatch::collector
