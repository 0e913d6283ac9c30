// The hashes of a packet's addresses, computed once per packet and shared by the flow meter
// (its table key) and the packet-event extractor (connection attempts, event budgets).
//
// Each address is folded to 64 bits with one 128-bit multiply (wyhash's mum), the two
// independently. Every key then takes the two folds, in the order its meaning needs (client
// then server, source then destination), and its own fields, in one more multiply: a TCP SYN
// costs 2 + 4 multiplies for the meter's key, both directions of its connection attempt and
// its event budget, where hashing each key from the addresses took 12.
//
// Each multiply keeps its inputs in its result (wyhash's "condom" mode), so no input that
// zeroes one factor makes a whole class of keys hash alike. Not keyed, as before: traffic
// built to collide costs probe length in the meter and budget slots in the extractor (counted
// as key evictions), never correctness: the meter compares whole keys.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/record.h"

namespace citywatch::agent {

namespace packet_hash {

// The high and low halves of a 128-bit product folded together, with both factors.
inline std::uint64_t mum(std::uint64_t a, std::uint64_t b) {
  __extension__ using u128 = unsigned __int128;
  const u128 r = static_cast<u128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64) ^ a ^ b;
}

inline std::uint64_t fold(const IpAddr& a) {
  std::uint64_t lo, hi;
  std::memcpy(&lo, a.bytes.data(), 8);
  std::memcpy(&hi, a.bytes.data() + 8, 8);
  return mum(lo ^ 0xa0761d6478bd642full, hi ^ 0xe7037ed1a0b428dbull);
}

// An ordered pair of folds and up to 64 bits more. `first` and `second` enter through
// different constants, so (a, b) and (b, a) hash apart.
inline std::uint64_t pair(std::uint64_t first, std::uint64_t second, std::uint64_t extra) {
  return mum(first ^ extra ^ 0x8ebc6af09c88c6e3ull, second ^ 0x589965cc75374cc3ull);
}

}  // namespace packet_hash

struct AddrHashes {
  std::uint64_t src = 0;
  std::uint64_t dst = 0;
};

inline AddrHashes addr_hashes(const IpAddr& src, const IpAddr& dst) {
  return {packet_hash::fold(src), packet_hash::fold(dst)};
}

}  // namespace citywatch::agent
