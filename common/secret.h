// Secrets that may live in their own file, so a config can be world-readable while the
// password, community or token stays readable by the daemon alone (`community_file:`,
// `password_file:`, `credentials_file:`, as Prometheus spells them).
//
// Thread-safety: none; used at start-up or reload by one thread.
#pragma once

#include <string>

#include "common/config_reader.h"
#include "common/status.h"

namespace citywatch {

// Reads a whole secret file. One trailing "\n" (or "\r\n") is stripped: editors add it and
// no secret ends with one. The error names the file, never its content.
Status read_secret_file(const std::string& path, std::string& out);

// Reads `key` or `key_file` (resolved against the config's directory) from map; setting both
// is an error at the key. Returns true if either was present. The value is never logged.
bool get_secret(ConfigMap& map, const char* key, const char* file_key, std::string& out);

}  // namespace citywatch
