// What the uptime tests share: a clock they set, a start time, and a metric read back from a
// registry as Prometheus would scrape it.
#pragma once

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <cstdint>
#include <sstream>
#include <string>

#include "collector/uptime/clock.h"

namespace citywatch::collector::uptime::testing {

inline constexpr std::int64_t kS = kNsPerSecond;
inline constexpr std::int64_t kT0 = 1'750'000'000 * kS;

class FakeClock final : public Clock {
 public:
  std::int64_t now_ns() const override { return now; }
  std::int64_t now = kT0;
};

// The sum of the metric's series whose label text contains `labels` (all if empty).
inline double metric_sum(prometheus::Registry& registry, const std::string& name,
                         const std::string& labels = "") {
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  double sum = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line[0] == '#') continue;
    const char next = line[name.size()];
    if (next != '{' && next != ' ') continue;
    if (!labels.empty() && line.find(labels) == std::string::npos) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

}  // namespace citywatch::collector::uptime::testing
