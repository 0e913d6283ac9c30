#include "agent/flow/netflow_v9.h"

#include <pcap/dlt.h>

#include <cstring>
#include <istream>
#include <ostream>

#include "agent/capture/packet_decoder.h"

namespace citywatch::agent::flow {

namespace {

// Set IDs (RFC 3954 §5.2-5.3, RFC 7011 §3.3.2).
constexpr std::uint16_t kV9TemplateSet = 0;
constexpr std::uint16_t kV9OptionsTemplateSet = 1;
constexpr std::uint16_t kIpfixTemplateSet = 2;
constexpr std::uint16_t kIpfixOptionsTemplateSet = 3;
constexpr std::uint16_t kMinDataSetId = 256;

// Information elements (IANA IPFIX registry; v9 uses the same numbers, RFC 3954 §8).
enum Ie : std::uint16_t {
  kOctetDelta = 1,
  kPacketDelta = 2,
  kProtocol = 4,
  kTcpFlags = 6,
  kSrcPort = 7,
  kSrcV4 = 8,
  kIngressIf = 10,
  kDstPort = 11,
  kDstV4 = 12,
  kEgressIf = 14,
  kLastSwitched = 21,
  kFirstSwitched = 22,
  kPostOctetDelta = 23,
  kPostPacketDelta = 24,
  kSrcV6 = 27,
  kDstV6 = 28,
  kIcmpTypeCodeV4 = 32,
  kSamplingInterval = 34,
  kSamplerId = 48,
  kSamplerRandomInterval = 50,
  kSrcVlan = 58,
  kDstVlan = 59,
  kDirection = 61,
  kOctetTotal = 85,
  kPacketTotal = 86,
  kIcmpTypeCodeV6 = 139,
  kStartSeconds = 150,
  kEndSeconds = 151,
  kStartMs = 152,
  kEndMs = 153,
  kStartUs = 154,
  kEndUs = 155,
  kStartNs = 156,
  kEndNs = 157,
  kStartDeltaUs = 158,
  kEndDeltaUs = 159,
  kSysInitMs = 160,
  kIcmpTypeV4 = 176,
  kIcmpCodeV4 = 177,
  kIcmpTypeV6 = 178,
  kIcmpCodeV6 = 179,
  kDot1qVlan = 243,
  kIngressPhysIf = 252,
  kEgressPhysIf = 253,
  kSelectorId = 302,
  kSamplingPacketInterval = 305,
  kSamplingPacketSpace = 306,
  kDataLinkFrameSize = 312,
  kDataLinkFrameSection = 315,
};

// Times from the wire are untrusted: scale and offset them in unsigned arithmetic, which
// wraps instead of overflowing (C++20 defines the conversion back to signed).
std::int64_t scaled(std::uint64_t v, std::uint64_t scale) {
  return static_cast<std::int64_t>(v * scale);
}
std::int64_t offset(std::int64_t base, std::uint64_t minus) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(base) - minus);
}

constexpr std::int64_t kNtpToUnix = 2'208'988'800;  // seconds from 1900 to 1970 (RFC 5905)

// dateTimeMicroseconds/Nanoseconds: NTP 64-bit timestamps (RFC 7011 §6.1.9-6.1.10).
std::int64_t ntp_ns(std::uint64_t v) {
  const auto secs = static_cast<std::int64_t>(v >> 32) - kNtpToUnix;
  const auto frac = static_cast<std::int64_t>(((v & 0xffffffffull) * 1'000'000'000ull) >> 32);
  return secs * 1'000'000'000 + frac;
}

// A field's bytes: its template length, or for a variable-length field (RFC 7011 §7) a
// 1-byte length, or 255 and a 2-byte length. False if the record is cut short.
bool field_span(const TemplateField& f, const std::byte*& p, const std::byte* end,
                const std::byte*& value, std::size_t& len) {
  len = f.length;
  if (len == kVariableLength) {
    if (p >= end) return false;
    len = std::to_integer<std::uint8_t>(*p++);
    if (len == 255) {
      if (end - p < 2) return false;
      len = rd16(p);
      p += 2;
    }
  }
  if (static_cast<std::size_t>(end - p) < len) return false;
  value = p;
  p += len;
  return true;
}

}  // namespace

NetflowV9Decoder::NetflowV9Decoder(TemplateCache& templates, HoldOptions hold, LostFn on_lost)
    : templates_(templates),
      hold_(hold),
      on_lost_(std::move(on_lost)),
      held_(hold.max_sets),
      pool_(hold.max_sets * hold.max_set_bytes) {}

FlowError NetflowV9Decoder::decode(std::span<const std::byte> d, const IpAddr& exporter,
                                   std::int64_t receive_ns, FlowOutput& out) {
  if (d.size() < 4) return FlowError::kTruncatedHeader;
  const std::uint16_t version = rd16(d.data());
  Context c;
  c.exporter = exporter;
  c.receive_ns = receive_ns;
  std::size_t pos;
  if (version == 9) {
    if (d.size() < kV9HeaderSize) return FlowError::kTruncatedHeader;
    c.kind = TemplateCache::Kind::kV9;
    c.uptime_ms = rd32(d.data() + 4);
    c.export_ns = std::int64_t{rd32(d.data() + 8)} * 1'000'000'000;
    c.domain = rd32(d.data() + 16);  // source ID
    pos = kV9HeaderSize;
  } else {
    if (d.size() < kIpfixHeaderSize) return FlowError::kTruncatedHeader;
    const std::uint16_t length = rd16(d.data() + 2);
    if (length < kIpfixHeaderSize || length > d.size()) return FlowError::kBadMessageLength;
    d = d.first(length);
    c.kind = TemplateCache::Kind::kIpfix;
    c.export_ns = std::int64_t{rd32(d.data() + 4)} * 1'000'000'000;
    c.domain = rd32(d.data() + 12);  // observation domain ID
    pos = kIpfixHeaderSize;
  }
  expire(receive_ns);
  const bool v9 = c.kind == TemplateCache::Kind::kV9;
  // The v9 header's count is not trusted (exporters disagree on what it counts); sets carry
  // their own lengths. Fewer than 4 trailing bytes are padding.
  while (d.size() - pos >= 4) {
    const std::uint16_t set_id = rd16(d.data() + pos);
    const std::uint16_t set_len = rd16(d.data() + pos + 2);
    if (set_len < 4 || set_len > d.size() - pos) {
      out.stats->count(FlowError::kBadSetLength);
      break;
    }
    const auto body = d.subspan(pos + 4, set_len - 4u);
    if (set_id == (v9 ? kV9TemplateSet : kIpfixTemplateSet))
      parse_templates(c, body, false, out);
    else if (set_id == (v9 ? kV9OptionsTemplateSet : kIpfixOptionsTemplateSet))
      parse_templates(c, body, true, out);
    else if (set_id >= kMinDataSetId)
      decode_data(c, set_id, body, out);
    // Other set IDs are reserved: skipped.
    pos += set_len;
  }
  return FlowError::kOk;
}

void NetflowV9Decoder::parse_templates(const Context& c, std::span<const std::byte> body,
                                       bool options, FlowOutput& out) {
  const bool v9 = c.kind == TemplateCache::Kind::kV9;
  const std::byte* p = body.data();
  const std::byte* end = p + body.size();
  while (end - p >= 4) {
    const std::uint16_t id = rd16(p);
    std::size_t n = 0, scope = 0;
    Template t;
    t.options = options;
    if (v9 && options) {
      // Options template (RFC 3954 §6.1): lengths in bytes of the scope and option fields.
      if (end - p < 6) break;
      const std::uint16_t scope_len = rd16(p + 2), opt_len = rd16(p + 4);
      if (scope_len == 0 && opt_len == 0 && id == 0) break;  // padding
      if (scope_len % 4 || opt_len % 4) {
        out.stats->count(FlowError::kBadTemplate);
        return;
      }
      scope = scope_len / 4u;
      n = scope + opt_len / 4u;
      t.scope_bytes = scope_len;
      p += 6;
    } else {
      n = rd16(p + 2);
      p += 4;
      if (options && !v9) {
        if (end - p < 2) {
          out.stats->count(FlowError::kBadTemplate);
          return;
        }
        scope = rd16(p);
        p += 2;
      }
      if (n == 0) {
        if (v9) break;  // padding
        // Withdrawal (RFC 7011 §8.1): the set's own ID withdraws every template of its kind.
        if (id == (options ? kIpfixOptionsTemplateSet : kIpfixTemplateSet))
          templates_.withdraw_all(c.exporter, c.domain, c.kind, options);
        else
          templates_.withdraw(c.exporter, c.domain, c.kind, id);
        continue;
      }
    }
    if (id < kMinDataSetId || n == 0 || scope > n || (options && scope == 0)) {
      out.stats->count(FlowError::kBadTemplate);
      return;
    }
    t.scope_count = static_cast<std::uint16_t>(scope);
    t.fields.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (end - p < 4) {
        out.stats->count(FlowError::kBadTemplate);
        return;
      }
      TemplateField f;
      f.id = rd16(p);
      f.length = rd16(p + 2);
      p += 4;
      if (!v9 && (f.id & 0x8000)) {  // enterprise bit (RFC 7011 §3.2)
        if (end - p < 4) {
          out.stats->count(FlowError::kBadTemplate);
          return;
        }
        f.id &= 0x7fff;
        f.enterprise = rd32(p);
        p += 4;
      }
      if (f.length == kVariableLength) {
        if (v9) {
          out.stats->count(FlowError::kBadTemplate);
          return;
        }
        t.variable = true;
        t.min_length += 1;
      } else {
        t.min_length += f.length;
      }
      t.fields.push_back(f);
    }
    if (t.min_length == 0) {
      out.stats->count(FlowError::kBadTemplate);
      return;
    }
    const auto put = templates_.put(c.exporter, c.domain, c.kind, id, std::move(t));
    if (put == TemplateCache::Put::kTooLarge)
      out.stats->count(FlowError::kTemplateLimit);
    else if (put != TemplateCache::Put::kUnchanged)
      release(c, id, out);
  }
}

void NetflowV9Decoder::decode_data(const Context& c, std::uint16_t id,
                                   std::span<const std::byte> body, FlowOutput& out) {
  const Template* t = templates_.find(c.exporter, c.domain, c.kind, id);
  if (!t) {
    hold(c, id, body, out);
    return;
  }
  const std::byte* p = body.data();
  const std::byte* end = p + body.size();
  // Trailing bytes shorter than the shortest record are padding (RFC 7011 §3.3.1).
  while (static_cast<std::size_t>(end - p) >= t->min_length) {
    const bool ok =
        t->options ? decode_options(c, *t, p, end, out) : decode_flow(c, *t, p, end, out);
    if (!ok) {
      out.stats->count(FlowError::kTruncatedRecord);
      return;
    }
  }
}

bool NetflowV9Decoder::decode_flow(const Context& c, const Template& t, const std::byte*& p,
                                   const std::byte* end, FlowOutput& out) {
  FlowRecord f;
  f.exporter = c.exporter;
  f.observation_domain = c.domain;
  f.source = c.kind == TemplateCache::Kind::kV9 ? FlowSource::kNetflowV9 : FlowSource::kIpfix;
  std::uint64_t post_bytes = 0, post_packets = 0, frame_size = 0;
  std::uint32_t in_phys = 0, out_phys = 0;
  SamplingElements sampling;
  bool has_v4 = false, has_v6 = false;
  std::int64_t start = 0, end_t = 0, sys_init = -1;
  std::int64_t up_first = -1, up_last = -1;
  const std::byte* frame = nullptr;
  std::size_t frame_len = 0;
  for (const TemplateField& fd : t.fields) {
    const std::byte* v;
    std::size_t len;
    if (!field_span(fd, p, end, v, len)) return false;
    if (fd.enterprise != 0 || len == 0) continue;
    if (sampling.take(fd.id, v, len)) continue;
    switch (fd.id) {
      case kOctetDelta:
      case kOctetTotal:
        f.bytes = rd_be(v, len);
        break;
      case kPacketDelta:
      case kPacketTotal:
        f.packets = rd_be(v, len);
        break;
      case kPostOctetDelta:
        post_bytes = rd_be(v, len);
        break;
      case kPostPacketDelta:
        post_packets = rd_be(v, len);
        break;
      case kProtocol:
        f.protocol = static_cast<std::uint8_t>(rd_be(v, len));
        break;
      case kTcpFlags:
        f.tcp_flags = static_cast<std::uint8_t>(rd_be(v, len));  // low byte: the classic 8
        break;
      case kSrcPort:
        f.src_port = static_cast<std::uint16_t>(rd_be(v, len));
        break;
      case kDstPort:
        if (f.dst_port == 0) f.dst_port = static_cast<std::uint16_t>(rd_be(v, len));
        break;
      case kSrcV4:
        if (len == 4) f.src = IpAddr::v4(reinterpret_cast<const std::uint8_t*>(v)), has_v4 = true;
        break;
      case kDstV4:
        if (len == 4) f.dst = IpAddr::v4(reinterpret_cast<const std::uint8_t*>(v));
        break;
      case kSrcV6:
        if (len == 16) f.src = IpAddr::v6(reinterpret_cast<const std::uint8_t*>(v)), has_v6 = true;
        break;
      case kDstV6:
        if (len == 16) f.dst = IpAddr::v6(reinterpret_cast<const std::uint8_t*>(v));
        break;
      case kIngressIf:
        f.input_if = static_cast<std::uint32_t>(rd_be(v, len));
        break;
      case kEgressIf:
        f.output_if = static_cast<std::uint32_t>(rd_be(v, len));
        break;
      case kIngressPhysIf:
        in_phys = static_cast<std::uint32_t>(rd_be(v, len));
        break;
      case kEgressPhysIf:
        out_phys = static_cast<std::uint32_t>(rd_be(v, len));
        break;
      case kIcmpTypeCodeV4:
      case kIcmpTypeCodeV6:
        if (const auto tc = static_cast<std::uint16_t>(rd_be(v, len)); tc) f.dst_port = tc;
        break;
      case kIcmpTypeV4:
      case kIcmpTypeV6:
        f.dst_port = static_cast<std::uint16_t>((f.dst_port & 0x00ff) | rd_be(v, len) << 8);
        break;
      case kIcmpCodeV4:
      case kIcmpCodeV6:
        f.dst_port = static_cast<std::uint16_t>((f.dst_port & 0xff00) | (rd_be(v, len) & 0xff));
        break;
      case kSrcVlan:
      case kDot1qVlan:
        f.vlan = static_cast<std::uint16_t>(rd_be(v, len) & 0x0fff);
        break;
      case kDstVlan:
        if (f.vlan == 0) f.vlan = static_cast<std::uint16_t>(rd_be(v, len) & 0x0fff);
        break;
      case kDirection:
        f.direction = rd_be(v, len) == 0 ? FlowDirection::kIngress : FlowDirection::kEgress;
        break;
      case kFirstSwitched:
        up_first = static_cast<std::int64_t>(rd_be(v, len));
        break;
      case kLastSwitched:
        up_last = static_cast<std::int64_t>(rd_be(v, len));
        break;
      case kStartSeconds:
        start = scaled(rd_be(v, len), 1'000'000'000);
        break;
      case kEndSeconds:
        end_t = scaled(rd_be(v, len), 1'000'000'000);
        break;
      case kStartMs:
        start = scaled(rd_be(v, len), 1'000'000);
        break;
      case kEndMs:
        end_t = scaled(rd_be(v, len), 1'000'000);
        break;
      case kStartUs:
      case kStartNs:
        if (len == 8) start = ntp_ns(rd64(v));
        break;
      case kEndUs:
      case kEndNs:
        if (len == 8) end_t = ntp_ns(rd64(v));
        break;
      case kStartDeltaUs:
        start = offset(c.export_ns, rd_be(v, len) * 1000);
        break;
      case kEndDeltaUs:
        end_t = offset(c.export_ns, rd_be(v, len) * 1000);
        break;
      case kSysInitMs:
        sys_init = static_cast<std::int64_t>(rd_be(v, len));
        break;
      case kDataLinkFrameSize:
        frame_size = rd_be(v, len);
        break;
      case kDataLinkFrameSection:
        frame = v;
        frame_len = len;
        break;
      default:
        break;
    }
  }
  if (f.bytes == 0 && post_bytes) f.bytes = post_bytes;
  if (f.packets == 0 && post_packets) f.packets = post_packets;
  if (f.input_if == 0) f.input_if = in_phys;
  if (f.output_if == 0) f.output_if = out_phys;
  // A sampled L2 frame instead of a 5-tuple (dataLinkFrameSection, RFC 7133): read its
  // headers with the agent's packet decoder; the frame stands for one packet.
  if (frame && !has_v4 && !has_v6) {
    DecodedPacket pkt;
    if (decode_packet(DLT_EN10MB, {frame, frame_len}, pkt) == DecodeResult::kOk) {
      f.src = pkt.src;
      f.dst = pkt.dst;
      f.protocol = pkt.protocol;
      f.src_port = pkt.src_port;
      f.dst_port = pkt.dst_port;
      f.tcp_flags = pkt.tcp_flags;
      if (f.vlan == 0) f.vlan = pkt.vlan;
    } else {
      ++out.stats->header_not_ip;
    }
    if (f.bytes == 0) f.bytes = frame_size ? frame_size : frame_len;
    if (f.packets == 0) f.packets = 1;
  }
  // sysUptime-relative times: v9 against the header (signed 32-bit difference: a wrapped
  // sysUptime still works), IPFIX against the exporter's systemInitTimeMilliseconds.
  if (up_first >= 0 || up_last >= 0) {
    if (c.kind == TemplateCache::Kind::kV9) {
      auto rel = [&](std::int64_t up) {
        const auto ago = static_cast<std::int32_t>(c.uptime_ms - static_cast<std::uint32_t>(up));
        return c.export_ns - std::int64_t{ago} * 1'000'000;
      };
      if (up_first >= 0) start = rel(up_first);
      if (up_last >= 0) end_t = rel(up_last);
    } else {
      if (sys_init < 0) sys_init = sys_init_ms(c);
      if (sys_init >= 0) {
        if (up_first >= 0)
          start =
              scaled(static_cast<std::uint64_t>(sys_init) + static_cast<std::uint64_t>(up_first),
                     1'000'000);
        if (up_last >= 0)
          end_t = scaled(static_cast<std::uint64_t>(sys_init) + static_cast<std::uint64_t>(up_last),
                         1'000'000);
      }
    }
  }
  if (end_t == 0) end_t = start ? start : c.export_ns;
  if (start == 0) start = end_t;
  f.start_ns = start;
  f.end_ns = end_t;

  out.sampling_decision = out.sampling.decide(c.exporter, c.domain, sampling, *out.stats);
  SamplingTable::apply(f, out.sampling_decision);
  out.emit(f);
  return true;
}

bool NetflowV9Decoder::decode_options(const Context& c, const Template& t, const std::byte*& p,
                                      const std::byte* end, FlowOutput& out) {
  SamplingElements sampling;
  std::int64_t sys_init = -1;
  const bool v9 = c.kind == TemplateCache::Kind::kV9;
  for (std::size_t i = 0; i < t.fields.size(); ++i) {
    const TemplateField& fd = t.fields[i];
    const std::byte* v;
    std::size_t len;
    if (!field_span(fd, p, end, v, len)) return false;
    // v9 scope fields name scope types (system, interface, ...), not elements.
    if ((v9 && i < t.scope_count) || fd.enterprise != 0 || len == 0) continue;
    if (sampling.take(fd.id, v, len)) continue;
    if (fd.id == kSysInitMs) sys_init = static_cast<std::int64_t>(rd_be(v, len));
  }
  out.sampling.learn(c.exporter, c.domain, sampling, *out.stats);
  if (sys_init >= 0) store_sys_init({c.exporter, c.domain, 0, 0}, sys_init);
  return true;
}

void NetflowV9Decoder::store_sys_init(const ExporterDomainKey& k, std::int64_t ms) {
  if (auto it = sys_init_.find(k); it != sys_init_.end()) {
    it->second.ms = ms;
    return;
  }
  while (sys_init_.size() >= kMaxSysInit && !sys_init_order_.empty()) {
    const auto victim = sys_init_.find(sys_init_order_.front());
    sys_init_order_.pop_front();
    if (victim != sys_init_.end() && !victim->second.used) sys_init_.erase(victim);
  }
  if (sys_init_.size() >= kMaxSysInit) return;  // every one in use: the new one waits
  sys_init_.emplace(k, SysInit{ms, false});
  sys_init_order_.push_back(k);
}

std::int64_t NetflowV9Decoder::sys_init_ms(const Context& c) const {
  if (sys_init_.empty()) return -1;
  auto it = sys_init_.find({c.exporter, c.domain, 0, 0});
  if (it == sys_init_.end()) return -1;
  it->second.used = true;
  return it->second.ms;
}

void NetflowV9Decoder::hold(const Context& c, std::uint16_t id, std::span<const std::byte> body,
                            FlowOutput& out) {
  if (body.size() > hold_.max_set_bytes || held_.empty()) {
    out.stats->count(FlowError::kPendingTooLarge);
    return;
  }
  std::size_t slot = held_.size(), oldest = 0;
  for (std::size_t i = 0; i < held_.size(); ++i) {
    if (!held_[i].used) {
      slot = i;
      break;
    }
    if (held_[i].ctx.receive_ns < held_[oldest].ctx.receive_ns) oldest = i;
  }
  if (slot == held_.size()) {
    // Full: the oldest set has waited longest for a template that may never come.
    slot = oldest;
    on_lost_(held_[slot].ctx.exporter, FlowError::kTemplateMissing);
    --held_count_;
  }
  Held& h = held_[slot];
  h.ctx = c;
  h.template_id = id;
  h.length = static_cast<std::uint32_t>(body.size());
  h.used = true;
  if (!body.empty())
    std::memcpy(pool_.data() + slot * hold_.max_set_bytes, body.data(), body.size());
  ++held_count_;
  ++out.stats->held;
}

void NetflowV9Decoder::release(const Context& c, std::uint16_t id, FlowOutput& out) {
  if (held_count_ == 0) return;
  // Oldest first, so records come out in the order they were exported.
  for (;;) {
    std::size_t best = held_.size();
    for (std::size_t i = 0; i < held_.size(); ++i) {
      const Held& h = held_[i];
      if (h.used && h.template_id == id && h.ctx.domain == c.domain && h.ctx.kind == c.kind &&
          h.ctx.exporter == c.exporter &&
          (best == held_.size() || h.ctx.receive_ns < held_[best].ctx.receive_ns))
        best = i;
    }
    if (best == held_.size()) return;
    Held& h = held_[best];
    h.used = false;
    --held_count_;
    ++out.stats->released;
    decode_data(h.ctx, id, {pool_.data() + best * hold_.max_set_bytes, h.length}, out);
  }
}

void NetflowV9Decoder::expire(std::int64_t now_ns) {
  if (held_count_ == 0) return;
  for (Held& h : held_) {
    if (h.used && now_ns - h.ctx.receive_ns > hold_.hold_ns) {
      h.used = false;
      --held_count_;
      on_lost_(h.ctx.exporter, FlowError::kTemplateMissing);
    }
  }
}

void NetflowV9Decoder::save(std::ostream& out) const {
  for (const auto& [k, init] : sys_init_)
    out << "I " << to_string(k.exporter) << ' ' << k.domain << ' ' << init.ms << '\n';
}

bool NetflowV9Decoder::load_line(std::istream& in) {
  std::string addr;
  std::uint32_t domain = 0;
  std::int64_t ms = -1;
  in >> addr >> domain >> ms;
  IpAddr a;
  if (!in || !parse_ip(addr, a) || ms < 0) return false;
  store_sys_init({a, domain, 0, 0}, ms);
  return true;
}

}  // namespace citywatch::agent::flow
