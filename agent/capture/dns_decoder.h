// DNS decoder: reads the header and the first question of a DNS message (RFC 1035 section
// 4.1) for the packet-event extractor: query or response, response code, query name and type.
//
// decode_dns() is on the data path: it reads only the span it is given, checks every bound
// before every read, never allocates and never throws. Compression pointers (RFC 1035
// section 4.1.4) are followed with loop protection: a pointer must point strictly before
// the labels it ends (so successive targets strictly decrease) and at most kMaxDnsPointers
// are followed, so a hostile message cannot make it spin. Answer records are not read.
//
// Thread-safety: stateless; safe from any thread. DnsMessage is a caller-owned plain value.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace citywatch::agent {

enum class DnsResult : std::uint8_t {
  kOk = 0,
  kTruncatedHeader,    // shorter than the 12-byte header
  kNoQuestion,         // QDCOUNT is 0 (nothing to report)
  kTruncatedName,      // the question name runs past the message
  kBadLabel,           // a label type other than 0b00 (length) or 0b11 (pointer)
  kNameTooLong,        // more than 255 octets (RFC 1035 section 2.3.4)
  kBadPointer,         // a pointer forward, to itself, or past kMaxDnsPointers
  kTruncatedQuestion,  // QTYPE/QCLASS cut short
  kCount,
};

inline constexpr std::size_t kDnsResultCount = static_cast<std::size_t>(DnsResult::kCount);
inline constexpr int kMaxDnsPointers = 16;
inline constexpr std::size_t kMaxDnsName = 255;

const char* to_string(DnsResult r);

struct DnsMessage {
  std::uint16_t id = 0;
  bool response = false;  // QR bit
  std::uint8_t opcode = 0;
  std::uint8_t rcode = 0;  // 3 = NXDOMAIN (RFC 1035 section 4.1.1)
  std::uint16_t qdcount = 0;
  std::uint16_t ancount = 0;
  std::uint16_t qtype = 0;
  std::uint16_t qclass = 0;
  // First question's name in dotted form without the final dot ("" for the root). Bytes
  // outside printable ASCII, and dots inside a label, are written as '?'.
  std::array<char, kMaxDnsName> name_buf{};
  std::uint8_t name_len = 0;
  std::string_view name() const { return {name_buf.data(), name_len}; }
};

// Decodes the DNS message in `msg` (the UDP payload; for TCP, after the 2-byte length).
DnsResult decode_dns(std::span<const std::byte> msg, DnsMessage& out);

}  // namespace citywatch::agent
