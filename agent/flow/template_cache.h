// TemplateCache: NetFlow v9 (RFC 3954 §5.2-5.3) and IPFIX (RFC 7011 §3.4.1-3.4.2) templates
// and options templates, keyed by exporter address + source ID / observation domain +
// template ID (and the protocol, so a v9 and an IPFIX template with one ID stay apart).
//
// A template is stored as its field list with the fixed part of its record length
// precomputed. Redefinition replaces a template (and reports whether it changed, so the
// state file is only rewritten when something did); IPFIX withdrawal (field count 0,
// RFC 7011 §8.1) removes one template or, with the set's own ID, all of an exporter's
// templates of that kind. The cache is bounded: a new template beyond max_templates is
// refused (counted as template_limit by the caller); a known one can still be redefined.
// Storing or changing a template allocates (control traffic, rare); look-ups do not.
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
  friend bool operator==(const Template& a, const Template& b);
};

class TemplateCache {
 public:
  enum class Kind : std::uint8_t { kV9 = 9, kIpfix = 10 };

  explicit TemplateCache(std::size_t max_templates = 4096) : max_(max_templates) {}

  const Template* find(const IpAddr& exporter, std::uint32_t domain, Kind kind,
                       std::uint16_t id) const;
  enum class Put { kNew, kChanged, kUnchanged, kFull };
  Put put(const IpAddr& exporter, std::uint32_t domain, Kind kind, std::uint16_t id, Template&& t);
  void withdraw(const IpAddr& exporter, std::uint32_t domain, Kind kind, std::uint16_t id);
  void withdraw_all(const IpAddr& exporter, std::uint32_t domain, Kind kind, bool options);

  std::size_t size() const { return map_.size(); }
  // Set by any change since the last clear_dirty(): the state file is stale.
  bool dirty() const { return dirty_; }
  void clear_dirty() { dirty_ = false; }

  void save(std::ostream& out) const;
  // Reads one "T ..." line's fields; false if malformed.
  bool load_line(std::istream& fields);

 private:
  std::size_t max_;
  bool dirty_ = false;
  std::unordered_map<ExporterDomainKey, Template, ExporterDomainKeyHash> map_;
};

}  // namespace citywatch::agent::flow
