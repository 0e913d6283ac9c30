// Dependencies: which devices an entity is reached through (docs/uptime.md, "Dependencies
// and root cause"), from the collector configuration's `uptime.dependencies` list.
//
// Each entry names one device (by SNMP target name or address), segment or site and the
// devices it is reached through (its uplink router or switch). Every parent must be
// declared as a device entry of its own, so an unknown parent and a cycle are configuration
// errors with file:line, found before the collector starts. A device or segment without an
// entry of its own takes its site's entry, if there is one. Several parents are redundant
// uplinks: a child depends on them only while all of them are down.
//
// Thread-safety: a plain value, built once at start-up.
#pragma once

#include <string>
#include <vector>

#include "common/config_reader.h"

namespace citywatch::collector::uptime {

struct DependencySpec {
  enum class Kind : std::uint8_t { kDevice, kSegment, kSite };
  Kind kind = Kind::kDevice;
  std::string name;
  std::vector<std::string> parents;  // declared device names
};

// Reads the list, checks names, parents and cycles (errors in the entries' readers).
void read_dependencies(std::vector<ConfigMap>& entries, std::vector<DependencySpec>& out);

// The entry that governs an entity: its own (device by name, then by address; segment by
// name), else its site's; null without one.
const DependencySpec* find_dependency(const std::vector<DependencySpec>& deps,
                                      DependencySpec::Kind kind, const std::string& name,
                                      const std::string& address, const std::string& site);

}  // namespace citywatch::collector::uptime
