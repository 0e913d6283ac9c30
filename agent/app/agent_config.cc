#include "agent/app/agent_config.h"

#include <filesystem>
#include <limits>
#include <regex>

#include "common/config_reader.h"
#include "common/record.h"

namespace citywatch::agent {

const char* const kDefaultAgentConfig = R"yaml(# citywatch-agent embedded default (demo)
agent:
  id: demo-agent              # must equal the CN of the agent's certificate
  segment: demo
collectors:                   # tried in order; the agent sticks to one and fails over
  - address: 127.0.0.1:7443
    server_name: localhost    # must appear in the collector's certificate
tls:
  ca: demo-pki/ca.pem
  cert: demo-pki/demo-agent.pem
  key: demo-pki/demo-agent.key
capture:
  - interface: lo             # the demo watches loopback, minus its own TLS stream
    filter: not tcp port 7443
    snaplen: 4096              # headers and a DNS message
    promiscuous: false
    buffer_size: 32MiB         # TPACKET_V3 blocks: ~260k small or ~20k full-size packets
    immediate: false           # packets handed over in blocks, at most `timeout` late
    timeout: 100ms
    threads: 1                 # more: PACKET_FANOUT across that many capture threads
flow_meter:
  idle_timeout: 15s
  active_timeout: 60s
  max_flows: 262144
packet_events:                # TCP SYN/SYN-ACK/RST, DNS, ARP, ICMP unreachable, new MAC
  enabled: true
  window: 10s                 # per-key budget window
  per_key_budget: 32          # events per key (e.g. src, dst, port) per window
  rate: 2000                  # per kind, events per second sustained ...
  burst: 10000                # ... and at once
  probe_timeout: 5s           # a SYN unanswered this long is a failed probe (tcp_probe_failed)
  arp_reply_flood: 50         # ARP replies per second from one MAC: an arp_reply_flood event
batch:
  max_records: 16000
  max_delay: 1s
spool:
  dir: agent-spool
  max_size: 1GiB
  segment_size: 16MiB
reconnect:
  initial_backoff: 500ms
  max_backoff: 30s
metrics:
  listen: 127.0.0.1:9465      # the agent's own health metrics
)yaml";

namespace {

// flow_listeners: and state_dir: (docs/configuration.md, docs/flows.md).
void read_flow_config(ConfigMap& root, AgentConfig& out) {
  std::string state_dir;
  root.get_path("state_dir", state_dir);
  out.state_dir = state_dir;
  for (ConfigMap& l : root.list("flow_listeners")) {
    flow::FlowListenerOptions opts;
    l.get_listen("listen", opts.host, opts.port, true);
    std::vector<std::string> formats;
    l.get("formats", formats);
    if (!formats.empty()) {
      opts.formats = 0;
      for (const std::string& f : formats) {
        flow::FlowFormat ff;
        if (flow::parse_format(f.c_str(), ff))
          opts.formats |= static_cast<std::uint8_t>(ff);
        else
          l.error("formats",
                  "unknown format '" + f + "'; expected netflow_v5, netflow_v9, ipfix or sflow");
      }
    }
    std::uint64_t buffer = static_cast<std::uint64_t>(opts.receive_buffer_bytes);
    l.get_size("receive_buffer", buffer);
    if (buffer < (64u << 10) || buffer > (1ull << 30))
      l.error("receive_buffer", "expected from 64KiB to 1GiB");
    else
      opts.receive_buffer_bytes = static_cast<int>(buffer);
    for (ConfigMap& e : l.list("exporters")) {
      std::string addr;
      std::int64_t rate = 0, default_rate = 0;
      e.get("address", addr, true);
      // sampling_rate overrides whatever the exporter states (for exporters that lie);
      // default_sampling_rate applies only when it states nothing (docs/flows.md).
      e.get("sampling_rate", rate, 1, 1 << 30);
      e.get("default_sampling_rate", default_rate, 1, 1 << 30);
      IpAddr ip;
      const bool ok = !addr.empty() && flow::parse_ip(addr, ip);
      if (!addr.empty() && !ok) e.error("address", "expected an IPv4 or IPv6 address");
      std::size_t samplers = 0;
      for (ConfigMap& sm : e.list("samplers")) {
        std::int64_t id = -1, srate = 0;
        sm.get("id", id, 0, std::numeric_limits<std::int64_t>::max(), true);
        sm.get("sampling_rate", srate, 1, 1 << 30, true);
        if (ok && id >= 0 && srate > 0)
          out.flow_sampler_overrides.push_back(
              {ip, static_cast<std::uint64_t>(id), static_cast<std::uint32_t>(srate)});
        ++samplers;
        sm.done();
      }
      if (rate == 0 && default_rate == 0 && samplers == 0)
        e.error("address",
                "an exporter entry needs sampling_rate, default_sampling_rate or samplers");
      if (ok && rate)
        out.flow_sampling_overrides.emplace_back(ip, static_cast<std::uint32_t>(rate));
      if (ok && default_rate)
        out.flow_sampling_defaults.emplace_back(ip, static_cast<std::uint32_t>(default_rate));
      e.done();
    }
    l.done();
    out.flow_listeners.push_back(opts);
  }
  ConfigMap flow = root.map("flow");
  flow.get_duration("template_hold_time", out.flow_hold_time);
  if (out.flow_hold_time.count() <= 0) flow.error("template_hold_time", "must be more than 0");
  std::int64_t ceiling = out.flow_max_sampling_rate;
  flow.get("max_sampling_rate", ceiling, 1, 1 << 30);
  out.flow_max_sampling_rate = static_cast<std::uint32_t>(ceiling);
  std::int64_t max_templates = static_cast<std::int64_t>(out.flow_templates.max_templates);
  std::int64_t per_exporter = static_cast<std::int64_t>(out.flow_templates.max_per_exporter);
  flow.get("max_templates", max_templates, 16, 1 << 20);
  flow.get("max_templates_per_exporter", per_exporter, 1, 1 << 20);
  if (per_exporter > max_templates)
    flow.error("max_templates_per_exporter", "must not exceed max_templates");
  out.flow_templates.max_templates = static_cast<std::size_t>(max_templates);
  out.flow_templates.max_per_exporter = static_cast<std::size_t>(per_exporter);
  flow.done();
}

Status read(ConfigReader& reader, AgentConfig& out) {
  ConfigMap root = reader.root();
  root.reject_example_marker();

  ConfigMap agent = root.map("agent", true);
  agent.get("id", out.agent_id, true);
  agent.get("segment", out.segment, true);
  static const std::regex kName("[A-Za-z0-9._-]+");
  if (!out.agent_id.empty() &&
      (out.agent_id.size() > ShortName::kCapacity || !std::regex_match(out.agent_id, kName)))
    agent.error("id", "expected letters, digits, '.', '_' or '-', at most 47 characters");
  if (!out.segment.empty() &&
      (out.segment.size() > ShortName::kCapacity || !std::regex_match(out.segment, kName)))
    agent.error("segment", "expected letters, digits, '.', '_' or '-', at most 47 characters");
  agent.done();

  for (ConfigMap& c : root.list("collectors", true)) {
    CollectorEndpoint ep;
    c.get_endpoint("address", ep.host, ep.port, true);
    if (ep.port == 0 && c.has("address")) c.error("address", "the collector's port cannot be 0");
    c.get("server_name", ep.server_name);
    c.done();
    out.collectors.push_back(ep);
  }
  if (root.has("collectors") && out.collectors.empty())
    root.error("collectors", "at least one collector is needed");

  ConfigMap tls = root.map("tls", true);
  tls.get_path("ca", out.tls.ca_file, true, true);
  tls.get_path("cert", out.tls.cert_file, true, true);
  tls.get_path("key", out.tls.key_file, true, true);
  tls.done();

  for (ConfigMap& c : root.list("capture")) {
    CaptureOptions cap;
    c.get("interface", cap.interface);
    c.get_path("file", cap.file, false, true);
    if (cap.interface.empty() == cap.file.empty())
      c.error(nullptr, "set exactly one of 'interface' (live) or 'file' (offline)");
    c.get("filter", cap.bpf_filter);
    std::int64_t snaplen = cap.snaplen;
    c.get("snaplen", snaplen, 64, 262144);
    cap.snaplen = static_cast<int>(snaplen);
    c.get("promiscuous", cap.promiscuous);
    std::uint64_t buffer = static_cast<std::uint64_t>(cap.buffer_bytes);
    c.get_size("buffer_size", buffer);
    if (buffer < (64u << 10) || buffer > (1ull << 30))
      c.error("buffer_size", "expected from 64KiB to 1GiB");
    else
      cap.buffer_bytes = static_cast<int>(buffer);
    c.get("immediate", cap.immediate);
    std::chrono::nanoseconds timeout = std::chrono::milliseconds(cap.timeout_ms);
    c.get_duration("timeout", timeout);
    if (timeout < std::chrono::milliseconds(1) || timeout > std::chrono::seconds(10))
      c.error("timeout", "expected from 1ms to 10s");
    else
      cap.timeout_ms =
          static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
    std::int64_t threads = cap.threads;
    c.get("threads", threads, 1, 64);
    cap.threads = static_cast<int>(threads);
    if (cap.threads > 1 && !cap.file.empty())
      c.error("threads", "a capture file is read by one thread; threads is for interfaces");
    c.done();
    out.captures.push_back(cap);
  }

  ConfigMap meter = root.map("flow_meter");
  std::chrono::nanoseconds idle(out.flow_meter.idle_timeout_ns);
  std::chrono::nanoseconds active(out.flow_meter.active_timeout_ns);
  meter.get_duration("idle_timeout", idle);
  meter.get_duration("active_timeout", active);
  if (idle.count() <= 0) meter.error("idle_timeout", "must be more than 0");
  if (active.count() <= 0) meter.error("active_timeout", "must be more than 0");
  out.flow_meter.idle_timeout_ns = idle.count();
  out.flow_meter.active_timeout_ns = active.count();
  std::int64_t max_flows = static_cast<std::int64_t>(out.flow_meter.max_flows);
  meter.get("max_flows", max_flows, 1024, 1 << 26);
  out.flow_meter.max_flows = static_cast<std::size_t>(max_flows);
  meter.done();

  ConfigMap events = root.map("packet_events");
  PacketEventConfig& ev = out.packet_events;
  events.get("enabled", ev.enabled);
  std::chrono::nanoseconds window(ev.window_ns);
  events.get_duration("window", window);
  if (window.count() <= 0) events.error("window", "must be more than 0");
  ev.window_ns = window.count();
  std::int64_t v = ev.per_key_budget;
  events.get("per_key_budget", v, 1, 1 << 20);
  ev.per_key_budget = static_cast<std::uint32_t>(v);
  v = ev.rate;
  events.get("rate", v, 1, 1 << 24);
  ev.rate = static_cast<std::uint32_t>(v);
  v = ev.burst;
  events.get("burst", v, 1, 1 << 24);
  ev.burst = static_cast<std::uint32_t>(v);
  v = static_cast<std::int64_t>(ev.key_slots);
  events.get("key_slots", v, 1024, 1 << 24);
  ev.key_slots = static_cast<std::size_t>(v);
  v = static_cast<std::int64_t>(ev.arp_table);
  events.get("arp_table", v, 16, 1 << 22);
  ev.arp_table = static_cast<std::size_t>(v);
  v = static_cast<std::int64_t>(ev.mac_table);
  events.get("mac_table", v, 16, 1 << 22);
  ev.mac_table = static_cast<std::size_t>(v);
  std::chrono::nanoseconds probe_timeout(ev.probe_timeout_ns);
  events.get_duration("probe_timeout", probe_timeout);
  if (probe_timeout.count() <= 0) events.error("probe_timeout", "must be more than 0");
  ev.probe_timeout_ns = probe_timeout.count();
  v = static_cast<std::int64_t>(ev.probe_slots);
  events.get("probe_slots", v, 16, 1 << 22);
  ev.probe_slots = static_cast<std::size_t>(v);
  v = ev.arp_reply_flood;
  events.get("arp_reply_flood", v, 0, 1 << 24);
  ev.arp_reply_flood = static_cast<std::uint32_t>(v);
  v = ev.dns_port;
  events.get("dns_port", v, 1, 65535);
  ev.dns_port = static_cast<std::uint16_t>(v);
  events.done();

  ConfigMap batch = root.map("batch");
  std::int64_t max_records = out.batch.max_records;
  batch.get("max_records", max_records, 1, 100000);
  out.batch.max_records = static_cast<std::uint32_t>(max_records);
  batch.get_duration("max_delay", out.batch.max_delay);
  if (out.batch.max_delay.count() <= 0) batch.error("max_delay", "must be more than 0");
  std::string compression = "lz4";
  batch.get("compression", compression);
  if (compression == "lz4")
    out.batch.compression = BatchOptions::Compression::kLz4;
  else if (compression == "zstd")
    out.batch.compression = BatchOptions::Compression::kZstd;
  else if (compression == "none")
    out.batch.compression = BatchOptions::Compression::kNone;
  else
    batch.error("compression", "expected lz4, zstd or none, got '" + compression + "'");
  batch.done();

  ConfigMap spool = root.map("spool");
  std::string dir = "agent-spool";
  spool.get_path("dir", dir);
  out.spool.dir = dir;
  spool.get_size("max_size", out.spool.max_bytes);
  spool.get_size("segment_size", out.spool.segment_bytes);
  if (out.spool.segment_bytes < (64u << 10) || out.spool.segment_bytes > out.spool.max_bytes)
    spool.error("segment_size", "expected at least 64KiB and no more than max_size");
  spool.done();

  ConfigMap reconnect = root.map("reconnect");
  reconnect.get_duration("initial_backoff", out.initial_backoff);
  reconnect.get_duration("max_backoff", out.max_backoff);
  if (out.initial_backoff.count() <= 0) reconnect.error("initial_backoff", "must be more than 0");
  if (out.max_backoff < out.initial_backoff)
    reconnect.error("max_backoff", "must be at least initial_backoff");
  reconnect.done();

  ConfigMap metrics = root.map("metrics");
  metrics.get_listen("listen", out.metrics_host, out.metrics_port);
  metrics.get_path("web_config_file", out.metrics_web_config_file, false, true);
  std::error_code exists_ec;
  if (!out.metrics_web_config_file.empty() &&
      std::filesystem::exists(out.metrics_web_config_file, exists_ec)) {
    // Its own errors carry its own FILE:LINE:COL.
    if (auto s = http::load_web_config(out.metrics_web_config_file, out.metrics_web); !s)
      metrics.error("web_config_file", "\n" + s.message());
  }
  metrics.done();

  ConfigMap snmp = root.map("snmp");
  read_snmp_config(snmp, out.snmp);

  read_flow_config(root, out);

  root.done();
  return reader.status();
}

}  // namespace

Status load_agent_config(const std::string& file, AgentConfig& out) {
  ConfigReader reader = ConfigReader::from_file(file);
  if (auto s = reader.status(); !s) return s;
  return read(reader, out);
}

Status parse_agent_config(const std::string& text, const std::string& name,
                          const std::string& base_dir, AgentConfig& out) {
  ConfigReader reader = ConfigReader::from_string(text, name, base_dir);
  if (auto s = reader.status(); !s) return s;
  return read(reader, out);
}

}  // namespace citywatch::agent

namespace citywatch::agent {

std::vector<std::string> restart_only_changes(const AgentConfig& a, const AgentConfig& b) {
  std::vector<std::string> out;
  auto check = [&out](bool same, const char* key) {
    if (!same) out.emplace_back(key);
  };
  check(a.agent_id == b.agent_id, "agent_id");
  check(a.segment == b.segment, "segment");
  check(a.collectors == b.collectors, "collectors");
  check(a.tls == b.tls, "tls");
  // Captures: the same sources in the same order; only their BPF filters may change.
  bool same_sources = a.captures.size() == b.captures.size();
  for (std::size_t i = 0; same_sources && i < a.captures.size(); ++i) {
    CaptureOptions x = a.captures[i], y = b.captures[i];
    x.bpf_filter.clear();
    y.bpf_filter.clear();
    same_sources = x == y;
  }
  check(same_sources, "captures (other than bpf_filter)");
  check(a.flow_meter == b.flow_meter, "flow_meter");
  check(a.packet_events == b.packet_events, "packet_events");
  check(a.snmp.trap_host == b.snmp.trap_host && a.snmp.trap_port == b.snmp.trap_port,
        "snmp.traps.listen");
  check(a.batch == b.batch, "batch");
  check(a.spool == b.spool, "spool");
  check(a.initial_backoff == b.initial_backoff && a.max_backoff == b.max_backoff, "reconnect");
  check(a.flow_listeners == b.flow_listeners, "flow_listeners");
  check(a.flow_sampling_overrides == b.flow_sampling_overrides &&
            a.flow_sampling_defaults == b.flow_sampling_defaults &&
            a.flow_sampler_overrides == b.flow_sampler_overrides &&
            a.flow_max_sampling_rate == b.flow_max_sampling_rate &&
            a.flow_hold_time == b.flow_hold_time,
        "flow_listeners[].exporters or flow:");
  check(a.state_dir == b.state_dir, "state_dir");
  check(a.metrics_host == b.metrics_host && a.metrics_port == b.metrics_port &&
            a.metrics_web_config_file == b.metrics_web_config_file,
        "metrics");
  return out;
}

}  // namespace citywatch::agent
