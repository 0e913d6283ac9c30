// citywatch-agent: captures and meters traffic on one network segment and streams the
// records to a collector over mutual TLS, through a disk spool. Objects are built and wired
// in AgentRuntime; nothing is global.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "agent/app/agent_config.h"
#include "agent/app/agent_runtime.h"
#include "agent/app/offline_reads.h"
#include "agent/flow/decode_command.h"
#include "common/huge_heap.h"
#include "common/service_notify.h"
#include "common/version.h"

namespace cw = citywatch;
namespace ag = citywatch::agent;

int main(int argc, char** argv) {
  // Batches, records and decoder state in huge pages: see common/huge_heap.h.
  cw::prefer_huge_heap(std::size_t{32} << 20);
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
  bool reread = false;
  app.add_flag("--reread", reread,
               "with -r: read files this agent has read before (their traffic counts twice)");
  app.set_version_flag("--version", std::string(cw::kVersion));
  // decode: flow exports captured in pcap files -> JSON lines (docs/flows.md).
  citywatch::agent::flow::DecodeCommandOptions decode_opts;
  bool decode_summary_only = false;
  CLI::App* decode = app.add_subcommand(
      "decode",
      "print the records in captured NetFlow/IPFIX/sFlow exports, or the flows and packet "
      "events of a packet capture, as JSON lines");
  decode->add_option("files", decode_opts.files, "pcap/pcapng files, templates first")
      ->required()
      ->check(CLI::ExistingFile);
  decode->add_option("--port", decode_opts.port,
                     "decode UDP datagrams to this port only (default: detect by version)");
  decode->add_option("--state", decode_opts.state_file,
                     "template state file to load first and save after");
  decode->add_flag("--summary-only", decode_summary_only, "print only the summary (stderr)");
  std::string decode_mode = "auto";
  decode
      ->add_option("--mode", decode_mode,
                   "auto: flow exports, or meter a capture that has none; exports; packets: meter "
                   "as citywatch-agent -r does (flows and packet events)")
      ->check(CLI::IsMember({"auto", "exports", "packets"}));
  CLI11_PARSE(app, argc, argv);
  if (*decode) {
    decode_opts.records = !decode_summary_only;
    decode_opts.mode = decode_mode == "packets"   ? citywatch::agent::flow::DecodeMode::kPackets
                       : decode_mode == "exports" ? citywatch::agent::flow::DecodeMode::kExports
                                                  : citywatch::agent::flow::DecodeMode::kAuto;
    return citywatch::agent::flow::run_decode_command(decode_opts, std::cout, std::cerr);
  }

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
    // -r: files only, so the agent ends when they are done. Flow listeners, SNMP polls and
    // the trap receiver are live sources that never end; an operator replaying a capture
    // with the production config gets the capture's records and an agent that exits.
    cfg.captures.clear();
    cfg.flow_listeners.clear();
    cfg.snmp.targets.clear();
    cfg.snmp.trap_host.clear();
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
  const std::filesystem::path state_dir =
      cfg.state_dir.empty() ? cfg.spool.dir.parent_path() / "agent-state" : cfg.state_dir;
  const std::string agent_id = cfg.agent_id;
  // Under systemd (Type=notify, WatchdogSec=): readiness, reloads, stopping and watchdog
  // pings. Made before the runtime, so it outlives it.
  const auto notifier = cw::ServiceNotifier::from_environment();
  ag::AgentRuntime runtime(std::move(cfg));
  runtime.set_reload_source(config_file, !files.empty());
  runtime.set_service_notifier(notifier.get());
  if (auto s = runtime.init(); !s) {
    std::cerr << name << ": " << s.message() << "\n";
    return 1;
  }
  // -r: a file read into this spool's stream before is refused, not counted twice (the
  // collector counts each agent's stream once; a new run numbers its batches anew).
  char stream[17];
  std::snprintf(stream, sizeof stream, "%016llx",
                static_cast<unsigned long long>(runtime.stream_id()));
  const ag::OfflineReads reads(state_dir / ("offline-reads." + agent_id + "." + stream));
  if (!files.empty() && !reread)
    if (auto s = reads.check(files); !s) {
      std::cerr << s.message() << "\n";
      return 2;
    }
  // Each file is marked "started" as its turn comes: a run that stops leaves the files it
  // never opened unmarked, free to be read by the next run.
  if (!files.empty())
    runtime.on_file_start([&reads](const std::string& f) { return reads.mark_started({f}); });
  const int rc = runtime.run();
  if (!files.empty() && rc == 0 && runtime.drained())
    if (auto s = reads.mark_done(files); !s) std::cerr << s.message() << "\n";
  return rc;
}
