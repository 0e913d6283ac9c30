#include "collector/alerts/alertmanager_sink.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "collector/alerts/alert_json.h"
#include "common/log.h"

namespace citywatch::collector {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

bool parse_http_url(const std::string& url, std::string& host, std::string& port,
                    std::string& path) {
  std::string rest = url;
  if (rest.rfind("http://", 0) == 0)
    rest = rest.substr(7);
  else if (rest.find("://") != std::string::npos)
    return false;
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
                                                                     : "80";
  } else {
    const auto colon = hostport.rfind(':');
    host = hostport.substr(0, colon);
    port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  }
  return !host.empty() && !port.empty();
}

struct AlertmanagerSink::Instance {
  explicit Instance(asio::io_context& io) : wake(io) {}
  std::string url, host, port, path;
  std::deque<std::string> queue;
  asio::steady_timer wake;
  bool stopping = false;
  bool idle = false;                  // waiting for work (not backing off)
  std::size_t dropped_in_flight = 0;  // of the batch being posted, dropped by a full queue
};

AlertmanagerSink::AlertmanagerSink(asio::io_context& io, AlertmanagerOptions options,
                                   AlertMetrics& metrics)
    : io_(io), options_(std::move(options)), counters_(metrics.sink("alertmanager")) {}

AlertmanagerSink::~AlertmanagerSink() { stop(); }

namespace {

// One POST of `body`; true on a 2xx answer.
asio::awaitable<bool> post(asio::io_context& io, const std::string& host, const std::string& port,
                           const std::string& path, const std::string& body,
                           std::chrono::nanoseconds timeout, std::string& error) {
  boost::system::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  auto endpoints =
      co_await resolver.async_resolve(host, port, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    error = "resolve: " + ec.message();
    co_return false;
  }
  beast::tcp_stream stream(io);
  stream.expires_after(timeout);
  co_await stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    error = "connect: " + ec.message();
    co_return false;
  }
  http::request<http::string_body> req{http::verb::post, path, 11};
  req.set(http::field::host, host + ":" + port);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::user_agent, "citywatch-collector");
  req.body() = body;
  req.prepare_payload();
  co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    error = "write: " + ec.message();
    co_return false;
  }
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  co_await http::async_read(stream, buffer, res, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    error = "read: " + ec.message();
    co_return false;
  }
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  if (res.result_int() / 100 != 2) {
    error = "HTTP " + std::to_string(res.result_int()) + ": " + res.body().substr(0, 200);
    co_return false;
  }
  co_return true;
}

}  // namespace

Status AlertmanagerSink::start() {
  for (const std::string& url : options_.urls) {
    auto inst = std::make_shared<Instance>(io_);
    inst->url = url;
    if (!parse_http_url(url, inst->host, inst->port, inst->path))
      return Status::error("alertmanager url '" + url + "': expected http://HOST:PORT");
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
            std::string error;
            inst->dropped_in_flight = 0;
            const bool ok = co_await post(io_, inst->host, inst->port, inst->path, body,
                                          options_.timeout, error);
            if (inst->stopping) break;
            if (ok) {
              // A full queue may have dropped some of this batch meanwhile; pop the rest.
              for (std::size_t i = inst->dropped_in_flight; i < n && !inst->queue.empty(); ++i)
                inst->queue.pop_front();
              counters_.sent->Increment(static_cast<double>(n));
              backoff = options_.initial_backoff;
            } else {
              counters_.failures->Increment();
              log::warning("alertmanager " + inst->url + ": " + error + "; retrying in " +
                           std::to_string(backoff.count() / 1000000) + " ms");
              boost::system::error_code ec;
              inst->wake.expires_after(backoff);
              co_await inst->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
              backoff = std::min(backoff * 2, options_.max_backoff);
            }
            counters_.queued->Set(static_cast<double>(queued()));
          }
        },
        asio::detached);
  }
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
