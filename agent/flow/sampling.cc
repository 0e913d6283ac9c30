#include "agent/flow/sampling.h"

#include <cmath>
#include <cstring>
#include <istream>
#include <ostream>

#include "agent/flow/flow_types.h"
#include "common/log.h"

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

namespace {
constexpr std::uint8_t kKindExporter = 3;  // the exporter's rate, from any of its domains
constexpr std::uint8_t kKindConfigSampler = 4;

// IANA IPFIX element numbers (RFC 7012 registry; v9 shares 34, 35, 48, 50).
enum : std::uint16_t {
  kSamplingInterval = 34,
  kSamplingAlgorithm = 35,
  kSamplerId = 48,
  kSamplerRandomInterval = 50,
  kSelectorId = 302,
  kSelectorAlgorithm = 304,
  kSamplingPacketInterval = 305,
  kSamplingPacketSpace = 306,
  kSamplingTimeInterval = 307,
  kSamplingTimeSpace = 308,
  kSamplingSize = 309,
  kSamplingPopulation = 310,
  kSamplingProbability = 311,
};

std::uint32_t u32(const std::byte* v, std::size_t len) {
  const std::uint64_t x = rd_be(v, len);
  return x > 0xffffffffu ? 0xffffffffu : static_cast<std::uint32_t>(x);
}

// A ratio as a whole rate, rounded; 0 when it is not one (x/0, or beyond 32 bits).
std::uint32_t ratio(double num, double den) {
  if (!(den > 0) || !(num > 0)) return 0;
  const double r = std::round(num / den);
  return r >= 1 && r <= 4294967295.0 ? static_cast<std::uint32_t>(r) : 0;
}

}  // namespace

bool SamplingElements::take(std::uint16_t id, const std::byte* v, std::size_t len) {
  switch (id) {
    case kSamplingInterval:
      interval = u32(v, len);
      return true;
    case kSamplingAlgorithm:
      algorithm = static_cast<std::uint8_t>(rd_be(v, len));
      return true;
    case kSamplerRandomInterval:
      random_interval = u32(v, len);
      return true;
    case kSamplerId:
    case kSelectorId:
      sampler_id = rd_be(v, len);
      has_sampler = true;
      selector = id == kSelectorId;
      return true;
    case kSelectorAlgorithm:
      selector_algorithm = static_cast<std::uint16_t>(rd_be(v, len));
      return true;
    case kSamplingPacketInterval:
      packet_interval = u32(v, len);
      return true;
    case kSamplingPacketSpace:
      packet_space = u32(v, len);
      return true;
    case kSamplingTimeInterval:
      time_interval = u32(v, len);
      return true;
    case kSamplingTimeSpace:
      time_space = u32(v, len);
      return true;
    case kSamplingSize:
      size = u32(v, len);
      return true;
    case kSamplingPopulation:
      population = u32(v, len);
      return true;
    case kSamplingProbability:
      // float64, or float32 in reduced-size encoding (RFC 7011 section 6.2).
      if (len == 8) {
        const std::uint64_t bits = rd64(v);
        std::memcpy(&probability, &bits, sizeof probability);
      } else if (len == 4) {
        const std::uint32_t bits = rd32(v);
        float f;
        std::memcpy(&f, &bits, sizeof f);
        probability = f;
      }
      return true;
    default:
      return false;
  }
}

StatedRate stated_rate(const SamplingElements& e) {
  const auto count_based = [&e] {
    return ratio(static_cast<double>(e.packet_interval) + e.packet_space, e.packet_interval);
  };
  const auto n_of_N = [&e] { return ratio(e.population, e.size); };
  const auto probabilistic = [&e] {
    return e.probability > 0 && e.probability <= 1 ? ratio(1, e.probability) : 0;
  };
  // RFC 5475 section 6 / IANA PSAMP selectorAlgorithm: the algorithm names the fields.
  switch (e.selector_algorithm) {
    case 1:
      if (e.packet_interval) return {count_based(), false};
      break;
    case 2:
      return {0, true};
    case 3:
      if (e.size && e.population) return {n_of_N(), false};
      break;
    case 4:
      if (e.probability > 0) return {probabilistic(), false};
      break;
    case 5:  // property match filtering
    case 6:  // hash-based filtering (two kinds)
    case 7:
    case 8:  // flow-state dependent
      return {1, false};
    default:
      break;
  }
  // No algorithm (or its fields missing): whatever the record states, most direct first.
  if (e.interval) return {e.interval, false};
  if (e.random_interval) return {e.random_interval, false};
  if (e.packet_interval) return {count_based(), false};
  if (e.size && e.population) return {n_of_N(), false};
  if (e.probability > 0) return {probabilistic(), false};
  if (e.time_interval) return {0, true};
  return {};
}

std::string to_string(const SamplingDecision& d) {
  const std::string id =
      std::string(d.selector ? "selectorId=" : "samplerId=") + std::to_string(d.sampler_id);
  switch (d.source) {
    case SamplingSource::kNone:
      return "none";
    case SamplingSource::kRecord:
      return d.selector_algorithm
                 ? "record:selectorAlgorithm=" + std::to_string(d.selector_algorithm)
                 : "record";
    case SamplingSource::kSampler:
      return "options:" + id;
    case SamplingSource::kDomain:
      return "options:domain=" + std::to_string(d.domain);
    case SamplingSource::kExporter:
      return "options:exporter";
    case SamplingSource::kConfigOverride:
      return "config:override";
    case SamplingSource::kConfigSampler:
      return "config:sampler=" + std::to_string(d.sampler_id);
    case SamplingSource::kConfigDefault:
      return "config:default";
    case SamplingSource::kV5Header:
      return "v5:header";
    case SamplingSource::kSflowSample:
      return "sflow:sample";
    case SamplingSource::kTimeBased:
      return "time-based";
    case SamplingSource::kAboveCeiling:
      return "ignored:above-ceiling=" + std::to_string(d.stated);
  }
  return "none";
}

void SamplingTable::set_override(const IpAddr& exporter, std::uint32_t rate) {
  for (auto& [addr, r] : overrides_)
    if (addr == exporter) {
      r = rate;
      return;
    }
  overrides_.emplace_back(exporter, rate);
}

void SamplingTable::set_sampler_override(const IpAddr& exporter, std::uint64_t sampler_id,
                                         std::uint32_t rate) {
  sampler_overrides_[{exporter, 0, sampler_id, kKindConfigSampler}] = rate;
}

void SamplingTable::set_config_default(const IpAddr& exporter, std::uint32_t rate) {
  for (auto& [addr, r] : defaults_)
    if (addr == exporter) {
      r = rate;
      return;
    }
  defaults_.emplace_back(exporter, rate);
}

const SamplingTable::Learned* SamplingTable::find(const ExporterDomainKey& k) const {
  if (samplers_.empty()) return nullptr;
  auto it = samplers_.find(k);
  return it == samplers_.end() ? nullptr : &it->second;
}

void SamplingTable::store(const ExporterDomainKey& k, std::uint32_t rate, ExporterStats* stats) {
  auto it = samplers_.find(k);
  if (it != samplers_.end()) {
    if (it->second.rate == rate) return;
    if (stats) {
      ++stats->sampling_rate_changes;
      if (!it->second.change_logged && k.kind != kKindExporter) {
        it->second.change_logged = true;
        log::warning("flow: exporter " + to_string(k.exporter) + " domain " +
                     std::to_string(k.domain) +
                     (k.kind == kKindSampler ? " sampler " + std::to_string(k.id) : "") +
                     " changed its sampling rate from " + std::to_string(it->second.rate) + " to " +
                     std::to_string(rate) +
                     " (logged once; counted in "
                     "citywatch_agent_flow_sampling_events_total)");
      }
    }
    it->second.rate = rate;
    dirty_ = true;
    return;
  }
  const ExporterDomainKey owner{k.exporter, 0, 0, 0};
  const auto share = per_exporter_.find(owner);
  const std::size_t mine = share == per_exporter_.end() ? 0 : share->second;
  if (mine >= max_per_exporter_ || (samplers_.size() >= max_entries_ && !evict_unused())) {
    ++rejected_;
    if (stats) ++stats->sampling_not_learned;
    return;
  }
  samplers_.emplace(k, Learned{rate, false, false});
  ++per_exporter_[owner];
  stored_order_.push_back(k);
  dirty_ = true;
}

bool SamplingTable::evict_unused() {
  while (!stored_order_.empty()) {
    const ExporterDomainKey victim = stored_order_.front();
    stored_order_.pop_front();
    const auto it = samplers_.find(victim);
    if (it == samplers_.end() || it->second.used) continue;
    samplers_.erase(it);
    const auto s = per_exporter_.find({victim.exporter, 0, 0, 0});
    if (s != per_exporter_.end() && --s->second == 0) per_exporter_.erase(s);
    ++evicted_;
    dirty_ = true;
    return true;
  }
  return false;
}

void SamplingTable::learn(const IpAddr& exporter, std::uint32_t domain, const SamplingElements& e,
                          ExporterStats& stats) {
  const StatedRate st = stated_rate(e);
  if (st.rate == 0 && !st.time_based) return;
  const std::uint32_t rate = st.time_based ? 0 : st.rate;
  // A sampler's rate is that sampler's only; a statement without one is the domain's, and
  // the exporter's for its other domains (some exporters announce in one, send in another).
  if (e.has_sampler) {
    store({exporter, domain, e.sampler_id, kKindSampler}, rate, &stats);
  } else {
    store({exporter, domain, 0, kKindDefault}, rate, &stats);
    store({exporter, 0, 0, kKindExporter}, rate, nullptr);
  }
}

SamplingDecision SamplingTable::checked(const IpAddr& exporter, SamplingDecision d,
                                        ExporterStats& stats) {
  if (d.rate <= ceiling_ || d.source == SamplingSource::kConfigOverride ||
      d.source == SamplingSource::kConfigSampler || d.source == SamplingSource::kConfigDefault)
    return d;
  ++stats.sampling_above_ceiling;
  const ExporterDomainKey k{exporter, 0, 0, 0};
  if (ceiling_logged_.size() < max_entries_ && ceiling_logged_.insert(k).second)
    log::warning(
        "flow: exporter " + to_string(exporter) +
        " states a sampling rate of 1:" + std::to_string(d.rate) + " (" + to_string(d) +
        "), above flow.max_sampling_rate 1:" + std::to_string(ceiling_) +
        "; not applied (logged once; counted in citywatch_agent_flow_sampling_events_total)");
  d.stated = d.rate;
  d.rate = 1;
  d.source = SamplingSource::kAboveCeiling;
  return d;
}

SamplingDecision SamplingTable::decide(const IpAddr& exporter, std::uint32_t domain,
                                       const SamplingElements& rec, ExporterStats& stats) {
  SamplingDecision d;
  d.domain = domain;
  d.sampler_id = rec.sampler_id;
  d.selector = rec.selector;
  d.selector_algorithm = rec.selector_algorithm;
  if (rec.has_sampler && !sampler_overrides_.empty()) {
    auto it = sampler_overrides_.find({exporter, 0, rec.sampler_id, kKindConfigSampler});
    if (it != sampler_overrides_.end()) {
      d.rate = it->second;
      d.source = SamplingSource::kConfigSampler;
      return d;
    }
  }
  for (const auto& [addr, r] : overrides_)
    if (addr == exporter) {
      d.rate = r;
      d.source = SamplingSource::kConfigOverride;
      return d;
    }
  const StatedRate st = stated_rate(rec);
  if (st.rate) {
    d.rate = st.rate;
    d.source = SamplingSource::kRecord;
    return checked(exporter, d, stats);
  }
  if (st.time_based) {
    d.source = SamplingSource::kTimeBased;
    return d;
  }
  const auto learned = [&](const Learned* l, SamplingSource src) {
    if (!l) return false;
    l->used = true;  // kept when the table is full (store())
    d.source = l->rate ? src : SamplingSource::kTimeBased;
    d.rate = l->rate ? l->rate : 1;
    return true;
  };
  if ((rec.has_sampler &&
       learned(find({exporter, domain, rec.sampler_id, kKindSampler}), SamplingSource::kSampler)) ||
      learned(find({exporter, domain, 0, kKindDefault}), SamplingSource::kDomain) ||
      learned(find({exporter, 0, 0, kKindExporter}), SamplingSource::kExporter))
    return d.source == SamplingSource::kTimeBased ? d : checked(exporter, d, stats);
  for (const auto& [addr, r] : defaults_)
    if (addr == exporter) {
      d.rate = r;
      d.source = SamplingSource::kConfigDefault;
      return d;
    }
  return d;
}

SamplingDecision SamplingTable::decide_stated(const IpAddr& exporter, std::uint32_t stated,
                                              SamplingSource src, ExporterStats& stats) {
  SamplingDecision d;
  for (const auto& [addr, r] : overrides_)
    if (addr == exporter) {
      d.rate = r;
      d.source = SamplingSource::kConfigOverride;
      return d;
    }
  if (stated > 1) {
    d.rate = stated;
    d.source = src;
    return checked(exporter, d, stats);
  }
  for (const auto& [addr, r] : defaults_)
    if (addr == exporter) {
      d.rate = r;
      d.source = SamplingSource::kConfigDefault;
      return d;
    }
  if (stated == 1) d.source = src;
  return d;
}

void SamplingTable::for_each_learned(
    const std::function<void(const IpAddr&, std::uint32_t, const std::string&, std::uint32_t,
                             bool)>& fn) const {
  for (const auto& [k, l] : samplers_) {
    if (k.kind == kKindExporter) continue;
    fn(k.exporter, k.domain, k.kind == kKindSampler ? std::to_string(k.id) : "default",
       l.rate ? l.rate : 1, l.rate == 0);
  }
}

void SamplingTable::save(std::ostream& out) const {
  for (const auto& [k, l] : samplers_) {
    if (k.kind == kKindExporter) continue;  // rebuilt from the others at load
    out << (k.kind == kKindSampler ? "S " : "D ") << to_string(k.exporter) << ' ' << k.domain;
    if (k.kind == kKindSampler) out << ' ' << k.id;
    out << ' ' << l.rate << '\n';
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
  if (kind == 'S') {
    store({a, domain, id, kKindSampler}, rate, nullptr);
  } else {
    store({a, domain, 0, kKindDefault}, rate, nullptr);
    store({a, 0, 0, kKindExporter}, rate, nullptr);
  }
  return true;
}

}  // namespace citywatch::agent::flow
