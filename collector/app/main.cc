// citywatch-collector: receives agents' records over mutual TLS, keeps the ingest ledger and
// exports Prometheus metrics. This file reads the command line and the configuration; the
// collector itself is a CollectorRuntime (collector_runtime.h). Nothing is global.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "collector/app/collector_config.h"
#include "collector/app/collector_runtime.h"
#include "collector/rules_engine/rules_service.h"
#include "common/huge_heap.h"
#include "common/log.h"
#include "common/service_notify.h"
#include "common/tls.h"
#include "common/version.h"

namespace cw = citywatch;
namespace col = citywatch::collector;

int main(int argc, char** argv) {
  // Batches, records and decoder state in huge pages: see common/huge_heap.h.
  cw::prefer_huge_heap(std::size_t{32} << 20);
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

  // Under systemd (Type=notify, WatchdogSec=): readiness, reloads, stopping and watchdog pings.
  const auto notifier = cw::ServiceNotifier::from_environment();
  col::RuntimeOptions options;
  options.fault_exit_after_commits = fault_exit;
  options.notifier = notifier.get();
  std::unique_ptr<col::CollectorRuntime> runtime;
  if (auto s = col::CollectorRuntime::create(std::move(cfg), options, runtime); !s) {
    cw::log::error(s.message());
    return 1;
  }
  if (auto s = runtime->start(); !s) {
    cw::log::error(s.message());
    return 1;
  }
  if (!ready_file.empty()) {
    const std::string tmp = ready_file + ".tmp";
    std::ofstream(tmp) << "{\"ingest_port\":" << runtime->ingest_port()
                       << ",\"metrics_port\":" << runtime->metrics_port() << "}\n";
    std::filesystem::rename(tmp, ready_file);
  }
  runtime->run();
  return 0;
}
