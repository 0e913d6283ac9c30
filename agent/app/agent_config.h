// AgentConfig: the agent's YAML configuration (docs/configuration.md), validated in full at
// start and by --check-config. Relative paths resolve against the config file's directory
// (the working directory for the embedded default).
//
// Thread-safety: a plain value, built once.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/capture/flow_meter.h"
#include "agent/capture/packet_events.h"
#include "agent/capture/packet_source.h"
#include "agent/flow/flow_listener.h"
#include "agent/forward/forwarder.h"
#include "agent/snmp/snmp_config.h"
#include "agent/spool/spool.h"
#include "common/http/web_config.h"
#include "common/status.h"
#include "common/tls.h"

namespace citywatch::agent {

struct BatchOptions {
  std::uint32_t max_records = 16000;
  std::uint64_t max_bytes = 1u << 20;
  std::chrono::nanoseconds max_delay = std::chrono::seconds(1);
  // batch.compression (docs/configuration.md): lz4 packs each batch before it is spooled and
  // sends it packed where the collector reads packed batches; zstd spools batches plain and
  // compresses them for the wire where the collector reads zstd; none does neither.
  enum class Compression : std::uint8_t { kNone, kLz4, kZstd };
  Compression compression = Compression::kLz4;

  bool operator==(const BatchOptions&) const = default;
};

struct AgentConfig {
  std::string agent_id;
  std::string segment;
  std::vector<CollectorEndpoint> collectors;
  TlsFiles tls;
  std::vector<CaptureOptions> captures;
  FlowMeterConfig flow_meter;
  PacketEventConfig packet_events;  // packet events from the capture sources
  SnmpConfig snmp;                  // SNMP polling and traps (agent/snmp)
  BatchOptions batch;
  SpoolOptions spool;
  std::chrono::nanoseconds initial_backoff = std::chrono::milliseconds(500);
  std::chrono::nanoseconds max_backoff = std::chrono::seconds(30);
  // Flow listeners (docs/flows.md): UDP sockets for NetFlow/IPFIX/sFlow exports.
  std::vector<flow::FlowListenerOptions> flow_listeners;
  std::vector<std::pair<IpAddr, std::uint32_t>> flow_sampling_overrides;  // exporter, rate
  std::vector<std::pair<IpAddr, std::uint32_t>> flow_sampling_defaults;   // when none stated
  struct SamplerOverride {
    IpAddr exporter;
    std::uint64_t sampler_id = 0;
    std::uint32_t rate = 1;
    bool operator==(const SamplerOverride&) const = default;
  };
  std::vector<SamplerOverride> flow_sampler_overrides;
  std::uint32_t flow_max_sampling_rate = 65536;  // flow.max_sampling_rate
  std::chrono::nanoseconds flow_hold_time = std::chrono::seconds(60);
  flow::TemplateLimits flow_templates;  // flow.max_templates, flow.max_templates_per_exporter
  // Agent state that must survive a restart (flow templates). Default: beside the spool.
  std::filesystem::path state_dir;
  std::string metrics_host;  // empty: the agent exports no /metrics
  std::uint16_t metrics_port = 0;
  // `metrics.web_config_file`: TLS and basic auth for /metrics, exporter-toolkit format.
  std::string metrics_web_config_file;
  http::WebConfig metrics_web;
};

extern const char* const kDefaultAgentConfig;

// What SIGHUP cannot change in a running agent: the config keys that differ between `from`
// and `to` outside the reloadable set (capture BPF filters and everything under `snmp:`
// except the trap listener's address). Empty: `to` can be applied by a reload.
std::vector<std::string> restart_only_changes(const AgentConfig& from, const AgentConfig& to);

Status load_agent_config(const std::string& file, AgentConfig& out);
Status parse_agent_config(const std::string& text, const std::string& name,
                          const std::string& base_dir, AgentConfig& out);

}  // namespace citywatch::agent
