// OfflineReads: remembers which capture files `citywatch-agent -r` has read into this
// agent's spool, so that reading the same file again is refused instead of counting its
// traffic twice at the collector (a new run numbers its batches anew, so the collector's
// exactly-once ledger cannot tell them apart from new data).
//
// A file is known by its content, not its name: size and a CRC32C of its first 1 MiB
// (pcap headers carry capture timestamps, so two different captures of one size collide
// only by accident). The ledger is a text file in the agent's state directory, one line per
// event: "started ID PATH" as a run opens the file to read it (files are read one after
// another, so a run that stops leaves the files it never opened unmarked), "done ID PATH"
// once every batch of the run was acked. A file whose last line is "started" was read
// part-way by a run that stopped: its first part is in the spool or already delivered, so it
// is refused too.
//
// Thread-safety: none; used by main() and, for "started", by the runtime's thread.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace citywatch::agent {

class OfflineReads {
 public:
  explicit OfflineReads(std::filesystem::path ledger) : ledger_(std::move(ledger)) {}

  // Fails, naming the file and what happened to it, for any file read before, and for a
  // file given twice in `files` (under its name or another).
  Status check(const std::vector<std::string>& files) const;
  // Appends "started" (as a file's turn to be read comes) or "done" (after every batch of
  // the run was acked) lines.
  Status mark_started(const std::vector<std::string>& files) const;
  Status mark_done(const std::vector<std::string>& files) const;

  // The content identity of a file: "SIZE-CRC32C"; empty if it cannot be read.
  static std::string identity(const std::string& file);

 private:
  Status append(const char* what, const std::vector<std::string>& files) const;
  // identity(), computed once per file: "done" names the content "started" named, and a
  // run reads each file's first MiB once, not three times.
  const std::string& known_identity(const std::string& file) const;
  std::filesystem::path ledger_;
  mutable std::map<std::string, std::string> identities_;  // file -> identity
};

}  // namespace citywatch::agent
