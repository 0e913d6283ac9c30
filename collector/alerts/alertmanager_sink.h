// AlertmanagerSink: posts alerts to every configured Alertmanager with its API v2
// (POST /api/v2/alerts, a JSON array of PostableAlert), as Prometheus does.
//
// Each instance has its own bounded queue and one sender coroutine on the collector's
// io_context (Boost.Beast over HTTP or HTTPS). HTTPS verifies Alertmanager's certificate
// against ca_file (or the system's CAs) and its name (server_name, else the URL's host), may
// present a client certificate, and sends basic auth or an Authorization header, as
// Prometheus's alertmanager_config does. Failed attempts are counted by reason.
// A failed POST is retried with exponential backoff (initial_backoff doubling to
// max_backoff); the alerts stay queued meanwhile. When a queue is full the oldest
// notification is dropped and counted. Resends are delivered too, so endsAt keeps moving
// ahead while an alert fires.
//
// Thread-safety: io thread only. Owned by collector/app; stop() before destruction.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "collector/alerts/alert_metrics.h"
#include "collector/alerts/alert_sink.h"
#include "collector/alerts/alerts_config.h"
#include "common/status.h"

namespace citywatch::collector {

struct AlertmanagerOptions {
  std::vector<std::string> urls;    // "http(s)://127.0.0.1:9093" (path /api/v2/alerts is added)
  AlertmanagerClientConfig client;  // TLS and credentials
  std::size_t max_queue = 10000;
  std::size_t max_batch = 64;
  std::chrono::nanoseconds timeout = std::chrono::seconds(5);
  std::chrono::nanoseconds initial_backoff = std::chrono::milliseconds(500);
  std::chrono::nanoseconds max_backoff = std::chrono::seconds(30);
  std::chrono::nanoseconds ends_in = std::chrono::minutes(4);  // endsAt ahead while firing
};

// Splits "http(s)://host:port[/prefix]" into parts; false if not an http(s) URL. tls is set
// for https (default port 443, else 80).
bool parse_http_url(const std::string& url, std::string& host, std::string& port, std::string& path,
                    bool* tls = nullptr);

class AlertmanagerSink : public AlertSink {
 public:
  AlertmanagerSink(boost::asio::io_context& io, AlertmanagerOptions options, AlertMetrics& metrics);
  ~AlertmanagerSink() override;

  Status start();
  void stop();
  void deliver(const Alert& alert, AlertEvent event, std::int64_t wall_ns) override;
  bool wants_resend() const override { return true; }
  std::size_t queued() const;

 private:
  struct Instance;
  Status make_client_tls();
  boost::asio::io_context& io_;
  AlertmanagerOptions options_;
  AlertMetrics& metrics_;
  SinkCounters counters_;
  std::unique_ptr<boost::asio::ssl::context> tls_;  // built by start() when a URL is https
  std::vector<std::shared_ptr<Instance>> instances_;
};

}  // namespace citywatch::collector
