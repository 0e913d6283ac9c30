#include "collector/uptime/targets.h"

#include <map>

#include "collector/uptime/clock.h"

namespace citywatch::collector::uptime {

Status resolve_target_periods(const TargetSpec& spec, const TimeZone& tz, std::int64_t now_ns,
                              Period& period, Period& baseline) {
  if (spec.period == "year" || spec.period == "quarter" || spec.period == "month") {
    const PeriodKind kind = spec.period == "year"      ? PeriodKind::kYear
                            : spec.period == "quarter" ? PeriodKind::kQuarter
                                                       : PeriodKind::kMonth;
    period = current_period(kind, tz.to_local(now_ns / kNsPerSecond));
  } else if (!parse_period(spec.period, period)) {
    return Status::error("uptime.target.period: not a period: '" + spec.period + "'");
  }
  if (spec.baseline.empty()) {
    baseline = year_before(period);
  } else if (!parse_period(spec.baseline, baseline)) {
    return Status::error("uptime.target.baseline: not a period: '" + spec.baseline + "'");
  }
  return Status::ok();
}

Status compute_targets(const OutageStore& store, const MaintenanceCalendar& calendar,
                       const TimeZone& tz, const TargetSpec& spec, std::int64_t now_ns,
                       TargetFigures& out) {
  out = TargetFigures{};
  if (auto s = resolve_target_periods(spec, tz, now_ns, out.period, out.baseline); !s) return s;
  const auto ns = [&](const CivilTime& c) { return tz.to_utc(c) * kNsPerSecond; };
  const std::int64_t from = ns(out.period.from), to = ns(out.period.to);
  const std::int64_t base_from = ns(out.baseline.from), base_to = ns(out.baseline.to);
  std::vector<EntityRow> all;
  if (auto s = store.load_entities(all); !s) return s;
  std::vector<OutageRow> cur_outages, base_outages;
  if (auto s = store.load_outages(from, to, cur_outages); !s) return s;
  if (auto s = store.load_outages(base_from, base_to, base_outages); !s) return s;
  std::vector<Figures> cur, base;
  compute_figures(all, cur_outages, calendar, from, to, now_ns, cur);
  compute_figures(all, base_outages, calendar, base_from, base_to, now_ns, base);
  std::map<std::string, SiteTarget> sites;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const EntityRow& e = all[i];
    // As the report: entities seen before either period ends; interfaces are not headline.
    if (e.kind == EntityKind::kInterface || (e.first_seen_ns >= to && e.first_seen_ns >= base_to))
      continue;
    SiteTarget& t = sites[e.site];
    t.site = e.site;
    t.period_down_ns += cur[i].down_ns;
    t.baseline_down_ns += base[i].down_ns;
  }
  for (auto& [name, t] : sites) {
    t.target_down_ns =
        static_cast<double>(t.baseline_down_ns) * (1.0 - spec.reduction_percent / 100.0);
    out.sites.push_back(std::move(t));
  }
  return Status::ok();
}

}  // namespace citywatch::collector::uptime
