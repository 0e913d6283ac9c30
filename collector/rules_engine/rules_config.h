// RulesConfig: the collector config's `rules:` section (docs/configuration.md), read by
// collector/app with the rest of the config.
//
// Thread-safety: plain value, built once at start-up.
#pragma once

#include <string>
#include <vector>

#include "common/config_reader.h"

namespace citywatch::collector {

struct RulesConfig {
  // Rule files, or directories whose *.yaml files load in name order; relative to the
  // config file's directory. Empty: the rules engine is off.
  std::vector<std::string> files;
};

void read_rules_config(ConfigMap& map, const std::string& base_dir, RulesConfig& out);

// Expands directories into their *.yaml files (sorted); files are kept as given.
std::vector<std::string> expand_rule_paths(const std::vector<std::string>& paths);

}  // namespace citywatch::collector
