// TemplateCache: NetFlow v9 (RFC 3954 §5.2-5.3) and IPFIX (RFC 7011 §3.4.1-3.4.2) templates
// and options templates, keyed by exporter address + source ID / observation domain +
// template ID (and the protocol, so a v9 and an IPFIX template with one ID stay apart).
//
// A template is stored as its field list with the fixed part of its record length
// precomputed. Redefinition replaces a template (and reports whether it changed, so the
// state file is only rewritten when something did); IPFIX withdrawal (field count 0,
// RFC 7011 §8.1) removes one template or, with the set's own ID, all of an exporter's
// templates of that kind. Storing or changing a template allocates (control traffic, rare);
// look-ups do not.
//
// The cache is bounded in templates and in fields (what costs memory), and no exporter can
// lock the others out: each exporter has a share (max_per_exporter templates, and
// max_total_fields / 8 fields), beyond which its own least recently used template makes
// way; when the whole cache is full, the least recently used template of any exporter does.
// Look-ups (a data set decoded with it) stamp a template as used, and a template no data
// set has used yet makes way before any that has: a flood of templates nobody sends data
// for (from spoofed addresses, each within its share) churns among itself, not through the
// templates exporters are sending data with. A template with more than max_fields fields is
// refused (the caller counts template_limit): real exporters send tens, a datagram can
// carry 16k. Every eviction is counted. Because the cache is bounded, so is the state file.
//
// The cache is saved to and reloaded from a text file in the agent's state directory, so
// data that arrives after an agent restart decodes without waiting for the exporter to
// resend its templates (some send them only every 30 minutes).
//
// Ownership: one per FlowDecoder. Thread-safety: none (the agent's io thread).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <unordered_map>
#include <vector>

#include "agent/flow/sampling.h"
#include "common/record.h"

namespace citywatch::agent::flow {

inline constexpr std::uint16_t kVariableLength = 65535;  // RFC 7011 §7

struct TemplateField {
  std::uint16_t id = 0;          // information element (enterprise bit cleared)
  std::uint16_t length = 0;      // kVariableLength: variable (IPFIX only)
  std::uint32_t enterprise = 0;  // 0: IANA
};

struct Template {
  std::vector<TemplateField> fields;
  std::uint16_t scope_count = 0;  // options templates: the first scope_count fields
  std::uint16_t scope_bytes = 0;  // v9 options: scope fields are scope types, not IEs
  std::uint32_t min_length = 0;   // fixed lengths + 1 per variable-length field
  bool options = false;
  bool variable = false;
  mutable std::uint64_t last_used = 0;  // the cache's use clock at the last find()/put()
  mutable bool used = false;            // found at least once: a data set was decoded with it
  friend bool operator==(const Template& a, const Template& b);
};

struct TemplateLimits {
  std::size_t max_templates = 4096;
  std::size_t max_per_exporter = 512;
  std::size_t max_fields = 1024;          // per template
  std::size_t max_total_fields = 262144;  // whole cache: 2 MiB of field descriptions
};

struct TemplateCacheStats {
  std::uint64_t evicted_exporter_share = 0;  // the exporter's own LRU template made way
  std::uint64_t evicted_cache_full = 0;      // the cache-wide LRU template made way
  std::uint64_t refused_too_large = 0;       // more than max_fields fields
};

class TemplateCache {
 public:
  enum class Kind : std::uint8_t { kV9 = 9, kIpfix = 10 };

  explicit TemplateCache(TemplateLimits limits = {});

  const Template* find(const IpAddr& exporter, std::uint32_t domain, Kind kind,
                       std::uint16_t id) const;
  // kTooLarge: refused (more than max_fields fields). A new template always finds room.
  enum class Put { kNew, kChanged, kUnchanged, kTooLarge };
  Put put(const IpAddr& exporter, std::uint32_t domain, Kind kind, std::uint16_t id, Template&& t);
  void withdraw(const IpAddr& exporter, std::uint32_t domain, Kind kind, std::uint16_t id);
  void withdraw_all(const IpAddr& exporter, std::uint32_t domain, Kind kind, bool options);

  std::size_t size() const { return map_.size(); }
  std::size_t fields() const { return total_fields_; }
  const TemplateCacheStats& stats() const { return stats_; }
  const TemplateLimits& limits() const { return limits_; }
  // Set by any change since the last clear_dirty(): the state file is stale.
  bool dirty() const { return dirty_; }
  void clear_dirty() { dirty_ = false; }

  void save(std::ostream& out) const;
  // Reads one "T ..." line's fields; false if malformed.
  bool load_line(std::istream& fields);

 private:
  struct Share {
    std::size_t templates = 0;
    std::size_t fields = 0;
  };
  using Map = std::unordered_map<ExporterDomainKey, Template, ExporterDomainKeyHash>;
  static ExporterDomainKey exporter_key(const IpAddr& exporter) { return {exporter, 0, 0, 0}; }
  void erase(Map::iterator it);
  // Evicts the least recently used template of those no data set has used, else of all; of
  // `exporter` only when given. False if there is none to evict.
  bool evict_lru(const IpAddr* exporter, const ExporterDomainKey& keep);

  TemplateLimits limits_;
  std::size_t per_exporter_fields_;
  bool dirty_ = false;
  mutable std::uint64_t clock_ = 0;
  std::size_t total_fields_ = 0;
  TemplateCacheStats stats_;
  Map map_;
  std::unordered_map<ExporterDomainKey, Share, ExporterDomainKeyHash> shares_;
};

}  // namespace citywatch::agent::flow
