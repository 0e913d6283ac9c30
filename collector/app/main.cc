// citywatch-collector: receives agents' records over mutual TLS, keeps the ingest ledger and
// exports Prometheus metrics. Objects are built and wired here; nothing is global.
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "collector/app/collector_config.h"
#include "collector/ingest/ingest_server.h"
#include "collector/ingest/ledger.h"
#include "collector/metrics/collector_metrics.h"
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
  CLI11_PARSE(app, argc, argv);

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
      [&](const std::string& seg, const std::string& agent, int proto, const col::FlowTotals& t) {
        metrics.apply_flow_totals(seg, agent, proto, t);
      });
  ledger->for_each_agent([&](const std::string& agent, std::uint64_t batches,
                             const std::array<std::uint64_t, 6>& records) {
    metrics.apply_agent_totals(agent, batches, records);
  });

  std::unique_ptr<prometheus::Exposer> exposer;
  const std::string metrics_bind =
      (cfg.metrics_host.find(':') != std::string::npos ? "[" + cfg.metrics_host + "]"
                                                       : cfg.metrics_host) +
      ":" + std::to_string(cfg.metrics_port);
  try {
    exposer = std::make_unique<prometheus::Exposer>(metrics_bind, 2);
  } catch (const std::exception& e) {
    cw::log::error("metrics: cannot listen on " + metrics_bind + ": " + e.what());
    return 1;
  }
  exposer->RegisterCollectable(registry);
  const auto metrics_ports = exposer->GetListeningPorts();
  const int metrics_port = metrics_ports.empty() ? cfg.metrics_port : metrics_ports.front();

  boost::asio::io_context io(1);
  col::IngestOptions opts;
  opts.host = cfg.ingest_host;
  opts.port = cfg.ingest_port;
  opts.allowed_agents = cfg.allowed_agents;
  opts.fault_exit_after_commits = fault_exit;
  col::IngestServer server(io, *tls, *ledger, metrics, opts);
  if (auto s = server.start(); !s) {
    cw::log::error(s.message());
    return 1;
  }
  cw::log::info("citywatch-collector " + std::string(cw::kVersion) + ": ingest on " +
                cfg.ingest_host + ":" + std::to_string(server.port()) + ", metrics at http://" +
                cfg.metrics_host + ":" + std::to_string(metrics_port) + "/metrics");
  if (!ready_file.empty()) {
    const std::string tmp = ready_file + ".tmp";
    std::ofstream(tmp) << "{\"ingest_port\":" << server.port()
                       << ",\"metrics_port\":" << metrics_port << "}\n";
    std::filesystem::rename(tmp, ready_file);
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int sig) {
    cw::log::info("collector: signal " + std::to_string(sig) + ", stopping");
    server.stop();
    io.stop();
  });
  io.run();
  return 0;
}
