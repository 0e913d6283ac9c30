#include "collector/app/collector_runtime.h"

#include <prometheus/gauge.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <filesystem>
#include <map>

#include "common/log.h"
#include "common/tls.h"
#include "common/version.h"

namespace citywatch::collector {

namespace {

// The longest a PostgreSQL statement of the running collector may take (docs/scaling.md).
constexpr std::chrono::milliseconds kStatementLimit{15000};

}  // namespace

CollectorRuntime::CollectorRuntime(CollectorConfig cfg, RuntimeOptions options)
    : cfg_(std::move(cfg)), options_(options) {
  if (options_.notifier != nullptr) notifier_ = options_.notifier;
}

Status CollectorRuntime::create(CollectorConfig cfg, RuntimeOptions options,
                                std::unique_ptr<CollectorRuntime>& out) {
  std::unique_ptr<CollectorRuntime> rt(new CollectorRuntime(std::move(cfg), options));
  if (auto s = rt->build(); !s) return s;
  out = std::move(rt);
  return Status::ok();
}

Status CollectorRuntime::build() {
  if (auto s = make_tls_context(TlsRole::kServer, cfg_.tls, tls_); !s) return s;
  // The stores: SQLite files in state_dir, or the PostgreSQL database of a collector pair
  // (one connection each: the ledger commits while the tracker writes).
  const bool shared = !cfg_.store.postgres_dsn.empty();
  auto open_db = [&](const char* file, std::unique_ptr<store::SqlDb>& db) {
    if (shared) return store::open_postgres(cfg_.store.postgres_dsn, db);
    return store::open_sqlite(std::filesystem::path(cfg_.state_dir) / file, db);
  };
  std::unique_ptr<store::SqlDb> ledger_db;
  if (auto s = open_db("ingest.sqlite", ledger_db); !s)
    return Status::error("ledger: " + s.message());
  if (auto s =
          IngestLedger::open(std::move(ledger_db), shared ? cfg_.store.collector_id : "", ledger_);
      !s)
    return s;
  if (shared)
    log::info("collector: stores on " + ledger_->db().name() + " as collector '" +
              cfg_.store.collector_id + "'");
  if (int from = ledger_->migrated_from(); from != 0)
    log::info("collector: ingest ledger migrated from schema " + std::to_string(from) +
              "; totals and delivery positions kept");

  registry_ = std::make_shared<prometheus::Registry>();
  metrics_ = std::make_unique<CollectorMetrics>(*registry_);
  prometheus::BuildGauge()
      .Name("citywatch_build_info")
      .Help("Build of the running collector; value is always 1")
      .Register(*registry_)
      .Add({{"version", std::string(kVersion)}, {"component", "collector"}})
      .Set(1);
  // Counters continue from the ledger instead of restarting at zero.
  ledger_->for_each_flow_total(
      [this](const std::string& seg, const std::string& agent, const FlowRow& row) {
        metrics_->apply_flow_row(seg, agent, row);
      });
  ledger_->for_each_interface_total(
      [this](const std::string& seg, const std::string& agent, const InterfaceRow& row) {
        metrics_->apply_interface_row(seg, agent, row);
      });
  ledger_->for_each_agent([this](const std::string& agent, std::uint64_t batches,
                                 const PerRecordKind<std::uint64_t>& records) {
    metrics_->apply_agent_totals(agent, batches, records);
  });

  // /metrics over HTTP or HTTPS with basic auth (common/http/metrics_server.h): the registry,
  // the SNMP interface and device series (docs/snmp.md) and the top talkers per segment and
  // minute (docs/metrics.md), each served from what it holds.
  snmp_metrics_ = std::make_shared<SnmpMetrics>();
  top_talkers_ = std::make_shared<TopTalkers>();
  http::MetricsServerOptions http_options;
  http_options.host = cfg_.metrics_host;
  http_options.port = cfg_.metrics_port;
  http_options.web = cfg_.metrics_web;
  metrics_server_ = std::make_unique<http::MetricsServer>(std::move(http_options), *registry_);
  metrics_server_->add(registry_);
  metrics_server_->add(snmp_metrics_);
  metrics_server_->add(top_talkers_);

  if (cfg_.uptime.enabled) {
    std::unique_ptr<store::SqlDb> outage_db;
    if (auto s = open_db("uptime.sqlite", outage_db); !s) return s;
    if (auto s = uptime::OutageStore::open(std::move(outage_db), outage_store_); !s) return s;
    uptime_metrics_ = std::make_unique<uptime::UptimeMetrics>(*registry_, cfg_.uptime);
    tracker_ = std::make_unique<uptime::OutageTracker>(cfg_.uptime, *outage_store_, clock_,
                                                       uptime_metrics_.get(),
                                                       shared ? cfg_.store.collector_id : "");
    if (auto s = tracker_->load(); !s) return s;
  }
  if (shared) {
    // From here on the statements run on the event loop, whose watchdog pings stop while one
    // waits (on a lock held by a report or a manual session, say). Bounded below the
    // watchdog's 22.5 s: the statement fails, the batch is not acked and the agent sends it
    // again, instead of systemd killing the collector. Migrations above ran without it.
    if (auto s = ledger_->db().limit_statements(kStatementLimit); !s)
      return Status::error("ledger: " + s.message());
    if (outage_store_)
      if (auto s = outage_store_->db().limit_statements(kStatementLimit); !s)
        return Status::error("outage store: " + s.message());
  }

  IngestOptions opts;
  opts.host = cfg_.ingest_host;
  opts.port = cfg_.ingest_port;
  opts.allowed_agents = cfg_.allowed_agents;
  opts.frame_timeout = cfg_.frame_timeout;
  opts.max_sessions_per_agent = cfg_.max_sessions_per_agent;
  opts.fault_exit_after_commits = options_.fault_exit_after_commits;
  server_ = std::make_unique<IngestServer>(io_, *tls_, *ledger_, *metrics_, opts);
  server_->add_consumer(snmp_metrics_.get());
  server_->add_consumer(top_talkers_.get());
  if (tracker_) server_->add_consumer(tracker_.get());

  // Rules and alerting (docs/rules.md).
  if (!cfg_.rules.files.empty()) {
    rules_ = std::make_unique<RulesService>(io_, *registry_, cfg_.rules, cfg_.alerts);
    if (auto s = rules_->start(); !s) return s;
    // Alerts say where: the site of each segment, as uptime.sites configures it.
    std::map<std::string, std::string, std::less<>> sites;
    for (const auto& site : cfg_.uptime.sites)
      for (const auto& segment : site.segments) sites.emplace(segment, site.name);
    rules_->engine().set_sites(std::move(sites));
    // The tracker consumes each batch first, so the engine asks about states that already
    // include it (docs/uptime.md, "Dependencies and root cause").
    if (tracker_) rules_->engine().set_dependencies(tracker_.get());
    server_->add_consumer(&rules_->engine());
  }
  return Status::ok();
}

CollectorRuntime::~CollectorRuntime() {
  shut_down();
  // Sessions suspended in I/O end while the server and its consumers still exist.
  if (server_ && !drained_) server_->drain();
}

Status CollectorRuntime::start() {
  if (auto s = metrics_server_->start(); !s) return s;
  if (auto s = server_->start(); !s) return s;
  if (tracker_) uptime_tick();
  if (options_.handle_signals) {
    // Always caught: without rules a SIGHUP (logrotate, systemctl reload) must not stop
    // the collector; there is just nothing to reload.
    hangup_.add(SIGHUP);
    wait_hangup();
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.async_wait([this](boost::system::error_code ec, int sig) {
      if (ec) return;
      log::info("collector: signal " + std::to_string(sig) + ", stopping");
      shut_down();
    });
  }
  log::info("citywatch-collector " + std::string(kVersion) + ": ingest on " + cfg_.ingest_host +
            ":" + std::to_string(server_->port()) + ", metrics at " + metrics_server_->url());
  return Status::ok();
}

void CollectorRuntime::uptime_tick() {
  tracker_->tick();
  // Session alerts held back by dependencies are asked about again (docs/uptime.md).
  if (rules_) rules_->engine().recheck_held();
  uptime_timer_.expires_after(std::chrono::seconds(1));
  uptime_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) uptime_tick();
  });
}

void CollectorRuntime::wait_hangup() {
  hangup_.async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    notifier_->reloading();
    if (rules_) {
      notifier_->ready(rules_->reload()
                           ? ready_status()
                           : "rules reload refused, the running rules stay (see the log)");
    } else {
      log::info("collector: SIGHUP: no rules configured, nothing to reload");
      notifier_->ready(ready_status());
    }
    wait_hangup();
  });
}

// What `systemctl status` shows while the collector runs (STATUS=).
std::string CollectorRuntime::ready_status() const {
  return "ingest on " + cfg_.ingest_host + ":" + std::to_string(server_->port()) + ", metrics at " +
         metrics_server_->url() + ", " + std::to_string(cfg_.rules.files.size()) + " rule file(s)";
}

void CollectorRuntime::run() {
  // start() bound every port: the service manager may count the collector as started
  // (Type=notify), and its watchdog pings come from this loop.
  notifier_->ready(ready_status());
  notifier_->start_watchdog(io_);
  io_.run();
  notifier_->stop_watchdog();
  server_->drain();
  drained_ = true;
}

void CollectorRuntime::stop() {
  boost::asio::post(io_, [this] { shut_down(); });
}

void CollectorRuntime::shut_down() {
  if (!stopping_notified_) {
    stopping_notified_ = true;
    notifier_->stopping("stopping");
  }
  notifier_->stop_watchdog();
  if (tracker_) tracker_->stop();
  uptime_timer_.cancel();
  if (rules_) rules_->stop();
  hangup_.cancel();
  signals_.cancel();
  if (server_) server_->stop();
  io_.stop();
}

}  // namespace citywatch::collector
