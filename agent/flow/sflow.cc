#include "agent/flow/sflow.h"

#include <pcap/dlt.h>

#include "agent/capture/packet_decoder.h"
#include "agent/flow/sampling.h"

namespace citywatch::agent::flow {

namespace {

// A big-endian cursor: every read checks the bound; a short read fails the cursor for good.
class Cursor {
 public:
  Cursor(const std::byte* p, std::size_t n) : p_(p), end_(p + n) {}
  bool ok() const { return ok_; }
  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }
  const std::byte* pos() const { return p_; }
  std::uint32_t u32() {
    if (!take(4)) return 0;
    return rd32(p_ - 4);
  }
  std::uint64_t u64() {
    if (!take(8)) return 0;
    return rd64(p_ - 8);
  }
  const std::byte* bytes(std::size_t n) { return take(n) ? p_ - n : nullptr; }
  // An opaque sub-structure of n bytes (sFlow pads them to 4).
  Cursor sub(std::size_t n) {
    const std::byte* b = bytes(n);
    return b ? Cursor(b, n) : Cursor(p_, 0, false);
  }

 private:
  Cursor(const std::byte* p, std::size_t n, bool ok) : p_(p), end_(p + n), ok_(ok) {}
  bool take(std::size_t n) {
    if (!ok_ || n > remaining()) return ok_ = false;
    p_ += n;
    return true;
  }
  const std::byte* p_;
  const std::byte* end_;
  bool ok_ = true;
};

// Data formats (enterprise 0).
constexpr std::uint32_t kFlowSample = 1;
constexpr std::uint32_t kCounterSample = 2;
constexpr std::uint32_t kFlowSampleExpanded = 3;
constexpr std::uint32_t kCounterSampleExpanded = 4;
constexpr std::uint32_t kRawHeader = 1;
constexpr std::uint32_t kSampledIpv4 = 3;
constexpr std::uint32_t kSampledIpv6 = 4;
constexpr std::uint32_t kExtendedSwitch = 1001;
constexpr std::uint32_t kGenericInterfaceCounters = 1;
constexpr std::size_t kGenericCountersSize = 88;
// header_protocol values (§5.5).
constexpr std::uint32_t kHeaderEthernet = 1;
constexpr std::uint32_t kHeaderIpv4 = 11;
constexpr std::uint32_t kHeaderIpv6 = 12;

bool read_agent(Cursor& c, IpAddr& out) {
  const std::uint32_t type = c.u32();
  if (type == 1) {
    const std::byte* a = c.bytes(4);
    if (a) out = IpAddr::v4(reinterpret_cast<const std::uint8_t*>(a));
    return a != nullptr;
  }
  if (type == 2) {
    const std::byte* a = c.bytes(16);
    if (a) out = IpAddr::v6(reinterpret_cast<const std::uint8_t*>(a));
    return a != nullptr;
  }
  return false;
}

void fill_from_packet(const DecodedPacket& pkt, FlowRecord& f) {
  f.src = pkt.src;
  f.dst = pkt.dst;
  f.protocol = pkt.protocol;
  f.src_port = pkt.src_port;
  f.dst_port = pkt.dst_port;
  f.tcp_flags = pkt.tcp_flags;
  if (pkt.vlan) f.vlan = pkt.vlan;
}

FlowError flow_sample(Cursor c, bool expanded, const IpAddr& agent, std::uint32_t sub_agent,
                      std::int64_t now_ns, FlowOutput& out) {
  FlowRecord f;
  f.exporter = agent;
  f.observation_domain = sub_agent;
  f.source = FlowSource::kSflow;
  f.start_ns = f.end_ns = now_ns;
  c.u32();  // sequence
  c.u32();  // source id (type, index)
  if (expanded) c.u32();
  const std::uint32_t rate = c.u32();
  c.u32();  // sample pool
  c.u32();  // drops
  std::uint32_t in_fmt, in_val, out_fmt, out_val;
  if (expanded) {
    in_fmt = c.u32();
    in_val = c.u32();
    out_fmt = c.u32();
    out_val = c.u32();
  } else {
    // Compact form: the top 2 bits are the format, the low 30 the value (§5.2).
    const std::uint32_t in = c.u32(), outv = c.u32();
    in_fmt = in >> 30;
    in_val = in & 0x3fffffff;
    out_fmt = outv >> 30;
    out_val = outv & 0x3fffffff;
  }
  if (in_fmt == 0 && in_val != 0x3fffffff) f.input_if = in_val;
  // Format 1: a discard (value: the reason); format 2: several interfaces (value: count).
  if (out_fmt == 0 && out_val != 0x3fffffff) f.output_if = out_val;
  const std::uint32_t n = c.u32();
  if (!c.ok()) return FlowError::kSflowTruncatedSample;
  if (n > c.remaining() / 8) return FlowError::kSflowTooManySamples;
  bool have = false;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint32_t format = c.u32();
    const std::uint32_t len = c.u32();
    Cursor r = c.sub(len);
    if (!c.ok()) return FlowError::kSflowTruncatedSample;
    if (format >> 12) continue;  // another enterprise's record
    switch (format) {
      case kRawHeader: {
        const std::uint32_t proto = r.u32();
        const std::uint32_t frame_len = r.u32();
        r.u32();  // stripped
        const std::uint32_t hlen = r.u32();
        const std::byte* h = r.bytes(hlen);
        if (!r.ok()) return FlowError::kSflowTruncatedSample;
        const int dlt = proto == kHeaderEthernet ? DLT_EN10MB
                        : proto == kHeaderIpv4   ? DLT_IPV4
                        : proto == kHeaderIpv6   ? DLT_IPV6
                                                 : -1;
        DecodedPacket pkt;
        if (dlt >= 0 && decode_packet(dlt, {h, hlen}, pkt) == DecodeResult::kOk)
          fill_from_packet(pkt, f);
        else
          ++out.stats->header_not_ip;
        f.packets = 1;
        f.bytes = frame_len;
        have = true;
        break;
      }
      case kSampledIpv4:
      case kSampledIpv6: {
        if (have) break;  // the raw header, when present, says more
        const std::uint32_t length = r.u32();
        const std::uint32_t proto = r.u32();
        const std::size_t alen = format == kSampledIpv4 ? 4 : 16;
        const std::byte* s = r.bytes(alen);
        const std::byte* d = r.bytes(alen);
        const std::uint32_t sport = r.u32(), dport = r.u32(), flags = r.u32();
        if (!r.ok()) return FlowError::kSflowTruncatedSample;
        auto ip = [&](const std::byte* a) {
          return alen == 4 ? IpAddr::v4(reinterpret_cast<const std::uint8_t*>(a))
                           : IpAddr::v6(reinterpret_cast<const std::uint8_t*>(a));
        };
        f.src = ip(s);
        f.dst = ip(d);
        f.protocol = static_cast<std::uint8_t>(proto);
        f.src_port = static_cast<std::uint16_t>(sport);
        f.dst_port = static_cast<std::uint16_t>(dport);
        f.tcp_flags = static_cast<std::uint8_t>(flags);
        f.packets = 1;
        f.bytes = length;
        have = true;
        break;
      }
      case kExtendedSwitch: {
        const std::uint32_t vlan = r.u32();
        if (r.ok() && f.vlan == 0) f.vlan = static_cast<std::uint16_t>(vlan & 0x0fff);
        break;
      }
      default:
        break;
    }
  }
  if (have) {
    out.sampling_decision =
        out.sampling.decide_stated(agent, rate, SamplingSource::kSflowSample, *out.stats);
    SamplingTable::apply(f, out.sampling_decision);
    out.emit(f);
  }
  return FlowError::kOk;
}

FlowError counter_sample(Cursor c, bool expanded, const IpAddr& agent, std::int64_t now_ns,
                         FlowOutput& out) {
  c.u32();  // sequence
  c.u32();  // source id
  if (expanded) c.u32();
  const std::uint32_t n = c.u32();
  if (!c.ok()) return FlowError::kSflowTruncatedSample;
  if (n > c.remaining() / 8) return FlowError::kSflowTooManySamples;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint32_t format = c.u32();
    const std::uint32_t len = c.u32();
    Cursor r = c.sub(len);
    if (!c.ok()) return FlowError::kSflowTruncatedSample;
    if (format != kGenericInterfaceCounters || len < kGenericCountersSize) continue;
    InterfaceSample s;
    s.device = agent;
    s.if_index = r.u32();
    r.u32();  // ifType
    s.speed_bps = r.u64();
    r.u32();                               // ifDirection
    const std::uint32_t status = r.u32();  // bit 0 admin up, bit 1 oper up
    // ifStatus: bit 0 ifAdminStatus, bit 1 ifOperStatus (sFlow v5 counters), as IF-MIB values.
    s.admin_status = (status & 1) ? 1 : 2;
    s.oper_status = ((status >> 1) & 1) ? 1 : 2;
    s.in_octets = r.u64();
    s.in_packets = std::uint64_t{r.u32()} + r.u32() + r.u32();  // unicast + multicast + broadcast
    s.in_discards = r.u32();
    s.in_errors = r.u32();
    r.u32();  // unknown protocols
    s.out_octets = r.u64();
    s.out_packets = std::uint64_t{r.u32()} + r.u32() + r.u32();
    s.out_discards = r.u32();
    s.out_errors = r.u32();
    if (!r.ok()) return FlowError::kSflowTruncatedSample;
    out.emit(s, now_ns);
  }
  return FlowError::kOk;
}

}  // namespace

bool sflow_agent_address(std::span<const std::byte> d, IpAddr& out) {
  Cursor c(d.data(), d.size());
  c.u32();
  return read_agent(c, out) && c.ok();
}

FlowError decode_sflow(std::span<const std::byte> d, std::int64_t receive_ns, FlowOutput& out) {
  Cursor c(d.data(), d.size());
  if (d.size() < kSflowMinHeader) return FlowError::kTruncatedHeader;
  c.u32();  // version
  IpAddr agent;
  if (!read_agent(c, agent))
    return c.ok() ? FlowError::kSflowBadAddress : FlowError::kTruncatedHeader;
  const std::uint32_t sub_agent = c.u32();
  c.u32();  // sequence
  c.u32();  // uptime
  const std::uint32_t n = c.u32();
  if (!c.ok()) return FlowError::kTruncatedHeader;
  if (n > c.remaining() / 8) return FlowError::kSflowTooManySamples;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint32_t format = c.u32();
    const std::uint32_t len = c.u32();
    Cursor s = c.sub(len);
    if (!c.ok()) return FlowError::kSflowTruncatedSample;
    if (format >> 12) continue;  // enterprise-specific sample
    FlowError e = FlowError::kOk;
    switch (format & 0xfff) {
      case kFlowSample:
      case kFlowSampleExpanded:
        e = flow_sample(s, format == kFlowSampleExpanded, agent, sub_agent, receive_ns, out);
        break;
      case kCounterSample:
      case kCounterSampleExpanded:
        e = counter_sample(s, format == kCounterSampleExpanded, agent, receive_ns, out);
        break;
      default:
        break;
    }
    if (e != FlowError::kOk) return e;
  }
  return FlowError::kOk;
}

}  // namespace citywatch::agent::flow
