#include "agent/capture/dns_decoder.h"

namespace citywatch::agent {
namespace {

constexpr std::size_t kHeader = 12;  // RFC 1035 section 4.1.1

std::uint16_t u16(const std::uint8_t* p, std::size_t off) {
  return static_cast<std::uint16_t>(p[off] << 8 | p[off + 1]);
}

}  // namespace

const char* to_string(DnsResult r) {
  switch (r) {
    case DnsResult::kOk:
      return "ok";
    case DnsResult::kTruncatedHeader:
      return "truncated_header";
    case DnsResult::kNoQuestion:
      return "no_question";
    case DnsResult::kTruncatedName:
      return "truncated_name";
    case DnsResult::kBadLabel:
      return "bad_label";
    case DnsResult::kNameTooLong:
      return "name_too_long";
    case DnsResult::kBadPointer:
      return "bad_pointer";
    case DnsResult::kTruncatedQuestion:
      return "truncated_question";
    case DnsResult::kCount:
      break;
  }
  return "unknown";
}

DnsResult decode_dns(std::span<const std::byte> msg, DnsMessage& out) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(msg.data());
  const std::size_t n = msg.size();
  out.name_len = 0;
  if (n < kHeader) return DnsResult::kTruncatedHeader;
  out.id = u16(p, 0);
  out.response = (p[2] & 0x80) != 0;
  out.opcode = (p[2] >> 3) & 0x0f;
  out.rcode = p[3] & 0x0f;
  out.qdcount = u16(p, 4);
  out.ancount = u16(p, 6);
  out.qtype = out.qclass = 0;
  if (out.qdcount == 0) return DnsResult::kNoQuestion;

  // RFC 1035 section 4.1.4: a sequence of labels ending in a zero octet or a pointer.
  std::size_t pos = kHeader;
  std::size_t after_name = 0;  // where the question continues once the first pointer is taken
  std::size_t wire_len = 0;    // octets of the uncompressed name, length octets included
  std::size_t len = 0;
  int pointers = 0;
  std::size_t segment = pos;  // where the labels being read began (the name, or a jump target)
  for (;;) {
    if (pos >= n) return DnsResult::kTruncatedName;
    const std::uint8_t b = p[pos];
    if (b == 0) {
      if (after_name == 0) after_name = pos + 1;
      break;
    }
    if ((b & 0xc0) == 0xc0) {
      if (pos + 1 >= n) return DnsResult::kTruncatedName;
      const std::size_t target = std::size_t{b & 0x3fu} << 8 | p[pos + 1];
      // Each jump lands strictly before where the labels it ends began, so jump targets
      // strictly decrease and no loop can last; the count is a second bound.
      if (target >= segment || ++pointers > kMaxDnsPointers) return DnsResult::kBadPointer;
      if (after_name == 0) after_name = pos + 2;
      pos = segment = target;
      continue;
    }
    if ((b & 0xc0) != 0) return DnsResult::kBadLabel;
    wire_len += 1 + b;
    if (wire_len + 1 > kMaxDnsName) return DnsResult::kNameTooLong;
    if (pos + 1 + b > n) return DnsResult::kTruncatedName;
    if (len != 0) out.name_buf[len++] = '.';
    for (std::size_t i = 0; i < b; ++i) {
      const std::uint8_t c = p[pos + 1 + i];
      out.name_buf[len++] = (c > 0x20 && c < 0x7f && c != '.') ? static_cast<char>(c) : '?';
    }
    pos += 1 + b;
  }
  out.name_len = static_cast<std::uint8_t>(len);
  if (after_name + 4 > n) return DnsResult::kTruncatedQuestion;
  out.qtype = u16(p, after_name);
  out.qclass = u16(p, after_name + 2);
  return DnsResult::kOk;
}

}  // namespace citywatch::agent
