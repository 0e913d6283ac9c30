// `citywatch-agent decode FILE.pcap... [--port N] [--mode auto|exports|packets]`: decodes
// the flow exports captured in the files (in order: a template file before its data file)
// and prints every record the agent would send as one JSON object per line on stdout, then a
// summary line (JSON) on stderr. A capture with no flow exports in it (auto) or any capture
// (packets) is metered as `citywatch-agent -r` meters it: its flow records and packet events
// are printed. Operators use it to see what an exporter really sends, analysts to check a
// capture offline without a collector; tests compare it with tshark.
//
// Thread-safety: a command, run once on main's thread.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace citywatch::agent::flow {

enum class DecodeMode { kAuto, kExports, kPackets };

struct DecodeCommandOptions {
  std::vector<std::string> files;
  std::uint16_t port = 0;  // 0: detect exports by version
  bool records = true;     // false: the summary only (--summary-only)
  std::string state_file;  // optional: load templates from it first, save them after
  DecodeMode mode = DecodeMode::kAuto;
};

// Returns the process exit code: 0, or 1 when a file cannot be read.
int run_decode_command(const DecodeCommandOptions& options, std::ostream& out, std::ostream& err);

}  // namespace citywatch::agent::flow
