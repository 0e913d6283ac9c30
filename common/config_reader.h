// Strict YAML configuration reading with errors a person can act on.
//
// A ConfigReader owns the parsed document and collects every problem it meets, each as
// "FILE:LINE:COL: KEY: what was expected", so one --check-config run lists them all. A
// ConfigMap reads one mapping: each get() names a key it knows, and done() reports any key
// the program does not know (a typo such as `idle_timout` is an error, never ignored).
// Durations accept "500ms", "15s", "2m", "1h" or a bare number of seconds; sizes accept
// "512", "64KiB", "16MiB", "1GiB".
//
// Thread-safety: none; used once, at start-up or reload, by one thread.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace citywatch {

class ConfigReader;

class ConfigMap {
 public:
  ConfigMap(ConfigReader& reader, YAML::Node node, std::string path);

  bool has(const char* key) const;
  // Each get() leaves `out` unchanged when the key is absent (so defaults stay) and records
  // an error when the key is absent but required, or present with the wrong type.
  void get(const char* key, std::string& out, bool required = false);
  void get(const char* key, bool& out, bool required = false);
  void get(const char* key, std::int64_t& out, std::int64_t min, std::int64_t max,
           bool required = false);
  void get(const char* key, std::vector<std::string>& out, bool required = false);
  void get_duration(const char* key, std::chrono::nanoseconds& out, bool required = false);
  void get_size(const char* key, std::uint64_t& out, bool required = false);
  // A path, resolved against the config file's directory. With must_exist, a file that is
  // not there is an error at the key's line.
  void get_path(const char* key, std::string& out, bool required = false, bool must_exist = false);
  // "HOST:PORT" or "[IPV6]:PORT"; port 0 asks the kernel for any free port.
  void get_endpoint(const char* key, std::string& host, std::uint16_t& port, bool required = false);
  // An address to listen on: like get_endpoint, but the host must be an IP literal, as every
  // listener binds without a name lookup (so --check-config refuses what start would).
  void get_listen(const char* key, std::string& host, std::uint16_t& port, bool required = false);
  // A nested mapping; an absent key yields an empty map (all defaults).
  ConfigMap map(const char* key, bool required = false);
  // A sequence of mappings.
  std::vector<ConfigMap> list(const char* key, bool required = false);

  // Reports keys present in the file that no get()/map()/list() asked for.
  void done();

  // The packaged example configs start with `example_config: true`: a daemon refuses to run
  // on a file that still has it, naming the file, so installing the package starts nothing
  // half-configured. `example_config: false` (or no key) is a configured file.
  void reject_example_marker();

  // Records an error at this map's position or at one of its keys.
  void error(const char* key, const std::string& what);

  const std::string& path() const { return path_; }

 private:
  // The key's node, if present; a missing required key is reported.
  bool lookup(const char* key, bool required, const char* expected, YAML::Node& out);
  std::string key_path(const char* key) const;

  ConfigReader& reader_;
  YAML::Node node_;
  std::string path_;
  std::set<std::string> seen_;
};

class ConfigReader {
 public:
  // Parses a file. A missing file or a syntax error is reported by status().
  static ConfigReader from_file(const std::string& file);
  // Parses text that stands for a file (the embedded default config).
  // Relative paths in it resolve against base_dir.
  static ConfigReader from_string(const std::string& text, const std::string& name,
                                  const std::string& base_dir);

  // The document's top-level mapping.
  ConfigMap root();

  void add_error(const YAML::Mark& mark, const std::string& key, const std::string& what);
  // OK, or every error found so far, one per line.
  Status status() const;
  const std::string& file() const { return file_; }
  const std::string& base_dir() const { return base_dir_; }

 private:
  explicit ConfigReader(std::string file) : file_(std::move(file)) {}
  // Parses text into doc_; syntax errors and a second document are errors.
  void load(const std::string& text);
  void check_duplicate_keys();
  static constexpr std::size_t kMaxConfigBytes = 16u << 20;  // configs are kilobytes
  std::string file_;
  std::string base_dir_;
  YAML::Node doc_;
  std::vector<std::string> errors_;
};

// Parses "15s"-style durations and "16MiB"-style sizes; false if malformed.
bool parse_duration(const std::string& text, std::chrono::nanoseconds& out);
bool parse_size(const std::string& text, std::uint64_t& out);
bool parse_endpoint(const std::string& text, std::string& host, std::uint16_t& port);

}  // namespace citywatch
