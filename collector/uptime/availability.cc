#include "collector/uptime/availability.h"

#include <algorithm>
#include <unordered_map>

#include "collector/uptime/clock.h"

namespace citywatch::collector::uptime {

void Figures::add(const Figures& o) {
  monitored_ns += o.monitored_ns;
  down_ns += o.down_ns;
  maintenance_ns += o.maintenance_ns;
  outages += o.outages;
  open_outages += o.open_outages;
  flaps += o.flaps;
  dependent_down_ns += o.dependent_down_ns;
  dependent_outages += o.dependent_outages;
}

Figures Figures::per_entity() const {
  Figures f = *this;
  f.down_ns += dependent_down_ns;
  f.outages += dependent_outages;
  f.dependent_down_ns = 0;
  f.dependent_outages = 0;
  return f;
}

double Figures::availability() const {
  if (monitored_ns <= 0) return 1.0;
  return 1.0 - static_cast<double>(down_ns) / static_cast<double>(monitored_ns);
}

double Figures::mttr_s() const {
  return outages ? static_cast<double>(down_ns) / static_cast<double>(outages) / kNsPerSecond : 0.0;
}

double Figures::mtbf_s() const {
  const double up = static_cast<double>(monitored_ns - down_ns) / kNsPerSecond;
  return outages ? up / static_cast<double>(outages) : up;
}

EntityScope scope_of(const EntityRow& e) { return {e.site, e.segment, e.device, e.device_name}; }

void compute_figures(const std::vector<EntityRow>& entities, const std::vector<OutageRow>& outages,
                     const MaintenanceCalendar& calendar, std::int64_t from_ns, std::int64_t to_ns,
                     std::int64_t now_ns, std::vector<Figures>& out) {
  out.assign(entities.size(), Figures{});
  std::unordered_map<std::int64_t, std::size_t> index;
  for (std::size_t i = 0; i < entities.size(); ++i) index[entities[i].id] = i;
  std::vector<std::vector<Interval>> maint(entities.size());
  std::vector<std::int64_t> ws(entities.size()), we(entities.size());
  const std::int64_t end = std::min(to_ns, now_ns);
  for (std::size_t i = 0; i < entities.size(); ++i) {
    ws[i] = std::max(from_ns, entities[i].first_seen_ns);
    we[i] = end;
    if (we[i] <= ws[i]) continue;
    calendar.intervals(scope_of(entities[i]), ws[i], we[i], maint[i]);
    const std::int64_t m = covered_ns(maint[i], ws[i], we[i]);
    out[i].maintenance_ns = m;
    out[i].monitored_ns = we[i] - ws[i] - m;
  }
  for (const OutageRow& o : outages) {
    const auto it = index.find(o.entity_id);
    if (it == index.end()) continue;
    const std::size_t i = it->second;
    if (we[i] <= ws[i]) continue;
    if (o.flap) {
      if (o.start_ns >= ws[i] && o.start_ns < we[i]) ++out[i].flaps;
      continue;
    }
    const std::int64_t s = std::max(o.start_ns, ws[i]);
    const std::int64_t e = std::min(o.open ? now_ns : o.end_ns, we[i]);
    if (e <= s) continue;
    const std::int64_t down = e - s - covered_ns(maint[i], s, e);
    if (down <= 0) continue;
    if (o.root_outage_id != 0) {
      out[i].dependent_down_ns += down;
      ++out[i].dependent_outages;
      continue;
    }
    out[i].down_ns += down;
    ++out[i].outages;
    if (o.open) ++out[i].open_outages;
  }
}

}  // namespace citywatch::collector::uptime
