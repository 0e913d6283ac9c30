// RuleSet: the compiled form of the rule files (docs/rules.md) and the loader that builds it.
//
// Loading reads every file strictly (common/config_reader.h: unknown keys, wrong types and
// bad expressions are errors naming FILE:LINE:COL and the key), loads the address lists the
// files declare (lists are shared by all files, declared before or after use), resolves every
// field name to an accessor and compiles every condition. Either the whole set loads or none
// of it does, so a reload with a broken file keeps the running rules.
//
// Thread-safety: immutable once loaded; shared by the engine (shared_ptr<const RuleSet>).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "collector/alerts/alert.h"
#include "collector/rules_engine/expression.h"
#include "collector/rules_engine/field.h"
#include "collector/rules_engine/ip_set.h"
#include "common/status.h"

namespace citywatch::collector {

enum class RuleKind : std::uint8_t {
  kMatch,      // one record matches: alert
  kThreshold,  // count (or sum of a field) per key over a window >= threshold
  kDistinct,   // distinct values of a field per key over a window >= threshold
  kRate,       // per second per key over a short window (or of a counter) >= threshold
  kList,       // a field's address is in a list
  kState,      // while a condition holds for a key (or when a field decreases)
  kNewValue,   // a value never seen for a key, after a learning period
  kChange,     // the value for a key differs from the last one seen (e.g. an IP's MAC)
};
const char* to_string(RuleKind k);

// A threshold that applies to addresses in some networks (FastNetMon's host groups): the
// city's PLC network and its public web servers deserve different flood limits.
struct ThresholdGroup {
  std::string name;
  const IpSet* networks = nullptr;  // a named list, or `own`
  std::unique_ptr<IpSet> own;       // inline `networks: [...]`
  double threshold = 0;
};

struct Rule {
  std::shared_ptr<const RuleInfo> info;
  RuleKind kind = RuleKind::kMatch;
  RuleSource source = RuleSource::kFlow;
  Expr where;   // records the rule looks at
  Expr except;  // allowlist: records matching this are ignored
  Expr state;   // kState: the bad condition (`while:`)
  std::vector<const FieldDef*> group_by;
  const FieldDef* value = nullptr;        // distinct / sum / rate / new_value / change / decreases
  const FieldDef* relative_to = nullptr;  // kRate: divide by this field (e.g. speed_bps)
  bool sum = false;                       // kThreshold: sum `value` instead of counting
  bool counter = false;                   // kRate: `value` is a monotonically rising counter
  double scale = 1;                       // kRate: multiply (8 for bits, 100 for percent)
  double threshold = 1;
  std::int64_t window_ns = 0;
  std::int64_t learning_ns = 0;              // kNewValue
  std::vector<const FieldDef*> list_fields;  // kList
  const IpSet* list = nullptr;               // kList
  std::string list_name;                     // kList
  bool conversation = false;                 // kList: key (listed, peer), either direction
  std::vector<ThresholdGroup> groups;        // kThreshold, kRate: first group holding
  const FieldDef* group_field = nullptr;     // this address sets the threshold
  std::size_t max_keys = 10000;
  std::size_t max_distinct = 1000;
  std::size_t examples = 5;
  // `also:`: the same evidence from another kind of record (a scan's probes from packet
  // events as well as from flow records). A copy of this rule with its own source, where and
  // except, and group_by / field resolved by name for that source; it shares this rule's
  // state, so a probe seen both ways counts once and raises one alert.
  std::unique_ptr<Rule> also;
};

struct RuleSet {
  std::vector<std::unique_ptr<Rule>> rules;
  std::map<std::string, std::unique_ptr<IpSet>, std::less<>> lists;
  std::vector<std::string> files;  // rule files and list files, as loaded
  std::string version;             // FNV-1a of every file's bytes, hex
  std::int64_t loaded_at_ns = 0;
};

// Loads and compiles the rule files; on error, every problem found, one per line.
Status load_rule_set(const std::vector<std::string>& files, RuleSet& out);

}  // namespace citywatch::collector
