// Test helpers for agent/flow: a RecordSink that keeps what it is given, and a big-endian
// datagram builder for synthetic exports.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "common/record.h"
#include "common/record_sink.h"

namespace citywatch::agent::flow {

class VectorSink : public RecordSink {
 public:
  void add(const Record& r) override { records.push_back(r); }
  std::vector<FlowRecord> flows() const {
    std::vector<FlowRecord> out;
    for (const Record& r : records)
      if (const auto* f = std::get_if<FlowRecord>(&r.body)) out.push_back(*f);
    return out;
  }
  std::vector<Record> records;
};

class Bytes {
 public:
  Bytes& u8(std::uint64_t v) { return put(v, 1); }
  Bytes& u16(std::uint64_t v) { return put(v, 2); }
  Bytes& u32(std::uint64_t v) { return put(v, 4); }
  Bytes& u64(std::uint64_t v) { return put(v, 8); }
  Bytes& ip4(std::initializer_list<int> b) {
    for (int x : b) u8(static_cast<std::uint64_t>(x));
    return *this;
  }
  Bytes& raw(const std::vector<std::byte>& b) {
    data.insert(data.end(), b.begin(), b.end());
    return *this;
  }
  // Writes a 16-bit value at an earlier offset (set and message lengths).
  void patch16(std::size_t at, std::uint64_t v) {
    data[at] = static_cast<std::byte>(v >> 8);
    data[at + 1] = static_cast<std::byte>(v);
  }
  void patch32(std::size_t at, std::uint64_t v) {
    patch16(at, v >> 16);
    patch16(at + 2, v & 0xffff);
  }
  std::size_t size() const { return data.size(); }
  std::vector<std::byte> data;

 private:
  Bytes& put(std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) data.push_back(static_cast<std::byte>(v >> (8 * i)));
    return *this;
  }
};

inline IpAddr ip4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  const std::uint8_t x[4] = {a, b, c, d};
  return IpAddr::v4(x);
}

}  // namespace citywatch::agent::flow
