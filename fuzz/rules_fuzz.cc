// libFuzzer target: a rule file dropped into the rules directory. The bytes are written to a
// file and loaded as a rule set (YAML, rule keys, every expression compiled, lists resolved),
// and also compiled directly as one `where:` expression for packet events and for flows.
// Seeds: the shipped rule pack (scripts/fuzz.sh). A crash, a sanitizer report, a leak or a
// hang is a bug; a refusal naming file:line is the expected outcome.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "collector/rules_engine/expression.h"
#include "collector/rules_engine/rule_set.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace citywatch::collector;
  static const std::filesystem::path file =
      std::filesystem::temp_directory_path() /
      ("cw-rules-fuzz-" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  RuleSet rules;
  (void)load_rule_set({file.string()}, rules);

  static IpSet list = [] {
    IpSet s;
    s.add("10.0.0.0/8");
    s.add("2001:db8::/32");
    s.build();
    return s;
  }();
  const ListResolver lists = [](std::string_view) -> const IpSet* { return &list; };
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const char* src : {"packet_event", "flow", "snmp"}) {
    RuleSource source;
    if (!parse_rule_source(src, source)) continue;
    Expr e;
    std::string error;
    (void)Expr::compile(text, source, lists, e, error);
  }
  return 0;
}
