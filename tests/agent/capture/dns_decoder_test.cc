#include "agent/capture/dns_decoder.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace citywatch::agent {
namespace {

std::vector<std::byte> bytes(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int x : v) out.push_back(static_cast<std::byte>(x));
  return out;
}
void put_name(std::vector<std::byte>& m, const std::string& dotted) {
  std::size_t start = 0;
  while (start <= dotted.size()) {
    std::size_t dot = dotted.find('.', start);
    if (dot == std::string::npos) dot = dotted.size();
    m.push_back(static_cast<std::byte>(dot - start));
    for (std::size_t i = start; i < dot; ++i) m.push_back(static_cast<std::byte>(dotted[i]));
    start = dot + 1;
  }
  m.push_back(std::byte{0});
}
// Header (RFC 1035 section 4.1.1): id 0x1234, flags, QDCOUNT 1.
std::vector<std::byte> header(int flags_hi, int flags_lo) {
  return bytes({0x12, 0x34, flags_hi, flags_lo, 0, 1, 0, 0, 0, 0, 0, 0});
}

TEST(DnsDecoder, Query) {
  auto m = header(0x01, 0x00);
  put_name(m, "aGVsbG8.city.example");
  for (auto b : bytes({0, 16, 0, 1})) m.push_back(b);
  DnsMessage d;
  ASSERT_EQ(decode_dns(m, d), DnsResult::kOk);
  EXPECT_FALSE(d.response);
  EXPECT_EQ(d.id, 0x1234);
  EXPECT_EQ(d.name(), "aGVsbG8.city.example");
  EXPECT_EQ(d.qtype, 16);
  EXPECT_EQ(d.qclass, 1);
}

TEST(DnsDecoder, NxdomainResponseAndPointerLoop) {
  std::vector<std::byte> msg = header(0x81, 0x83);
  for (auto b : bytes({3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1}))
    msg.push_back(b);
  DnsMessage d;
  ASSERT_EQ(decode_dns(msg, d), DnsResult::kOk);
  EXPECT_TRUE(d.response);
  EXPECT_EQ(d.rcode, 3);
  EXPECT_EQ(d.name(), "www.example");

  // "a" then a pointer back to the label "a" itself: a loop, refused.
  std::vector<std::byte> ptr = header(0x01, 0x00);
  for (auto b : bytes({1, 'a', 0xc0, 12})) ptr.push_back(b);
  EXPECT_EQ(decode_dns(ptr, d), DnsResult::kBadPointer);
}

TEST(DnsDecoder, FollowsABackwardPointer) {
  // The header's first bytes double as the label "x" (id 0x0178, flags 0): the question is
  // "www" and a pointer to offset 0.
  std::vector<std::byte> m = bytes({1, 'x', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0});
  for (auto b : bytes({3, 'w', 'w', 'w', 0xc0, 0, 0, 28, 0, 1})) m.push_back(b);
  DnsMessage d;
  ASSERT_EQ(decode_dns(m, d), DnsResult::kOk);
  EXPECT_EQ(d.name(), "www.x");
  EXPECT_EQ(d.qtype, 28);
}

TEST(DnsDecoder, PointerMustGoBackward) {
  std::vector<std::byte> m = header(0x01, 0x00);
  for (auto b : bytes({0xc0, 14, 1, 'x', 0, 0, 1, 0, 1})) m.push_back(b);  // forward
  DnsMessage d;
  EXPECT_EQ(decode_dns(m, d), DnsResult::kBadPointer);
  std::vector<std::byte> self = header(0x01, 0x00);
  for (auto b : bytes({0xc0, 12, 0, 1, 0, 1})) self.push_back(b);  // to itself
  EXPECT_EQ(decode_dns(self, d), DnsResult::kBadPointer);
}

TEST(DnsDecoder, BackwardPointerIntoHeaderIsFollowedSafely) {
  // A pointer to offset 0 reads the header bytes as labels: bounded, never a crash.
  std::vector<std::byte> m = bytes({0, 0, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 1, 0, 1});
  DnsMessage d;
  EXPECT_EQ(decode_dns(m, d), DnsResult::kOk);  // offset 0 holds a zero octet: the root
  EXPECT_EQ(d.name(), "");
}

TEST(DnsDecoder, MalformedInputsAreNamed) {
  DnsMessage d;
  EXPECT_EQ(decode_dns(bytes({1, 2, 3}), d), DnsResult::kTruncatedHeader);
  auto none = bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(decode_dns(none, d), DnsResult::kNoQuestion);
  auto label = header(0x01, 0);
  label.push_back(std::byte{0x40});
  EXPECT_EQ(decode_dns(label, d), DnsResult::kBadLabel);
  auto cut = header(0x01, 0);
  for (auto b : bytes({5, 'a', 'b'})) cut.push_back(b);
  EXPECT_EQ(decode_dns(cut, d), DnsResult::kTruncatedName);
  auto noq = header(0x01, 0);
  put_name(noq, "a.b");
  noq.push_back(std::byte{0});
  EXPECT_EQ(decode_dns(noq, d), DnsResult::kTruncatedQuestion);
  auto longname = header(0x01, 0);
  for (int i = 0; i < 5; ++i) {
    longname.push_back(std::byte{63});
    for (int j = 0; j < 63; ++j) longname.push_back(std::byte{'x'});
  }
  longname.push_back(std::byte{0});
  EXPECT_EQ(decode_dns(longname, d), DnsResult::kNameTooLong);
  std::set<std::string> names;
  for (std::size_t i = 0; i < kDnsResultCount; ++i)
    names.insert(to_string(static_cast<DnsResult>(i)));
  EXPECT_EQ(names.size(), kDnsResultCount);
  EXPECT_EQ(names.count("unknown"), 0u);
}

TEST(DnsDecoder, EveryPrefixIsSafe) {
  auto m = header(0x01, 0x00);
  put_name(m, "a.bb.ccc.example");
  for (auto b : bytes({0, 1, 0, 1})) m.push_back(b);
  DnsMessage d;
  for (std::size_t n = 0; n < m.size(); ++n)
    EXPECT_NE(decode_dns(std::span<const std::byte>(m).first(n), d), DnsResult::kOk) << n;
  EXPECT_EQ(decode_dns(m, d), DnsResult::kOk);
}

}  // namespace
}  // namespace citywatch::agent
