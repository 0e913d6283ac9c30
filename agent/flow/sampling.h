// SamplingTable: what one sampled packet or flow stands for, per exporter, and the one place
// where a flow's packets and bytes are scaled by it.
//
// Exporters state sampling in many dialects; each is read from its specification into
// SamplingElements and turned into a rate by stated_rate():
//   - IPFIX PSAMP (RFC 5475 section 6, RFC 5477, RFC 7014): selectorAlgorithm 1 systematic
//     count-based (samplingPacketInterval n sampled, samplingPacketSpace skipped: 1 in
//     (n + space) / n), 2 systematic time-based (samplingTimeInterval/Space: no packet rate;
//     reported as time-based and never scaled), 3 random n-out-of-N (samplingPopulation /
//     samplingSize), 4 uniform probabilistic (1 / samplingProbability); 5-8 are filters,
//     not sampling (rate 1);
//   - the deprecated RFC 5102/7270 elements, which NetFlow v9 shares: samplingInterval (34,
//     v9 SAMPLING_INTERVAL), samplingAlgorithm (35), samplerRandomInterval (50, v9
//     FLOW_SAMPLER_RANDOM_INTERVAL), samplerId (48, v9 FLOW_SAMPLER_ID);
//   - the NetFlow v5 header's interval and each sFlow sample's rate.
//
// Precedence (decide()), first that applies: a configured override for the exporter and
// sampler, then for the exporter (for exporters that lie); the data record's own elements;
// its sampler (selectorId/samplerId) as options data announced it; the observation domain's
// rate from options data without a sampler; the exporter's, from such options data of any
// of its domains; a configured default for the exporter; else unsampled. A rate above the ceiling
// (flow.max_sampling_rate) is not applied: it is counted and logged once per exporter, and
// the record goes unscaled. A learned rate that changes is counted and logged once per
// sampler. apply() is the only function that multiplies counters, so a record is never
// scaled twice; the rate travels in the record.
//
// Samplers are keyed by exporter address + observation domain (v9 source ID) + sampler ID.
// The table is bounded, and no exporter can lock the others out of it: each address may
// hold max_per_exporter rates, and when the table is full a new rate takes the place of the
// oldest one no data record has used yet (an announcement nobody sends flows for: a flood of
// options records from spoofed addresses). A rate still refused, because its exporter's
// share is full or every rate in the table is in use, is counted for its exporter
// (sampling_not_learned); evictions are counted for the table.
//
// Ownership: one per FlowDecoder. Thread-safety: none (the agent's io thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <iosfwd>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/record.h"

namespace citywatch::agent::flow {

struct ExporterStats;

struct ExporterDomainKey {
  IpAddr exporter;
  std::uint32_t domain = 0;
  std::uint64_t id = 0;   // sampler ID, template ID, ...; 0 where unused
  std::uint8_t kind = 0;  // keeps v9 and IPFIX (or other uses) apart
  friend bool operator==(const ExporterDomainKey&, const ExporterDomainKey&) = default;
};
struct ExporterDomainKeyHash {
  std::size_t operator()(const ExporterDomainKey& k) const noexcept;
};

// The sampling elements one v9/IPFIX data or options record carries.
struct SamplingElements {
  std::uint32_t interval = 0;         // 34 samplingInterval
  std::uint8_t algorithm = 0;         // 35 samplingAlgorithm: 1 deterministic, 2 random
  std::uint32_t random_interval = 0;  // 50 samplerRandomInterval
  std::uint64_t sampler_id = 0;       // 48 samplerId or 302 selectorId
  bool has_sampler = false;
  bool selector = false;                 // the ID came as selectorId (302)
  std::uint16_t selector_algorithm = 0;  // 304
  std::uint32_t packet_interval = 0;     // 305
  std::uint32_t packet_space = 0;        // 306
  std::uint32_t time_interval = 0;       // 307 (microseconds)
  std::uint32_t time_space = 0;          // 308
  std::uint32_t size = 0;                // 309 samplingSize
  std::uint32_t population = 0;          // 310 samplingPopulation
  double probability = 0;                // 311 samplingProbability

  // Takes an IANA element (enterprise 0) if it states sampling; false for any other.
  bool take(std::uint16_t id, const std::byte* value, std::size_t len);
};

struct StatedRate {
  std::uint32_t rate = 0;   // 0: the elements state no packet rate
  bool time_based = false;  // systematic time-based: a share of time, not of packets
};
StatedRate stated_rate(const SamplingElements& e);

enum class SamplingSource : std::uint8_t {
  kNone,            // nothing stated anywhere: unsampled
  kRecord,          // the data record's own elements
  kSampler,         // options data for the record's selectorId/samplerId
  kDomain,          // options data for the observation domain
  kExporter,        // options data from another domain of the exporter
  kConfigOverride,  // flow_listeners[].exporters[].sampling_rate
  kConfigSampler,   // flow_listeners[].exporters[].samplers[].sampling_rate
  kConfigDefault,   // flow_listeners[].exporters[].default_sampling_rate
  kV5Header,
  kSflowSample,
  kTimeBased,     // stated, but as a share of time: not scaled
  kAboveCeiling,  // stated, but above flow.max_sampling_rate: not applied
};

struct SamplingDecision {
  std::uint32_t rate = 1;
  SamplingSource source = SamplingSource::kNone;
  std::uint64_t sampler_id = 0;
  std::uint32_t domain = 0;
  bool selector = false;
  std::uint16_t selector_algorithm = 0;
  std::uint32_t stated = 0;  // kAboveCeiling: the rate that was refused
};
// "options:selectorId=1", "record:selectorAlgorithm=3", "config:override", ... (decode output)
std::string to_string(const SamplingDecision& d);

class SamplingTable {
 public:
  explicit SamplingTable(std::size_t max_entries = 4096, std::size_t max_per_exporter = 256)
      : max_entries_(max_entries), max_per_exporter_(max_per_exporter) {}

  // Configuration.
  void set_override(const IpAddr& exporter, std::uint32_t rate);
  void set_sampler_override(const IpAddr& exporter, std::uint64_t sampler_id, std::uint32_t rate);
  void set_config_default(const IpAddr& exporter, std::uint32_t rate);
  void set_ceiling(std::uint32_t max_rate) { ceiling_ = max_rate; }

  // Options data: remembers the rate the elements state for their sampler (or, without one,
  // for the domain) and for the exporter. A changed rate is counted in `stats`.
  void learn(const IpAddr& exporter, std::uint32_t domain, const SamplingElements& e,
             ExporterStats& stats);

  // The rate for a v9/IPFIX data record, by the precedence above.
  SamplingDecision decide(const IpAddr& exporter, std::uint32_t domain,
                          const SamplingElements& record, ExporterStats& stats);
  // v5 header and sFlow samples: the stated rate, unless configuration says otherwise.
  SamplingDecision decide_stated(const IpAddr& exporter, std::uint32_t stated, SamplingSource src,
                                 ExporterStats& stats);

  // Sets f.sampling_rate and scales packets and bytes by it. The only place that scales.
  static void apply(FlowRecord& f, const SamplingDecision& d) {
    const std::uint32_t rate = d.rate == 0 ? 1 : d.rate;
    f.sampling_rate = rate;
    f.packets *= rate;
    f.bytes *= rate;
  }

  // Learned rates for metrics: fn(exporter, domain, sampler ("default" or the ID), rate,
  // time_based).
  void for_each_learned(const std::function<void(const IpAddr&, std::uint32_t, const std::string&,
                                                 std::uint32_t, bool)>& fn) const;

  std::size_t size() const { return samplers_.size(); }
  std::uint64_t rejected() const { return rejected_; }
  std::uint64_t evicted() const { return evicted_; }  // unused rates that made way
  bool dirty() const { return dirty_; }
  void clear_dirty() { dirty_ = false; }

  // Persistence (one line per learned rate; rate 0 = time-based), see FlowDecoder::save().
  void save(std::ostream& out) const;
  // Reads one "S ..." or "D ..." line's fields; false if malformed.
  bool load_line(char kind, std::istream& fields);

 private:
  struct Learned {
    std::uint32_t rate = 0;  // 0: time-based
    bool change_logged = false;
    mutable bool used = false;  // a data record's rate came from it (decide())
  };
  void store(const ExporterDomainKey& k, std::uint32_t rate, ExporterStats* stats);
  bool evict_unused();
  const Learned* find(const ExporterDomainKey& k) const;
  SamplingDecision checked(const IpAddr& exporter, SamplingDecision d, ExporterStats& stats);

  std::size_t max_entries_;
  std::size_t max_per_exporter_;
  std::uint32_t ceiling_ = 65536;
  std::uint64_t rejected_ = 0;
  std::uint64_t evicted_ = 0;
  bool dirty_ = false;
  std::vector<std::pair<IpAddr, std::uint32_t>> overrides_;
  std::vector<std::pair<IpAddr, std::uint32_t>> defaults_;
  std::unordered_map<ExporterDomainKey, std::uint32_t, ExporterDomainKeyHash> sampler_overrides_;
  std::unordered_map<ExporterDomainKey, Learned, ExporterDomainKeyHash> samplers_;
  // Rates per exporter address (key {exporter, 0, 0, 0}), for the shares.
  std::unordered_map<ExporterDomainKey, std::uint32_t, ExporterDomainKeyHash> per_exporter_;
  // Keys in the order they were stored: eviction candidates, oldest first (a key that is
  // gone or used by then is skipped). At most one per stored key.
  std::deque<ExporterDomainKey> stored_order_;
  std::unordered_set<ExporterDomainKey, ExporterDomainKeyHash> ceiling_logged_;
};

}  // namespace citywatch::agent::flow
