#include "collector/rules_engine/ip_set.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "tests/collector/rules_engine/test_records.h"

namespace citywatch::collector {
namespace {

using testing::ip;

TEST(IpSet, Ipv4RangeEdges) {
  IpSet s;
  ASSERT_TRUE(s.add("10.1.2.0/24"));
  ASSERT_TRUE(s.add("192.0.2.7"));
  ASSERT_TRUE(s.add("0.0.0.0/32"));
  s.build();
  EXPECT_FALSE(s.contains(ip("10.1.1.255")));
  EXPECT_TRUE(s.contains(ip("10.1.2.0")));
  EXPECT_TRUE(s.contains(ip("10.1.2.255")));
  EXPECT_FALSE(s.contains(ip("10.1.3.0")));
  EXPECT_TRUE(s.contains(ip("192.0.2.7")));
  EXPECT_FALSE(s.contains(ip("192.0.2.6")));
  EXPECT_FALSE(s.contains(ip("192.0.2.8")));
  EXPECT_TRUE(s.contains(ip("0.0.0.0")));
  EXPECT_FALSE(s.contains(ip("::a01:200"))) << "an IPv6 address never matches an IPv4 entry";
}

TEST(IpSet, Ipv6RangeEdgesAndFullRanges) {
  IpSet s;
  ASSERT_TRUE(s.add("2001:db8::/32"));
  ASSERT_TRUE(s.add("fe80::1"));
  ASSERT_TRUE(s.add("255.255.255.255/32"));
  s.build();
  EXPECT_FALSE(s.contains(ip("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_TRUE(s.contains(ip("2001:db8::")));
  EXPECT_TRUE(s.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(s.contains(ip("2001:db9::")));
  EXPECT_TRUE(s.contains(ip("fe80::1")));
  EXPECT_FALSE(s.contains(ip("fe80::2")));
  EXPECT_TRUE(s.contains(ip("255.255.255.255")));
  IpSet all;
  ASSERT_TRUE(all.add("0.0.0.0/0"));
  ASSERT_TRUE(all.add("::/0"));
  all.build();
  EXPECT_TRUE(all.contains(ip("1.2.3.4")));
  EXPECT_TRUE(all.contains(ip("ffff::1")));
}

TEST(IpSet, MergesOverlapsAndAdjacentRanges) {
  IpSet s;
  for (const char* c : {"10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/8", "11.0.0.0/8", "2001:db8::/33",
                        "2001:db8:8000::/33"})
    ASSERT_TRUE(s.add(c));
  s.build();
  EXPECT_EQ(s.v4_ranges(), 1u);  // 10/8 and 11/8 are adjacent
  EXPECT_EQ(s.v6_ranges(), 1u);
  EXPECT_TRUE(s.contains(ip("11.255.255.255")));
  EXPECT_FALSE(s.contains(ip("12.0.0.0")));
}

TEST(IpSet, RejectsMalformedEntries) {
  IpSet s;
  for (const char* bad :
       {"10.0.0.0/33", "10.0.0", "2001:db8::/129", "10.0.0.0/", "x", "10.0.0.0/8x", ""})
    EXPECT_FALSE(s.add(bad)) << bad;
}

TEST(IpSet, FileErrorsNameTheLine) {
  const auto path =
      std::filesystem::temp_directory_path() / ("ipset-test-" + std::to_string(getpid()));
  std::ofstream(path) << "# comment\n10.0.0.0/8\n\n  192.0.2.1   # trailing comment\nnot-an-ip\n";
  IpSet s;
  const Status st = IpSet::load_file(path.string(), s);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find(path.string() + ":5:"), std::string::npos) << st.message();
  std::filesystem::remove(path);
}

std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  const auto path =
      std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()));
  std::ofstream(path) << text;
  return path;
}

// Spamhaus DROP and DROPv6: "CIDR ; SBLnnn", ';' comments; matches at the range edges and
// names the entry and its SBL id (issue 13).
TEST(IpSet, SpamhausDropFormat) {
  const auto path = write_temp("drop",
                               "; Spamhaus DROP List 2026/12/03 - (c) 2026 The Spamhaus Project\n"
                               "; Last-Modified: Thu, 03 Dec 2026 08:00:00 GMT\n"
                               "1.10.16.0/20 ; SBL256894\n"
                               "1.19.0.0/16 ; SBL434604\n"
                               "2a06:e480::/29 ; SBL301771\n");
  IpSet s;
  ASSERT_TRUE(IpSet::load_file(path.string(), s, ListFormat::kSpamhausDrop).is_ok());
  std::filesystem::remove(path);
  EXPECT_EQ(s.entries(), 3u);
  EXPECT_FALSE(s.contains(ip("1.10.15.255")));
  EXPECT_TRUE(s.contains(ip("1.10.16.0")));
  EXPECT_TRUE(s.contains(ip("1.10.31.255")));
  EXPECT_FALSE(s.contains(ip("1.10.32.0")));
  EXPECT_FALSE(s.contains(ip("2a06:e47f:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_TRUE(s.contains(ip("2a06:e480::")));
  EXPECT_TRUE(s.contains(ip("2a06:e487:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(s.contains(ip("2a06:e488::")));
  ListMatch m;
  ASSERT_TRUE(s.lookup(ip("1.10.31.255"), m));
  EXPECT_EQ(m.entry, "1.10.16.0/20");
  EXPECT_EQ(m.reference, "SBL256894");
  ASSERT_TRUE(s.lookup(ip("2a06:e487::1"), m));
  EXPECT_EQ(m.entry, "2a06:e480::/29");
  EXPECT_EQ(m.reference, "SBL301771");
  EXPECT_FALSE(s.lookup(ip("1.10.32.0"), m));
}

// Suricata iprep CSV: address or CIDR, category, score; entries below min_score skipped.
TEST(IpSet, IprepFormatWithMinimumScore) {
  const auto path = write_temp("iprep",
                               "# ip,category,score\n"
                               "198.51.100.0/24,1,90\n"
                               "198.51.100.7,2,127\n"
                               "203.0.113.9,1,10\n"
                               "2001:db8:bad::/48,3,60\n");
  IpSet s;
  ASSERT_TRUE(IpSet::load_file(path.string(), s, ListFormat::kIprep, 50).is_ok());
  std::filesystem::remove(path);
  EXPECT_EQ(s.entries(), 3u);
  EXPECT_FALSE(s.contains(ip("203.0.113.9"))) << "score 10 is below min_score 50";
  EXPECT_TRUE(s.contains(ip("198.51.100.255")));
  EXPECT_FALSE(s.contains(ip("198.51.101.0")));
  EXPECT_TRUE(s.contains(ip("2001:db8:bad:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(s.contains(ip("2001:db8:bae::")));
  ListMatch m;
  ASSERT_TRUE(s.lookup(ip("198.51.100.7"), m));  // the /32 inside the /24: most specific
  EXPECT_EQ(m.entry, "198.51.100.7/32");
  EXPECT_EQ(m.reference, "category 2 score 127");
  ASSERT_TRUE(s.lookup(ip("198.51.100.8"), m));
  EXPECT_EQ(m.entry, "198.51.100.0/24");
  EXPECT_EQ(m.reference, "category 1 score 90");
}

// The most specific entry is found behind a wide one that starts earlier and ends later.
TEST(IpSet, LookupFindsTheMostSpecificNestedEntry) {
  IpSet s;
  for (const char* c : {"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.200.0.0/16", "0.0.0.0/0"})
    ASSERT_TRUE(s.add(c));
  s.build();
  ListMatch m;
  ASSERT_TRUE(s.lookup(ip("10.1.2.3"), m));
  EXPECT_EQ(m.entry, "10.1.2.0/24");
  ASSERT_TRUE(s.lookup(ip("10.1.3.3"), m));
  EXPECT_EQ(m.entry, "10.1.0.0/16");
  ASSERT_TRUE(s.lookup(ip("10.2.0.1"), m));
  EXPECT_EQ(m.entry, "10.0.0.0/8");
  ASSERT_TRUE(s.lookup(ip("11.0.0.1"), m));
  EXPECT_EQ(m.entry, "0.0.0.0/0");
}

// Each format's malformed line is named with FILE:LINE and what was expected.
TEST(IpSet, FeedErrorsNameTheLine) {
  struct Case {
    ListFormat format;
    const char* text;
    const char* want;
  };
  for (const Case& c : {
           Case{ListFormat::kSpamhausDrop, "; c\n1.10.16.0/20 ; SBL1\n1.10.16.0/33 ; SBL2\n",
                ":3: expected an IP address or CIDR"},
           Case{ListFormat::kIprep, "1.2.3.4,1,90\n1.2.3.5,1\n",
                ":2: expected 'address,category,score'"},
           Case{ListFormat::kIprep, "1.2.3.4,1,200\n", ":1: score must be a number from 0 to 127"},
           Case{ListFormat::kIprep, "1.2.3.4,x,20\n", ":1: category must be a number"},
           Case{ListFormat::kIprep, "1.2.3.400,1,2\n", ":1: expected an IP address or CIDR"},
       }) {
    const auto path = write_temp("feed-bad", c.text);
    IpSet s;
    const Status st = IpSet::load_file(path.string(), s, c.format, 5);
    std::filesystem::remove(path);
    ASSERT_FALSE(st.is_ok()) << c.text;
    EXPECT_NE(st.message().find(path.string() + c.want), std::string::npos) << st.message();
  }
  ListFormat f;
  EXPECT_TRUE(parse_list_format("spamhaus_drop", f));
  EXPECT_EQ(f, ListFormat::kSpamhausDrop);
  EXPECT_FALSE(parse_list_format("csv", f));
}

// A path to a device, or a line without end, is an error and never an endless read.
TEST(IpSet, RefusesDevicesAndEndlessLines) {
  IpSet s;
  Status st = IpSet::load_file("/dev/zero", s);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("not a regular file"), std::string::npos) << st.message();
  const auto path =
      std::filesystem::temp_directory_path() / ("ipset-long-" + std::to_string(getpid()));
  std::ofstream(path) << "10.0.0.1\n" << std::string(5000, '1') << "\n";
  st = IpSet::load_file(path.string(), s);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find(path.string() + ":2: line longer"), std::string::npos)
      << st.message();
  std::filesystem::remove(path);
}

// 100,000 random CIDRs (half IPv4, half IPv6) from a file; every lookup agrees with a
// linear scan of the entries. Load time is reported by bench/rules_bench, not asserted.
TEST(IpSet, HundredThousandEntriesMatchALinearScan) {
  std::mt19937_64 rng(42);
  struct V4 {
    std::uint32_t lo, hi;
  };
  std::vector<V4> v4;
  const auto path =
      std::filesystem::temp_directory_path() / ("ipset-100k-" + std::to_string(getpid()));
  {
    std::ofstream out(path);
    for (int i = 0; i < 100000; ++i) {
      if (i % 2 == 0) {
        const std::uint32_t a = static_cast<std::uint32_t>(rng());
        const int len = 16 + static_cast<int>(rng() % 17);
        const std::uint32_t host = len == 32 ? 0 : (~0u >> len);
        v4.push_back({a & ~host, a | host});
        out << (a >> 24) << '.' << ((a >> 16) & 255) << '.' << ((a >> 8) & 255) << '.' << (a & 255)
            << '/' << len << '\n';
      } else {
        char buf[64];
        std::snprintf(buf, sizeof buf, "2001:db8:%x:%x::/64", static_cast<unsigned>(rng() & 0xffff),
                      static_cast<unsigned>(rng() & 0xffff));
        out << buf << '\n';
      }
    }
  }
  IpSet s;
  ASSERT_TRUE(IpSet::load_file(path.string(), s).is_ok());
  std::filesystem::remove(path);
  auto linear = [&](std::uint32_t x) {
    for (const V4& r : v4)
      if (x >= r.lo && x <= r.hi) return true;
    return false;
  };
  auto addr = [](std::uint32_t x) {
    std::uint8_t b[4] = {static_cast<std::uint8_t>(x >> 24), static_cast<std::uint8_t>(x >> 16),
                         static_cast<std::uint8_t>(x >> 8), static_cast<std::uint8_t>(x)};
    return IpAddr::v4(b);
  };
  int hits = 0;
  for (int i = 0; i < 2000; ++i) {
    // Probe the edges of random entries and random addresses.
    const V4& r = v4[rng() % v4.size()];
    for (std::uint32_t x : {r.lo, r.hi, r.lo - 1, r.hi + 1, static_cast<std::uint32_t>(rng())}) {
      const bool want = linear(x);
      EXPECT_EQ(s.contains(addr(x)), want) << x;
      hits += want;
    }
  }
  EXPECT_GT(hits, 4000);
}

}  // namespace
}  // namespace citywatch::collector
