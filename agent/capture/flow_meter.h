// Flow meter: aggregates decoded packets into unidirectional flows keyed by (src, dst, src
// port, dst port, protocol, vlan), as softflowd does, and emits a FlowRecord for each flow
// that ends: idle timeout, active timeout (long flows are split), TCP FIN or RST, eviction
// when the table is full, or flush() at end of input.
//
// Memory is fixed at construction (zero pages, faulted in as flows arrive; common/zeroed_array.h):
// an open-addressing hash table (power of two, at least twice max_flows, linear probing with
// backward-shift deletion; each 4-byte slot holds the entry index and a tag from the key's hash)
// indexing a pool of max_flows entries, which sit on two intrusive lists: by last packet (idle
// expiry and eviction) and by first packet (active expiry). add() and advance() never allocate and
// cost O(1) per packet and per expired flow. Time is whatever the caller passes (packet time
// offline, wall time live) and must not go backwards by much: expiry walks the lists in order.
//
// Ownership: one FlowMeter per capture, owned by the capture loop. Thread-safety: none; all
// calls, including the Emit callback (which must not call back into the meter), happen on
// the caller's thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_hash.h"
#include "common/record.h"
#include "common/zeroed_array.h"

namespace citywatch::agent {

struct FlowMeterConfig {
  std::int64_t idle_timeout_ns = 15'000'000'000;    // no packet for this long: flow ends
  std::int64_t active_timeout_ns = 60'000'000'000;  // flows older than this are split
  std::size_t max_flows = 262144;                   // table full: least recently seen evicted

  bool operator==(const FlowMeterConfig&) const = default;
};

struct FlowMeterStats {
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  std::uint64_t flows_created = 0;
  std::uint64_t flows_expired_idle = 0;
  std::uint64_t flows_expired_active = 0;
  std::uint64_t flows_ended_tcp = 0;
  std::uint64_t flows_evicted = 0;  // table full
  std::uint64_t flows_flushed = 0;
  std::size_t active_flows = 0;
  // Totals over several meters (one per capture source).
  FlowMeterStats& operator+=(const FlowMeterStats& o) {
    packets += o.packets;
    bytes += o.bytes;
    flows_created += o.flows_created;
    flows_expired_idle += o.flows_expired_idle;
    flows_expired_active += o.flows_expired_active;
    flows_ended_tcp += o.flows_ended_tcp;
    flows_evicted += o.flows_evicted;
    flows_flushed += o.flows_flushed;
    active_flows += o.active_flows;
    return *this;
  }
};

class FlowMeter {
 public:
  using Emit = std::function<void(const FlowRecord&)>;  // each finished flow, caller's thread

  FlowMeter(FlowMeterConfig cfg, Emit emit);
  FlowMeter(const FlowMeter&) = delete;
  FlowMeter& operator=(const FlowMeter&) = delete;

  // What add() needs of a packet, hashed once (from the address hashes the packet-event
  // extractor uses too, packet_hash.h). Capture loops prepare a packet a few packets before
  // they add it (MeterPipeline, meter_frame.h): prepare() prefetches the packet's table slot
  // and prefetch_entry() its flow, so add() rarely waits for memory.
  struct Prepared;
  void prepare(const DecodedPacket& p, const AddrHashes& h, Prepared& out) const;
  void prefetch_entry(const Prepared& x) const;
  void add(const Prepared& x, std::int64_t ts_ns);

  // Meters one IP packet (decode_packet() returned kOk); non-IP packets are the caller's to
  // skip. A TCP packet with FIN or RST ends its flow at once, that packet included.
  void add(const DecodedPacket& p, std::int64_t ts_ns);
  // Expires flows idle for idle_timeout_ns or older than active_timeout_ns at now_ns. Call
  // periodically: with packet time offline, with wall time live.
  void advance(std::int64_t now_ns);
  // Emits every remaining flow (end of file, shutdown).
  void flush();

  const FlowMeterStats& stats() const { return stats_; }
  const FlowMeterConfig& config() const { return cfg_; }

  // Memory per active flow (pool entry); the hash table adds 8 to 16 bytes per flow.
  static std::size_t entry_size();

  // 40 bytes, no padding, so keys compare and hash as raw bytes.
  struct Key {
    std::array<std::uint8_t, 16> src;
    std::array<std::uint8_t, 16> dst;
    std::uint16_t src_port;
    std::uint16_t dst_port;
    std::uint16_t vlan;
    std::uint8_t protocol;
    std::uint8_t family;  // IpAddr::Family
  };
  struct Prepared {
    Key key;
    std::uint32_t hash;
    std::uint32_t ip_bytes;
    std::uint8_t tcp_flags;
  };
  struct Entry {
    Key key;
    std::int64_t start_ns;
    std::int64_t last_ns;
    std::uint64_t packets;
    std::uint64_t bytes;
    std::uint32_t hash;
    std::uint32_t lru_prev, lru_next;  // by last packet; lru_next doubles as the free list
    std::uint32_t age_prev, age_next;  // by first packet
    std::uint8_t tcp_flags;
  };

 private:
  enum class EndReason { kIdle, kActive, kTcp, kEvicted, kFlushed };
  struct List {
    std::uint32_t head;
    std::uint32_t tail;
  };

  std::size_t find_slot(const Key& key, std::uint32_t hash, std::uint32_t& index) const;
  void end_flow(std::uint32_t index, EndReason why);
  void unlink_table(std::uint32_t index);
  void lru_remove(std::uint32_t index);
  void lru_append(std::uint32_t index);
  void age_remove(std::uint32_t index);
  void age_append(std::uint32_t index);

  FlowMeterConfig cfg_;
  Emit emit_;
  FlowMeterStats stats_;
  // The pool, max_flows entries: [0, fresh_) have been used (in a flow or on the free
  // list), the rest never touched.
  ZeroedArray<Entry> entries_;
  std::size_t fresh_ = 0;
  // Per 4-byte slot: the low index_bits_ hold index + 1 into entries_ (0 = empty), the
  // bits above a tag from the key's hash, so a probe rejects most other keys without
  // touching their (cold) pool entries, and the index stays half the size of 8-byte slots.
  ZeroedArray<std::uint32_t> slots_;
  int index_bits_ = 0;
  std::uint32_t index_mask_ = 0;
  std::size_t mask_ = 0;
  std::uint32_t free_head_;
  List lru_;
  List age_;
};

}  // namespace citywatch::agent
