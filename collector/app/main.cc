// citywatch-collector: receives agents' records over mutual TLS, keeps the ingest ledger and
// exports Prometheus metrics. Objects are built and wired here; nothing is global.
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

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
#include "common/log.h"
#include "common/tls.h"
#include "common/version.h"

namespace cw = citywatch;
namespace col = citywatch::collector;

int main(int argc, char** argv) {
  CLI::App app{"citywatch-collector: CityWatch collector (ingest, metrics)"};
  std::string config_file;
  bool check_config = false;
  bool print_default = false;
  std::string ready_file;
  std::uint64_t fault_exit = 0;
  app.add_option("-c,--config", config_file,
                 "YAML configuration file (default: embedded demo config)");
  app.add_flag("--check-config", check_config, "validate the configuration and exit");
  app.add_flag("--print-default-config", print_default, "print the embedded default configuration");
  app.add_option("--ready-file", ready_file,
                 "once listening, write {\"ingest_port\":N,\"metrics_port\":M} here");
  app.add_option("--fault-exit-after-commits", fault_exit,
                 "testing only: exit after N committed batches, before acking")
      ->group("");
  app.set_version_flag("--version", std::string(cw::kVersion));
  std::vector<std::string> rule_files;
  CLI::App* check_rules = app.add_subcommand(
      "check-rules", "validate rule files and their lists without running; exit 2 on error");
  check_rules->add_option("files", rule_files, "rule files or directories")->required();
  CLI11_PARSE(app, argc, argv);
  if (*check_rules) {
    std::string summary;
    if (auto s = col::check_rule_files(rule_files, summary); !s) {
      std::cerr << s.message() << "\n";
      return 2;
    }
    std::cout << summary << "\n";
    return 0;
  }

  if (print_default) {
    std::cout << col::kDefaultCollectorConfig;
    return 0;
  }
  col::CollectorConfig cfg;
  const std::string name = config_file.empty() ? "<embedded default config>" : config_file;
  const cw::Status loaded = config_file.empty() ? col::parse_collector_config(
                                                      col::kDefaultCollectorConfig, name,
                                                      std::filesystem::current_path().string(), cfg)
                                                : col::load_collector_config(config_file, cfg);
  if (!loaded) {
    std::cerr << loaded.message() << "\n";
    return 2;
  }
  std::unique_ptr<boost::asio::ssl::context> tls;
  if (auto s = cw::make_tls_context(cw::TlsRole::kServer, cfg.tls, tls); !s) {
    std::cerr << name << ": " << s.message() << "\n";
    return 2;
  }
  if (check_config && !cfg.rules.files.empty()) {
    std::string summary;
    if (auto s = col::check_rule_files(cfg.rules.files, summary); !s) {
      std::cerr << s.message() << "\n";
      return 2;
    }
  }
  if (check_config) {
    std::cout << name << ": configuration OK\n";
    return 0;
  }

  std::unique_ptr<col::IngestLedger> ledger;
  if (auto s =
          col::IngestLedger::open(std::filesystem::path(cfg.state_dir) / "ingest.sqlite", ledger);
      !s) {
    cw::log::error(s.message());
    return 1;
  }

  auto registry = std::make_shared<prometheus::Registry>();
  col::CollectorMetrics metrics(*registry);
  prometheus::BuildGauge()
      .Name("citywatch_build_info")
      .Help("Build of the running collector; value is always 1")
      .Register(*registry)
      .Add({{"version", std::string(cw::kVersion)}, {"component", "collector"}})
      .Set(1);
  // Counters continue from the ledger instead of restarting at zero.
  ledger->for_each_flow_total(
      [&](const std::string& seg, const std::string& agent, const col::FlowRow& row) {
        metrics.apply_flow_row(seg, agent, row);
      });
  ledger->for_each_interface_total(
      [&](const std::string& seg, const std::string& agent, const col::InterfaceRow& row) {
        metrics.apply_interface_row(seg, agent, row);
      });
  ledger->for_each_agent([&](const std::string& agent, std::uint64_t batches,
                             const std::array<std::uint64_t, 6>& records) {
    metrics.apply_agent_totals(agent, batches, records);
  });

  // /metrics over HTTP or HTTPS with basic auth (common/http/metrics_server.h).
  cw::http::MetricsServerOptions http_options;
  http_options.host = cfg.metrics_host;
  http_options.port = cfg.metrics_port;
  http_options.web = cfg.metrics_web;
  cw::http::MetricsServer metrics_server(std::move(http_options), *registry);
  metrics_server.add(registry);
  // SNMP interface and device metrics (docs/snmp.md): served from the latest samples.
  auto snmp_metrics = std::make_shared<col::SnmpMetrics>();
  metrics_server.add(snmp_metrics);
  // Top talkers per segment and minute, a fixed number of series (docs/metrics.md).
  auto top_talkers = std::make_shared<col::TopTalkers>();
  metrics_server.add(top_talkers);
  if (auto s = metrics_server.start(); !s) {
    cw::log::error(s.message());
    return 1;
  }
  const int metrics_port = metrics_server.port();

  // The uptime tracker outlives the io_context: sessions report their end to it as they
  // are destroyed.
  std::unique_ptr<col::uptime::OutageStore> outage_store;
  std::unique_ptr<col::uptime::UptimeMetrics> uptime_metrics;
  std::unique_ptr<col::uptime::OutageTracker> tracker;
  col::uptime::SystemClock clock;
  if (cfg.uptime.enabled) {
    if (auto s = col::uptime::OutageStore::open(
            std::filesystem::path(cfg.state_dir) / "uptime.sqlite", outage_store);
        !s) {
      cw::log::error(s.message());
      return 1;
    }
    uptime_metrics = std::make_unique<col::uptime::UptimeMetrics>(*registry, cfg.uptime);
    tracker = std::make_unique<col::uptime::OutageTracker>(cfg.uptime, *outage_store, clock,
                                                           uptime_metrics.get());
    if (auto s = tracker->load(); !s) {
      cw::log::error(s.message());
      return 1;
    }
  }

  // Outlives the io_context, like the tracker: sessions report their end to the engine as
  // they are destroyed (after stop() the engine ignores them).
  std::unique_ptr<col::RulesService> rules;
  boost::asio::io_context io(1);
  col::IngestOptions opts;
  opts.host = cfg.ingest_host;
  opts.port = cfg.ingest_port;
  opts.allowed_agents = cfg.allowed_agents;
  opts.frame_timeout = cfg.frame_timeout;
  opts.max_sessions_per_agent = cfg.max_sessions_per_agent;
  opts.fault_exit_after_commits = fault_exit;
  col::IngestServer server(io, *tls, *ledger, metrics, opts);
  server.add_consumer(snmp_metrics.get());
  server.add_consumer(top_talkers.get());
  boost::asio::steady_timer uptime_timer(io);
  std::function<void()> uptime_tick = [&] {
    tracker->tick();
    uptime_timer.expires_after(std::chrono::seconds(1));
    uptime_timer.async_wait([&](boost::system::error_code ec) {
      if (!ec) uptime_tick();
    });
  };
  if (tracker) {
    server.add_consumer(tracker.get());
    uptime_tick();
  }
  // Rules and alerting (docs/rules.md): SIGHUP reloads the rules and lists.
  boost::asio::signal_set hangup(io, SIGHUP);
  std::function<void()> wait_hangup = [&] {
    hangup.async_wait([&](boost::system::error_code ec, int) {
      if (ec) return;
      rules->reload();
      wait_hangup();
    });
  };
  if (!cfg.rules.files.empty()) {
    rules = std::make_unique<col::RulesService>(io, *registry, cfg.rules, cfg.alerts);
    if (auto s = rules->start(); !s) {
      cw::log::error(s.message());
      return 2;
    }
    // Alerts say where: the site of each segment, as uptime.sites configures it.
    std::map<std::string, std::string, std::less<>> sites;
    for (const auto& site : cfg.uptime.sites)
      for (const auto& segment : site.segments) sites.emplace(segment, site.name);
    rules->engine().set_sites(std::move(sites));
    server.add_consumer(&rules->engine());
    wait_hangup();
  }
  if (auto s = server.start(); !s) {
    cw::log::error(s.message());
    return 1;
  }
  cw::log::info("citywatch-collector " + std::string(cw::kVersion) + ": ingest on " +
                cfg.ingest_host + ":" + std::to_string(server.port()) + ", metrics at " +
                metrics_server.url());
  if (!ready_file.empty()) {
    const std::string tmp = ready_file + ".tmp";
    std::ofstream(tmp) << "{\"ingest_port\":" << server.port()
                       << ",\"metrics_port\":" << metrics_port << "}\n";
    std::filesystem::rename(tmp, ready_file);
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int sig) {
    cw::log::info("collector: signal " + std::to_string(sig) + ", stopping");
    if (tracker) tracker->stop();
    uptime_timer.cancel();
    if (rules) rules->stop();
    hangup.cancel();
    server.stop();
    io.stop();
  });
  io.run();
  // Sessions suspended in I/O must end while the server and its consumers still exist.
  server.drain();
  return 0;
}
