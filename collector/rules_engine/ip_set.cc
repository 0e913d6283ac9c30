#include "collector/rules_engine/ip_set.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <string>

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

// "10.1.0.0/16" from an aligned range.
std::string cidr_text(std::uint32_t first, std::uint32_t last) {
  const std::uint32_t host = last - first;
  int prefix = 32;
  for (std::uint32_t h = host; h != 0; h >>= 1) --prefix;
  const std::uint8_t b[4] = {
      static_cast<std::uint8_t>(first >> 24), static_cast<std::uint8_t>(first >> 16),
      static_cast<std::uint8_t>(first >> 8), static_cast<std::uint8_t>(first)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, b, buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix);
}

std::string cidr_text(IpSet::U128 first, IpSet::U128 last) {
  const IpSet::U128 host = last - first;
  int prefix = 128;
  for (IpSet::U128 h = host; h != 0; h >>= 1) --prefix;
  std::uint8_t b[16];
  for (int i = 15; i >= 0; --i) b[i] = static_cast<std::uint8_t>(first >> (8 * (15 - i)));
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, b, buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool parse_int(std::string_view s, int lo, int hi, int& out) {
  s = trim(s);
  int v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty() || v < lo || v > hi)
    return false;
  out = v;
  return true;
}

}  // namespace

bool parse_list_format(std::string_view text, ListFormat& out) {
  if (text == "plain")
    out = ListFormat::kPlain;
  else if (text == "spamhaus_drop")
    out = ListFormat::kSpamhausDrop;
  else if (text == "iprep")
    out = ListFormat::kIprep;
  else
    return false;
  return true;
}

const char* to_string(ListFormat f) {
  switch (f) {
    case ListFormat::kPlain:
      return "plain";
    case ListFormat::kSpamhausDrop:
      return "spamhaus_drop";
    case ListFormat::kIprep:
      return "iprep";
  }
  return "plain";
}

bool IpSet::add(std::string_view text, std::string_view reference) {
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
  std::uint32_t ref = kNoRef;
  const auto keep_ref = [&] {
    if (reference.empty()) return;
    ref = static_cast<std::uint32_t>(refs_.size());
    refs_.emplace_back(reference);
  };
  if (addr.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, bytes) != 1) return false;
    if (prefix == -1) prefix = 32;
    if (prefix < 0 || prefix > 32) return false;
    const std::uint32_t v = (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
                            (std::uint32_t{bytes[2]} << 8) | bytes[3];
    const std::uint32_t host = prefix == 0 ? ~0u : (prefix == 32 ? 0u : (~0u >> prefix));
    keep_ref();
    v4_.emplace_back(v & ~host, v | host);
    v4_entries_.push_back({v & ~host, v | host, 0, ref});
    return true;
  }
  if (inet_pton(AF_INET6, buf, bytes) != 1) return false;
  if (prefix == -1) prefix = 128;
  if (prefix < 0 || prefix > 128) return false;
  const U128 v = to_u128(bytes);
  const U128 all = ~U128{0};
  const U128 host = prefix == 0 ? all : (prefix == 128 ? U128{0} : (all >> prefix));
  keep_ref();
  v6_.emplace_back(v & ~host, v | host);
  v6_entries_.push_back({v & ~host, v | host, 0, ref});
  return true;
}

namespace {
// By first address; for the same first, the widest range first, so a walk backwards meets
// the most specific entry first.
template <typename E>
void index_entries(std::vector<E>& v) {
  std::sort(v.begin(), v.end(), [](const E& a, const E& b) {
    return a.first != b.first ? a.first < b.first : a.last > b.last;
  });
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i].max_last = i == 0 ? v[i].last : std::max(v[i - 1].max_last, v[i].last);
}
}  // namespace

void IpSet::build() {
  merge(v4_);
  merge(v6_);
  index_entries(v4_entries_);
  index_entries(v6_entries_);
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

template <typename T>
bool IpSet::lookup_in(const std::vector<Entry<T>>& v, T x, const IpSet& self, ListMatch& out) {
  // Entries are CIDR blocks, so those containing x are nested: the one with the largest
  // first address (and, for the same first, the narrowest) is the most specific. Walk back
  // from the last entry starting at or before x while some earlier entry may reach x.
  auto it = std::upper_bound(v.begin(), v.end(), x,
                             [](T value, const Entry<T>& e) { return value < e.first; });
  while (it != v.begin()) {
    --it;
    if (it->max_last < x) return false;
    if (it->last >= x) {
      out.entry = cidr_text(it->first, it->last);
      out.reference = it->ref == kNoRef ? std::string() : self.refs_[it->ref];
      return true;
    }
  }
  return false;
}

bool IpSet::lookup(const IpAddr& a, ListMatch& out) const {
  if (a.family == IpAddr::Family::kV4) {
    const std::uint8_t* b = a.bytes.data();
    const std::uint32_t v = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                            (std::uint32_t{b[2]} << 8) | b[3];
    return lookup_in(v4_entries_, v, *this, out);
  }
  if (a.family == IpAddr::Family::kV6)
    return lookup_in(v6_entries_, to_u128(a.bytes.data()), *this, out);
  return false;
}

Status IpSet::load_file(const std::string& file, IpSet& out, ListFormat format, int min_score) {
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
  const auto bad = [&](const std::string& what) {
    return Status::error(file + ":" + std::to_string(n) + ": " + what);
  };
  while (std::getline(in, line)) {
    ++n;
    if (line.size() > kMaxLine) return bad("line longer than 4096 bytes");
    std::string_view s = line;
    std::string_view reference;
    std::string ref_text;
    if (format == ListFormat::kSpamhausDrop) {
      // "1.10.16.0/20 ; SBL256894"; a line starting with ';' is a comment.
      if (auto semi = s.find(';'); semi != std::string_view::npos) {
        reference = trim(s.substr(semi + 1));
        s = s.substr(0, semi);
      }
    } else {
      if (auto hash = s.find('#'); hash != std::string_view::npos) s = s.substr(0, hash);
    }
    s = trim(s);
    if (s.empty()) continue;
    if (format == ListFormat::kIprep) {
      // "192.0.2.0/24,1,90": address, category (0-255), score (0-127).
      const auto c1 = s.find(',');
      const auto c2 = c1 == std::string_view::npos ? c1 : s.find(',', c1 + 1);
      int category = 0, score = 0;
      if (c2 == std::string_view::npos || s.find(',', c2 + 1) != std::string_view::npos)
        return bad("expected 'address,category,score' (Suricata iprep), got '" + std::string(s) +
                   "'");
      if (!parse_int(s.substr(c1 + 1, c2 - c1 - 1), 0, 255, category))
        return bad("category must be a number from 0 to 255, got '" +
                   std::string(trim(s.substr(c1 + 1, c2 - c1 - 1))) + "'");
      if (!parse_int(s.substr(c2 + 1), 0, 127, score))
        return bad("score must be a number from 0 to 127, got '" +
                   std::string(trim(s.substr(c2 + 1))) + "'");
      ref_text = "category " + std::to_string(category) + " score " + std::to_string(score);
      reference = ref_text;
      s = trim(s.substr(0, c1));
      if (score < min_score) {
        IpSet probe;  // still a valid address, or the line is an error
        if (!probe.add(s))
          return bad("expected an IP address or CIDR, got '" + std::string(s) + "'");
        continue;
      }
    }
    if (!out.add(s, reference))
      return bad("expected an IP address or CIDR, got '" + std::string(s) + "'");
  }
  out.build();
  return Status::ok();
}

}  // namespace citywatch::collector
