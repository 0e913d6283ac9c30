#include "collector/rules_engine/rule_set.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/config_reader.h"

namespace citywatch::collector {

const char* to_string(RuleKind k) {
  switch (k) {
    case RuleKind::kMatch:
      return "match";
    case RuleKind::kThreshold:
      return "threshold";
    case RuleKind::kDistinct:
      return "distinct";
    case RuleKind::kRate:
      return "rate";
    case RuleKind::kList:
      return "list";
    case RuleKind::kState:
      return "state";
    case RuleKind::kNewValue:
      return "new_value";
    case RuleKind::kChange:
      return "change";
  }
  return "?";
}

namespace {

bool parse_kind(const std::string& s, RuleKind& out) {
  for (RuleKind k : {RuleKind::kMatch, RuleKind::kThreshold, RuleKind::kDistinct, RuleKind::kRate,
                     RuleKind::kList, RuleKind::kState, RuleKind::kNewValue, RuleKind::kChange})
    if (s == to_string(k)) {
      out = k;
      return true;
    }
  return false;
}

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 100) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

std::uint64_t fnv(const std::string& bytes, std::uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string slurp(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A label "k=v" as written in `labels:`.
bool split_label(const std::string& s, std::pair<std::string, std::string>& out) {
  const auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0 || !valid_name(s.substr(0, eq))) return false;
  out = {s.substr(0, eq), s.substr(eq + 1)};
  return true;
}

void read_lists(ConfigReader& reader, RuleSet& out, std::uint64_t& version, bool report) {
  ConfigMap root = reader.root();
  for (ConfigMap& l : root.list("lists")) {
    std::string name, file, format_text = "plain";
    std::int64_t min_score = 0;
    l.get("name", name, true);
    l.get_path("file", file, true, true);
    l.get("format", format_text);
    l.get("min_score", min_score, 0, 127);
    ListFormat format = ListFormat::kPlain;
    if (!parse_list_format(format_text, format))
      l.error("format", "expected plain, spamhaus_drop or iprep, got '" + format_text + "'");
    if (min_score > 0 && format != ListFormat::kIprep)
      l.error("min_score", "only an iprep feed has scores");
    l.done();
    if (!report || name.empty() || file.empty()) continue;
    if (!valid_name(name)) {
      l.error("name", "expected letters, digits and '_', got '" + name + "'");
      continue;
    }
    if (out.lists.count(name)) {
      l.error("name", "list '" + name + "' is declared twice");
      continue;
    }
    auto set = std::make_unique<IpSet>();
    if (auto s = IpSet::load_file(file, *set, format, static_cast<int>(min_score)); !s) {
      l.error("file", s.message());
      continue;
    }
    version = fnv(slurp(file), version);
    out.files.push_back(file);
    out.lists.emplace(name, std::move(set));
  }
}

const FieldDef* resolve_field(ConfigMap& m, const char* key, const std::string& name,
                              RuleSource src) {
  const FieldDef* f = find_field(src, name);
  if (!f)
    m.error(key, "unknown field '" + name + "' for " + to_string(src) +
                     " records (known: " + field_names(src) + ")");
  return f;
}

void read_rule(ConfigMap& m, const ConfigReader& reader, RuleSet& set,
               std::set<std::string>& names) {
  auto rule = std::make_unique<Rule>();
  auto info = std::make_shared<RuleInfo>();
  info->file = reader.file();
  std::string kind = "match", source = "flow", severity = "warning";
  m.get("name", info->name, true);
  m.get("kind", kind, true);
  m.get("record", source);
  m.get("description", info->description, true);
  m.get("runbook", info->runbook, true);
  m.get("summary", info->summary);
  m.get("severity", severity);
  std::vector<std::string> labels;
  m.get("labels", labels);
  if (!info->name.empty() && !valid_name(info->name))
    m.error("name", "expected letters, digits and '_', got '" + info->name + "'");
  if (!info->name.empty() && !names.insert(info->name).second)
    m.error("name", "rule '" + info->name + "' is defined twice");
  if (!parse_kind(kind, rule->kind))
    m.error("kind",
            "expected match, threshold, distinct, rate, list, state, new_value or change, got '" +
                kind + "'");
  if (!parse_rule_source(source, rule->source))
    m.error("record", "expected flow, packet, interface, device, trap or agent_session, got '" +
                          source + "'");
  if (severity != "critical" && severity != "warning" && severity != "info")
    m.error("severity", "expected critical, warning or info, got '" + severity + "'");
  info->severity = severity;
  info->kind = to_string(rule->kind);
  for (const std::string& l : labels) {
    std::pair<std::string, std::string> kv;
    if (!split_label(l, kv))
      m.error("labels", "expected name=value, got '" + l + "'");
    else
      info->labels.push_back(kv);
  }

  const RuleSource src = rule->source;
  ListResolver lists = [&set](std::string_view n) -> const IpSet* {
    auto it = set.lists.find(n);
    return it == set.lists.end() ? nullptr : it->second.get();
  };
  auto expr = [&](const char* key, Expr& out) {
    std::string text;
    m.get(key, text);
    std::string error;
    if (!Expr::compile(text, src, lists, out, error)) m.error(key, error);
  };
  expr("where", rule->where);
  expr("except", rule->except);

  std::vector<std::string> group;
  m.get("group_by", group);
  if (group.size() > 4) m.error("group_by", "at most 4 fields");
  for (const std::string& g : group)
    if (const FieldDef* f = resolve_field(m, "group_by", g, src)) rule->group_by.push_back(f);

  std::string field;
  m.get("field", field);
  if (!field.empty()) rule->value = resolve_field(m, "field", field, src);

  std::string threshold;
  m.get("threshold", threshold);
  if (!threshold.empty()) {
    char* end = nullptr;
    rule->threshold = std::strtod(threshold.c_str(), &end);
    if (end != threshold.c_str() + threshold.size() || rule->threshold < 0)
      m.error("threshold", "expected a number >= 0, got '" + threshold + "'");
  }
  std::chrono::nanoseconds window{0}, learning{0};
  m.get_duration("window", window);
  m.get_duration("hold_down", info->hold_down);
  m.get_duration("resend", info->resend);
  m.get_duration("suppress_for", info->suppress_for);
  m.get_duration("learning", learning);
  rule->window_ns = window.count();
  rule->learning_ns = learning.count();
  if (info->resend.count() < 1000000000) m.error("resend", "must be at least 1s");
  std::int64_t max_keys = 10000, max_distinct = 1000, examples = 5;
  m.get("max_keys", max_keys, 1, 10000000);
  m.get("max_distinct", max_distinct, 1, 1000000);
  m.get("examples", examples, 0, 50);
  rule->max_keys = static_cast<std::size_t>(max_keys);
  rule->max_distinct = static_cast<std::size_t>(max_distinct);
  rule->examples = static_cast<std::size_t>(examples);
  m.get("sum", rule->sum);
  m.get("counter", rule->counter);
  std::string scale;
  m.get("scale", scale);
  if (!scale.empty()) {
    char* end = nullptr;
    rule->scale = std::strtod(scale.c_str(), &end);
    if (end != scale.c_str() + scale.size() || rule->scale <= 0)
      m.error("scale", "expected a number > 0, got '" + scale + "'");
  }
  for (ConfigMap& g : m.list("thresholds")) {
    ThresholdGroup tg;
    std::string list, value;
    std::vector<std::string> networks;
    g.get("name", tg.name, true);
    g.get("list", list);
    g.get("networks", networks);
    g.get("threshold", value, true);
    char* end = nullptr;
    tg.threshold = std::strtod(value.c_str(), &end);
    if (!value.empty() && (end != value.c_str() + value.size() || tg.threshold < 0))
      g.error("threshold", "expected a number >= 0, got '" + value + "'");
    if (list.empty() == networks.empty()) {
      g.error("list", "a threshold group names either list: or networks:");
    } else if (!list.empty()) {
      auto it = set.lists.find(list);
      if (it == set.lists.end())
        g.error("list", "no list named '" + list + "'");
      else
        tg.networks = it->second.get();
    } else {
      tg.own = std::make_unique<IpSet>();
      for (const std::string& n : networks)
        if (!tg.own->add(n)) g.error("networks", "expected an IP address or CIDR, got '" + n + "'");
      tg.own->build();
      tg.networks = tg.own.get();
    }
    g.done();
    rule->groups.push_back(std::move(tg));
  }
  std::string group_field = "dst";
  m.get("threshold_field", group_field);
  if (!rule->groups.empty()) {
    rule->group_field = resolve_field(m, "threshold_field", group_field, src);
    if (rule->group_field && rule->group_field->type != Value::Type::kIp)
      m.error("threshold_field", "'" + group_field + "' is not an address");
  }
  std::string relative;
  m.get("relative_to", relative);
  if (!relative.empty()) rule->relative_to = resolve_field(m, "relative_to", relative, src);
  std::string list;
  m.get("list", list);
  std::vector<std::string> list_fields;
  m.get("fields", list_fields);
  m.get("conversation", rule->conversation);
  expr("while", rule->state);
  std::string decreases;
  m.get("decreases", decreases);
  if (!decreases.empty()) rule->value = resolve_field(m, "decreases", decreases, src);

  auto need_numeric = [&](const char* key, const FieldDef* f) {
    if (f && f->type != Value::Type::kNum)
      m.error(key, "'" + std::string(f->name) + "' is not numeric");
  };
  if (!rule->groups.empty() && rule->kind != RuleKind::kThreshold && rule->kind != RuleKind::kRate)
    m.error("thresholds", "only threshold and rate rules take threshold groups");
  if (rule->conversation && rule->kind != RuleKind::kList)
    m.error("conversation", "only a list rule takes conversation: true");
  switch (rule->kind) {
    case RuleKind::kMatch:
      break;
    case RuleKind::kThreshold:
      if (window.count() <= 0) m.error("window", "a threshold rule needs a window");
      if (rule->sum && !rule->value) m.error("sum", "sum: true needs field: (what to add up)");
      if (rule->sum) need_numeric("field", rule->value);
      break;
    case RuleKind::kDistinct:
      if (window.count() <= 0) m.error("window", "a distinct rule needs a window");
      if (!rule->value && field.empty())
        m.error("field", "a distinct rule needs field: (what to count)");
      break;
    case RuleKind::kRate:
      if (!rule->value && field.empty())
        m.error("field", "a rate rule needs field: (packets, bytes, a counter)");
      need_numeric("field", rule->value);
      if (!rule->counter && window.count() <= 0)
        m.error("window", "a rate rule needs a window (or counter: true)");
      break;
    case RuleKind::kList: {
      auto it = set.lists.find(list);
      if (list.empty())
        m.error("list", "a list rule needs list: (a name under lists:)");
      else if (it == set.lists.end())
        m.error("list", "no list named '" + list + "'");
      else
        rule->list = it->second.get();
      rule->list_name = list;
      if (list_fields.empty())
        m.error("fields", "a list rule needs fields: (addresses to look up)");
      for (const std::string& f : list_fields)
        if (const FieldDef* d = resolve_field(m, "fields", f, src)) {
          if (d->type != Value::Type::kIp) m.error("fields", "'" + f + "' is not an address");
          rule->list_fields.push_back(d);
        }
      if (rule->conversation) {
        // One alert per pair of addresses, whichever spoke first: keyed by listed and peer.
        if (list_fields.size() != 2)
          m.error("conversation", "conversation: true needs exactly two fields (both ends)");
        if (!group.empty())
          m.error("group_by", "a conversation rule is keyed by listed and peer: no group_by");
      } else if (rule->group_by.empty()) {
        rule->group_by = rule->list_fields;
      }
      break;
    }
    case RuleKind::kState:
      if (rule->state.empty() == decreases.empty())
        m.error("while",
                "a state rule needs exactly one of while: (bad condition) or decreases: (field)");
      info->explicit_resolve = !rule->state.empty();
      need_numeric("decreases", rule->value);
      break;
    case RuleKind::kNewValue:
    case RuleKind::kChange:
      if (!rule->value && field.empty())
        m.error("field", "this kind needs field: (the value to remember)");
      if (rule->group_by.empty() && rule->kind == RuleKind::kChange)
        m.error("group_by", "a change rule needs group_by: (whose value changes)");
      break;
  }
  if (rule->kind != RuleKind::kList && (!list.empty() || !list_fields.empty()))
    m.error("list", "list: and fields: are for kind: list");
  if (rule->kind != RuleKind::kState && (!rule->state.empty() || !decreases.empty()))
    m.error("while", "while: and decreases: are for kind: state");
  if (m.has("also")) {
    ConfigMap a = m.map("also");
    std::string also_source;
    a.get("record", also_source, true);
    auto alt = std::make_unique<Rule>();
    bool source_ok = false;
    if (!also_source.empty() && !parse_rule_source(also_source, alt->source))
      a.error("record", "expected flow, packet, interface, device, trap or agent_session, got '" +
                            also_source + "'");
    else if (!also_source.empty() && alt->source == src)
      a.error("record", "is the rule's own record kind; put both conditions in its where:");
    else
      source_ok = !also_source.empty();
    if (rule->kind != RuleKind::kThreshold && rule->kind != RuleKind::kDistinct &&
        rule->kind != RuleKind::kRate && rule->kind != RuleKind::kMatch)
      a.error("record", "only match, threshold, distinct and rate rules take also:");
    const RuleSource asrc = alt->source;
    auto also_expr = [&](const char* key, const std::string& fallback, Expr& out) {
      std::string text = fallback;
      a.get(key, text);
      std::string error;
      if (!Expr::compile(text, asrc, lists, out, error)) a.error(key, error);
    };
    std::string except_text;
    m.get("except", except_text);
    also_expr("where", "", alt->where);
    also_expr("except", except_text, alt->except);
    a.done();
    if (source_ok) {
      // Same fields by name, so both sources key and count the same values.
      auto same = [&](const FieldDef* f) -> const FieldDef* {
        if (!f) return nullptr;
        const FieldDef* g = find_field(asrc, f->name);
        if (!g)
          m.error("also", "field '" + std::string(f->name) + "' has no counterpart in " +
                              to_string(asrc) + " records");
        else if (g->type != f->type)
          m.error("also", "field '" + std::string(f->name) + "' has another type in " +
                              to_string(asrc) + " records");
        return g;
      };
      for (const FieldDef* f : rule->group_by) alt->group_by.push_back(same(f));
      alt->value = same(rule->value);
      alt->relative_to = same(rule->relative_to);
      alt->group_field = same(rule->group_field);
      alt->kind = rule->kind;
      alt->sum = rule->sum;
      alt->counter = rule->counter;
      alt->scale = rule->scale;
      alt->threshold = rule->threshold;
      alt->window_ns = rule->window_ns;
      alt->learning_ns = rule->learning_ns;
      alt->max_keys = rule->max_keys;
      alt->max_distinct = rule->max_distinct;
      alt->examples = rule->examples;
      for (const ThresholdGroup& g : rule->groups) {
        ThresholdGroup copy;
        copy.name = g.name;
        copy.networks = g.networks;  // owned by the rule, which outlives its `also`
        copy.threshold = g.threshold;
        alt->groups.push_back(std::move(copy));
      }
      rule->also = std::move(alt);
    }
  }
  m.done();
  if (rule->also) rule->also->info = info;
  rule->info = std::move(info);
  set.rules.push_back(std::move(rule));
}

}  // namespace

Status load_rule_set(const std::vector<std::string>& files, RuleSet& out) {
  out = RuleSet();
  if (files.empty()) return Status::error("no rule files given");
  std::uint64_t version = 1469598103934665603ull;
  std::string errors;
  auto append = [&errors](const Status& s) {
    if (!s) errors += (errors.empty() ? "" : "\n") + s.message();
  };
  // Pass 1: every file's lists, so a rule may use a list declared in another file.
  for (const std::string& f : files) {
    ConfigReader reader = ConfigReader::from_file(f);
    if (!reader.status()) {
      append(reader.status());
      continue;
    }
    read_lists(reader, out, version, true);
    append(reader.status());
  }
  if (!errors.empty()) return Status::error(errors);
  // Pass 2: the rules.
  std::set<std::string> names;
  for (const std::string& f : files) {
    ConfigReader reader = ConfigReader::from_file(f);
    ConfigMap root = reader.root();
    for (ConfigMap& l : root.list("lists")) {
      // Read in pass 1; marked seen here so done() does not call them unknown.
      std::string ignored;
      l.get("name", ignored);
      l.get("file", ignored);
    }
    for (ConfigMap& r : root.list("rules")) read_rule(r, reader, out, names);
    root.done();
    append(reader.status());
    version = fnv(slurp(f), version);
    out.files.push_back(f);
  }
  if (!errors.empty()) {
    out = RuleSet();
    return Status::error(errors);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(version));
  out.version = hex;
  out.loaded_at_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  return Status::ok();
}

}  // namespace citywatch::collector
