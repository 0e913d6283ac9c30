#include "collector/app/collector_config.h"

#include <boost/asio/ip/address.hpp>
#include <filesystem>

#include <unistd.h>

#include "common/config_reader.h"
#include "common/secret.h"

namespace citywatch::collector {

const char* const kDefaultCollectorConfig = R"yaml(# citywatch-collector embedded default (demo)
listen:
  ingest: 127.0.0.1:7443      # agents connect here (mutual TLS)
  metrics: 127.0.0.1:9464     # Prometheus scrapes /metrics here
tls:
  ca: demo-pki/ca.pem
  cert: demo-pki/collector.pem
  key: demo-pki/collector.key
agents:
  allowed: []                 # certificate CNs; empty = any certificate the CA signed
state_dir: collector-state    # ingest ledger and outage store (SQLite)
uptime:                       # outages and availability (docs/uptime.md)
  min_outage: 60s             # shorter down/up blips are flaps, not outages
  slo: 99.9                   # availability objective, percent
  target: {period: year, reduction_percent: 25}  # 25 % fewer outage minutes than last year
rules:
  files: [rules]              # the municipal rule pack (scripts/demo.sh links the repo's rules/)
alerts:
  jsonl: alerts.jsonl         # the alert log for the SIEM, one JSON object per line
)yaml";

namespace {

Status read(ConfigReader& reader, CollectorConfig& out) {
  ConfigMap root = reader.root();
  root.reject_example_marker();
  ConfigMap listen = root.map("listen");
  listen.get_listen("ingest", out.ingest_host, out.ingest_port);
  listen.get_listen("metrics", out.metrics_host, out.metrics_port);
  boost::system::error_code ec;
  boost::asio::ip::make_address(out.ingest_host, ec);
  if (ec)
    listen.error("ingest", "expected an IP address to listen on, got '" + out.ingest_host + "'");
  listen.done();
  ConfigMap tls = root.map("tls", true);
  tls.get_path("ca", out.tls.ca_file, true, true);
  tls.get_path("cert", out.tls.cert_file, true, true);
  tls.get_path("key", out.tls.key_file, true, true);
  tls.done();
  ConfigMap agents = root.map("agents");
  std::vector<std::string> allowed;
  agents.get("allowed", allowed);
  out.allowed_agents = {allowed.begin(), allowed.end()};
  agents.get_duration("frame_timeout", out.frame_timeout);
  if (out.frame_timeout < std::chrono::milliseconds(100))
    agents.error("frame_timeout", "expected at least 100ms");
  std::int64_t max_sessions = static_cast<std::int64_t>(out.max_sessions_per_agent);
  agents.get("max_sessions", max_sessions, 1, 1024);
  out.max_sessions_per_agent = static_cast<std::size_t>(max_sessions);
  agents.done();
  ConfigMap metrics = root.map("metrics");
  metrics.get_path("web_config_file", out.metrics_web_config_file, false, true);
  std::error_code exists_ec;
  if (!out.metrics_web_config_file.empty() &&
      std::filesystem::exists(out.metrics_web_config_file, exists_ec)) {
    // Its own errors carry its own FILE:LINE:COL.
    if (auto s = http::load_web_config(out.metrics_web_config_file, out.metrics_web); !s)
      metrics.error("web_config_file", "\n" + s.message());
  }
  metrics.done();
  root.get_path("state_dir", out.state_dir);
  ConfigMap store = root.map("store");
  if (store.has("postgres")) {
    ConfigMap pg = store.map("postgres");
    if (!get_secret(pg, "dsn", "dsn_file", out.store.postgres_dsn))
      pg.error("dsn", "expected dsn or dsn_file (a libpq connection string)");
    else if (out.store.postgres_dsn.empty())
      pg.error("dsn", "expected a libpq connection string, got an empty one");
    pg.get("collector_id", out.store.collector_id);
    if (out.store.collector_id.empty()) {
      char host[256] = {};
      if (gethostname(host, sizeof host - 1) == 0) out.store.collector_id = host;
    }
    if (out.store.collector_id.empty() || out.store.collector_id.size() > 64)
      pg.error("collector_id", "expected a name of 1 to 64 characters");
    pg.done();
  }
  store.done();
  ConfigMap uptime_map = root.map("uptime");
  uptime::read_uptime_config(uptime_map, out.uptime);
  ConfigMap rules_map = root.map("rules");
  read_rules_config(rules_map, reader.base_dir(), out.rules);
  ConfigMap alerts_map = root.map("alerts");
  read_alerts_config(alerts_map, out.alerts);
  root.done();
  return reader.status();
}

}  // namespace

Status load_collector_config(const std::string& file, CollectorConfig& out) {
  ConfigReader reader = ConfigReader::from_file(file);
  if (auto s = reader.status(); !s) return s;
  return read(reader, out);
}

Status parse_collector_config(const std::string& text, const std::string& name,
                              const std::string& base_dir, CollectorConfig& out) {
  ConfigReader reader = ConfigReader::from_string(text, name, base_dir);
  if (auto s = reader.status(); !s) return s;
  return read(reader, out);
}

}  // namespace citywatch::collector
