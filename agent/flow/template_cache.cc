#include "agent/flow/template_cache.h"

#include <algorithm>
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

TemplateCache::TemplateCache(TemplateLimits limits)
    : limits_(limits),
      // An exporter's share of the field budget: room for 8 exporters at their worst.
      per_exporter_fields_(std::max<std::size_t>(limits.max_total_fields / 8, limits.max_fields)) {}

const Template* TemplateCache::find(const IpAddr& exporter, std::uint32_t domain, Kind kind,
                                    std::uint16_t id) const {
  auto it = map_.find(key(exporter, domain, kind, id));
  if (it == map_.end()) return nullptr;
  it->second.last_used = ++clock_;
  it->second.used = true;
  return &it->second;
}

void TemplateCache::erase(Map::iterator it) {
  auto s = shares_.find(exporter_key(it->first.exporter));
  if (s != shares_.end()) {
    s->second.templates -= 1;
    s->second.fields -= it->second.fields.size();
    if (s->second.templates == 0) shares_.erase(s);
  }
  total_fields_ -= it->second.fields.size();
  map_.erase(it);
  dirty_ = true;
}

bool TemplateCache::evict_lru(const IpAddr* exporter, const ExporterDomainKey& keep) {
  // A linear scan: evictions happen only when a bound is reached, on control traffic, and
  // the cache holds at most max_templates entries.
  auto victim = map_.end();
  for (auto it = map_.begin(); it != map_.end(); ++it) {
    if (it->first == keep || (exporter && !(it->first.exporter == *exporter))) continue;
    if (victim == map_.end() || it->second.used < victim->second.used ||
        (it->second.used == victim->second.used && it->second.last_used < victim->second.last_used))
      victim = it;
  }
  if (victim == map_.end()) return false;
  erase(victim);
  ++(exporter ? stats_.evicted_exporter_share : stats_.evicted_cache_full);
  return true;
}

TemplateCache::Put TemplateCache::put(const IpAddr& exporter, std::uint32_t domain, Kind kind,
                                      std::uint16_t id, Template&& t) {
  if (t.fields.size() > limits_.max_fields) {
    ++stats_.refused_too_large;
    return Put::kTooLarge;
  }
  auto k = key(exporter, domain, kind, id);
  t.last_used = ++clock_;
  auto it = map_.find(k);
  Put result = Put::kNew;
  if (it != map_.end()) {
    if (it->second == t) {
      it->second.last_used = t.last_used;
      return Put::kUnchanged;
    }
    t.used = it->second.used;  // a redefinition of a template in use is still in use
    erase(it);                 // re-inserted below, charged at its new size
    result = Put::kChanged;
  }
  // Make room: first within the exporter's share, then in the whole cache.
  const std::size_t n = t.fields.size();
  const ExporterDomainKey ek = exporter_key(exporter);
  for (;;) {
    const auto s = shares_.find(ek);
    const std::size_t mine = s == shares_.end() ? 0 : s->second.templates;
    const std::size_t mine_fields = s == shares_.end() ? 0 : s->second.fields;
    if (mine < limits_.max_per_exporter && mine_fields + n <= per_exporter_fields_) break;
    if (!evict_lru(&exporter, k)) break;
  }
  while ((map_.size() >= limits_.max_templates || total_fields_ + n > limits_.max_total_fields) &&
         evict_lru(nullptr, k)) {
  }
  Share& share = shares_[ek];
  share.templates += 1;
  share.fields += n;
  total_fields_ += n;
  map_.emplace(k, std::move(t));
  dirty_ = true;
  return result;
}

void TemplateCache::withdraw(const IpAddr& exporter, std::uint32_t domain, Kind kind,
                             std::uint16_t id) {
  auto it = map_.find(key(exporter, domain, kind, id));
  if (it != map_.end()) erase(it);
}

void TemplateCache::withdraw_all(const IpAddr& exporter, std::uint32_t domain, Kind kind,
                                 bool options) {
  for (auto it = map_.begin(); it != map_.end();) {
    if (it->first.exporter == exporter && it->first.domain == domain &&
        it->first.kind == static_cast<std::uint8_t>(kind) && it->second.options == options) {
      erase(it++);
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
  if (!in || !parse_ip(addr, a) || (kind != 9 && kind != 10) || id > 65535 || n == 0 ||
      n > limits_.max_fields || scope_count > n)
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
  return p != Put::kTooLarge;
}

}  // namespace citywatch::agent::flow
