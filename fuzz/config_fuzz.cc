// libFuzzer target: a configuration file an operator edits. The bytes go through the agent's
// and the collector's whole configuration parsers (YAML, every key's validation). Seeds: the
// shipped example configs (scripts/fuzz.sh). A crash, a sanitizer report, a leak or a hang
// (libFuzzer's timeout) is a bug; a refusal with a message is the expected outcome.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/app/agent_config.h"
#include "collector/app/collector_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  citywatch::agent::AgentConfig agent;
  (void)citywatch::agent::parse_agent_config(text, "fuzz.yaml", "/nonexistent", agent);
  citywatch::collector::CollectorConfig collector;
  (void)citywatch::collector::parse_collector_config(text, "fuzz.yaml", "/nonexistent", collector);
  return 0;
}
