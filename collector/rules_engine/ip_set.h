// IpSet: a set of IPv4 and IPv6 addresses and CIDR blocks (blocklists, allowlists, the city's
// own networks) with a lookup fast enough for every record.
//
// Entries are kept as sorted, merged, non-overlapping [first, last] ranges, one vector per
// family, so contains() is a binary search with no allocation and a 100,000-CIDR list costs
// 1.6 MB (IPv4) or 3.2 MB (IPv6). Built once at load or reload (control path); a file with a
// bad line is rejected with FILE:LINE.
//
// Thread-safety: immutable after build; contains() may be called from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/record.h"
#include "common/status.h"

namespace citywatch::collector {

class IpSet {
 public:
  __extension__ typedef unsigned __int128 U128;  // GCC/Clang: ranges compare as one integer

  // Adds "10.0.0.0/8", "192.0.2.7", "2001:db8::/32" or "2001:db8::1". False if malformed.
  bool add(std::string_view text);
  // Sorts and merges; must be called after the last add() and before contains().
  void build();

  bool contains(const IpAddr& a) const;
  std::size_t v4_ranges() const { return v4_.size(); }
  std::size_t v6_ranges() const { return v6_.size(); }
  bool empty() const { return v4_.empty() && v6_.empty(); }

  // One entry per line; '#' starts a comment; blank lines ignored. Errors name FILE:LINE.
  static Status load_file(const std::string& file, IpSet& out);

 private:
  std::vector<std::pair<std::uint32_t, std::uint32_t>> v4_;
  std::vector<std::pair<U128, U128>> v6_;
};

}  // namespace citywatch::collector
