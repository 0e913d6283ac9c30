#include "collector/rules_engine/rules_service.h"

#include <sys/stat.h>

#include <chrono>

#include "common/log.h"

namespace citywatch::collector {
namespace {
std::int64_t wall_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

RulesService::RulesService(boost::asio::io_context& io, prometheus::Registry& registry,
                           RulesConfig rules, AlertsConfig alerts)
    : io_(io),
      rules_config_(std::move(rules)),
      alerts_config_(std::move(alerts)),
      metrics_(registry),
      lifecycle_(metrics_, alerts_config_.max_active),
      engine_(lifecycle_, registry),
      timer_(std::make_unique<boost::asio::steady_timer>(io)) {}

RulesService::~RulesService() { stop(); }

Status RulesService::start() {
  auto set = std::make_shared<RuleSet>();
  if (auto s = load_rule_set(expand_rule_paths(rules_config_.files), *set); !s) return s;
  engine_.load(set);
  if (!alerts_config_.jsonl.empty()) {
    jsonl_ = std::make_unique<JsonlSink>(alerts_config_.jsonl, metrics_);
    if (auto s = jsonl_->open(); !s) return s;
    lifecycle_.add_sink(jsonl_.get());
  }
  if (!alerts_config_.alertmanager_urls.empty()) {
    AlertmanagerOptions o;
    o.urls = alerts_config_.alertmanager_urls;
    o.max_queue = alerts_config_.alertmanager_max_queue;
    o.timeout = alerts_config_.alertmanager_timeout;
    o.client = alerts_config_.alertmanager_client;
    alertmanager_ = std::make_unique<AlertmanagerSink>(io_, o, metrics_);
    if (auto s = alertmanager_->start(); !s) return s;
    lifecycle_.add_sink(alertmanager_.get());
  }
  if (!alerts_config_.syslog_host.empty()) {
    SyslogOptions o;
    o.host = alerts_config_.syslog_host;
    o.port = alerts_config_.syslog_port;
    o.tcp = alerts_config_.syslog_tcp;
    o.facility = alerts_config_.syslog_facility;
    syslog_ = std::make_unique<SyslogSink>(io_, o, metrics_);
    if (auto s = syslog_->start(); !s) return s;
    lifecycle_.add_sink(syslog_.get());
  }
  loaded_fingerprint_ = files_fingerprint();
  log::info("rules: loaded " + std::to_string(set->rules.size()) + " rules and " +
            std::to_string(set->lists.size()) + " lists (version " + set->version + ")");
  tick();
  return Status::ok();
}

bool RulesService::reload() {
  const std::string fingerprint = files_fingerprint();
  auto set = std::make_shared<RuleSet>();
  if (auto s = load_rule_set(expand_rule_paths(rules_config_.files), *set); !s) {
    engine_.on_reload_failed();
    rejected_fingerprint_ = fingerprint;
    log::error("rules: reload rejected, the running rules (version " +
               (engine_.rules() ? engine_.rules()->version : std::string("none")) + ") stay:\n" +
               s.message());
    return false;
  }
  engine_.load(set);
  loaded_fingerprint_ = files_fingerprint();
  rejected_fingerprint_.clear();
  if (jsonl_) jsonl_->reopen();
  log::info("rules: reloaded " + std::to_string(set->rules.size()) + " rules (version " +
            set->version + ")");
  return true;
}

std::string RulesService::files_fingerprint() const {
  std::string fp;
  const auto add = [&fp](const std::string& file) {
    struct stat st {};
    fp += file;
    if (::stat(file.c_str(), &st) == 0)
      fp += ':' + std::to_string(st.st_size) + ':' + std::to_string(st.st_mtim.tv_sec) + '.' +
            std::to_string(st.st_mtim.tv_nsec) + ':' + std::to_string(st.st_ino);
    fp += '\n';
  };
  for (const std::string& f : expand_rule_paths(rules_config_.files)) add(f);
  if (const RuleSet* rules = engine_.rules())
    for (const std::string& f : rules->files) add(f);
  return fp;
}

void RulesService::reload_if_changed() {
  const std::string fp = files_fingerprint();
  if (fp == loaded_fingerprint_ || fp == rejected_fingerprint_) return;
  log::info("rules: a rule or list file changed; reloading");
  reload();
}

void RulesService::tick() {
  if (stopped_ || !timer_) return;
  lifecycle_.tick(wall_now());
  if (++ticks_ % 5 == 0) reload_if_changed();
  timer_->expires_after(std::chrono::seconds(1));
  timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopped_) tick();
  });
}

void RulesService::stop() {
  if (stopped_) return;
  stopped_ = true;
  engine_.detach();
  lifecycle_.clear_sinks();
  timer_.reset();  // cancels the pending wait; its handler sees stopped_
  if (alertmanager_) alertmanager_->stop();
  if (syslog_) syslog_->stop();
  alertmanager_.reset();
  syslog_.reset();
  jsonl_.reset();
}

Status check_rule_files(const std::vector<std::string>& files, std::string& summary) {
  RuleSet set;
  if (auto s = load_rule_set(expand_rule_paths(files), set); !s) return s;
  std::size_t ranges = 0;
  for (const auto& [n, l] : set.lists) ranges += l->v4_ranges() + l->v6_ranges();
  summary = std::to_string(set.rules.size()) + " rules, " + std::to_string(set.lists.size()) +
            " lists (" + std::to_string(ranges) + " address ranges) in " +
            std::to_string(set.files.size()) + " files OK; version " + set.version;
  return Status::ok();
}

}  // namespace citywatch::collector
