// Packet events: turns decoded frames into the packet-level observations the collector's
// security rules need (docs/packet-capture.md):
//   - TCP connection attempts (SYN without ACK) and their answers (SYN-ACK, RST);
//   - DNS queries, and DNS responses whose code is an error (NXDOMAIN, SERVFAIL, ...);
//   - ARP bindings: an IPv4 address seen with a MAC for the first time, moved to another
//     MAC, or announced gratuitously;
//   - ICMP / ICMPv6 destination unreachable, with the protocol and ports of the quoted packet;
//   - a source MAC address seen on the segment for the first time;
//   - failed TCP connection attempts (tcp_probe_failed): a SYN refused by a RST, or not
//     answered (no SYN-ACK, no RST) within `probe_timeout`. A scan's probes, seconds after
//     they are sent rather than when their flows time out; a connection that was answered
//     is no probe, which keeps busy clients out of the scan rules. The attempts awaiting an
//     answer are a fixed-size ring in SYN order (`probe_slots`), found through a 4-way set
//     associative index; one that leaves a full ring, or loses its index slot, before its
//     answer or timeout is counted (probes_evicted), never reported as failed. A SYN seen
//     again while its attempt waits is the same attempt. advance() expires attempts when no
//     frame comes (live sources), flush() reports the rest at the end of a capture file;
//   - ARP reply floods: a MAC that sends `arp_reply_flood` ARP replies or more in one second
//     (of packet time). Repeated replies for a known binding make no arp_binding event, so
//     they are counted here, per sender MAC in a fixed direct-mapped table; each flooding
//     second is one arp_reply_flood event carrying its count, at the second's start.
//
// Bounded by design, so a flood or a scan cannot turn into a record flood:
//   1. Per-key budget: at most `per_key_budget` events per key in each `window` (keys:
//      SYN (src, dst, dst port); SYN-ACK (src, dst, src port); RST (src, dst, the service
//      port: src port when ACK is set, else dst port);
//      DNS (src, dst, kind, name); ARP/new MAC (address); ICMP (src, dst, quoted port)).
//      A scan of N ports is N keys and passes whole; 8,000 SYNs to one port from one host
//      yield `per_key_budget`. The key table is direct-mapped and fixed in size: a key that
//      displaces a live one is counted (key_evictions) and starts a fresh budget.
//   2. Per-kind token bucket: `rate` events per second sustained, `burst` at once, so even
//      a flood with random sources (a new key each packet) stays bounded.
// Both are counted per kind (suppressed_budget, suppressed_rate). Time is the packets'
// timestamp, so a replayed capture yields the same events as the traffic seen live.
//
// The ARP and MAC tables are fixed-size open-addressing sets. When one is full it is
// cleared and starts over (counted in *_table_resets): bindings seen before then may be
// reported again, which the collector's first-seen rules absorb.
//
// Nothing here allocates after construction or throws. Ownership: one per capture source,
// owned by the agent runtime. Thread-safety: none; one thread, like the flow meter. The Emit
// callback must not call back into the extractor.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "agent/capture/dns_decoder.h"
#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_hash.h"
#include "common/record.h"
#include "common/zeroed_array.h"

namespace citywatch::agent {

struct PacketEventConfig {
  bool enabled = true;
  std::int64_t window_ns = 10'000'000'000;  // per-key budget window
  std::uint32_t per_key_budget = 32;        // events per key per window
  std::uint32_t rate = 2000;                // per kind, events per second sustained
  std::uint32_t burst = 10000;              // per kind, events at once
  std::size_t key_slots = 65536;            // per-key budget table (rounded up to 2^n)
  std::size_t arp_table = 4096;             // IPv4 → MAC bindings remembered
  std::size_t mac_table = 16384;            // source MACs remembered
  std::uint16_t dns_port = 53;              // UDP/TCP port whose payload is DNS
  // A SYN without an answer this long is a failed probe (Zeek's tcp_attempt_delay is 5 s).
  std::int64_t probe_timeout_ns = 5'000'000'000;
  std::size_t probe_slots = 16384;     // connection attempts awaiting an answer (rounded to 2^n)
  std::uint32_t arp_reply_flood = 50;  // ARP replies per second from one MAC; 0: not counted

  bool operator==(const PacketEventConfig&) const = default;
};

inline constexpr std::size_t kPacketEventKinds = 11;  // index = PacketEventKind value (1..10)

struct PacketEventStats {
  std::array<std::uint64_t, kPacketEventKinds> emitted{};
  std::array<std::uint64_t, kPacketEventKinds> suppressed_budget{};
  std::array<std::uint64_t, kPacketEventKinds> suppressed_rate{};
  std::array<std::uint64_t, kDnsResultCount> dns{};  // DNS payloads by decode result
  std::uint64_t arp_malformed = 0;                   // ethertype ARP, not Ethernet/IPv4 ARP
  std::uint64_t icmp_quote_truncated = 0;            // unreachable without a usable quote
  std::uint64_t key_evictions = 0;
  std::uint64_t arp_table_resets = 0;
  std::uint64_t mac_table_resets = 0;
  std::uint64_t probes_evicted = 0;  // attempts pushed out of a full ring before an answer
};

// Adds `from` into `into` (several capture sources export one set of counters).
void add_packet_event_stats(PacketEventStats& into, const PacketEventStats& from);

// Stable snake_case name of a kind for metric labels ("tcp_syn", "dns_query", ...).

class PacketEventExtractor {
 public:
  using Emit = std::function<void(const PacketEvent&, std::int64_t ts_ns)>;

  PacketEventExtractor(PacketEventConfig cfg, Emit emit);
  PacketEventExtractor(const PacketEventExtractor&) = delete;
  PacketEventExtractor& operator=(const PacketEventExtractor&) = delete;

  // One frame, after decode_packet() returned `r` for it (kOk and kNotIp are looked at;
  // anything else is ignored).
  // The hashes of a TCP packet's connection attempt (either direction) and event budget:
  // prefetch() computes them to load their table lines, and add() takes them back instead of
  // hashing the packet again.
  struct TcpKeys {
    std::uint64_t fwd = 0;     // the attempt this packet makes (SYN) or continues (ACK, RST)
    std::uint64_t rev = 0;     // the attempt this packet answers (SYN-ACK, RST)
    std::uint64_t budget = 0;  // its event's per-key budget (SYN, SYN-ACK, RST)
    bool set = false;
  };

  void add(DecodeResult r, const DecodedPacket& p, std::span<const std::byte> frame,
           std::int64_t ts_ns, const TcpKeys* keys = nullptr);

  // For capture loops that look ahead (MeterPipeline, meter_frame.h). needs_frame(): whether
  // add() reads the frame's bytes for this packet (DNS, ARP, ICMP quotes) or only the decoded
  // fields, so it may be called with an empty frame after the capture buffer moved on.
  // prefetch(): starts loading the table lines add() will look at for this packet.
  bool needs_frame(DecodeResult r, const DecodedPacket& p) const;
  // `h`: the packet's address hashes (packet_hash.h), shared with the flow meter.
  void prefetch(const DecodedPacket& p, const AddrHashes& h, TcpKeys& keys) const;

  // Reports the connection attempts unanswered for probe_timeout by `now_ns` (the packets'
  // clock; live sources call it once a second, so a scan's last probes are not held back
  // until the next frame).
  void advance(std::int64_t now_ns);
  // End of input: every attempt still waiting is reported as unanswered.
  void flush();

  const PacketEventStats& stats() const { return stats_; }
  const PacketEventConfig& config() const { return cfg_; }

 private:
  // Fixed-size set of 64-bit keys (open addressing, no deletion, cleared when full).
  class KeySet {
   public:
    explicit KeySet(std::size_t max_entries);
    // Inserts key; true if it was new. *reset set when the set had to be cleared first.
    bool insert(std::uint64_t key, std::uint64_t value, std::uint64_t* old_value, bool* reset);

   private:
    struct Slot {
      std::uint64_t key;  // 0 = empty (keys are hashed and forced non-zero)
      std::uint64_t value;
    };
    ZeroedArray<Slot> slots_;
    std::size_t mask_ = 0;
    std::size_t count_ = 0;
    std::size_t max_ = 0;
  };
  struct Budget {
    std::uint64_t key = 0;
    std::int64_t window_start = 0;
    std::uint32_t count = 0;
  };
  struct Bucket {
    double tokens = 0;
    std::int64_t last_ns = 0;
    bool primed = false;
  };

  // Fills `k` field by field where it lives: returned, the keys were copied from a temporary
  // with 16-byte loads over the 8-byte stores that had just written it, which the CPU cannot
  // forward (a stall on every TCP packet, the hottest spot of prefetch() under perf annotate).
  void tcp_keys(const DecodedPacket& p, const AddrHashes& h, TcpKeys& k) const;
  void tcp(const DecodedPacket& p, std::int64_t ts, const TcpKeys& k);
  void dns(const DecodedPacket& p, std::span<const std::byte> frame, std::int64_t ts);
  void arp(const DecodedPacket& p, std::span<const std::byte> frame, std::int64_t ts);
  void icmp_unreachable(const DecodedPacket& p, std::span<const std::byte> frame, std::int64_t ts);
  void new_mac(const DecodedPacket& p, std::int64_t ts);
  // Connection attempts: a SYN starts one, a SYN-ACK or RST from the other side ends it.
  enum class ProbeState : std::uint8_t {
    kWaiting,   // no answer yet
    kAnswered,  // the server sent SYN-ACK (a half-open probe if the client resets before any ACK)
    kDone,      // reported, or nothing more to learn
  };
  struct Probe {
    std::uint64_t key = 0;
    std::int64_t ts = 0;
    IpAddr src, dst;
    std::uint16_t src_port = 0, dst_port = 0, vlan = 0;
    std::array<std::uint8_t, 6> mac{};
    ProbeState state = ProbeState::kDone;
  };
  Probe* find_probe(std::uint64_t key);
  void probe_syn(const DecodedPacket& p, std::int64_t ts, std::uint64_t key);
  void probe_established(std::uint64_t key);
  void probe_answer(const DecodedPacket& p, bool rst, const TcpKeys& k);
  void probe_failed(const Probe& pr, std::uint8_t flags);
  void expire_probes(std::int64_t now, bool all);
  // ARP replies per sender MAC and second.
  struct ReplyCount {
    std::uint64_t mac = 0;  // 48 bits; 0 = empty
    std::int64_t second_start = 0;
    std::uint32_t count = 0;
    std::array<std::uint8_t, 4> sender_ip{}, target_ip{};
    std::uint16_t vlan = 0;
  };
  void count_reply(const ArpPacket& a, std::uint16_t vlan, std::int64_t ts);
  void end_reply_second(ReplyCount& c);
  void expire_reply_counts(std::int64_t now, bool all);
  // Applies the key's budget and the kind's rate limit; true (and counted) when both allow.
  bool admit(PacketEventKind kind, std::uint64_t key, std::int64_t ts);
  void emit(std::int64_t ts);
  void start(PacketEventKind kind, const DecodedPacket& p);

  PacketEventConfig cfg_;
  Emit emit_;
  PacketEventStats stats_;
  ZeroedArray<Budget> budgets_;
  std::size_t budget_mask_ = 0;
  std::array<Bucket, kPacketEventKinds> buckets_{};
  KeySet arp_;
  KeySet macs_;
  std::array<std::uint64_t, 2> recent_macs_{};  // the last source MACs seen: the common case
  ZeroedArray<Probe> probes_;                   // ring, in SYN order
  ZeroedArray<std::uint64_t> probe_index_;      // key -> ring position + 1 (set-associative)
  std::uint64_t probe_head_ = 0, probe_tail_ = 0;
  std::array<ReplyCount, 1024> replies_{};
  std::int64_t last_reply_sweep_ns_ = 0;
  DnsMessage dns_;
  PacketEvent ev_;
};

}  // namespace citywatch::agent
