// Period: a calendar period of the uptime record ("2025", "2025-Q1", "2025-03",
// "2025-03-01..2025-03-15"), used by `citywatch report` and by the collector's target gauges
// (docs/uptime.md, "Targets").
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <string>

#include "collector/uptime/time_zone.h"

namespace citywatch::collector::uptime {

// A calendar period: [from, to) in local civil dates.
struct Period {
  std::string label;  // "2025-03", "2025-Q1", "2025", "2025-03-01..2025-03-15"
  CivilTime from;
  CivilTime to;  // exclusive
};
// Parses "YYYY-MM", "YYYY-Qn", "YYYY" or "YYYY-MM-DD..YYYY-MM-DD" (end exclusive).
bool parse_period(const std::string& text, Period& out);
// The same period one year earlier.
Period year_before(const Period& p);

// The calendar year, quarter or month that contains a local civil time.
enum class PeriodKind { kYear, kQuarter, kMonth };
Period current_period(PeriodKind kind, const CivilTime& now);

}  // namespace citywatch::collector::uptime
