// CollectorConfig: the collector's YAML configuration (docs/configuration.md), validated in
// full at start and by --check-config. Relative paths are resolved against the config
// file's directory (the working directory for the embedded default).
//
// Thread-safety: a plain value, built once.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>

#include "collector/alerts/alerts_config.h"
#include "collector/rules_engine/rules_config.h"
#include "collector/uptime/uptime_config.h"
#include "common/http/web_config.h"
#include "common/status.h"
#include "common/tls.h"

namespace citywatch::collector {

struct CollectorConfig {
  std::string ingest_host = "127.0.0.1";
  std::uint16_t ingest_port = 7443;
  std::string metrics_host = "127.0.0.1";
  std::uint16_t metrics_port = 9464;
  // `metrics.web_config_file`: TLS and basic auth for /metrics, exporter-toolkit format.
  std::string metrics_web_config_file;
  http::WebConfig metrics_web;
  TlsFiles tls;
  std::set<std::string> allowed_agents;
  std::chrono::nanoseconds frame_timeout = std::chrono::seconds(30);  // agents.frame_timeout
  std::size_t max_sessions_per_agent = 4;                             // agents.max_sessions
  std::string state_dir = "collector-state";
  // `store:` (docs/scaling.md). Without store.postgres the ledger and the outage store are
  // SQLite files in state_dir; with it they live in one PostgreSQL database that a pair (or
  // more) of collectors share.
  struct Store {
    std::string postgres_dsn;  // store.postgres.dsn or dsn_file; empty: SQLite
    std::string collector_id;  // store.postgres.collector_id, default the host name
  } store;
  uptime::UptimeConfig uptime;  // `uptime:` (docs/uptime.md)
  // `rules:` and `alerts:` (docs/rules.md)
  RulesConfig rules;
  AlertsConfig alerts;
};

// The configuration the collector runs with when given none: the demo's.
extern const char* const kDefaultCollectorConfig;

// Reads and validates; on error the Status lists every problem as FILE:LINE:COL: KEY: what.
Status load_collector_config(const std::string& file, CollectorConfig& out);
Status parse_collector_config(const std::string& text, const std::string& name,
                              const std::string& base_dir, CollectorConfig& out);

}  // namespace citywatch::collector
