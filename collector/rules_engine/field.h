// Record fields as the rule language sees them: a table of (record kind, name) -> accessor.
//
// A rule names fields ("dst_port", "dns.name", "oper_up"); the loader resolves each name to an
// accessor once, so evaluation is an indirect call that reads the record in place and never
// allocates. Adding a field is one table entry in field.cc. Derived fields (syn_only,
// dns.max_label_len, dns.entropy, dns.domain) are computed from the record on access.
//
// Thread-safety: the table is immutable; Values are plain data.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/record.h"
#include "common/record_batch.h"

namespace citywatch::collector {

// The record kinds a rule can watch. kAgentSession is the collector's own event (an agent's
// session opened or closed), not a wire record.
enum class RuleSource : std::uint8_t {
  kFlow,
  kPacket,
  kInterface,
  kDevice,
  kTrap,
  kAgentSession,
};
inline constexpr std::size_t kRuleSources = static_cast<std::size_t>(RuleSource::kAgentSession) + 1;
bool parse_rule_source(std::string_view s, RuleSource& out);
const char* to_string(RuleSource s);

struct SessionEvent {
  std::string_view agent;
  std::string_view segment;
  bool connected = false;
  std::int64_t time_ns = 0;
};

// What one evaluation looks at: a record, or a session event.
struct EvalInput {
  const RecordRef* record = nullptr;
  const SessionEvent* session = nullptr;
  std::int64_t time_ns() const { return record ? record->event_time_ns : session->time_ns; }
};

struct Value {
  enum class Type : std::uint8_t { kNone, kNum, kIp, kStr, kMac };
  Type type = Type::kNone;
  double num = 0;  // kNum; kMac holds the 48-bit address here
  IpAddr ip;
  std::string_view str;  // points into the record or a static string

  static Value number(double v) {
    Value x;
    x.type = Type::kNum;
    x.num = v;
    return x;
  }
  static Value address(const IpAddr& a) {
    Value x;
    x.type = Type::kIp;
    x.ip = a;
    return x;
  }
  static Value string(std::string_view s) {
    Value x;
    x.type = Type::kStr;
    x.str = s;
    return x;
  }
};

// Stable 64-bit hash of a value (FNV-1a over its bytes), for keys and distinct sets.
std::uint64_t hash_value(const Value& v, std::uint64_t seed = 1469598103934665603ull);
// Human-readable form for labels and evidence: "10.0.0.1", "443", "aa:bb:cc:dd:ee:ff".
std::string format_value(const Value& v);

using FieldGetter = Value (*)(const EvalInput&);
struct FieldDef {
  RuleSource source;
  std::string_view name;
  Value::Type type;
  FieldGetter get;
  std::string_view help;
};

// The field `name` for records of `source`, or nullptr.
const FieldDef* find_field(RuleSource source, std::string_view name);
// Every field, for documentation and error messages.
const std::vector<FieldDef>& all_fields();
std::string field_names(RuleSource source);

}  // namespace citywatch::collector
