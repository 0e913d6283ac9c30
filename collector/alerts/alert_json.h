// JSON renderings of an alert: the JSON lines record for the SIEM and the Alertmanager API v2
// postable alert (https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml,
// PostableAlert: labels, annotations, startsAt, endsAt, generatorURL).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "collector/alerts/alert.h"

namespace citywatch::collector {

// One line (no trailing newline): time, state, rule, severity, key, labels, summary,
// description, runbook, value, threshold, window_seconds, examples, first_seen, last_seen.
std::string alert_jsonl(const Alert& a, AlertEvent e, std::int64_t wall_ns);

// One PostableAlert object. While firing, endsAt is `ends_in_ns` ahead (Prometheus sends
// 4 x its resend interval), so Alertmanager resolves it by itself if the collector vanishes.
std::string alertmanager_json(const Alert& a, AlertEvent e, std::int64_t wall_ns,
                              std::int64_t ends_in_ns);

}  // namespace citywatch::collector
