#include "collector/alerts/alert.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace citywatch::collector {

const char* to_string(AlertEvent e) {
  switch (e) {
    case AlertEvent::kFiring:
      return "firing";
    case AlertEvent::kResend:
      return "resend";
    case AlertEvent::kUpdate:
      return "update";
    case AlertEvent::kResolved:
      return "resolved";
  }
  return "?";
}

std::string format_number(double v) {
  char buf[48];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string format_duration(std::int64_t ns) {
  std::int64_t s = ns / 1000000000;
  if (s == 0) return std::to_string(ns / 1000000) + "ms";
  std::string out;
  if (s >= 3600) out += std::to_string(s / 3600) + "h", s %= 3600;
  if (s >= 60) out += std::to_string(s / 60) + "m", s %= 60;
  if (s || out.empty()) out += std::to_string(s) + "s";
  return out;
}

std::string format_time(std::int64_t ns) {
  const std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>((ns / 1000000) % 1000));
  return buf;
}

std::string Alert::summary() const {
  const std::string& t = rule->summary.empty() ? rule->name : rule->summary;
  std::string out;
  std::size_t i = 0;
  while (i < t.size()) {
    const auto open = t.find('{', i);
    if (open == std::string::npos) break;
    const auto close = t.find('}', open);
    if (close == std::string::npos) break;
    out.append(t, i, open - i);
    const std::string name = t.substr(open + 1, close - open - 1);
    bool done = true;
    if (name == "value")
      out += format_number(value);
    else if (name == "threshold")
      out += format_number(threshold);
    else if (name == "window")
      out += format_duration(window_ns);
    else if (name == "rule")
      out += rule->name;
    else if (name == "severity")
      out += rule->severity;
    else if (name == "key")
      out += key;
    else if (name == "examples") {
      for (std::size_t k = 0; k < examples.size(); ++k) out += (k ? ", " : "") + examples[k];
    } else {
      done = false;
      for (const Labels* labels : {&key_labels, &details})
        for (const auto& [k, v] : *labels)
          if (!done && k == name) {
            out += v;
            done = true;
          }
    }
    if (!done) out.append(t, open, close - open + 1);  // unknown: left as written
    i = close + 1;
  }
  out.append(t, i, std::string::npos);
  return out;
}

}  // namespace citywatch::collector
