// RulesService: the collector's alerting, wired together: the rule set, the RulesEngine, the
// AlertLifecycle and its sinks (Alertmanager, JSON lines, syslog), a one-second tick that
// resolves and re-sends alerts, and reload on SIGHUP.
//
// start() fails fast (bad rule file, unwritable alert log, bad URL). reload() re-reads every
// rule and list file: if any is broken it logs the errors (FILE:LINE) and the running rules
// stay; citywatch_rules_reloads_total{result="rejected"} counts it. The tick also reloads
// when a rule or list file changes (checked every 5 s: the rule paths' listing and each
// file's size, mtime and inode), so a threat feed updated by cron is picked up without a
// signal; a change that was rejected is not retried until the files change again.
//
// stop() detaches the engine (later records and session events are ignored) and releases
// everything bound to the io_context, so this object may outlive the io_context: ingest
// sessions still report their end while the io_context is destroyed.
//
// Thread-safety: the collector's io thread only. Built and owned by collector/app/main.cc.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>
#include <vector>

#include "collector/alerts/alert_lifecycle.h"
#include "collector/alerts/alert_metrics.h"
#include "collector/alerts/alertmanager_sink.h"
#include "collector/alerts/alerts_config.h"
#include "collector/alerts/jsonl_sink.h"
#include "collector/alerts/syslog_sink.h"
#include "collector/rules_engine/rules_config.h"
#include "collector/rules_engine/rules_engine.h"

namespace citywatch::collector {

class RulesService {
 public:
  RulesService(boost::asio::io_context& io, prometheus::Registry& registry, RulesConfig rules,
               AlertsConfig alerts);
  ~RulesService();

  Status start();
  // True if the new rules were loaded.
  bool reload();
  // Reloads if a rule or list file changed since the running rules were loaded and the
  // change was not already rejected; the tick calls it every 5 s.
  void reload_if_changed();
  void stop();
  RulesEngine& engine() { return engine_; }
  AlertLifecycle& alerts() { return lifecycle_; }

 private:
  void tick();
  // Size, mtime and inode of every rule and list file, and the rule paths' listing.
  std::string files_fingerprint() const;

  boost::asio::io_context& io_;
  RulesConfig rules_config_;
  AlertsConfig alerts_config_;
  AlertMetrics metrics_;
  AlertLifecycle lifecycle_;
  RulesEngine engine_;
  std::unique_ptr<JsonlSink> jsonl_;
  std::unique_ptr<AlertmanagerSink> alertmanager_;
  std::unique_ptr<SyslogSink> syslog_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  bool stopped_ = false;
  unsigned ticks_ = 0;
  std::string loaded_fingerprint_;    // of the files the running rules came from
  std::string rejected_fingerprint_;  // of files a reload refused
};

// `citywatch-collector check-rules FILES...`: loads and compiles without running. Prints a
// summary on success; the Status lists every error as FILE:LINE:COL: KEY: what.
Status check_rule_files(const std::vector<std::string>& files, std::string& summary);

}  // namespace citywatch::collector
