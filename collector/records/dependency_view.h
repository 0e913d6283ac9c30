// DependencyView: what the rules engine asks the uptime tracker before it alerts on a
// device, interface or agent (docs/uptime.md, "Dependencies and root cause").
//
// While every parent an entity is reached through is down, its own alerts are noise: the
// root's alert carries them instead. The tracker implements this view; the rules engine
// only asks, so it needs nothing of the outage store.
//
// Thread-safety: the collector's ingest thread, like the consumers that use it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/record.h"

namespace citywatch::collector {

// An entity alerts are about: a device (addr), one of its interfaces (addr, if_index), or
// the segment an agent watches (agent).
struct EntityRef {
  enum class Kind : std::uint8_t { kSegment, kDevice, kInterface };
  Kind kind = Kind::kDevice;
  std::string_view segment;
  std::string_view agent;
  IpAddr addr;
  std::uint32_t if_index = 0;
};

class DependencyView {
 public:
  enum class Verdict : std::uint8_t {
    kAlert,     // alert as usual
    kSuppress,  // its parents are down: the root's alert speaks for it
    kHold,      // it failed, and a parent has not been checked since: wait for that check
  };
  virtual ~DependencyView() = default;
  virtual Verdict verdict(const EntityRef& e, std::int64_t event_ns) const = 0;
  // Adds the `parents` label (entities with configured parents) to `labels`, and for a root
  // whose outage others depend on, the `dependents` count and `dependent_names` to `details`.
  virtual void describe(const EntityRef& e,
                        std::vector<std::pair<std::string, std::string>>& labels,
                        std::vector<std::pair<std::string, std::string>>& details) const = 0;
};

}  // namespace citywatch::collector
