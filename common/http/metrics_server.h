// MetricsServer: the daemons' /metrics endpoint, a small HTTP/1.1 server on Boost.Asio and
// Beast that replaces prometheus-cpp's civetweb Exposer.
//
// Why: the Exposer's fixed worker threads could each be held by a client that never finished
// its request headers; two such clients blinded a scrape for ~30 s, and it had no TLS or
// authentication. Here every connection is asynchronous on one io thread, so a slow or
// stalled client holds a socket and a few KiB, never a thread:
//   - the first request's headers (and the TLS handshake) must arrive within header_timeout;
//     a kept-alive connection may idle for idle_timeout, then its next request's headers get
//     header_timeout again;
//   - headers are bounded (max_header_bytes, 431 beyond), bodies to 4 KiB (413 beyond);
//     only GET and HEAD are served (405);
//   - at max_connections a new connection evicts the connection that has been waiting
//     longest for a request (handshake, idle or headers); only when every connection is busy
//     answering is the new one refused. Both are counted;
//   - bcrypt runs on a worker thread, so a wrong password costs the caller, not others.
// TLS and basic auth come from an exporter-toolkit web config (common/http/web_config.h).
//
// Paths: /metrics (every registered Collectable, text format 0.0.4) and /-/healthy ("OK").
// Authentication, when configured, applies to both.
//
// Own metrics (registered in the registry given to the constructor, docs/metrics.md):
//   citywatch_http_requests_total{code}, citywatch_http_auth_failures_total{reason},
//   citywatch_http_tls_handshake_failures_total, citywatch_http_connections_refused_total{reason},
//   citywatch_http_connections_evicted_total, citywatch_http_header_timeouts_total,
//   citywatch_http_connections.
//
// Thread-safety: construct, add() and start() from one thread; the server then runs on its
// own thread until stop() (or destruction). Collectables must be thread-safe (prometheus-cpp's
// are).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/http/web_config.h"
#include "common/status.h"

namespace citywatch::http {

struct MetricsServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port; see port()
  WebConfig web;           // TLS and basic auth; default: plain HTTP, no auth
  std::chrono::nanoseconds header_timeout = std::chrono::seconds(10);
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(120);
  std::chrono::nanoseconds write_timeout = std::chrono::seconds(30);
  std::size_t max_connections = 64;
  std::size_t max_header_bytes = 8192;
  std::chrono::seconds auth_cache_ttl = std::chrono::seconds(60);
};

class MetricsServer {
 public:
  // self_metrics: where the server's own counters go (usually the daemon's registry).
  MetricsServer(MetricsServerOptions options, prometheus::Registry& self_metrics);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Before start(): a source of metric families served on /metrics, in order.
  void add(std::shared_ptr<prometheus::Collectable> source);
  // Loads TLS files, binds and starts the server thread. Errors name the file or address.
  Status start();
  void stop();
  std::uint16_t port() const;
  // "https://127.0.0.1:9464/metrics" or http://; for logs.
  std::string url() const;

  struct Impl;  // opaque; public only so the .cc's connection classes can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace citywatch::http
