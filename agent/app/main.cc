// citywatch-agent: captures and meters traffic on one network segment and streams the
// records to a collector over mutual TLS, through a disk spool. Objects are built and wired
// in AgentRuntime; nothing is global.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "agent/app/agent_config.h"
#include "agent/app/agent_runtime.h"
#include "common/version.h"

namespace cw = citywatch;
namespace ag = citywatch::agent;

int main(int argc, char** argv) {
  CLI::App app{"citywatch-agent: CityWatch segment agent (capture, flows, forwarding)"};
  std::string config_file;
  bool check_config = false;
  bool print_default = false;
  std::vector<std::string> files;
  app.add_option("-c,--config", config_file,
                 "YAML configuration file (default: embedded demo config)");
  app.add_flag("--check-config", check_config, "validate the configuration and exit");
  app.add_flag("--print-default-config", print_default, "print the embedded default configuration");
  app.add_option("-r,--read", files,
                 "read these pcap/pcapng files instead of the configured capture sources; "
                 "exits once every record is acked by the collector");
  app.set_version_flag("--version", std::string(cw::kVersion));
  CLI11_PARSE(app, argc, argv);

  if (print_default) {
    std::cout << ag::kDefaultAgentConfig;
    return 0;
  }
  ag::AgentConfig cfg;
  const std::string name = config_file.empty() ? "<embedded default config>" : config_file;
  const cw::Status loaded =
      config_file.empty() ? ag::parse_agent_config(ag::kDefaultAgentConfig, name,
                                                   std::filesystem::current_path().string(), cfg)
                          : ag::load_agent_config(config_file, cfg);
  if (!loaded) {
    std::cerr << loaded.message() << "\n";
    return 2;
  }
  if (!files.empty()) {
    cfg.captures.clear();
    for (const auto& f : files) {
      ag::CaptureOptions c;
      c.file = f;
      cfg.captures.push_back(c);
    }
  }
  if (check_config) {
    std::unique_ptr<boost::asio::ssl::context> tls;
    if (auto s = cw::make_tls_context(cw::TlsRole::kClient, cfg.tls, tls); !s) {
      std::cerr << name << ": " << s.message() << "\n";
      return 2;
    }
    std::cout << name << ": configuration OK\n";
    return 0;
  }
  ag::AgentRuntime runtime(std::move(cfg));
  if (auto s = runtime.init(); !s) {
    std::cerr << name << ": " << s.message() << "\n";
    return 1;
  }
  return runtime.run();
}
