#include "agent/flow/sampling.h"

#include <istream>
#include <ostream>

#include "agent/flow/flow_types.h"

namespace citywatch::agent::flow {

namespace {
constexpr std::uint8_t kKindSampler = 1;
constexpr std::uint8_t kKindDefault = 2;
}  // namespace

std::size_t ExporterDomainKeyHash::operator()(const ExporterDomainKey& k) const noexcept {
  // FNV-1a over the fields that differ between keys.
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  const int n = k.exporter.family == IpAddr::Family::kV6 ? 16 : 4;
  for (int i = 0; i < n; ++i) mix(k.exporter.bytes[static_cast<std::size_t>(i)], 1);
  mix(k.domain, 4);
  mix(k.id, 8);
  mix(k.kind, 1);
  return static_cast<std::size_t>(h);
}

void SamplingTable::set_override(const IpAddr& exporter, std::uint32_t rate) {
  for (auto& [addr, r] : overrides_)
    if (addr == exporter) {
      r = rate;
      return;
    }
  overrides_.emplace_back(exporter, rate);
}

void SamplingTable::set_sampler(const IpAddr& exporter, std::uint32_t domain,
                                std::uint64_t sampler_id, std::uint32_t rate) {
  const ExporterDomainKey k{exporter, domain, sampler_id, kKindSampler};
  auto it = samplers_.find(k);
  if (it != samplers_.end()) {
    it->second = rate;
  } else if (samplers_.size() < max_entries_) {
    samplers_.emplace(k, rate);
  } else {
    ++rejected_;
  }
}

void SamplingTable::set_default(const IpAddr& exporter, std::uint32_t domain, std::uint32_t rate) {
  const ExporterDomainKey k{exporter, domain, 0, kKindDefault};
  auto it = samplers_.find(k);
  if (it != samplers_.end()) {
    it->second = rate;
  } else if (samplers_.size() < max_entries_) {
    samplers_.emplace(k, rate);
  } else {
    ++rejected_;
  }
}

std::uint32_t SamplingTable::sampler(const IpAddr& exporter, std::uint32_t domain,
                                     std::uint64_t sampler_id) const {
  auto it = samplers_.find({exporter, domain, sampler_id, kKindSampler});
  return it == samplers_.end() ? 0 : it->second;
}

std::uint32_t SamplingTable::domain_default(const IpAddr& exporter, std::uint32_t domain) const {
  if (samplers_.empty()) return 0;
  auto it = samplers_.find({exporter, domain, 0, kKindDefault});
  return it == samplers_.end() ? 0 : it->second;
}

std::uint32_t SamplingTable::resolve(const IpAddr& exporter, std::uint32_t reported) const {
  for (const auto& [addr, r] : overrides_)
    if (addr == exporter) return r;
  return reported == 0 ? 1 : reported;
}

void SamplingTable::save(std::ostream& out) const {
  for (const auto& [k, rate] : samplers_) {
    out << (k.kind == kKindSampler ? "S " : "D ") << to_string(k.exporter) << ' ' << k.domain;
    if (k.kind == kKindSampler) out << ' ' << k.id;
    out << ' ' << rate << '\n';
  }
}

bool SamplingTable::load_line(char kind, std::istream& in) {
  std::string addr;
  std::uint32_t domain = 0, rate = 0;
  std::uint64_t id = 0;
  in >> addr >> domain;
  if (kind == 'S') in >> id;
  in >> rate;
  IpAddr a;
  if (!in || !parse_ip(addr, a)) return false;
  if (kind == 'S')
    set_sampler(a, domain, id, rate);
  else
    set_default(a, domain, rate);
  return true;
}

}  // namespace citywatch::agent::flow
