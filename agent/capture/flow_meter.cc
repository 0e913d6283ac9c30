#include "agent/capture/flow_meter.h"

#include <bit>
#include <cstring>
#include <utility>

namespace citywatch::agent {
namespace {

constexpr std::uint32_t kNil = 0xffffffffu;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kTcpFin = 0x01;  // RFC 9293 section 3.1
constexpr std::uint8_t kTcpRst = 0x04;

static_assert(sizeof(FlowMeter::Key) == 40, "Key must have no padding: it is compared as bytes");
static_assert(sizeof(FlowMeter::Entry) <= 128, "keep a flow entry within two cache lines");

}  // namespace

std::size_t FlowMeter::entry_size() { return sizeof(Entry); }

FlowMeter::FlowMeter(FlowMeterConfig cfg, Emit emit) : cfg_(cfg), emit_(std::move(emit)) {
  if (cfg_.max_flows == 0) cfg_.max_flows = 1;
  if (cfg_.max_flows > (std::size_t{1} << 30)) cfg_.max_flows = std::size_t{1} << 30;
  std::size_t cap = 2;
  while (cap < 2 * cfg_.max_flows) cap <<= 1;
  slots_ = ZeroedArray<std::uint32_t>(cap);
  mask_ = cap - 1;
  while ((std::size_t{1} << index_bits_) <= cfg_.max_flows) ++index_bits_;  // holds index + 1
  index_mask_ = static_cast<std::uint32_t>((std::uint64_t{1} << index_bits_) - 1);
  // Zero pages: a pool page costs nothing until a flow first lands on it (zeroing 262,144
  // entries up front was a tenth of an offline run's CPU).
  entries_ = ZeroedArray<Entry>(cfg_.max_flows);
  free_head_ = kNil;
  lru_ = {kNil, kNil};
  age_ = {kNil, kNil};
}

// Returns the slot holding `key` (index set) or the empty slot where it would go (index kNil).
std::size_t FlowMeter::find_slot(const Key& key, std::uint32_t hash, std::uint32_t& index) const {
  for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const std::uint32_t s = slots_[i];
    if (s == 0) {
      index = kNil;
      return i;
    }
    if (((s ^ hash) & ~index_mask_) != 0) continue;  // tags differ: another key
    const std::uint32_t candidate = (s & index_mask_) - 1;
    if (std::memcmp(&entries_[candidate].key, &key, sizeof key) == 0) {
      index = candidate;
      return i;
    }
  }
}

// The key's last word (ports, VLAN, protocol and family, in the Key's layout on a
// little-endian host) is built in a register and stored whole with the addresses: assembled
// field by field in memory and read back as words, every read would wait on several narrower
// stores (a store-forwarding stall per packet). The hash is over the address hashes and that
// word either way.
void FlowMeter::prepare(const DecodedPacket& p, const AddrHashes& h, Prepared& out) const {
  const std::uint64_t tail = std::uint64_t{p.src_port} | std::uint64_t{p.dst_port} << 16 |
                             std::uint64_t{p.vlan} << 32 | std::uint64_t{p.protocol} << 48 |
                             std::uint64_t{static_cast<std::uint8_t>(p.src.family)} << 56;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&out.key, p.src.bytes.data(), 16);
    std::memcpy(reinterpret_cast<char*>(&out.key) + 16, p.dst.bytes.data(), 16);
    std::memcpy(reinterpret_cast<char*>(&out.key) + 32, &tail, 8);
  } else {
    out.key.src = p.src.bytes;
    out.key.dst = p.dst.bytes;
    out.key.src_port = p.src_port;
    out.key.dst_port = p.dst_port;
    out.key.vlan = p.vlan;
    out.key.protocol = p.protocol;
    out.key.family = static_cast<std::uint8_t>(p.src.family);
  }
  const std::uint64_t x = packet_hash::pair(h.src, h.dst, tail);
  out.hash = static_cast<std::uint32_t>(x ^ (x >> 32));
  out.ip_bytes = p.ip_bytes;
  out.tcp_flags = p.tcp_flags;
  __builtin_prefetch(&slots_[out.hash & mask_]);
}

void FlowMeter::prefetch_entry(const Prepared& x) const {
  const std::uint32_t s = slots_[x.hash & mask_];
  if (s == 0 || ((s ^ x.hash) & ~index_mask_) != 0) return;  // new flow, or not at home
  const auto* e = reinterpret_cast<const char*>(&entries_[(s & index_mask_) - 1]);
  __builtin_prefetch(e);
  __builtin_prefetch(e + sizeof(Entry) - 1);  // an entry may straddle two cache lines
}

void FlowMeter::add(const DecodedPacket& p, std::int64_t ts_ns) {
  Prepared x;
  prepare(p, addr_hashes(p.src, p.dst), x);
  add(x, ts_ns);
}

void FlowMeter::add(const Prepared& x, std::int64_t ts_ns) {
  ++stats_.packets;
  stats_.bytes += x.ip_bytes;
  const Key& key = x.key;
  const std::uint32_t hash = x.hash;
  std::uint32_t index;
  std::size_t slot = find_slot(key, hash, index);

  if (index != kNil) {
    const Entry& e = entries_[index];
    if (ts_ns - e.last_ns >= cfg_.idle_timeout_ns) {
      end_flow(index, EndReason::kIdle);
      index = kNil;
    } else if (ts_ns - e.start_ns >= cfg_.active_timeout_ns) {
      end_flow(index, EndReason::kActive);
      index = kNil;
    }
    if (index == kNil) slot = find_slot(key, hash, index);  // deletion shifted the probe run
  }

  if (index == kNil) {
    if (free_head_ == kNil && fresh_ == cfg_.max_flows) {
      end_flow(lru_.head, EndReason::kEvicted);
      slot = find_slot(key, hash, index);
    }
    if (free_head_ != kNil) {
      index = free_head_;
      free_head_ = entries_[index].lru_next;
    } else {
      index = static_cast<std::uint32_t>(fresh_++);
    }
    Entry& e = entries_[index];
    e.key = key;
    e.hash = hash;
    e.start_ns = ts_ns;
    e.last_ns = ts_ns;
    e.packets = 0;
    e.bytes = 0;
    e.tcp_flags = 0;
    slots_[slot] = (hash & ~index_mask_) | (index + 1);
    lru_append(index);
    age_append(index);
    ++stats_.flows_created;
    ++stats_.active_flows;
  } else if (index != lru_.tail) {  // a burst of one flow moves nothing
    lru_remove(index);
    lru_append(index);
  }

  Entry& e = entries_[index];
  ++e.packets;
  e.bytes += x.ip_bytes;
  e.tcp_flags |= x.tcp_flags;
  if (ts_ns > e.last_ns) e.last_ns = ts_ns;
  if (ts_ns < e.start_ns) e.start_ns = ts_ns;
  if (key.protocol == kProtoTcp && (x.tcp_flags & (kTcpFin | kTcpRst)) != 0) {
    end_flow(index, EndReason::kTcp);
  }
}

void FlowMeter::advance(std::int64_t now_ns) {
  while (lru_.head != kNil && now_ns - entries_[lru_.head].last_ns >= cfg_.idle_timeout_ns) {
    end_flow(lru_.head, EndReason::kIdle);
  }
  while (age_.head != kNil && now_ns - entries_[age_.head].start_ns >= cfg_.active_timeout_ns) {
    end_flow(age_.head, EndReason::kActive);
  }
}

void FlowMeter::flush() {
  while (age_.head != kNil) end_flow(age_.head, EndReason::kFlushed);
}

void FlowMeter::end_flow(std::uint32_t index, EndReason why) {
  const Entry& e = entries_[index];
  FlowRecord r;
  r.start_ns = e.start_ns;
  r.end_ns = e.last_ns;
  r.src.bytes = e.key.src;
  r.dst.bytes = e.key.dst;
  r.src.family = r.dst.family = static_cast<IpAddr::Family>(e.key.family);
  r.packets = e.packets;
  r.bytes = e.bytes;
  r.sampling_rate = 1;
  r.src_port = e.key.src_port;
  r.dst_port = e.key.dst_port;
  r.vlan = e.key.vlan;
  r.protocol = e.key.protocol;
  r.tcp_flags = e.tcp_flags;
  r.source = FlowSource::kPacketMeter;
  switch (why) {
    case EndReason::kIdle:
      ++stats_.flows_expired_idle;
      break;
    case EndReason::kActive:
      ++stats_.flows_expired_active;
      break;
    case EndReason::kTcp:
      ++stats_.flows_ended_tcp;
      break;
    case EndReason::kEvicted:
      ++stats_.flows_evicted;
      break;
    case EndReason::kFlushed:
      ++stats_.flows_flushed;
      break;
  }
  unlink_table(index);
  lru_remove(index);
  age_remove(index);
  entries_[index].lru_next = free_head_;
  free_head_ = index;
  --stats_.active_flows;
  if (emit_) emit_(r);
}

// Linear-probing deletion by backward shift (Knuth 6.4 Algorithm R): no tombstones, so
// probe runs stay short however long the meter runs.
void FlowMeter::unlink_table(std::uint32_t index) {
  std::size_t i = entries_[index].hash & mask_;
  while ((slots_[i] & index_mask_) != index + 1) i = (i + 1) & mask_;
  slots_[i] = 0;
  for (std::size_t j = (i + 1) & mask_; slots_[j] != 0; j = (j + 1) & mask_) {
    const std::size_t home = entries_[(slots_[j] & index_mask_) - 1].hash & mask_;
    // Move j into the hole at i unless its home lies cyclically in (i, j].
    if (((j - home) & mask_) >= ((j - i) & mask_)) {
      slots_[i] = slots_[j];
      slots_[j] = 0;
      i = j;
    }
  }
}

void FlowMeter::lru_remove(std::uint32_t index) {
  Entry& e = entries_[index];
  (e.lru_prev == kNil ? lru_.head : entries_[e.lru_prev].lru_next) = e.lru_next;
  (e.lru_next == kNil ? lru_.tail : entries_[e.lru_next].lru_prev) = e.lru_prev;
}

void FlowMeter::lru_append(std::uint32_t index) {
  Entry& e = entries_[index];
  e.lru_prev = lru_.tail;
  e.lru_next = kNil;
  (lru_.tail == kNil ? lru_.head : entries_[lru_.tail].lru_next) = index;
  lru_.tail = index;
}

void FlowMeter::age_remove(std::uint32_t index) {
  Entry& e = entries_[index];
  (e.age_prev == kNil ? age_.head : entries_[e.age_prev].age_next) = e.age_next;
  (e.age_next == kNil ? age_.tail : entries_[e.age_next].age_prev) = e.age_prev;
}

void FlowMeter::age_append(std::uint32_t index) {
  Entry& e = entries_[index];
  e.age_prev = age_.tail;
  e.age_next = kNil;
  (age_.tail == kNil ? age_.head : entries_[age_.tail].age_next) = index;
  age_.tail = index;
}

}  // namespace citywatch::agent
