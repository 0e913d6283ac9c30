#include "collector/report/report_render.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <string_view>

namespace citywatch::collector::report {

namespace {

std::string f1(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

std::string esc_html(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

// RFC 4180 quoting, and a cell that a spreadsheet would read as a formula (starting with
// = + - @, or a tab or CR before one) gets a leading apostrophe (OWASP's CSV injection
// advice). Names come from devices (ifName, sysName); numbers never start that way.
std::string esc_csv(const std::string& s) {
  std::string v = s;
  if (!v.empty() && std::string_view("=+-@\t\r").find(v[0]) != std::string_view::npos &&
      !(v[0] == '-' && v.size() > 1 && std::isdigit(static_cast<unsigned char>(v[1]))))
    v.insert(v.begin(), '\'');
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string o = "\"";
  for (char c : v) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

// A table cell: '|' escaped, and a line break (which would end the table row) a space.
std::string esc_md(const std::string& s) {
  std::string o;
  for (char c : s)
    o += c == '|' ? std::string("\\|") : c == '\n' || c == '\r' ? " " : std::string(1, c);
  return o;
}

std::string target_sentence(const Report& r) {
  const double cur = minutes(r.city.cur.down_ns);
  const double base = minutes(r.city.base.down_ns);
  std::string s = "Target: " + f1(r.options.target_reduction_percent) +
                  " % fewer outage minutes than " + r.options.baseline.label + " (" +
                  fmt_minutes(base) + " min), i.e. at most " + fmt_minutes(r.target_minutes) +
                  " min. Actual: " + fmt_minutes(cur) + " min";
  if (base > 0) s += " (" + f1(100.0 * (base - cur) / base) + " % fewer)";
  s += r.target_met ? ". MET, with " + fmt_minutes(r.target_minutes - cur) + " min to spare."
                    : ". NOT MET, by " + fmt_minutes(cur - r.target_minutes) + " min.";
  return s;
}

// The columns every figure table shares, in order.
struct Col {
  const char* title;
  std::string (*get)(const Line&, const Report&);
};
const Col kCols[] = {
    {"Availability %", [](const Line& l, const Report&) { return fmt_availability(l.cur); }},
    {"Outages", [](const Line& l, const Report&) { return std::to_string(l.cur.outages); }},
    {"Outage min",
     [](const Line& l, const Report&) { return fmt_minutes(minutes(l.cur.down_ns)); }},
    {"MTTR min", [](const Line& l, const Report&) { return fmt_mttr(l.cur); }},
    {"MTBF h", [](const Line& l, const Report&) { return fmt_mtbf(l.cur); }},
    {"Error budget left",
     [](const Line& l, const Report& r) { return fmt_budget(l.cur, r.options.slo_percent); }},
    {"Baseline availability %",
     [](const Line& l, const Report&) { return fmt_availability(l.base); }},
    {"Baseline outage min",
     [](const Line& l, const Report&) { return fmt_minutes(minutes(l.base.down_ns)); }},
};

std::string took_down_text(const Incident& in) {
  std::string t;
  const std::size_t n = std::min<std::size_t>(in.took_down.size(), 10);
  for (std::size_t i = 0; i < n; ++i) t += (i ? ", " : "") + in.took_down[i];
  if (in.took_down.size() > n) t += " and " + std::to_string(in.took_down.size() - n) + " more";
  return t;
}

std::string utc_minute(std::int64_t ns) {
  const std::time_t t = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M", &tm);
  return b;
}

std::string when_text(const Incident& in) {
  return utc_minute(in.start_ns) + " to " + (in.end_ns ? utc_minute(in.end_ns) : "(open)");
}

std::string dependents_note(const Report& r) {
  const uptime::Figures& c = r.city.cur;
  return "The headline counts each incident once, at its root cause: " +
         std::to_string(c.dependent_outages) + " outages (" +
         fmt_minutes(minutes(c.dependent_down_ns)) +
         " min) of devices and segments that depended on a device already down are attached to "
         "its incident, not counted again. The per-device line counts them.";
}

std::string period_text(const Report& r) {
  return r.options.period.label + " (" + r.options.tz.name() + "), baseline " +
         r.options.baseline.label + ", SLO " + f1(r.options.slo_percent) + " %";
}

// Availability per site: horizontal bars from a floor just below the worst site to 100 %,
// with the SLO as a dashed line.
std::string site_chart(const Report& r) {
  const int w = 720, row = 26, left = 170, right = 90;
  const int h = 40 + row * static_cast<int>(std::max<std::size_t>(r.sites.size(), 1));
  double floor = r.options.slo_percent;
  for (const Line& l : r.sites) floor = std::min(floor, 100.0 * l.cur.availability());
  floor = std::max(0.0, floor - (100.0 - floor) * 0.25 - 0.001);
  const double span = 100.0 - floor;
  const auto x = [&](double pct) { return left + (w - left - right) * (pct - floor) / span; };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
    << "\" role=\"img\" aria-label=\"Availability per site\">";
  s << "<text x=\"" << left << "\" y=\"14\" class=\"axis\">" << f1(floor) << " %</text>";
  s << "<text x=\"" << w - right << "\" y=\"14\" class=\"axis\" text-anchor=\"end\">100 %</text>";
  for (std::size_t i = 0; i < r.sites.size(); ++i) {
    const Line& l = r.sites[i];
    const double a = 100.0 * l.cur.availability();
    const int y = 24 + row * static_cast<int>(i);
    const bool ok = a >= r.options.slo_percent;
    s << "<text x=\"" << left - 8 << "\" y=\"" << y + 15 << "\" text-anchor=\"end\">"
      << esc_html(l.name) << "</text>";
    s << "<rect x=\"" << left << "\" y=\"" << y << "\" width=\"" << std::max(1.0, x(a) - left)
      << "\" height=\"" << row - 8 << "\" fill=\"" << (ok ? "#2e7d32" : "#c62828") << "\"/>";
    s << "<text x=\"" << x(a) + 6 << "\" y=\"" << y + 15 << "\">" << fmt_availability(l.cur)
      << "</text>";
  }
  const double sx = x(r.options.slo_percent);
  s << "<line x1=\"" << sx << "\" y1=\"18\" x2=\"" << sx << "\" y2=\"" << h - 4
    << "\" stroke=\"#333\" stroke-dasharray=\"4 3\"/><text x=\"" << sx + 3 << "\" y=\"" << h - 6
    << "\" class=\"axis\">SLO " << f1(r.options.slo_percent) << " %</text>";
  s << "</svg>";
  return s.str();
}

// Outage minutes per week as bars, the pro-rata target as a line.
std::string week_chart(const Report& r) {
  const int w = 720, h = 260, left = 50, bottom = 50, top = 20;
  double top_v = 1;
  for (const Week& wk : r.weeks) top_v = std::max({top_v, minutes(wk.down_ns), wk.target_minutes});
  top_v *= 1.15;
  const int n = static_cast<int>(std::max<std::size_t>(r.weeks.size(), 1));
  const double bw = static_cast<double>(w - left - 10) / n;
  const auto y = [&](double v) { return top + (h - top - bottom) * (1.0 - v / top_v); };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
    << "\" role=\"img\" aria-label=\"Outage minutes per week against the target\">";
  s << "<line x1=\"" << left << "\" y1=\"" << y(0) << "\" x2=\"" << w - 10 << "\" y2=\"" << y(0)
    << "\" stroke=\"#999\"/>";
  s << "<text x=\"" << left - 4 << "\" y=\"" << y(top_v / 1.15) + 4
    << "\" class=\"axis\" text-anchor=\"end\">" << f1(top_v / 1.15) << "</text>";
  s << "<text x=\"" << left - 4 << "\" y=\"" << y(0) + 4
    << "\" class=\"axis\" text-anchor=\"end\">0</text>";
  std::string line;
  for (int i = 0; i < static_cast<int>(r.weeks.size()); ++i) {
    const Week& wk = r.weeks[static_cast<std::size_t>(i)];
    const double m = minutes(wk.down_ns);
    const double x0 = left + bw * i;
    s << "<rect x=\"" << x0 + bw * 0.15 << "\" y=\"" << y(m) << "\" width=\"" << bw * 0.7
      << "\" height=\"" << y(0) - y(m) << "\" fill=\""
      << (m > wk.target_minutes ? "#c62828" : "#1565c0") << "\"><title>week of " << wk.label << ": "
      << fmt_minutes(m) << " min (target " << fmt_minutes(wk.target_minutes) << ")</title></rect>";
    line += (line.empty() ? "" : " ") + f1(x0) + "," + f1(y(wk.target_minutes)) + " " +
            f1(x0 + bw) + "," + f1(y(wk.target_minutes));
    if (r.weeks.size() <= 16 || i % 4 == 0)
      s << "<text x=\"" << x0 + bw / 2 << "\" y=\"" << h - bottom + 16
        << "\" class=\"axis\" text-anchor=\"middle\">" << wk.label.substr(5) << "</text>";
  }
  s << "<polyline points=\"" << line << "\" fill=\"none\" stroke=\"#ef6c00\" stroke-width=\"2\"/>";
  s << "<text x=\"" << left << "\" y=\"" << h - 8
    << "\" class=\"axis\">bars: outage minutes per week (red above target); orange line: target "
       "(pro rata)</text>";
  s << "</svg>";
  return s.str();
}

void html_table(std::ostringstream& s, const Report& r, const std::vector<Line>& lines,
                const char* first, bool with_site, bool with_segment) {
  s << "<table><thead><tr><th>" << first << "</th>";
  if (with_site) s << "<th>Site</th>";
  if (with_segment) s << "<th>Segment</th>";
  for (const Col& c : kCols) s << "<th>" << c.title << "</th>";
  s << "</tr></thead><tbody>\n";
  for (const Line& l : lines) {
    s << "<tr><td>" << esc_html(l.name) << "</td>";
    if (with_site) s << "<td>" << esc_html(l.site) << "</td>";
    if (with_segment) s << "<td>" << esc_html(l.segment) << "</td>";
    for (const Col& c : kCols) s << "<td>" << esc_html(c.get(l, r)) << "</td>";
    s << "</tr>\n";
  }
  s << "</tbody></table>\n";
}

void md_table(std::ostringstream& s, const Report& r, const std::vector<Line>& lines,
              const char* first, bool with_site, bool with_segment) {
  s << "| " << first << " |";
  if (with_site) s << " Site |";
  if (with_segment) s << " Segment |";
  for (const Col& c : kCols) s << " " << c.title << " |";
  s << "\n|---|";
  if (with_site) s << "---|";
  if (with_segment) s << "---|";
  for (std::size_t i = 0; i < std::size(kCols); ++i) s << "---:|";
  s << "\n";
  for (const Line& l : lines) {
    s << "| " << esc_md(l.name) << " |";
    if (with_site) s << " " << esc_md(l.site) << " |";
    if (with_segment) s << " " << esc_md(l.segment) << " |";
    for (const Col& c : kCols) s << " " << esc_md(c.get(l, r)) << " |";
    s << "\n";
  }
  s << "\n";
}

}  // namespace

std::string render_html(const Report& r) {
  std::ostringstream s;
  s << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<title>Network availability " << esc_html(r.options.period.label) << "</title>"
    << "<style>body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px;color:#222;max-width:"
       "1100px}h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:"
       "collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}"
       "td:first-child,th:first-child{text-align:left}.met{background:#e8f5e9;border-left:6px "
       "solid #2e7d32;padding:8px}.missed{background:#ffebee;border-left:6px solid #c62828;"
       "padding:8px}.axis{font-size:11px;fill:#555}svg text{font-size:12px}</style></head><body>\n";
  s << "<h1>Network availability: " << esc_html(period_text(r)) << "</h1>\n";
  s << "<p class=\"" << (r.target_met ? "met" : "missed") << "\">" << esc_html(target_sentence(r))
    << "</p>\n";
  s << "<h2>City</h2>\n";
  html_table(s, r, {r.city, r.city_per_device}, "Scope", false, false);
  s << "<p>" << esc_html(dependents_note(r)) << "</p>\n";
  s << "<h2>Incidents with dependents (root cause)</h2>\n";
  if (r.incidents.empty()) {
    s << "<p>None in this period.</p>\n";
  } else {
    s << "<table><thead><tr><th>Root cause</th><th>Site</th><th>Segment</th><th>Cause</th>"
         "<th>When (UTC)</th><th>Outage min</th><th>Devices down</th><th>Segments dark</th>"
         "<th>Dependent min</th><th>Took down</th></tr></thead><tbody>\n";
    for (const Incident& in : r.incidents)
      s << "<tr><td>" << esc_html(in.root) << "</td><td>" << esc_html(in.site) << "</td><td>"
        << esc_html(in.segment) << "</td><td>" << esc_html(in.cause) << "</td><td>"
        << esc_html(when_text(in)) << "</td><td>" << fmt_minutes(minutes(in.down_ns)) << "</td><td>"
        << in.devices << "</td><td>" << in.segments << "</td><td>"
        << fmt_minutes(minutes(in.dependent_down_ns)) << "</td><td>" << esc_html(took_down_text(in))
        << "</td></tr>\n";
    s << "</tbody></table>\n";
  }
  s << "<h2>Availability per site</h2>\n" << site_chart(r) << "\n";
  s << "<h2>Outage minutes per week against the target</h2>\n" << week_chart(r) << "\n";
  s << "<h2>Sites</h2>\n";
  html_table(s, r, r.sites, "Site", false, false);
  s << "<h2>Segments</h2>\n";
  html_table(s, r, r.segments, "Segment", true, false);
  s << "<h2>Worst offenders</h2>\n";
  html_table(s, r, r.offenders, "Entity", true, true);
  s << "<h2>Devices</h2>\n";
  html_table(s, r, r.devices, "Device", true, true);
  s << "<p>Devices and segments (agent lost) make up the headline figures; " << r.interfaces
    << " monitored interfaces appear among the worst offenders only. Planned maintenance is "
       "excluded. An outage crossing the period's edge counts in both periods, with only its "
       "minutes inside each. MTTR = outage minutes / outages; MTBF = up time / outages.</p>\n";
  s << "</body></html>\n";
  return s.str();
}

std::string render_csv(const Report& r) {
  std::ostringstream s;
  s << "section,name,site,segment,availability_pct,outages,outage_minutes,mttr_minutes,"
       "mtbf_hours,budget_left_minutes,baseline_availability_pct,baseline_outage_minutes,"
       "target_minutes,target_met,dependent_outages,dependent_minutes,started_utc,cause,took_"
       "down\n";
  const auto row = [&](const char* section, const Line& l, const std::string& target,
                       const std::string& met) {
    s << section << "," << esc_csv(l.name) << "," << esc_csv(l.site) << "," << esc_csv(l.segment)
      << "," << fmt_availability(l.cur) << "," << l.cur.outages << ","
      << fmt_minutes(minutes(l.cur.down_ns)) << "," << fmt_mttr(l.cur) << "," << fmt_mtbf(l.cur)
      << "," << fmt_minutes(budget_left_minutes(l.cur, r.options.slo_percent)) << ","
      << fmt_availability(l.base) << "," << fmt_minutes(minutes(l.base.down_ns)) << "," << target
      << "," << met << "," << l.cur.dependent_outages << ","
      << fmt_minutes(minutes(l.cur.dependent_down_ns)) << ",,,\n";
  };
  row("city", r.city, fmt_minutes(r.target_minutes), r.target_met ? "yes" : "no");
  row("city_per_device", r.city_per_device, "", "");
  for (const Incident& in : r.incidents)
    s << "incident," << esc_csv(in.root) << "," << esc_csv(in.site) << "," << esc_csv(in.segment)
      << ",,1," << fmt_minutes(minutes(in.down_ns)) << ",,,,,,,," << in.devices + in.segments << ","
      << fmt_minutes(minutes(in.dependent_down_ns)) << "," << utc_minute(in.start_ns) << ","
      << esc_csv(in.cause) << "," << esc_csv(took_down_text(in)) << "\n";
  for (const Line& l : r.sites) row("site", l, "", "");
  for (const Line& l : r.segments) row("segment", l, "", "");
  for (const Line& l : r.devices) row("device", l, "", "");
  for (const Line& l : r.offenders) row("offender", l, "", "");
  for (const Week& w : r.weeks)
    s << "week," << w.label << ",,,,," << fmt_minutes(minutes(w.down_ns)) << ",,,,,,"
      << fmt_minutes(w.target_minutes) << ","
      << (minutes(w.down_ns) <= w.target_minutes ? "yes" : "no") << ",,,,,\n";
  return s.str();
}

std::string render_markdown(const Report& r) {
  std::ostringstream s;
  s << "# Network availability: " << period_text(r) << "\n\n";
  s << "**" << (r.target_met ? "Target met." : "Target not met.") << "** " << target_sentence(r)
    << "\n\n## City\n\n";
  md_table(s, r, {r.city, r.city_per_device}, "Scope", false, false);
  s << dependents_note(r) << "\n\n## Incidents with dependents (root cause)\n\n";
  if (r.incidents.empty()) {
    s << "None in this period.\n\n";
  } else {
    s << "| Root cause | Site | Segment | Cause | When (UTC) | Outage min | Devices down | "
         "Segments dark | Dependent min | Took down |\n"
         "|---|---|---|---|---|---:|---:|---:|---:|---|\n";
    for (const Incident& in : r.incidents)
      s << "| " << esc_md(in.root) << " | " << esc_md(in.site) << " | " << esc_md(in.segment)
        << " | " << esc_md(in.cause) << " | " << when_text(in) << " | "
        << fmt_minutes(minutes(in.down_ns)) << " | " << in.devices << " | " << in.segments << " | "
        << fmt_minutes(minutes(in.dependent_down_ns)) << " | " << esc_md(took_down_text(in))
        << " |\n";
    s << "\n";
  }
  s << "## Sites\n\n";
  md_table(s, r, r.sites, "Site", false, false);
  s << "## Segments\n\n";
  md_table(s, r, r.segments, "Segment", true, false);
  s << "## Worst offenders\n\n";
  md_table(s, r, r.offenders, "Entity", true, true);
  s << "## Outage minutes per week\n\n| Week of | Outage min | Target min |\n|---|---:|---:|\n";
  for (const Week& w : r.weeks)
    s << "| " << w.label << " | " << fmt_minutes(minutes(w.down_ns)) << " | "
      << fmt_minutes(w.target_minutes) << " |\n";
  s << "\n## Devices\n\n";
  md_table(s, r, r.devices, "Device", true, true);
  s << "Devices and segments (agent lost) make up the headline figures; " << r.interfaces
    << " monitored interfaces appear among the worst offenders only. Planned maintenance is "
       "excluded. MTTR = outage minutes / outages; MTBF = up time / outages.\n";
  return s.str();
}

}  // namespace citywatch::collector::report
