#include "collector/rules_engine/ip_set.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>

namespace citywatch::collector {
namespace {

template <typename T>
void merge(std::vector<std::pair<T, T>>& v) {
  std::sort(v.begin(), v.end());
  std::size_t out = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    // Adjacent ranges merge too: last + 1 == first (no overflow: last < first here).
    if (out > 0 &&
        (v[i].first <= v[out - 1].second ||
         (v[out - 1].second != static_cast<T>(~T{0}) && v[i].first == v[out - 1].second + 1))) {
      v[out - 1].second = std::max(v[out - 1].second, v[i].second);
    } else {
      v[out++] = v[i];
    }
  }
  v.resize(out);
}

template <typename T>
bool find(const std::vector<std::pair<T, T>>& v, T x) {
  // First range starting after x; the one before it is the only candidate.
  auto it = std::upper_bound(v.begin(), v.end(), x,
                             [](T value, const std::pair<T, T>& r) { return value < r.first; });
  if (it == v.begin()) return false;
  --it;
  return x <= it->second;
}

IpSet::U128 to_u128(const std::uint8_t* p) {
  IpSet::U128 v = 0;
  for (int i = 0; i < 16; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

bool IpSet::add(std::string_view text) {
  std::string_view addr = text;
  int prefix = -1;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    const std::string_view p = text.substr(slash + 1);
    int n = 0;
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), n);
    if (ec != std::errc() || ptr != p.data() + p.size() || p.empty()) return false;
    prefix = n;
  }
  char buf[INET6_ADDRSTRLEN + 1];
  if (addr.empty() || addr.size() >= sizeof(buf)) return false;
  addr.copy(buf, addr.size());
  buf[addr.size()] = '\0';
  std::uint8_t bytes[16];
  if (addr.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, bytes) != 1) return false;
    if (prefix == -1) prefix = 32;
    if (prefix < 0 || prefix > 32) return false;
    const std::uint32_t v = (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
                            (std::uint32_t{bytes[2]} << 8) | bytes[3];
    const std::uint32_t host = prefix == 0 ? ~0u : (prefix == 32 ? 0u : (~0u >> prefix));
    v4_.emplace_back(v & ~host, v | host);
    return true;
  }
  if (inet_pton(AF_INET6, buf, bytes) != 1) return false;
  if (prefix == -1) prefix = 128;
  if (prefix < 0 || prefix > 128) return false;
  const U128 v = to_u128(bytes);
  const U128 all = ~U128{0};
  const U128 host = prefix == 0 ? all : (prefix == 128 ? U128{0} : (all >> prefix));
  v6_.emplace_back(v & ~host, v | host);
  return true;
}

void IpSet::build() {
  merge(v4_);
  merge(v6_);
}

bool IpSet::contains(const IpAddr& a) const {
  if (a.family == IpAddr::Family::kV4) {
    const std::uint8_t* b = a.bytes.data();
    const std::uint32_t v = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                            (std::uint32_t{b[2]} << 8) | b[3];
    return find(v4_, v);
  }
  if (a.family == IpAddr::Family::kV6) return find(v6_, to_u128(a.bytes.data()));
  return false;
}

Status IpSet::load_file(const std::string& file, IpSet& out) {
  // A list is a regular file of bounded size and line length: a path to /dev/zero, a FIFO
  // or a runaway file must be a clear error, not a collector that reads forever.
  constexpr std::uintmax_t kMaxBytes = 64u << 20;
  constexpr std::size_t kMaxLine = 4096;
  std::error_code ec;
  const auto st = std::filesystem::status(file, ec);
  if (ec || !std::filesystem::exists(st))
    return Status::error(file + ": cannot open the list file");
  if (!std::filesystem::is_regular_file(st))
    return Status::error(file + ": not a regular file (a list is a text file)");
  if (std::filesystem::file_size(file, ec) > kMaxBytes || ec)
    return Status::error(file + ": larger than 64 MiB; split it or check it is the right file");
  std::ifstream in(file);
  if (!in) return Status::error(file + ": cannot open the list file");
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.size() > kMaxLine)
      return Status::error(file + ":" + std::to_string(n) + ": line longer than 4096 bytes");
    std::string_view s = line;
    if (auto hash = s.find('#'); hash != std::string_view::npos) s = s.substr(0, hash);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
      s.remove_suffix(1);
    if (s.empty()) continue;
    if (!out.add(s))
      return Status::error(file + ":" + std::to_string(n) +
                           ": expected an IP address or CIDR, got '" + std::string(s) + "'");
  }
  out.build();
  return Status::ok();
}

}  // namespace citywatch::collector
