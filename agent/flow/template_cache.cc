#include "agent/flow/template_cache.h"

#include <istream>
#include <ostream>
#include <string>

#include "agent/flow/flow_types.h"

namespace citywatch::agent::flow {

bool operator==(const Template& a, const Template& b) {
  if (a.options != b.options || a.scope_count != b.scope_count || a.scope_bytes != b.scope_bytes ||
      a.fields.size() != b.fields.size())
    return false;
  for (std::size_t i = 0; i < a.fields.size(); ++i)
    if (a.fields[i].id != b.fields[i].id || a.fields[i].length != b.fields[i].length ||
        a.fields[i].enterprise != b.fields[i].enterprise)
      return false;
  return true;
}

namespace {
ExporterDomainKey key(const IpAddr& e, std::uint32_t d, TemplateCache::Kind k, std::uint16_t id) {
  return {e, d, id, static_cast<std::uint8_t>(k)};
}
}  // namespace

const Template* TemplateCache::find(const IpAddr& exporter, std::uint32_t domain, Kind kind,
                                    std::uint16_t id) const {
  auto it = map_.find(key(exporter, domain, kind, id));
  return it == map_.end() ? nullptr : &it->second;
}

TemplateCache::Put TemplateCache::put(const IpAddr& exporter, std::uint32_t domain, Kind kind,
                                      std::uint16_t id, Template&& t) {
  auto k = key(exporter, domain, kind, id);
  auto it = map_.find(k);
  if (it != map_.end()) {
    if (it->second == t) return Put::kUnchanged;
    it->second = std::move(t);
    dirty_ = true;
    return Put::kChanged;
  }
  if (map_.size() >= max_) return Put::kFull;
  map_.emplace(k, std::move(t));
  dirty_ = true;
  return Put::kNew;
}

void TemplateCache::withdraw(const IpAddr& exporter, std::uint32_t domain, Kind kind,
                             std::uint16_t id) {
  if (map_.erase(key(exporter, domain, kind, id))) dirty_ = true;
}

void TemplateCache::withdraw_all(const IpAddr& exporter, std::uint32_t domain, Kind kind,
                                 bool options) {
  for (auto it = map_.begin(); it != map_.end();) {
    if (it->first.exporter == exporter && it->first.domain == domain &&
        it->first.kind == static_cast<std::uint8_t>(kind) && it->second.options == options) {
      it = map_.erase(it);
      dirty_ = true;
    } else {
      ++it;
    }
  }
}

// One line per template:
//   T EXPORTER DOMAIN KIND ID OPTIONS SCOPE_COUNT SCOPE_BYTES N ID:LEN:ENT ...
void TemplateCache::save(std::ostream& out) const {
  for (const auto& [k, t] : map_) {
    out << "T " << to_string(k.exporter) << ' ' << k.domain << ' ' << int{k.kind} << ' ' << k.id
        << ' ' << (t.options ? 1 : 0) << ' ' << t.scope_count << ' ' << t.scope_bytes << ' '
        << t.fields.size();
    for (const TemplateField& f : t.fields)
      out << ' ' << f.id << ':' << f.length << ':' << f.enterprise;
    out << '\n';
  }
}

bool TemplateCache::load_line(std::istream& in) {
  std::string addr;
  std::uint32_t domain = 0;
  int kind = 0, options = 0;
  std::uint32_t id = 0, scope_count = 0, scope_bytes = 0;
  std::size_t n = 0;
  in >> addr >> domain >> kind >> id >> options >> scope_count >> scope_bytes >> n;
  IpAddr a;
  if (!in || !parse_ip(addr, a) || (kind != 9 && kind != 10) || id > 65535 || n == 0 || n > 65535 ||
      scope_count > n)
    return false;
  Template t;
  t.options = options != 0;
  t.scope_count = static_cast<std::uint16_t>(scope_count);
  t.scope_bytes = static_cast<std::uint16_t>(scope_bytes);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t fid = 0, len = 0, ent = 0;
    char c1 = 0, c2 = 0;
    in >> fid >> c1 >> len >> c2 >> ent;
    if (!in || c1 != ':' || c2 != ':' || fid > 65535 || len > 65535) return false;
    TemplateField f{static_cast<std::uint16_t>(fid), static_cast<std::uint16_t>(len), ent};
    if (f.length == kVariableLength) {
      t.variable = true;
      t.min_length += 1;
    } else {
      t.min_length += f.length;
    }
    t.fields.push_back(f);
  }
  if (t.min_length == 0) return false;
  const Put p =
      put(a, domain, static_cast<Kind>(kind), static_cast<std::uint16_t>(id), std::move(t));
  return p != Put::kFull;
}

}  // namespace citywatch::agent::flow
