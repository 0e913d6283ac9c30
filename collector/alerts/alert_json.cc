#include "collector/alerts/alert_json.h"

#include <nlohmann/json.hpp>

namespace citywatch::collector {

std::string alert_jsonl(const Alert& a, AlertEvent e, std::int64_t wall_ns) {
  nlohmann::json j;
  j["time"] = format_time(wall_ns);
  j["state"] = to_string(e);
  j["rule"] = a.rule->name;
  j["severity"] = a.rule->severity;
  j["key"] = a.key;
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [k, v] : a.rule->labels) labels[k] = v;
  for (const auto& [k, v] : a.where) labels[k] = v;
  for (const auto& [k, v] : a.key_labels) labels[k] = v;
  j["labels"] = labels;
  if (!a.details.empty()) {
    nlohmann::json details = nlohmann::json::object();
    for (const auto& [k, v] : a.details) details[k] = v;
    j["details"] = details;
  }
  j["summary"] = a.summary();
  j["description"] = a.rule->description;
  j["runbook"] = a.rule->runbook;
  j["value"] = a.value;
  j["threshold"] = a.threshold;
  j["window_seconds"] = static_cast<double>(a.window_ns) / 1e9;
  j["examples"] = a.examples;
  j["first_seen"] = format_time(a.first_event_ns);
  j["last_seen"] = format_time(a.last_event_ns);
  j["duration_seconds"] = static_cast<double>(a.last_event_ns - a.first_event_ns) / 1e9;
  j["signals"] = a.signals;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string alertmanager_json(const Alert& a, AlertEvent e, std::int64_t wall_ns,
                              std::int64_t ends_in_ns) {
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [k, v] : a.rule->labels) labels[k] = v;
  for (const auto& [k, v] : a.where) labels[k] = v;
  for (const auto& [k, v] : a.key_labels) labels[k] = v;
  labels["alertname"] = a.rule->name;
  labels["severity"] = a.rule->severity;
  labels["source"] = "citywatch";
  nlohmann::json ann = nlohmann::json::object();
  ann["summary"] = a.summary();
  if (!a.rule->description.empty()) ann["description"] = a.rule->description;
  if (!a.rule->runbook.empty()) ann["runbook"] = a.rule->runbook;
  ann["value"] = format_number(a.value);
  ann["threshold"] = format_number(a.threshold);
  if (a.window_ns) ann["window"] = format_duration(a.window_ns);
  std::string ex;
  for (std::size_t i = 0; i < a.examples.size(); ++i) ex += (i ? ", " : "") + a.examples[i];
  if (!ex.empty()) ann["examples"] = ex;
  ann["first_seen"] = format_time(a.first_event_ns);
  ann["last_seen"] = format_time(a.last_event_ns);
  ann["duration"] = format_duration(a.last_event_ns - a.first_event_ns);
  for (const auto& [k, v] : a.details) ann[k] = v;
  nlohmann::json j;
  j["labels"] = labels;
  j["annotations"] = ann;
  j["startsAt"] = format_time(a.starts_wall_ns);
  j["endsAt"] = format_time(e == AlertEvent::kResolved ? wall_ns : wall_ns + ends_in_ns);
  j["generatorURL"] = "https://citywatch.invalid/rules/" + a.rule->name;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace citywatch::collector
