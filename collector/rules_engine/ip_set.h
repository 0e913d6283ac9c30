// IpSet: a set of IPv4 and IPv6 addresses and CIDR blocks (blocklists, allowlists, the city's
// own networks) with a lookup fast enough for every record.
//
// Entries are kept as sorted, merged, non-overlapping [first, last] ranges, one vector per
// family, so contains() is a binary search with no allocation. A 100,000-CIDR list costs
// about 2.4 MB (IPv4) or 9.6 MB (IPv6) with the entries kept for lookup(). The entries as listed
// are kept beside them, with the feed's reference, so an alert can name the entry an address
// matched. Built once at load or reload (control path); a file with a bad line is rejected with
// FILE:LINE.
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

// The file formats of address lists and threat feeds (docs/rules.md, "Lists and feeds").
enum class ListFormat : std::uint8_t {
  kPlain,         // one IP or CIDR per line, '#' comments
  kSpamhausDrop,  // Spamhaus DROP / DROPv6: "CIDR ; SBLnnn", ';' comments
  kIprep,         // Suricata iprep CSV: "IP-or-CIDR,category,score", '#' comments
};
bool parse_list_format(std::string_view text, ListFormat& out);
const char* to_string(ListFormat f);

// The list entry an address matched: its CIDR and, for feeds, the reference the feed gives
// it (a Spamhaus SBL id; "category 1 score 90" for iprep).
struct ListMatch {
  std::string entry;
  std::string reference;
};

class IpSet {
 public:
  __extension__ typedef unsigned __int128 U128;  // GCC/Clang: ranges compare as one integer

  // Adds "10.0.0.0/8", "192.0.2.7", "2001:db8::/32" or "2001:db8::1" with the feed's
  // reference for it (may be empty). False if malformed.
  bool add(std::string_view text, std::string_view reference = {});
  // Sorts and merges; must be called after the last add() and before contains().
  void build();

  bool contains(const IpAddr& a) const;
  // The most specific entry containing the address (for the alert; slower than contains()).
  bool lookup(const IpAddr& a, ListMatch& out) const;
  std::size_t v4_ranges() const { return v4_.size(); }
  std::size_t v6_ranges() const { return v6_.size(); }
  std::size_t entries() const { return v4_entries_.size() + v6_entries_.size(); }
  bool empty() const { return v4_.empty() && v6_.empty(); }

  // One entry per line in the given format; blank lines and comments ignored. A malformed
  // line rejects the file with FILE:LINE. iprep entries scoring below min_score are skipped.
  static Status load_file(const std::string& file, IpSet& out,
                          ListFormat format = ListFormat::kPlain, int min_score = 0);

 private:
  template <typename T>
  struct Entry {
    T first;
    T last;
    T max_last;         // the largest `last` of this and every earlier entry (for lookup)
    std::uint32_t ref;  // index into refs_, or kNoRef
  };
  static constexpr std::uint32_t kNoRef = ~0u;
  template <typename T>
  static bool lookup_in(const std::vector<Entry<T>>& v, T x, const IpSet& self, ListMatch& out);

  std::vector<std::pair<std::uint32_t, std::uint32_t>> v4_;  // merged: contains()
  std::vector<std::pair<U128, U128>> v6_;
  std::vector<Entry<std::uint32_t>> v4_entries_;  // as listed, by first: lookup()
  std::vector<Entry<U128>> v6_entries_;
  std::vector<std::string> refs_;
};

}  // namespace citywatch::collector
