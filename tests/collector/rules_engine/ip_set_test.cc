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
