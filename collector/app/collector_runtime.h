// CollectorRuntime: the collector, built and wired: the ingest ledger and server, the flow,
// SNMP and top-talker metrics behind /metrics, the uptime tracker and its store, the rules
// and alert sinks, their timers and signals. main.cc parses the command line and runs one;
// tests build one on a configuration with port 0 and talk to it like an agent would.
//
// Lifetime, by construction rather than by comment: members are declared in the order they
// are built, so they are destroyed in reverse. The components sessions report to (ledger,
// metrics, tracker, rules) are declared before the io_context and outlive it; the server,
// timers and signal sets bound to the io_context are declared after it and go first. The
// destructor stops and drains any session still open before any of that happens.
//
// Thread-safety: run() on one thread; stop() may be called from any thread (it posts).
#pragma once

#include <prometheus/registry.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "collector/app/collector_config.h"
#include "collector/ingest/ingest_server.h"
#include "collector/ingest/ledger.h"
#include "collector/metrics/collector_metrics.h"
#include "collector/metrics/snmp_metrics.h"
#include "collector/metrics/top_talkers.h"
#include "collector/rules_engine/rules_service.h"
#include "collector/uptime/outage_store.h"
#include "collector/uptime/outage_tracker.h"
#include "collector/uptime/uptime_metrics.h"
#include "common/http/metrics_server.h"
#include "common/service_notify.h"
#include "common/status.h"

namespace citywatch::collector {

struct RuntimeOptions {
  std::uint64_t fault_exit_after_commits = 0;  // testing only (--fault-exit-after-commits)
  bool handle_signals = true;                  // SIGINT/SIGTERM stop, SIGHUP reloads the rules
  // The service manager to tell of readiness, reloads and stopping, and to ping as a
  // watchdog from the runtime's io_context (common/service_notify.h). Not owned; outlives
  // the runtime. Null: nobody is told.
  ServiceNotifier* notifier = nullptr;
};

class CollectorRuntime {
 public:
  // Opens the stores (state_dir), builds every component and wires them; nothing listens
  // yet. A bad TLS file, an unreadable store or a broken rule file is an error here.
  static Status create(CollectorConfig cfg, RuntimeOptions options,
                       std::unique_ptr<CollectorRuntime>& out);
  ~CollectorRuntime();
  CollectorRuntime(const CollectorRuntime&) = delete;
  CollectorRuntime& operator=(const CollectorRuntime&) = delete;

  // Listens (ingest, /metrics) and starts the timers; ports are known afterwards.
  Status start();
  // Runs until stop() or SIGINT/SIGTERM, then lets open sessions end.
  void run();
  void stop();

  std::uint16_t ingest_port() const { return server_->port(); }
  int metrics_port() const { return metrics_server_->port(); }
  std::string metrics_url() const { return metrics_server_->url(); }
  boost::asio::io_context& io() { return io_; }
  RulesService* rules() { return rules_.get(); }
  prometheus::Registry& registry() { return *registry_; }
  uptime::OutageTracker* tracker() { return tracker_.get(); }

 private:
  std::string ready_status() const;
  CollectorRuntime(CollectorConfig cfg, RuntimeOptions options);
  Status build();
  void uptime_tick();
  void wait_hangup();
  void shut_down();

  CollectorConfig cfg_;
  RuntimeOptions options_;
  ServiceNotifier no_notifier_;  // notifies nobody: what notifier_ points at unless set
  ServiceNotifier* notifier_ = &no_notifier_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  std::unique_ptr<IngestLedger> ledger_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<CollectorMetrics> metrics_;
  std::shared_ptr<SnmpMetrics> snmp_metrics_;
  std::shared_ptr<TopTalkers> top_talkers_;
  std::unique_ptr<http::MetricsServer> metrics_server_;
  std::unique_ptr<uptime::OutageStore> outage_store_;
  std::unique_ptr<uptime::UptimeMetrics> uptime_metrics_;
  uptime::SystemClock clock_;
  std::unique_ptr<uptime::OutageTracker> tracker_;
  // Bound to io_ while running; stop() releases what is, so it may outlive io_.
  std::unique_ptr<RulesService> rules_;
  boost::asio::io_context io_{1};
  std::unique_ptr<IngestServer> server_;
  boost::asio::steady_timer uptime_timer_{io_};
  boost::asio::signal_set hangup_{io_};
  boost::asio::signal_set signals_{io_};
  bool drained_ = false;
  bool stopping_notified_ = false;
};

}  // namespace citywatch::collector
