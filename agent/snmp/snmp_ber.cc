#include "agent/snmp/snmp_ber.h"

namespace citywatch::agent {

bool BerReader::next(std::uint8_t want_tag, std::span<const std::uint8_t>& body) {
  if (end - p < 2 || *p != want_tag) return false;
  ++p;
  std::size_t len = *p++;
  if (len & 0x80) {
    const std::size_t n = len & 0x7f;
    if (n == 0 || n > 4 || static_cast<std::size_t>(end - p) < n) return false;
    len = 0;
    for (std::size_t i = 0; i < n; ++i) len = (len << 8) | *p++;
  }
  if (static_cast<std::size_t>(end - p) < len) return false;
  body = {p, len};
  p += len;
  return true;
}

namespace {

// True if `d` is a run of definite-length, low-tag-number BER TLVs that tile it exactly, each
// constructed one (SEQUENCE, the PDU tags) recursively so, at most `depth_left` levels deep.
bool ber_tiles(std::span<const std::uint8_t> d, int depth_left) {
  BerReader b{d.data(), d.data() + d.size()};
  while (b.p < b.end) {
    const std::uint8_t tag = *b.p;
    if ((tag & 0x1f) == 0x1f) return false;               // high tag numbers: not in SNMP
    if (b.p + 1 < b.end && b.p[1] == 0x80) return false;  // indefinite length: not in SNMP
    std::span<const std::uint8_t> body;
    if (!b.next(tag, body)) return false;
    if ((tag & 0x20) != 0 && (depth_left == 0 || !ber_tiles(body, depth_left - 1))) return false;
  }
  return true;
}

}  // namespace

bool snmp_well_formed(std::span<const std::uint8_t> d) {
  // SNMP messages are a few levels deep (message, PDU, varbind list, varbind); 16 is ample.
  constexpr int kMaxDepth = 16;
  BerReader outer{d.data(), d.data() + d.size()};
  std::span<const std::uint8_t> msg;
  if (!outer.next(0x30, msg) || !ber_tiles(msg, kMaxDepth)) return false;
  // SNMPv3: the USM parameters are BER inside an OCTET STRING, which net-snmp parses
  // trusting their inner lengths; they must tile too.
  BerReader m{msg.data(), msg.data() + msg.size()};
  std::span<const std::uint8_t> version, global, params;
  if (!m.next(0x02, version) || version.size() != 1 || version[0] != 3) return true;
  if (!m.next(0x30, global) || !m.next(0x04, params)) return false;
  return ber_tiles(params, kMaxDepth);
}

}  // namespace citywatch::agent
