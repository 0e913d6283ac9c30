#include "collector/uptime/dependencies.h"

#include <cstdint>
#include <map>

namespace citywatch::collector::uptime {

namespace {

const char* key_of(DependencySpec::Kind k) {
  switch (k) {
    case DependencySpec::Kind::kDevice:
      return "device";
    case DependencySpec::Kind::kSegment:
      return "segment";
    case DependencySpec::Kind::kSite:
      return "site";
  }
  return "device";
}

}  // namespace

void read_dependencies(std::vector<ConfigMap>& entries, std::vector<DependencySpec>& out) {
  out.clear();
  std::map<std::pair<DependencySpec::Kind, std::string>, std::size_t> declared;
  std::vector<bool> usable(entries.size(), false);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    ConfigMap& m = entries[i];
    DependencySpec spec;
    int named = 0;
    for (const auto k : {DependencySpec::Kind::kDevice, DependencySpec::Kind::kSegment,
                         DependencySpec::Kind::kSite})
      if (m.has(key_of(k))) {
        ++named;
        spec.kind = k;
        m.get(key_of(k), spec.name, true);
      }
    std::vector<std::string> parents;
    m.get("parents", parents);
    m.done();
    if (named != 1) {
      m.error(nullptr, "an entry names exactly one of device, segment or site");
      out.push_back(std::move(spec));
      continue;
    }
    if (spec.name.empty()) m.error(key_of(spec.kind), "a name is needed");
    constexpr const char* kNoInterfaces =
        "interfaces cannot be parents (docs/uptime.md, \"Dependencies and root cause\"): name "
        "the device behind the link, which stops answering when the link fails";
    if (spec.name.find('[') != std::string::npos) m.error(key_of(spec.kind), kNoInterfaces);
    for (const std::string& p : parents) {
      if (p.empty())
        m.error("parents", "a parent is a device name");
      else if (p.find('[') != std::string::npos)
        m.error("parents", "'" + p + "': " + kNoInterfaces);
      else
        spec.parents.push_back(p);
    }
    if (!declared.emplace(std::pair{spec.kind, spec.name}, i).second)
      m.error(key_of(spec.kind),
              std::string(key_of(spec.kind)) + " '" + spec.name + "' has two entries");
    usable[i] = !spec.name.empty();
    out.push_back(std::move(spec));
  }
  // Unknown parents, then cycles among devices (only devices can be parents, so a cycle runs
  // through device entries alone).
  for (std::size_t i = 0; i < out.size(); ++i)
    for (const std::string& p : out[i].parents) {
      if (!declared.count({DependencySpec::Kind::kDevice, p})) {
        entries[i].error("parents", "unknown parent '" + p +
                                        "': declare it with its own entry (`- device: " + p +
                                        "`, with parents if it has any)");
        usable[i] = false;
      } else if (out[i].kind == DependencySpec::Kind::kDevice && p == out[i].name) {
        entries[i].error("parents", "device '" + p + "' names itself as its parent");
        usable[i] = false;
      }
    }
  enum class Mark : std::uint8_t { kNew, kOnPath, kDone };
  std::vector<Mark> mark(out.size(), Mark::kNew);
  std::vector<std::size_t> path;
  // Iterative DFS over device entries; on reaching a node on the path, the cycle is the
  // path from that node, reported at the entry whose parents close it.
  struct Frame {
    std::size_t node;
    std::size_t next = 0;
  };
  for (std::size_t start = 0; start < out.size(); ++start) {
    if (out[start].kind != DependencySpec::Kind::kDevice || mark[start] != Mark::kNew ||
        !usable[start])
      continue;
    std::vector<Frame> stack{{start}};
    mark[start] = Mark::kOnPath;
    while (!stack.empty()) {
      Frame& f = stack.back();
      const DependencySpec& spec = out[f.node];
      if (f.next == spec.parents.size()) {
        mark[f.node] = Mark::kDone;
        stack.pop_back();
        continue;
      }
      const std::string& p = spec.parents[f.next++];
      const auto it = declared.find({DependencySpec::Kind::kDevice, p});
      if (it == declared.end() || !usable[it->second]) continue;
      const std::size_t to = it->second;
      if (mark[to] == Mark::kDone) continue;
      if (mark[to] == Mark::kOnPath) {
        std::string cycle;
        bool in = false;
        for (const Frame& g : stack) {
          in = in || g.node == to;
          if (in) cycle += out[g.node].name + " -> ";
        }
        cycle += out[to].name;
        entries[f.node].error("parents", "dependency cycle: " + cycle);
        continue;
      }
      mark[to] = Mark::kOnPath;
      stack.push_back({to});
    }
  }
}

const DependencySpec* find_dependency(const std::vector<DependencySpec>& deps,
                                      DependencySpec::Kind kind, const std::string& name,
                                      const std::string& address, const std::string& site) {
  const DependencySpec* by_address = nullptr;
  const DependencySpec* by_site = nullptr;
  for (const DependencySpec& d : deps) {
    if (d.kind == kind && !name.empty() && d.name == name) return &d;
    if (d.kind == kind && !address.empty() && d.name == address) by_address = &d;
    if (d.kind == DependencySpec::Kind::kSite && !site.empty() && d.name == site) by_site = &d;
  }
  if (by_address) return by_address;
  if (!by_site) return nullptr;
  // A device is never its own parent through its site's entry.
  if (kind == DependencySpec::Kind::kDevice)
    for (const std::string& p : by_site->parents)
      if (p == name || p == address) return nullptr;
  return by_site;
}

}  // namespace citywatch::collector::uptime
