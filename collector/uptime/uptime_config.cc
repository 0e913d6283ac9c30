#include "collector/uptime/uptime_config.h"

#include "collector/uptime/period.h"

#include <array>
#include <cctype>
#include <cstdlib>
#include <set>

namespace citywatch::collector::uptime {

const std::string& UptimeConfig::site_of(const std::string& segment) const {
  for (const SiteSpec& s : sites)
    for (const std::string& seg : s.segments)
      if (seg == segment) return s.name;
  return segment;
}

std::string window_label(std::chrono::nanoseconds w) {
  const std::int64_t s = std::chrono::duration_cast<std::chrono::seconds>(w).count();
  if (s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

namespace {

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 47) return false;
  for (const char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return false;
  return true;
}

void read_window(ConfigMap& m, const UptimeConfig& cfg, MaintenanceWindow& w) {
  m.get("name", w.name, true);
  m.get("sites", w.sites);
  m.get("segments", w.segments);
  m.get("devices", w.devices);
  std::string tz = cfg.time_zone;
  m.get("time_zone", tz);
  auto zone = std::make_shared<TimeZone>();
  if (auto s = TimeZone::load(tz, *zone); !s) m.error("time_zone", s.message());
  w.tz = zone;
  std::string start;
  m.get("start", start, true);
  if (!start.empty() && !parse_civil(start, w.start))
    m.error("start", "expected a local time 'YYYY-MM-DD HH:MM', got '" + start + "'");
  std::string repeat = "once";
  m.get("repeat", repeat);
  if (repeat == "once")
    w.repeat = MaintenanceWindow::Repeat::kOnce;
  else if (repeat == "daily")
    w.repeat = MaintenanceWindow::Repeat::kDaily;
  else if (repeat == "weekly")
    w.repeat = MaintenanceWindow::Repeat::kWeekly;
  else if (repeat == "monthly")
    w.repeat = MaintenanceWindow::Repeat::kMonthly;
  else
    m.error("repeat", "expected once, daily, weekly or monthly, got '" + repeat + "'");
  std::chrono::nanoseconds duration{0};
  m.get_duration("duration", duration);
  std::string end;
  m.get("end", end);
  if (!end.empty()) {
    CivilTime e;
    if (w.repeat != MaintenanceWindow::Repeat::kOnce)
      m.error("end", "only a one-off window (repeat: once) takes 'end'; use 'duration'");
    else if (!parse_civil(end, e))
      m.error("end", "expected a local time 'YYYY-MM-DD HH:MM', got '" + end + "'");
    else if (duration.count() != 0)
      m.error("end", "give either 'end' or 'duration', not both");
    else
      w.duration_s = w.tz->to_utc(e) - w.tz->to_utc(w.start);
  } else {
    w.duration_s = std::chrono::duration_cast<std::chrono::seconds>(duration).count();
  }
  if (w.duration_s <= 0) m.error(end.empty() ? "duration" : "end", "the window must last > 0 s");
  std::vector<std::string> days;
  m.get("days", days);
  static constexpr std::array<const char*, 7> kDays = {"mon", "tue", "wed", "thu",
                                                       "fri", "sat", "sun"};
  for (const std::string& d : days) {
    bool ok = false;
    for (std::size_t i = 0; i < kDays.size(); ++i)
      if (d == kDays[i]) {
        w.weekdays |= static_cast<std::uint8_t>(1u << i);
        ok = true;
      }
    if (!ok) m.error("days", "expected mon, tue, wed, thu, fri, sat or sun, got '" + d + "'");
  }
  if (!days.empty() && w.repeat != MaintenanceWindow::Repeat::kWeekly)
    m.error("days", "only a weekly window takes 'days'");
  if (w.repeat == MaintenanceWindow::Repeat::kWeekly && w.weekdays == 0)
    w.weekdays = static_cast<std::uint8_t>(
        1u << weekday_from_days(days_from_civil(w.start.year, w.start.month, w.start.day)));
  std::string until;
  m.get("until", until);
  if (!until.empty()) {
    if (w.repeat == MaintenanceWindow::Repeat::kOnce)
      m.error("until", "only a recurring window takes 'until'");
    else if (!parse_civil(until, w.until))
      m.error("until", "expected a local date 'YYYY-MM-DD', got '" + until + "'");
    else
      w.has_until = true;
  }
  m.done();
}

}  // namespace

void read_uptime_config(ConfigMap& m, UptimeConfig& out) {
  m.get("enabled", out.enabled);
  m.get("time_zone", out.time_zone);
  TimeZone probe;
  if (auto s = TimeZone::load(out.time_zone, probe); !s) m.error("time_zone", s.message());
  m.get_duration("min_outage", out.min_outage);
  m.get_duration("agent_grace", out.agent_grace);
  std::vector<std::string> windows;
  m.get("availability_windows", windows);
  if (!windows.empty()) {
    out.availability_windows.clear();
    std::set<std::string> labels;
    for (const std::string& w : windows) {
      std::chrono::nanoseconds d{0};
      if (!parse_duration(w, d) || d < std::chrono::seconds(60) ||
          d > std::chrono::hours(24 * 400)) {
        m.error("availability_windows", "expected durations from 1m to 400d, got '" + w + "'");
        continue;
      }
      if (!labels.insert(window_label(d)).second)
        m.error("availability_windows", "window '" + w + "' is listed twice");
      out.availability_windows.push_back(d);
    }
    if (out.availability_windows.size() > 8)
      m.error("availability_windows", "at most 8 windows (each is a label value)");
  }
  std::string slo;
  m.get("slo", slo);
  if (!slo.empty()) {
    char* end = nullptr;
    const double v = std::strtod(slo.c_str(), &end);
    if (end == slo.c_str() || *end != '\0' || !(v > 0 && v < 100))
      m.error("slo",
              "expected a percentage above 0 and below 100, such as 99.9, got '" + slo + "'");
    else
      out.slo_percent = v;
  }
  {
    ConfigMap t = m.map("target");
    t.get("period", out.target.period);
    t.get("baseline", out.target.baseline);
    std::string reduction;
    t.get("reduction_percent", reduction);
    Period probe_period;
    const std::string& p = out.target.period;
    if (p != "year" && p != "quarter" && p != "month" && !parse_period(p, probe_period))
      t.error("period",
              "expected year, quarter, month or a period (2026, 2026-Q1, 2026-03, "
              "2026-03-01..2026-04-01), got '" +
                  p + "'");
    if (!out.target.baseline.empty() && !parse_period(out.target.baseline, probe_period))
      t.error("baseline",
              "expected a period (2025, 2025-Q1, 2025-03, 2025-03-01..2025-04-01), "
              "got '" +
                  out.target.baseline + "'");
    if (!reduction.empty()) {
      char* end = nullptr;
      const double v = std::strtod(reduction.c_str(), &end);
      if (end == reduction.c_str() || *end != '\0' || !(v >= 0 && v < 100))
        t.error("reduction_percent",
                "expected a percentage from 0 to below 100, such as 25, got '" + reduction + "'");
      else
        out.target.reduction_percent = v;
    }
    t.done();
  }
  m.get("max_devices", out.max_devices, 1, 1'000'000);
  m.get("max_interface_series", out.max_interface_series, 0, 1'000'000);
  std::set<std::string> site_names, segs;
  for (ConfigMap& s : m.list("sites")) {
    SiteSpec spec;
    s.get("name", spec.name, true);
    s.get("segments", spec.segments, true);
    if (!spec.name.empty() && !valid_name(spec.name))
      s.error("name", "a site name is letters, digits, '.', '_', '-', at most 47 characters");
    if (!site_names.insert(spec.name).second)
      s.error("name", "site '" + spec.name + "' is defined twice");
    for (const std::string& seg : spec.segments)
      if (!segs.insert(seg).second)
        s.error("segments", "segment '" + seg + "' belongs to more than one site");
    s.done();
    out.sites.push_back(std::move(spec));
  }
  m.get_duration("dependency_grace", out.dependency_grace);
  m.get_duration("dependency_wait", out.dependency_wait);
  {
    std::vector<ConfigMap> deps = m.list("dependencies");
    read_dependencies(deps, out.dependencies);
  }
  for (ConfigMap& w : m.list("maintenance")) {
    MaintenanceWindow win;
    read_window(w, out, win);
    out.maintenance.push_back(std::move(win));
  }
  m.done();
}

}  // namespace citywatch::collector::uptime
