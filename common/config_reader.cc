#include "common/config_reader.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

namespace citywatch {
namespace {

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "'" + n.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "an undefined value";
  }
}

bool parse_int(const std::string& s, std::int64_t& out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);  // "010" is ten, not eight
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

}  // namespace

bool parse_duration(const std::string& text, std::chrono::nanoseconds& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end == text.c_str() || !std::isfinite(v) || v < 0) return false;
  const std::string unit(end);
  double scale = 0;
  if (unit.empty() || unit == "s")
    scale = 1e9;
  else if (unit == "ms")
    scale = 1e6;
  else if (unit == "us")
    scale = 1e3;
  else if (unit == "m")
    scale = 60e9;
  else if (unit == "h")
    scale = 3600e9;
  else if (unit == "d")
    scale = 86400e9;
  else
    return false;
  const double ns = v * scale;
  if (ns > 9.2e18) return false;
  out = std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
  return true;
}

bool parse_size(const std::string& text, std::uint64_t& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || text[0] == '-') return false;
  const std::string unit(end);
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "B")
    scale = 1;
  else if (unit == "KiB")
    scale = 1ull << 10;
  else if (unit == "MiB")
    scale = 1ull << 20;
  else if (unit == "GiB")
    scale = 1ull << 30;
  else if (unit == "TiB")
    scale = 1ull << 40;
  else
    return false;
  if (v > UINT64_MAX / scale) return false;
  out = v * scale;
  return true;
}

bool parse_endpoint(const std::string& text, std::string& host, std::uint16_t& port) {
  std::string h, p;
  if (!text.empty() && text[0] == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return false;
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) return false;
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
  }
  std::int64_t v = 0;
  if (h.empty() || !parse_int(p, v) || v < 0 || v > 65535) return false;
  host = h;
  port = static_cast<std::uint16_t>(v);
  return true;
}

ConfigReader ConfigReader::from_file(const std::string& file) {
  ConfigReader r(file);
  r.base_dir_ = std::filesystem::path(file).parent_path().string();
  // Only a regular file of sane size: a directory read as an empty file, and /dev/zero
  // ended in std::bad_alloc.
  std::error_code ec;
  const auto st = std::filesystem::status(file, ec);
  if (!ec && std::filesystem::is_directory(st)) {
    r.errors_.push_back(file + ": is a directory, not a configuration file");
    return r;
  }
  if (!ec && !std::filesystem::is_regular_file(st)) {
    r.errors_.push_back(file + ": not a regular file");
    return r;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    r.errors_.push_back(file + ": cannot open configuration file: " + std::strerror(errno));
    return r;
  }
  // Read in 64 KiB steps up to the limit: a config is kilobytes, and a 16 MiB buffer
  // zeroed up front cost every start (and every reload) 16 MiB of memset.
  std::string text;
  char chunk[64 << 10];
  while (text.size() <= kMaxConfigBytes && in.read(chunk, sizeof chunk).gcount() > 0)
    text.append(chunk, static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) {
    r.errors_.push_back(file + ": larger than " + std::to_string(kMaxConfigBytes >> 20) +
                        " MiB; not a configuration file");
    return r;
  }
  r.load(text);
  return r;
}

ConfigReader ConfigReader::from_string(const std::string& text, const std::string& name,
                                       const std::string& base_dir) {
  ConfigReader r(name);
  r.base_dir_ = base_dir;
  r.load(text);
  return r;
}

namespace {

// The line (0-based) where a second YAML document starts, or -1. yaml-cpp's Load() reads the
// first document only, so whatever followed a `---` (a pasted second config, a key added at
// the end) was silently ignored; and its LoadAll() never returns on some input (a lone `,`:
// found by rules_fuzz). Document markers are found here instead: `---` or `...` at the start
// of a line always is one (YAML 1.2 forbids them inside any scalar), so a `---` after content
// or after a first `---` with content, or content after a `...`, is a second document.
// Blank lines, comments and directives (`%`) are not content.
int second_document_line(std::string_view text) {
  bool content = false, ended = false;
  int line = 0;
  for (std::size_t pos = 0; pos < text.size(); ++line) {
    const std::size_t eol = std::min(text.find('\n', pos), text.size());
    std::string_view l = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    const auto marker = [&](std::string_view m) {
      return l.substr(0, 3) == m && (l.size() == 3 || l[3] == ' ' || l[3] == '\t');
    };
    if (marker("---")) {
      if (content || ended) return line;
      // `--- {a: 1}` or `--- key: value`: the document's content may begin on the marker line.
      const std::string_view rest = l.substr(3);
      const std::size_t first = rest.find_first_not_of(" \t");
      content = first != std::string_view::npos && rest[first] != '#';
      continue;
    }
    if (marker("...")) {
      ended = true;
      continue;
    }
    const std::size_t first = l.find_first_not_of(" \t");
    if (first == std::string_view::npos || l[first] == '#' || l[0] == '%') continue;
    if (ended) return line;
    content = true;
  }
  return -1;
}

}  // namespace

void ConfigReader::load(const std::string& text) {
  try {
    doc_ = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    add_error(e.mark, "", "YAML syntax error: " + e.msg);
  }
  if (const int line = second_document_line(text); line >= 0) {
    YAML::Mark mark;
    mark.line = line;
    mark.column = 0;
    add_error(mark, "", "a second YAML document starts here: a configuration file is one");
  }
  check_duplicate_keys();
}

void ConfigReader::check_duplicate_keys() {
  // yaml-cpp keeps both pairs of a repeated key and look-ups find the first, so a second
  // `spool:` further down a long file would be silently ignored. Walked with an explicit
  // stack: the document's depth is the file's to choose.
  if (!doc_) return;
  std::vector<YAML::Node> stack{doc_};
  std::size_t visited = 0;
  while (!stack.empty() && ++visited < (1u << 20)) {
    const YAML::Node n = stack.back();
    stack.pop_back();
    if (n.IsMap()) {
      std::set<std::string> seen;
      for (const auto& kv : n) {
        if (kv.first.IsScalar() && !seen.insert(kv.first.Scalar()).second)
          add_error(kv.first.Mark(), kv.first.Scalar(),
                    "duplicate key (the first one would win; remove one)");
        stack.push_back(kv.second);
      }
    } else if (n.IsSequence()) {
      for (const auto& item : n) stack.push_back(item);
    }
  }
}

ConfigMap ConfigReader::root() {
  if (errors_.empty() && doc_.IsDefined() && !doc_.IsNull() && !doc_.IsMap())
    add_error(doc_.Mark(), "", "expected a mapping at the top level, got " + describe(doc_));
  return ConfigMap(*this, doc_.IsMap() ? doc_ : YAML::Node(YAML::NodeType::Map), "");
}

void ConfigReader::add_error(const YAML::Mark& mark, const std::string& key,
                             const std::string& what) {
  std::string msg = file_;
  if (!mark.is_null())
    msg += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  msg += ": ";
  if (!key.empty()) msg += key + ": ";
  msg += what;
  errors_.push_back(std::move(msg));
}

Status ConfigReader::status() const {
  if (errors_.empty()) return Status::ok();
  std::string all;
  for (const auto& e : errors_) {
    if (!all.empty()) all += '\n';
    all += e;
  }
  return Status::error(all);
}

ConfigMap::ConfigMap(ConfigReader& reader, YAML::Node node, std::string path)
    : reader_(reader), node_(std::move(node)), path_(std::move(path)) {}

std::string ConfigMap::key_path(const char* key) const {
  return path_.empty() ? std::string(key) : path_ + "." + key;
}

bool ConfigMap::has(const char* key) const {
  return node_.IsMap() && node_[key].IsDefined() && !node_[key].IsNull();
}

void ConfigMap::reject_example_marker() {
  bool example = false;
  get("example_config", example);
  if (example)
    error("example_config", "this is the packaged example configuration; edit " + reader_.file() +
                                " for this site, then delete the example_config line");
}

void ConfigMap::error(const char* key, const std::string& what) {
  const YAML::Node n = key && has(key) ? node_[key] : node_;
  reader_.add_error(n.Mark(), key ? key_path(key) : path_, what);
}

bool ConfigMap::lookup(const char* key, bool required, const char* expected, YAML::Node& out) {
  seen_.insert(key);
  if (!has(key)) {
    if (required)
      reader_.add_error(node_.Mark(), key_path(key),
                        std::string("missing required key (") + expected + ")");
    return false;
  }
  out = node_[key];
  return true;
}

void ConfigMap::get(const char* key, std::string& out, bool required) {
  YAML::Node n;
  if (!lookup(key, required, "a string", n)) return;
  if (!n.IsScalar()) {
    reader_.add_error(n.Mark(), key_path(key), "expected a string, got " + describe(n));
    return;
  }
  out = n.Scalar();
}

void ConfigMap::get(const char* key, bool& out, bool required) {
  YAML::Node n;
  if (!lookup(key, required, "true or false", n)) return;
  const std::string s = n.IsScalar() ? n.Scalar() : "";
  if (s == "true" || s == "yes" || s == "on")
    out = true;
  else if (s == "false" || s == "no" || s == "off")
    out = false;
  else
    reader_.add_error(n.Mark(), key_path(key), "expected true or false, got " + describe(n));
}

void ConfigMap::get(const char* key, std::int64_t& out, std::int64_t min, std::int64_t max,
                    bool required) {
  YAML::Node n;
  if (!lookup(key, required, "an integer", n)) return;
  std::int64_t v = 0;
  if (!n.IsScalar() || !parse_int(n.Scalar(), v)) {
    reader_.add_error(n.Mark(), key_path(key), "expected an integer, got " + describe(n));
    return;
  }
  if (v < min || v > max) {
    reader_.add_error(n.Mark(), key_path(key),
                      "expected an integer from " + std::to_string(min) + " to " +
                          std::to_string(max) + ", got " + std::to_string(v));
    return;
  }
  out = v;
}

void ConfigMap::get(const char* key, std::vector<std::string>& out, bool required) {
  YAML::Node n;
  if (!lookup(key, required, "a list of strings", n)) return;
  if (!n.IsSequence()) {
    reader_.add_error(n.Mark(), key_path(key), "expected a list of strings, got " + describe(n));
    return;
  }
  out.clear();
  for (const auto& item : n) {
    if (!item.IsScalar()) {
      reader_.add_error(item.Mark(), key_path(key), "expected a string, got " + describe(item));
      continue;
    }
    out.push_back(item.Scalar());
  }
}

void ConfigMap::get_duration(const char* key, std::chrono::nanoseconds& out, bool required) {
  YAML::Node n;
  if (!lookup(key, required, "a duration such as 15s", n)) return;
  if (!n.IsScalar() || !parse_duration(n.Scalar(), out))
    reader_.add_error(n.Mark(), key_path(key),
                      "expected a duration such as 500ms, 15s, 2m or 1h, got " + describe(n));
}

void ConfigMap::get_size(const char* key, std::uint64_t& out, bool required) {
  YAML::Node n;
  if (!lookup(key, required, "a size such as 64MiB", n)) return;
  if (!n.IsScalar() || !parse_size(n.Scalar(), out))
    reader_.add_error(n.Mark(), key_path(key),
                      "expected a size such as 4096, 64KiB, 16MiB or 1GiB, got " + describe(n));
}

void ConfigMap::get_path(const char* key, std::string& out, bool required, bool must_exist) {
  YAML::Node n;
  const bool present = lookup(key, required, "a path", n);
  if (present) {
    if (!n.IsScalar() || n.Scalar().empty()) {
      reader_.add_error(n.Mark(), key_path(key), "expected a path, got " + describe(n));
      return;
    }
    out = n.Scalar();
  }
  if (!out.empty() && !reader_.base_dir().empty() && std::filesystem::path(out).is_relative())
    out = (std::filesystem::path(reader_.base_dir()) / out).lexically_normal().string();
  std::error_code ec;
  if (present && must_exist && !std::filesystem::exists(out, ec))
    reader_.add_error(n.Mark(), key_path(key), "no such file: " + out);
}

void ConfigMap::get_endpoint(const char* key, std::string& host, std::uint16_t& port,
                             bool required) {
  YAML::Node n;
  if (!lookup(key, required, "HOST:PORT", n)) return;
  if (!n.IsScalar() || !parse_endpoint(n.Scalar(), host, port))
    reader_.add_error(
        n.Mark(), key_path(key),
        "expected HOST:PORT such as 127.0.0.1:7443 or [::1]:7443, got " + describe(n));
}

void ConfigMap::get_listen(const char* key, std::string& host, std::uint16_t& port, bool required) {
  YAML::Node n;
  if (!lookup(key, required, "ADDRESS:PORT", n)) return;
  if (!n.IsScalar() || !parse_endpoint(n.Scalar(), host, port)) {
    reader_.add_error(
        n.Mark(), key_path(key),
        "expected ADDRESS:PORT such as 0.0.0.0:2055 or [::]:2055, got " + describe(n));
    return;
  }
  unsigned char buf[16];
  if (inet_pton(AF_INET, host.c_str(), buf) != 1 && inet_pton(AF_INET6, host.c_str(), buf) != 1)
    reader_.add_error(n.Mark(), key_path(key),
                      "expected an IP address to listen on, got '" + host +
                          "' (names are not looked up; use 127.0.0.1, ::1, 0.0.0.0 or ::)");
}

ConfigMap ConfigMap::map(const char* key, bool required) {
  YAML::Node n;
  const bool present = lookup(key, required, "a mapping", n);
  if (present && !n.IsMap())
    reader_.add_error(n.Mark(), key_path(key), "expected a mapping, got " + describe(n));
  return ConfigMap(reader_, present && n.IsMap() ? n : YAML::Node(YAML::NodeType::Map),
                   key_path(key));
}

std::vector<ConfigMap> ConfigMap::list(const char* key, bool required) {
  std::vector<ConfigMap> out;
  YAML::Node n;
  if (!lookup(key, required, "a list", n)) return out;
  if (!n.IsSequence()) {
    reader_.add_error(n.Mark(), key_path(key), "expected a list, got " + describe(n));
    return out;
  }
  for (std::size_t i = 0; i < n.size(); ++i) {
    const std::string p = key_path(key) + "[" + std::to_string(i) + "]";
    if (!n[i].IsMap()) {
      reader_.add_error(n[i].Mark(), p, "expected a mapping, got " + describe(n[i]));
      continue;
    }
    out.emplace_back(reader_, n[i], p);
  }
  return out;
}

void ConfigMap::done() {
  if (!node_.IsMap()) return;
  for (const auto& kv : node_) {
    const std::string k = kv.first.Scalar();
    if (!seen_.count(k)) reader_.add_error(kv.first.Mark(), key_path(k.c_str()), "unknown key");
  }
}

}  // namespace citywatch
