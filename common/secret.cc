#include "common/secret.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace citywatch {

Status read_secret_file(const std::string& path, std::string& out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return Status::error(path + ": cannot read secret: " + std::strerror(errno));
  // A directory or a device (/dev/zero) is a mistake, not a secret; 64 KiB bounds the read.
  if (!S_ISREG(st.st_mode)) return Status::error(path + ": secret is not a regular file");
  if (st.st_size > 65536) return Status::error(path + ": secret file is larger than 64 KiB");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(path + ": cannot read secret: " + std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) return Status::error(path + ": secret file is empty");
  out = std::move(text);
  return Status::ok();
}

bool get_secret(ConfigMap& map, const char* key, const char* file_key, std::string& out) {
  const bool inline_value = map.has(key);
  const bool from_file = map.has(file_key);
  if (inline_value && from_file) {
    map.error(file_key, std::string("set either ") + key + " or " + file_key + ", not both");
    return true;
  }
  if (inline_value) {
    map.get(key, out);
    return true;
  }
  if (!from_file) return false;
  std::string path;
  map.get_path(file_key, path);
  if (path.empty()) return true;
  if (auto s = read_secret_file(path, out); !s) map.error(file_key, s.message());
  return true;
}

}  // namespace citywatch
