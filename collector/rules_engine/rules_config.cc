#include "collector/rules_engine/rules_config.h"

#include <algorithm>
#include <filesystem>

namespace citywatch::collector {

void read_rules_config(ConfigMap& map, const std::string& base_dir, RulesConfig& out) {
  std::vector<std::string> files;
  map.get("files", files);
  for (const std::string& f : files) {
    std::filesystem::path p(f);
    if (p.is_relative() && !base_dir.empty()) p = std::filesystem::path(base_dir) / p;
    std::error_code ec;
    if (!std::filesystem::exists(p, ec)) map.error("files", "'" + p.string() + "' does not exist");
    out.files.push_back(p.string());
  }
  map.done();
}

std::vector<std::string> expand_rule_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const std::string& p : paths) {
    std::error_code ec;
    if (!std::filesystem::is_directory(p, ec)) {
      out.push_back(p);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& e : std::filesystem::directory_iterator(p, ec))
      if (e.is_regular_file() &&
          (e.path().extension() == ".yaml" || e.path().extension() == ".yml"))
        found.push_back(e.path().string());
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

}  // namespace citywatch::collector
