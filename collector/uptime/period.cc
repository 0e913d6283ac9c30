#include "collector/uptime/period.h"

#include <cstdio>

namespace citywatch::collector::uptime {

bool parse_period(const std::string& text, Period& out) {
  Period p;
  p.label = text;
  int y = 0, m = 0, q = 0, n = 0;
  const auto whole = [&] { return static_cast<std::size_t>(n) == text.size(); };
  if (const auto dots = text.find(".."); dots != std::string::npos) {
    if (!parse_civil(text.substr(0, dots), p.from) || !parse_civil(text.substr(dots + 2), p.to))
      return false;
    if (days_from_civil(p.to.year, p.to.month, p.to.day) <=
        days_from_civil(p.from.year, p.from.month, p.from.day))
      return false;
    p.from.hour = p.from.minute = p.from.second = 0;
    p.to.hour = p.to.minute = p.to.second = 0;
  } else if (std::sscanf(text.c_str(), "%4d-Q%1d%n", &y, &q, &n) == 2 && whole() && q >= 1 &&
             q <= 4) {
    p.from = {y, 3 * q - 2, 1, 0, 0, 0};
    p.to = q == 4 ? CivilTime{y + 1, 1, 1, 0, 0, 0} : CivilTime{y, 3 * q + 1, 1, 0, 0, 0};
  } else if (std::sscanf(text.c_str(), "%4d-%2d%n", &y, &m, &n) == 2 && whole() && m >= 1 &&
             m <= 12) {
    p.from = {y, m, 1, 0, 0, 0};
    p.to = m == 12 ? CivilTime{y + 1, 1, 1, 0, 0, 0} : CivilTime{y, m + 1, 1, 0, 0, 0};
  } else if (std::sscanf(text.c_str(), "%4d%n", &y, &n) == 1 && whole() && y > 1970) {
    p.from = {y, 1, 1, 0, 0, 0};
    p.to = {y + 1, 1, 1, 0, 0, 0};
  } else {
    return false;
  }
  out = p;
  return true;
}

Period year_before(const Period& p) {
  Period b = p;
  b.from.year -= 1;
  b.to.year -= 1;
  // 29 February has no counterpart a year before: use 1 March.
  for (CivilTime* c : {&b.from, &b.to})
    if (c->month == 2 && c->day == 29 && days_in_month(c->year, 2) == 28) {
      c->month = 3;
      c->day = 1;
    }
  char buf[64];
  if (p.label.size() == 7 && p.label[4] == '-' && p.label[5] != 'Q')
    std::snprintf(buf, sizeof buf, "%04d-%02d", b.from.year, b.from.month);
  else if (p.label.size() == 4)
    std::snprintf(buf, sizeof buf, "%04d", b.from.year);
  else if (p.label.size() == 7 && p.label[5] == 'Q')
    std::snprintf(buf, sizeof buf, "%04d-Q%c", b.from.year, p.label[6]);
  else
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d..%04d-%02d-%02d", b.from.year, b.from.month,
                  b.from.day, b.to.year, b.to.month, b.to.day);
  b.label = buf;
  return b;
}

Period current_period(PeriodKind kind, const CivilTime& now) {
  Period p;
  char buf[64];
  switch (kind) {
    case PeriodKind::kYear:
      std::snprintf(buf, sizeof buf, "%04d", now.year);
      break;
    case PeriodKind::kQuarter:
      std::snprintf(buf, sizeof buf, "%04d-Q%d", now.year, (now.month - 1) / 3 + 1);
      break;
    case PeriodKind::kMonth:
      std::snprintf(buf, sizeof buf, "%04d-%02d", now.year, now.month);
      break;
  }
  parse_period(buf, p);
  return p;
}

}  // namespace citywatch::collector::uptime
