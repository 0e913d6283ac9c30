// Availability arithmetic shared by the collector's availability gauges and
// `citywatch report`, so both give the same figure for the same period.
//
// For an entity and a period [from, to) evaluated at `now`:
//   monitored = time from max(from, first seen) to min(to, now), minus maintenance;
//   down      = the parts of its outages (flaps excluded) inside that span, minus
//               maintenance; an open outage runs until `now`;
//   outages   = outages that contribute down time (an outage wholly inside maintenance does
//               not count); an outage crossing the period's edge counts in both periods;
//   availability = 1 - down / monitored;  MTTR = down / outages;
//   MTBF = (monitored - down) / outages.
// An outage attached to another entity's (a dependent, docs/uptime.md "Dependencies and root
// cause") is counted apart, in dependent_down / dependent_outages: the incident view (down,
// outages, availability, MTTR) counts each incident once, at its root; per_entity() adds the
// dependents back for the per-device view.
// docs/uptime.md states the same rules for readers of the report.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "collector/uptime/maintenance.h"
#include "collector/uptime/outage_store.h"

namespace citywatch::collector::uptime {

struct Figures {
  std::int64_t monitored_ns = 0;
  std::int64_t down_ns = 0;
  std::int64_t maintenance_ns = 0;
  std::int64_t outages = 0;
  std::int64_t open_outages = 0;
  std::int64_t flaps = 0;
  std::int64_t dependent_down_ns = 0;
  std::int64_t dependent_outages = 0;

  void add(const Figures& o);
  // Every outage of the entity, dependents included.
  Figures per_entity() const;
  double availability() const;  // 1 when nothing was monitored
  double mttr_s() const;        // 0 without outages
  double mtbf_s() const;        // the monitored up time without outages
};

EntityScope scope_of(const EntityRow& e);

// One Figures per entity (same order). `outages` may hold any outages; those of other
// entities or outside the period are ignored.
void compute_figures(const std::vector<EntityRow>& entities, const std::vector<OutageRow>& outages,
                     const MaintenanceCalendar& calendar, std::int64_t from_ns, std::int64_t to_ns,
                     std::int64_t now_ns, std::vector<Figures>& out);

}  // namespace citywatch::collector::uptime
