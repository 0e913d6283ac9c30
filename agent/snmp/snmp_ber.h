// A bounds-checked look at SNMP messages before net-snmp parses them.
//
// net-snmp 5.9.3 reads past a datagram whose inner lengths overstate what follows (the USM
// parameters of a v3 message are BER inside an OCTET STRING, parsed trusting their own
// lengths; found by snmp_trap_fuzz). Both the trap receiver and the poller hand it a datagram
// only when snmp_well_formed() passes it, and count the rest as malformed.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace citywatch::agent {

// A minimal BER reader: one TLV at a time, every length checked.
struct BerReader {
  const std::uint8_t* p;
  const std::uint8_t* end;
  // Reads a tag and length; on success `body` spans the value and the cursor moves past it.
  bool next(std::uint8_t want_tag, std::span<const std::uint8_t>& body);
};

// True if the datagram is one SNMP message whose BER lengths all fit inside what holds them
// (the USM parameters of a v3 message included), with no indefinite lengths or high tag
// numbers, at most 16 levels deep.
bool snmp_well_formed(std::span<const std::uint8_t> datagram);

}  // namespace citywatch::agent
