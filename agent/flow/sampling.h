// SamplingTable: what one sampled packet or flow stands for, per exporter, and the one place
// where a flow's packets and bytes are scaled by it.
//
// Rates come from the export itself (the NetFlow v5 header, a v9/IPFIX data record's own
// sampling field, a sampler ID looked up in what options data announced, an sFlow sample's
// header), or from configuration: a per-exporter override wins over all of them, for
// exporters that announce nothing or announce it wrongly. apply() is the only function that
// multiplies counters, so a record is never scaled twice; the rate travels in the record.
//
// Samplers are keyed by exporter address + observation domain (v9 source ID) + sampler ID
// (v9 FLOW_SAMPLER_ID, IPFIX selectorId), so several samplers per exporter each keep their
// rate. The table is bounded: a sampler beyond max_entries is not stored (counted).
//
// Ownership: one per FlowDecoder. Thread-safety: none (the agent's io thread).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <unordered_map>
#include <vector>

#include "common/record.h"

namespace citywatch::agent::flow {

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

class SamplingTable {
 public:
  explicit SamplingTable(std::size_t max_entries = 4096) : max_entries_(max_entries) {}

  // Configuration: every flow from this exporter is taken as sampled 1-in-rate.
  void set_override(const IpAddr& exporter, std::uint32_t rate);

  // Learned from options data. A sampler ID names one of several samplers; an options record
  // without one sets the exporter's (domain's) default.
  void set_sampler(const IpAddr& exporter, std::uint32_t domain, std::uint64_t sampler_id,
                   std::uint32_t rate);
  void set_default(const IpAddr& exporter, std::uint32_t domain, std::uint32_t rate);
  // 0 when unknown.
  std::uint32_t sampler(const IpAddr& exporter, std::uint32_t domain,
                        std::uint64_t sampler_id) const;
  std::uint32_t domain_default(const IpAddr& exporter, std::uint32_t domain) const;

  // The rate to apply: the override if configured, else `reported` (0 or 1: unsampled).
  std::uint32_t resolve(const IpAddr& exporter, std::uint32_t reported) const;

  // Sets f.sampling_rate and scales packets and bytes by it. The only place that scales.
  static void apply(FlowRecord& f, std::uint32_t rate) {
    if (rate == 0) rate = 1;
    f.sampling_rate = rate;
    f.packets *= rate;
    f.bytes *= rate;
  }

  std::size_t size() const { return samplers_.size(); }
  std::uint64_t rejected() const { return rejected_; }

  // Persistence (one line per learned rate), see FlowDecoder::save().
  void save(std::ostream& out) const;
  // Reads one "S ..." or "D ..." line's fields; false if malformed.
  bool load_line(char kind, std::istream& fields);

 private:
  std::size_t max_entries_;
  std::uint64_t rejected_ = 0;
  std::vector<std::pair<IpAddr, std::uint32_t>> overrides_;
  std::unordered_map<ExporterDomainKey, std::uint32_t, ExporterDomainKeyHash> samplers_;
};

}  // namespace citywatch::agent::flow
