#include "agent/capture/packet_events.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

namespace citywatch::agent {
namespace {

constexpr std::uint8_t kProtoIcmp = 1;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
constexpr std::uint8_t kProtoIcmpv6 = 58;
constexpr std::uint16_t kEthArp = 0x0806;
// RFC 9293 section 3.1.
constexpr std::uint8_t kTcpSyn = 0x02;
constexpr std::uint8_t kTcpRst = 0x04;
constexpr std::uint8_t kTcpAck = 0x10;
constexpr std::uint8_t kIcmpUnreachable = 3;    // RFC 792
constexpr std::uint8_t kIcmpv6Unreachable = 1;  // RFC 4443 section 3.1
constexpr std::size_t kIcmpHeader = 8;          // type, code, checksum, 4 unused: then the quote
constexpr std::int64_t kSecond = 1'000'000'000;

// splitmix64's finaliser: cheap and well mixed, for combining key parts.
std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  std::uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::uint64_t mix_addr(std::uint64_t h, const IpAddr& a) {
  std::uint64_t lo, hi;
  std::memcpy(&lo, a.bytes.data(), 8);
  std::memcpy(&hi, a.bytes.data() + 8, 8);
  return mix(mix(h, lo), hi);
}

// The address as a number, its first byte the most significant. Two loads, not a loop of
// six shifts: new_mac() asks for every frame.
std::uint64_t mac48(const std::array<std::uint8_t, 6>& m) {
  std::uint32_t hi;
  std::uint16_t lo;
  std::memcpy(&hi, m.data(), 4);
  std::memcpy(&lo, m.data() + 4, 2);
  if constexpr (std::endian::native == std::endian::little) {
    hi = __builtin_bswap32(hi);
    lo = __builtin_bswap16(lo);
  }
  return std::uint64_t{hi} << 16 | lo;
}

std::uint64_t nonzero(std::uint64_t k) { return k == 0 ? 1 : k; }

// One connection attempt: who tried (client), whom (server), which port, on which VLAN; from
// the addresses' hashes (packet_hash.h), the packet's own or a probe's.
std::uint64_t probe_key(std::uint64_t client, std::uint64_t server, std::uint16_t port,
                        std::uint16_t vlan) {
  return nonzero(
      packet_hash::pair(client, server, port | std::uint64_t{vlan} << 16 | 0x70726fULL << 32));
}

// A SYN, SYN-ACK or RST, and the service port its events are budgeted by. Answers are
// budgeted per service. A SYN-ACK comes from the service (its source port). A RST with ACK
// set answers a segment (RFC 9293 section 3.10.7.1: a closed port refusing a SYN), so its
// source port is the service; a RST without ACK aborts towards the peer's port (e.g. a host
// resetting a flood's unexpected SYN-ACKs), so its destination port is.
void tcp_kind(const DecodedPacket& p, PacketEventKind& kind, std::uint16_t& service_port) {
  if ((p.tcp_flags & kTcpRst) != 0) {
    kind = PacketEventKind::kTcpRst;
    service_port = (p.tcp_flags & kTcpAck) != 0 ? p.src_port : p.dst_port;
  } else if ((p.tcp_flags & kTcpAck) != 0) {
    kind = PacketEventKind::kTcpSynAck;
    service_port = p.src_port;
  } else {
    kind = PacketEventKind::kTcpSyn;
    service_port = p.dst_port;
  }
}

std::uint64_t tcp_budget_key(PacketEventKind kind, std::uint16_t service_port,
                             const DecodedPacket& p, const AddrHashes& h) {
  return packet_hash::pair(
      h.src, h.dst,
      service_port | std::uint64_t{p.vlan} << 16 | static_cast<std::uint64_t>(kind) << 32);
}

std::size_t pow2_at_least(std::size_t n) {
  std::size_t c = 2;
  while (c < n) c <<= 1;
  return c;
}

}  // namespace

void add_packet_event_stats(PacketEventStats& into, const PacketEventStats& from) {
  for (std::size_t k = 0; k < kPacketEventKinds; ++k) {
    into.emitted[k] += from.emitted[k];
    into.suppressed_budget[k] += from.suppressed_budget[k];
    into.suppressed_rate[k] += from.suppressed_rate[k];
  }
  for (std::size_t i = 0; i < kDnsResultCount; ++i) into.dns[i] += from.dns[i];
  into.arp_malformed += from.arp_malformed;
  into.icmp_quote_truncated += from.icmp_quote_truncated;
  into.key_evictions += from.key_evictions;
  into.arp_table_resets += from.arp_table_resets;
  into.mac_table_resets += from.mac_table_resets;
  into.probes_evicted += from.probes_evicted;
}

PacketEventExtractor::KeySet::KeySet(std::size_t max_entries)
    : slots_(pow2_at_least(2 * std::max<std::size_t>(max_entries, 1))),
      mask_(slots_.size() - 1),
      max_(std::max<std::size_t>(max_entries, 1)) {}

bool PacketEventExtractor::KeySet::insert(std::uint64_t key, std::uint64_t value,
                                          std::uint64_t* old_value, bool* reset) {
  *reset = false;
  for (int pass = 0; pass < 2; ++pass) {
    // At most half full, so an empty slot ends every probe run.
    for (std::size_t i = key & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.key == key) {
        *old_value = s.value;
        s.value = value;
        return false;
      }
      if (s.key != 0) continue;
      if (count_ >= max_) break;  // full: clear and insert into the empty set
      s = {key, value};
      ++count_;
      return true;
    }
    slots_.clear();
    count_ = 0;
    *reset = true;
  }
  return true;  // not reached: the second pass always inserts
}

PacketEventExtractor::PacketEventExtractor(PacketEventConfig cfg, Emit emit)
    : cfg_(cfg),
      emit_(std::move(emit)),
      budgets_(pow2_at_least(std::max<std::size_t>(cfg.key_slots, 2))),
      budget_mask_(budgets_.size() - 1),
      arp_(cfg.arp_table),
      macs_(cfg.mac_table),
      // The ring fills in order and wraps, and its index fills with it: under a SYN scan
      // every page of both is written, so they are written in now, in one call (the bench
      // file's nmap scan faulted in 130 of their 192 pages one by one; bench/vs_softflowd.sh).
      probes_(pow2_at_least(std::max<std::size_t>(cfg.probe_slots, 2)),
              ZeroedArray<Probe>::Prefault{}),
      probe_index_(2 * probes_.size(), ZeroedArray<std::uint64_t>::Prefault{}) {}

void PacketEventExtractor::add(DecodeResult r, const DecodedPacket& p,
                               std::span<const std::byte> frame, std::int64_t ts,
                               const TcpKeys* keys) {
  if (!cfg_.enabled) return;
  // Most packets find the oldest attempt still within its timeout: a look at it, no call.
  if (probe_head_ != probe_tail_ &&
      ts - probes_[probe_head_ & (probes_.size() - 1)].ts >= cfg_.probe_timeout_ns)
    expire_probes(ts, false);
  if (ts - last_reply_sweep_ns_ >= kSecond) {
    last_reply_sweep_ns_ = ts;
    expire_reply_counts(ts, false);
  }
  if (r != DecodeResult::kOk && r != DecodeResult::kNotIp) return;
  new_mac(p, ts);
  if (r == DecodeResult::kNotIp) {
    if (p.ethertype == kEthArp) arp(p, frame, ts);
    return;
  }
  if (p.fragment_offset != 0) return;  // later fragments carry no transport header
  switch (p.protocol) {
    case kProtoTcp: {
      // The keys prefetch() made, or made here when the caller did not look ahead.
      TcpKeys own;
      const auto tcp_keys_of = [&]() -> const TcpKeys& {
        if (keys != nullptr && keys->set) return *keys;
        tcp_keys(p, addr_hashes(p.src, p.dst), own);
        return own;
      };
      if (p.tcp_flags & (kTcpSyn | kTcpRst))
        tcp(p, ts, tcp_keys_of());
      else if ((p.tcp_flags & kTcpAck) != 0 && probe_head_ != probe_tail_)
        probe_established(tcp_keys_of().fwd);
      if (p.payload_offset != 0 && (p.src_port == cfg_.dns_port || p.dst_port == cfg_.dns_port))
        dns(p, frame, ts);
      break;
    }
    case kProtoUdp:
      if (p.payload_offset != 0 && (p.src_port == cfg_.dns_port || p.dst_port == cfg_.dns_port))
        dns(p, frame, ts);
      break;
    case kProtoIcmp:
      if (p.payload_offset != 0 && p.dst_port >> 8 == kIcmpUnreachable)
        icmp_unreachable(p, frame, ts);
      break;
    case kProtoIcmpv6:
      if (p.payload_offset != 0 && p.dst_port >> 8 == kIcmpv6Unreachable)
        icmp_unreachable(p, frame, ts);
      break;
    default:
      break;
  }
}

bool PacketEventExtractor::needs_frame(DecodeResult r, const DecodedPacket& p) const {
  if (!cfg_.enabled) return false;
  if (r != DecodeResult::kOk) return r == DecodeResult::kNotIp;  // ARP
  if (p.fragment_offset != 0 || p.payload_offset == 0) return false;
  switch (p.protocol) {
    case kProtoTcp:
    case kProtoUdp:
      return p.src_port == cfg_.dns_port || p.dst_port == cfg_.dns_port;
    case kProtoIcmp:
    case kProtoIcmpv6:
      return true;
    default:
      return false;
  }
}

// The hashes tcp() and probe_established() look up: the attempt in either direction (a SYN
// or the client's ACK/RST; the server's answer) and the event's budget key. A packet with
// only ACK needs the first.
void PacketEventExtractor::tcp_keys(const DecodedPacket& p, const AddrHashes& h, TcpKeys& k) const {
  k.set = true;
  k.fwd = probe_key(h.src, h.dst, p.dst_port, p.vlan);
  k.rev = 0;
  k.budget = 0;
  if ((p.tcp_flags & (kTcpSyn | kTcpRst)) == 0) return;
  k.rev = probe_key(h.dst, h.src, p.src_port, p.vlan);
  PacketEventKind kind;
  std::uint16_t service_port;
  tcp_kind(p, kind, service_port);
  k.budget = tcp_budget_key(kind, service_port, p, h);
}

// The lines tcp() reads at random: the attempt's index bucket in either direction and the
// event's budget slot. The keys are kept for add().
void PacketEventExtractor::prefetch(const DecodedPacket& p, const AddrHashes& h,
                                    TcpKeys& keys) const {
  keys.set = false;
  if (!cfg_.enabled || p.protocol != kProtoTcp || p.fragment_offset != 0) return;
  if ((p.tcp_flags & (kTcpSyn | kTcpRst | kTcpAck)) == 0) return;
  tcp_keys(p, h, keys);
  const std::size_t buckets = (probe_index_.size() - 1) & ~std::size_t{3};
  __builtin_prefetch(&probe_index_[keys.fwd & buckets]);
  if ((p.tcp_flags & (kTcpSyn | kTcpRst)) == 0) return;
  __builtin_prefetch(&probe_index_[keys.rev & buckets]);
  __builtin_prefetch(&budgets_[keys.budget & budget_mask_]);
}

void PacketEventExtractor::start(PacketEventKind kind, const DecodedPacket& p) {
  ev_ = PacketEvent{};
  ev_.kind = kind;
  ev_.src = p.src;
  ev_.dst = p.dst;
  ev_.src_port = p.src_port;
  ev_.dst_port = p.dst_port;
  ev_.vlan = p.vlan;
  ev_.protocol = p.protocol;
  ev_.mac = p.src_mac;
}

bool PacketEventExtractor::admit(PacketEventKind kind, std::uint64_t key, std::int64_t ts) {
  const auto k = static_cast<std::size_t>(kind);
  Budget& b = budgets_[key & budget_mask_];
  if (b.key != key) {
    if (b.count != 0 && ts - b.window_start < cfg_.window_ns) ++stats_.key_evictions;
    b = {key, ts, 0};
  } else if (ts - b.window_start >= cfg_.window_ns) {
    b.window_start = ts;
    b.count = 0;
  }
  if (b.count >= cfg_.per_key_budget) {
    ++stats_.suppressed_budget[k];
    return false;
  }
  Bucket& t = buckets_[k];
  if (!t.primed) {
    t = {static_cast<double>(cfg_.burst), ts, true};
  } else if (ts > t.last_ns) {
    t.tokens = std::min(static_cast<double>(cfg_.burst),
                        t.tokens + static_cast<double>(ts - t.last_ns) * 1e-9 * cfg_.rate);
    t.last_ns = ts;
  }
  if (t.tokens < 1) {
    ++stats_.suppressed_rate[k];
    return false;
  }
  t.tokens -= 1;
  ++b.count;
  ++stats_.emitted[k];
  return true;
}

void PacketEventExtractor::emit(std::int64_t ts) {
  if (emit_) emit_(ev_, ts);
}

void PacketEventExtractor::tcp(const DecodedPacket& p, std::int64_t ts, const TcpKeys& k) {
  PacketEventKind kind;
  std::uint16_t service_port;
  tcp_kind(p, kind, service_port);
  if (kind == PacketEventKind::kTcpSyn)
    probe_syn(p, ts, k.fwd);
  else
    probe_answer(p, kind == PacketEventKind::kTcpRst, k);
  if (!admit(kind, k.budget, ts)) return;
  start(kind, p);
  emit(ts);
}

// The index is 4-way set associative: a key lives in one of the 4 slots of its bucket, each
// holding a ring position + 1 (0: empty). A slot whose position left the ring is free.
PacketEventExtractor::Probe* PacketEventExtractor::find_probe(std::uint64_t key) {
  const std::size_t bucket = key & (probe_index_.size() - 1) & ~std::size_t{3};
  for (std::size_t i = bucket; i < bucket + 4; ++i) {
    const std::uint64_t at = probe_index_[i];
    if (at == 0 || at - 1 < probe_head_) continue;  // empty, or left the ring since
    Probe& pr = probes_[(at - 1) & (probes_.size() - 1)];
    if (pr.key == key) return &pr;
  }
  return nullptr;
}

void PacketEventExtractor::probe_syn(const DecodedPacket& p, std::int64_t ts, std::uint64_t key) {
  if (Probe* pr = find_probe(key); pr && pr->state == ProbeState::kWaiting) return;  // again
  if (probe_tail_ - probe_head_ == probes_.size()) {
    if (probes_[probe_head_ & (probes_.size() - 1)].state == ProbeState::kWaiting)
      ++stats_.probes_evicted;
    ++probe_head_;
  }
  // Its index slot: the one holding this key already, else a free one, else one whose
  // attempt is no longer waiting, else the oldest waiting attempt, which then can never be
  // matched to its answer: it is dropped (counted), never reported as a false failure.
  const std::size_t bucket = key & (probe_index_.size() - 1) & ~std::size_t{3};
  std::size_t slot = bucket;
  int best = 4;  // 0 same key, 1 free, 2 not waiting, 3 waiting (oldest wins)
  for (std::size_t i = bucket; i < bucket + 4; ++i) {
    const std::uint64_t at = probe_index_[i];
    int rank;
    if (at == 0 || at - 1 < probe_head_) {
      rank = 1;
    } else {
      const Probe& other = probes_[(at - 1) & (probes_.size() - 1)];
      rank = other.key == key ? 0 : other.state == ProbeState::kWaiting ? 3 : 2;
    }
    if (rank < best || (rank == 3 && best == 3 && at < probe_index_[slot])) {
      best = rank;
      slot = i;
    }
  }
  if (best == 3) {
    probes_[(probe_index_[slot] - 1) & (probes_.size() - 1)].state = ProbeState::kDone;
    ++stats_.probes_evicted;
  }
  Probe& pr = probes_[probe_tail_ & (probes_.size() - 1)];
  pr =
      Probe{key, ts, p.src, p.dst, p.src_port, p.dst_port, p.vlan, p.src_mac, ProbeState::kWaiting};
  probe_index_[slot] = ++probe_tail_;
}

void PacketEventExtractor::probe_answer(const DecodedPacket& p, bool rst, const TcpKeys& k) {
  // From the server: a SYN-ACK accepts the attempt, a RST refuses it.
  if (Probe* pr = find_probe(k.rev)) {
    if (pr->state != ProbeState::kWaiting) return;
    pr->state = rst ? ProbeState::kDone : ProbeState::kAnswered;
    if (rst) probe_failed(*pr, packet_event_flags::kTcpRejected);
    return;
  }
  // From the client: a RST without ACK after the server accepted is a half-open probe (a SYN
  // scan tearing down what it found open: nmap -sS), not a connection.
  if (!rst || (p.tcp_flags & kTcpAck) != 0) return;
  if (Probe* pr = find_probe(k.fwd); pr && pr->state == ProbeState::kAnswered) {
    pr->state = ProbeState::kDone;
    probe_failed(*pr, packet_event_flags::kTcpHalfOpen);
  }
}

void PacketEventExtractor::probe_established(std::uint64_t key) {
  // From the client: an ACK after the server's SYN-ACK completes the handshake. That is a
  // connection, however it ends: a browser aborting one and its kernel answering the server's
  // segment in flight with a bare RST is not a SYN scan's half-open probe, which never ACKs.
  if (Probe* pr = find_probe(key); pr && pr->state == ProbeState::kAnswered)
    pr->state = ProbeState::kDone;
}

void PacketEventExtractor::probe_failed(const Probe& pr, std::uint8_t flags) {
  const auto kind = PacketEventKind::kTcpProbeFailed;
  // Budgeted per attempt's client, server, port and VLAN, which its key already hashes.
  const std::uint64_t key = packet_hash::pair(pr.key, static_cast<std::uint64_t>(kind), 0);
  if (!admit(kind, key, pr.ts)) return;
  ev_ = PacketEvent{};
  ev_.kind = kind;
  ev_.src = pr.src;
  ev_.dst = pr.dst;
  ev_.src_port = pr.src_port;
  ev_.dst_port = pr.dst_port;
  ev_.vlan = pr.vlan;
  ev_.protocol = kProtoTcp;
  ev_.mac = pr.mac;
  ev_.flags = flags;
  emit(pr.ts);
}

void PacketEventExtractor::expire_probes(std::int64_t now, bool all) {
  while (probe_head_ != probe_tail_) {
    const Probe& pr = probes_[probe_head_ & (probes_.size() - 1)];
    if (!all && now - pr.ts < cfg_.probe_timeout_ns) return;
    ++probe_head_;  // first: probe_failed's emit must not see it again
    if (pr.state == ProbeState::kWaiting) probe_failed(pr, 0);
  }
}

void PacketEventExtractor::count_reply(const ArpPacket& a, std::uint16_t vlan, std::int64_t ts) {
  const std::uint64_t key = mac48(a.sender_mac) | std::uint64_t{1} << 48;  // never 0
  ReplyCount& c = replies_[mix(vlan, key) & (replies_.size() - 1)];
  if (c.mac != key || c.vlan != vlan) {
    if (c.mac != 0) end_reply_second(c);  // a MAC sharing the slot: its second ends early
    c = ReplyCount{key, ts, 0, {}, {}, vlan};
  } else if (ts - c.second_start >= kSecond) {
    end_reply_second(c);
    c.second_start = ts;
  }
  ++c.count;
  c.sender_ip = a.sender_ip;
  c.target_ip = a.target_ip;
}

void PacketEventExtractor::end_reply_second(ReplyCount& c) {
  const std::uint32_t n = c.count;
  c.count = 0;
  if (n < cfg_.arp_reply_flood) return;
  const auto kind = PacketEventKind::kArpReplyFlood;
  if (!admit(kind, mix(static_cast<std::uint64_t>(kind), c.mac ^ std::uint64_t{c.vlan} << 52),
             c.second_start))
    return;
  ev_ = PacketEvent{};
  ev_.kind = kind;
  ev_.src = IpAddr::v4(c.sender_ip.data());
  ev_.dst = IpAddr::v4(c.target_ip.data());
  ev_.vlan = c.vlan;
  for (int i = 5; i >= 0; --i)
    ev_.mac[static_cast<std::size_t>(i)] = (c.mac >> (8 * (5 - i))) & 0xff;
  ev_.count = n;
  emit(c.second_start);
}

void PacketEventExtractor::expire_reply_counts(std::int64_t now, bool all) {
  for (ReplyCount& c : replies_)
    if (c.count != 0 && (all || now - c.second_start >= kSecond)) end_reply_second(c);
}

void PacketEventExtractor::advance(std::int64_t now_ns) {
  if (!cfg_.enabled) return;
  if (probe_head_ != probe_tail_) expire_probes(now_ns, false);
  expire_reply_counts(now_ns, false);
}

void PacketEventExtractor::flush() {
  if (!cfg_.enabled) return;
  expire_probes(0, true);
  expire_reply_counts(0, true);
}

void PacketEventExtractor::dns(const DecodedPacket& p, std::span<const std::byte> frame,
                               std::int64_t ts) {
  std::span<const std::byte> msg = frame.subspan(p.payload_offset);
  if (p.protocol == kProtoTcp) {
    if (msg.size() < 2) return;  // a segment without data (handshake, ACK)
    msg = msg.subspan(2);        // RFC 1035 section 4.2.2: 2-byte length prefix
  }
  const DnsResult r = decode_dns(msg, dns_);
  ++stats_.dns[static_cast<std::size_t>(r)];
  if (r != DnsResult::kOk) return;
  if (dns_.response && dns_.rcode == 0) return;  // answers that succeeded are not events
  const auto kind = dns_.response ? PacketEventKind::kDnsResponse : PacketEventKind::kDnsQuery;
  std::uint64_t key = mix(static_cast<std::uint64_t>(kind), dns_.qtype);
  for (char c : dns_.name()) key = key * 131 + static_cast<unsigned char>(c);
  if (!admit(kind, mix_addr(mix_addr(mix(key, dns_.name_len), p.src), p.dst), ts)) return;
  start(kind, p);
  ev_.name.assign(dns_.name());
  ev_.dns_qtype = dns_.qtype;
  ev_.dns_rcode = dns_.rcode;
  emit(ts);
}

void PacketEventExtractor::arp(const DecodedPacket& p, std::span<const std::byte> frame,
                               std::int64_t ts) {
  ArpPacket a;
  if (!decode_arp(frame, p, a)) {
    ++stats_.arp_malformed;
    return;
  }
  if (a.op == 2 && cfg_.arp_reply_flood != 0) count_reply(a, p.vlan, ts);
  std::uint32_t ip;
  std::memcpy(&ip, a.sender_ip.data(), 4);
  if (ip == 0) return;  // an ARP probe (RFC 5227): the sender claims no address yet
  const bool gratuitous = a.sender_ip == a.target_ip;
  const std::uint64_t mac = mac48(a.sender_mac);
  std::uint64_t old = 0;
  bool reset = false;
  const bool fresh = arp_.insert(nonzero(mix(p.vlan, ip)), mac, &old, &reset);
  if (reset) ++stats_.arp_table_resets;
  std::uint8_t flags = 0;
  if (fresh) flags |= packet_event_flags::kArpNew;
  if (!fresh && old != mac) flags |= packet_event_flags::kArpChanged;
  if (gratuitous) flags |= packet_event_flags::kArpGratuitous;
  if (flags == 0) return;  // a binding already known, unchanged
  if (a.op == 2) flags |= packet_event_flags::kArpReply;
  if (!admit(
          PacketEventKind::kArpBinding,
          mix(mix(mix(static_cast<std::uint64_t>(PacketEventKind::kArpBinding), ip), mac), flags),
          ts))
    return;
  start(PacketEventKind::kArpBinding, p);
  ev_.src = IpAddr::v4(a.sender_ip.data());
  ev_.dst = IpAddr::v4(a.target_ip.data());
  ev_.protocol = 0;
  ev_.mac = a.sender_mac;
  ev_.flags = flags;
  if (flags & packet_event_flags::kArpChanged) {
    for (int i = 5; i >= 0; --i, old >>= 8) ev_.prev_mac[static_cast<std::size_t>(i)] = old & 0xff;
  }
  emit(ts);
}

void PacketEventExtractor::icmp_unreachable(const DecodedPacket& p,
                                            std::span<const std::byte> frame, std::int64_t ts) {
  start(PacketEventKind::kIcmpUnreachable, p);
  ev_.icmp_code = static_cast<std::uint8_t>(p.dst_port & 0xff);
  ev_.protocol = 0;
  ev_.src_port = ev_.dst_port = 0;
  ev_.mac = p.src_mac;
  // The quoted packet: its IP header and at least 8 bytes of what followed (RFC 792;
  // RFC 4443 section 3.1 quotes as much as fits). Stop at the outer datagram's end.
  const std::size_t end = std::min<std::size_t>(frame.size(), p.l3_offset + p.ip_bytes);
  const std::size_t q = p.l4_offset + kIcmpHeader;
  const auto* b = reinterpret_cast<const std::uint8_t*>(frame.data());
  std::size_t ports_at = 0;
  if (q < end && end - q >= 20 && b[q] >> 4 == 4) {
    const std::size_t ihl = std::size_t{b[q] & 0x0fu} * 4;
    ev_.protocol = b[q + 9];
    if (ihl >= 20) ports_at = q + ihl;
  } else if (q < end && end - q >= 40 && b[q] >> 4 == 6) {
    ev_.protocol = b[q + 6];  // the extension chain is not walked: TCP/UDP follow directly
    ports_at = q + 40;
  } else {
    ++stats_.icmp_quote_truncated;
  }
  if (ports_at != 0 && (ev_.protocol == kProtoTcp || ev_.protocol == kProtoUdp) && ports_at < end &&
      end - ports_at >= 4) {
    ev_.src_port = static_cast<std::uint16_t>(b[ports_at] << 8 | b[ports_at + 1]);
    ev_.dst_port = static_cast<std::uint16_t>(b[ports_at + 2] << 8 | b[ports_at + 3]);
  }
  const std::uint64_t key =
      mix(static_cast<std::uint64_t>(ev_.kind),
          ev_.dst_port | std::uint64_t{ev_.protocol} << 16 | std::uint64_t{ev_.icmp_code} << 24);
  if (admit(ev_.kind, mix_addr(mix_addr(key, p.src), p.dst), ts)) emit(ts);
}

void PacketEventExtractor::new_mac(const DecodedPacket& p, std::int64_t ts) {
  // Zero: the link layer has no MAC (raw IP, loopback). Group bit: not a station address.
  if ((p.src_mac[0] & 0x01) != 0) return;
  const std::uint64_t mac = mac48(p.src_mac);
  if (mac == 0) return;
  const std::uint64_t tagged = mac | std::uint64_t{p.vlan} << 48;
  if (tagged == recent_macs_[0] || tagged == recent_macs_[1]) return;
  recent_macs_[1] = recent_macs_[0];
  recent_macs_[0] = tagged;
  std::uint64_t old = 0;
  bool reset = false;
  const bool fresh = macs_.insert(nonzero(mix(0x4d4143, tagged)), 0, &old, &reset);
  if (reset) ++stats_.mac_table_resets;
  if (!fresh) return;
  if (!admit(PacketEventKind::kNewMac,
             mix(static_cast<std::uint64_t>(PacketEventKind::kNewMac), tagged), ts))
    return;
  start(PacketEventKind::kNewMac, p);
  ev_.dst = IpAddr{};
  ev_.src_port = ev_.dst_port = 0;
  ev_.protocol = 0;
  emit(ts);
}

}  // namespace citywatch::agent
