#include "collector/report/report_builder.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include "collector/uptime/clock.h"

namespace citywatch::collector::report {

using uptime::CivilTime;
using uptime::EntityKind;
using uptime::Figures;
using uptime::kNsPerSecond;

double minutes(std::int64_t ns) { return static_cast<double>(ns) / (60.0 * kNsPerSecond); }

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string entity_name(const uptime::EntityRow& e) {
  return e.kind == EntityKind::kInterface ? e.device_name + " " + e.interface
         : e.kind == EntityKind::kSegment ? e.segment + " (agent " + e.agent + ")"
                                          : e.device_name;
}

// An outage's time inside [from, to) (open: until now), maintenance excluded.
std::int64_t down_in(const uptime::EntityRow& e, const uptime::OutageRow& o,
                     const uptime::MaintenanceCalendar& calendar, std::int64_t from,
                     std::int64_t to, std::int64_t now) {
  const std::int64_t s = std::max({o.start_ns, from, e.first_seen_ns});
  const std::int64_t end = std::min({o.open ? now : o.end_ns, to, now});
  if (end <= s) return 0;
  std::vector<uptime::Interval> m;
  calendar.intervals(uptime::scope_of(e), s, end, m);
  return end - s - uptime::covered_ns(m, s, end);
}

Status build_incidents(const uptime::OutageStore& store, const std::vector<uptime::EntityRow>& all,
                       const std::vector<uptime::OutageRow>& outages,
                       const uptime::MaintenanceCalendar& calendar, Report& r) {
  std::unordered_map<std::int64_t, const uptime::EntityRow*> entity;
  for (const auto& e : all) entity[e.id] = &e;
  std::unordered_map<std::int64_t, const uptime::OutageRow*> by_id;
  for (const auto& o : outages) by_id[o.id] = &o;
  std::map<std::int64_t, Incident> incidents;               // by root outage id
  std::map<std::int64_t, std::set<std::int64_t>> counted;   // root -> dependent entities
  std::vector<std::unique_ptr<uptime::OutageRow>> outside;  // roots that ended before the period
  const std::int64_t now = r.options.now_ns;
  for (const auto& o : outages) {
    if (o.root_outage_id == 0 || o.flap) continue;
    auto root = by_id.find(o.root_outage_id);
    if (root == by_id.end()) {
      // A dependent that recovered within the grace can reach into the period after its
      // root ended: the incident still counts it, so it is listed.
      auto row = std::make_unique<uptime::OutageRow>();
      if (auto s = store.load_outage(o.root_outage_id, *row); !s) return s;
      root = by_id.emplace(row->id, row.get()).first;
      outside.push_back(std::move(row));
    }
    const auto ce = entity.find(o.entity_id);
    if (ce == entity.end()) continue;
    const auto re = entity.find(root->second->entity_id);
    if (re == entity.end()) continue;
    // Counted as the figures count it: only time inside the period.
    const std::int64_t down = down_in(*ce->second, o, calendar, r.from_ns, r.to_ns, now);
    if (down <= 0) continue;
    Incident& in = incidents[o.root_outage_id];
    if (in.root.empty()) {
      const uptime::OutageRow& ro = *root->second;
      in.root = entity_name(*re->second);
      in.kind = uptime::to_string(re->second->kind);
      in.site = re->second->site;
      in.segment = re->second->segment;
      in.cause = ro.cause;
      in.start_ns = ro.start_ns;
      in.end_ns = ro.open ? 0 : ro.end_ns;
      if (!ro.flap) in.down_ns = down_in(*re->second, ro, calendar, r.from_ns, r.to_ns, now);
    }
    in.dependent_down_ns += down;
    // A device down twice within one incident is one device it took down.
    if (!counted[o.root_outage_id].insert(o.entity_id).second) continue;
    (ce->second->kind == EntityKind::kSegment ? in.segments : in.devices) += 1;
    in.took_down.push_back(entity_name(*ce->second));
  }
  for (auto& [id, in] : incidents) {
    std::sort(in.took_down.begin(), in.took_down.end());
    r.incidents.push_back(std::move(in));
  }
  std::stable_sort(r.incidents.begin(), r.incidents.end(),
                   [](const Incident& a, const Incident& b) { return a.down_ns > b.down_ns; });
  return Status::ok();
}

}  // namespace

std::string fmt_availability(const Figures& f) { return fmt("%.4f", 100.0 * f.availability()); }
std::string fmt_minutes(double m) { return fmt("%.1f", m); }
std::string fmt_mttr(const Figures& f) { return fmt("%.1f", f.mttr_s() / 60.0); }
std::string fmt_mtbf(const Figures& f) { return fmt("%.1f", f.mtbf_s() / 3600.0); }

double budget_left_minutes(const Figures& f, double slo_percent) {
  return (1.0 - slo_percent / 100.0) * minutes(f.monitored_ns) - minutes(f.down_ns);
}

std::string fmt_budget(const Figures& f, double slo_percent) {
  const double allowed = (1.0 - slo_percent / 100.0) * minutes(f.monitored_ns);
  const double left = budget_left_minutes(f, slo_percent);
  return fmt_minutes(left) + " min (" + fmt("%.1f", allowed > 0 ? 100.0 * left / allowed : 0.0) +
         " %)";
}

Status build_report(const uptime::OutageStore& store, const uptime::MaintenanceCalendar& calendar,
                    const ReportOptions& o, Report& r) {
  r = Report{};
  r.options = o;
  const auto ns = [&](const CivilTime& c) { return o.tz.to_utc(c) * kNsPerSecond; };
  r.from_ns = ns(o.period.from);
  r.to_ns = ns(o.period.to);
  r.base_from_ns = ns(o.baseline.from);
  r.base_to_ns = ns(o.baseline.to);
  std::vector<uptime::EntityRow> all;
  if (auto s = store.load_entities(all); !s) return s;
  std::vector<uptime::OutageRow> cur_outages, base_outages;
  if (auto s = store.load_outages(r.from_ns, r.to_ns, cur_outages); !s) return s;
  if (auto s = store.load_outages(r.base_from_ns, r.base_to_ns, base_outages); !s) return s;
  std::vector<Figures> cur, base;
  uptime::compute_figures(all, cur_outages, calendar, r.from_ns, r.to_ns, o.now_ns, cur);
  uptime::compute_figures(all, base_outages, calendar, r.base_from_ns, r.base_to_ns, o.now_ns,
                          base);

  std::map<std::string, Line> sites, segments;
  r.city.name = "all sites";
  for (std::size_t i = 0; i < all.size(); ++i) {
    const uptime::EntityRow& e = all[i];
    if (e.first_seen_ns >= r.to_ns && e.first_seen_ns >= r.base_to_ns) continue;
    if (e.kind == EntityKind::kInterface) {
      if (e.first_seen_ns < r.to_ns) ++r.interfaces;
    } else {
      for (Line* l : {&r.city, &sites[e.site], &segments[e.site + "\x1f" + e.segment]}) {
        l->cur.add(cur[i]);
        l->base.add(base[i]);
      }
      sites[e.site].name = e.site;
      Line& seg = segments[e.site + "\x1f" + e.segment];
      seg.name = e.segment;
      seg.site = e.site;
      if (e.kind == EntityKind::kDevice && e.first_seen_ns < r.to_ns)
        r.devices.push_back({e.device_name, "device", e.site, e.segment, cur[i].per_entity(),
                             base[i].per_entity()});
    }
    if (cur[i].down_ns > 0 && e.first_seen_ns < r.to_ns)
      r.offenders.push_back(
          {entity_name(e), uptime::to_string(e.kind), e.site, e.segment, cur[i], base[i]});
  }
  r.city_per_device = {"all sites (per device)", "", "", "", r.city.cur.per_entity(),
                       r.city.base.per_entity()};
  if (auto s = build_incidents(store, all, cur_outages, calendar, r); !s) return s;
  for (auto& [k, l] : sites) r.sites.push_back(std::move(l));
  for (auto& [k, l] : segments) r.segments.push_back(std::move(l));
  std::sort(r.devices.begin(), r.devices.end(), [](const Line& a, const Line& b) {
    return std::tie(a.site, a.segment, a.name) < std::tie(b.site, b.segment, b.name);
  });
  std::sort(r.offenders.begin(), r.offenders.end(), [](const Line& a, const Line& b) {
    return a.cur.down_ns != b.cur.down_ns ? a.cur.down_ns > b.cur.down_ns : a.name < b.name;
  });
  if (r.offenders.size() > o.offenders) r.offenders.resize(o.offenders);

  r.target_minutes = minutes(r.city.base.down_ns) * (1.0 - o.target_reduction_percent / 100.0);
  r.target_met = minutes(r.city.cur.down_ns) <= r.target_minutes + 1e-9;

  // Weeks start on Monday 00:00 local; the first and last are clipped to the period.
  std::int64_t day =
      uptime::days_from_civil(o.period.from.year, o.period.from.month, o.period.from.day);
  const std::int64_t end_day =
      uptime::days_from_civil(o.period.to.year, o.period.to.month, o.period.to.day);
  std::vector<uptime::EntityRow> headline;
  for (const auto& e : all)
    if (e.kind != EntityKind::kInterface) headline.push_back(e);
  const double period_len = static_cast<double>(r.to_ns - r.from_ns);
  while (day < end_day) {
    std::int64_t next = day + 1;
    while (next < end_day && uptime::weekday_from_days(next) != 0) ++next;
    CivilTime a = uptime::civil_from_days(day), b = uptime::civil_from_days(next);
    Week w;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", a.year, a.month, a.day);
    w.label = buf;
    w.from_ns = ns(a);
    w.to_ns = ns(b);
    std::vector<Figures> f;
    uptime::compute_figures(headline, cur_outages, calendar, w.from_ns, w.to_ns, o.now_ns, f);
    for (const Figures& x : f) w.down_ns += x.down_ns;
    w.target_minutes = r.target_minutes * static_cast<double>(w.to_ns - w.from_ns) / period_len;
    r.weeks.push_back(w);
    day = next;
  }
  return Status::ok();
}

}  // namespace citywatch::collector::report
