#include "common/wire_codec.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <limits>
#include <type_traits>

#include "common/byte_io.h"
#include "common/crc32c.h"

namespace citywatch::wire {

const char* to_string(DecodeError e) {
  switch (e) {
    case DecodeError::kOk:
      return "ok";
    case DecodeError::kBadMagic:
      return "bad_magic";
    case DecodeError::kBadVersion:
      return "bad_version";
    case DecodeError::kBadType:
      return "bad_type";
    case DecodeError::kTooLarge:
      return "too_large";
    case DecodeError::kBadChecksum:
      return "bad_checksum";
    case DecodeError::kTruncated:
      return "truncated";
    case DecodeError::kTrailingBytes:
      return "trailing_bytes";
    case DecodeError::kBadRecord:
      return "bad_record";
    case DecodeError::kTooManyRecords:
      return "too_many_records";
    case DecodeError::kBadString:
      return "bad_string";
    case DecodeError::kDecodedTooLarge:
      return "decoded_too_large";
  }
  return "unknown";
}

DecodeError decode_header(std::span<const std::byte, kHeaderSize> bytes, FrameHeader& out) {
  ByteReader r(bytes);
  if (r.u32() != kMagic) return DecodeError::kBadMagic;
  if (r.u8() != kVersion) return DecodeError::kBadVersion;
  const std::uint8_t type = r.u8();
  if (type < static_cast<std::uint8_t>(FrameType::kHello) ||
      type > static_cast<std::uint8_t>(FrameType::kError))
    return DecodeError::kBadType;
  out.type = static_cast<FrameType>(type);
  out.flags = r.u16();
  out.length = r.u32();
  out.checksum = r.u32();
  if (out.length > kMaxPayload) return DecodeError::kTooLarge;
  return DecodeError::kOk;
}

DecodeError verify_payload(const FrameHeader& header, std::span<const std::byte> payload) {
  if (payload.size() != header.length) return DecodeError::kTruncated;
  if (crc32c(payload) != header.checksum) return DecodeError::kBadChecksum;
  return DecodeError::kOk;
}

void encode_frame(FrameType type, std::span<const std::byte> payload, std::vector<std::byte>& out,
                  std::uint16_t flags) {
  encode_frame_head(type, payload, payload.size(), out, flags);
}

void encode_frame_head(FrameType type, std::span<const std::byte> payload, std::size_t head,
                       std::vector<std::byte>& out, std::uint16_t flags) {
  ByteWriter w(out);
  w.u32(kMagic);
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(type));
  w.u16(flags);
  w.u32(static_cast<std::uint32_t>(payload.size()));
  w.u32(crc32c(payload));
  w.bytes(payload.data(), std::min(head, payload.size()));
}

namespace {

// Enumerations with gaps or no zero value: a byte that names nothing is a bad record.
bool valid(FlowDirection) { return true; }
bool valid(FlowSource s) {
  switch (s) {
    case FlowSource::kPacketMeter:
    case FlowSource::kNetflowV5:
    case FlowSource::kNetflowV9:
    case FlowSource::kIpfix:
    case FlowSource::kSflow:
      return true;
  }
  return false;
}
bool valid(PacketEventKind k) { return static_cast<std::uint8_t>(k) != 0; }
bool valid(SnmpEvent) { return true; }
bool valid(SnmpTrapKind) { return true; }

// Each record kind's fields are listed once, in fields(); the writer and the reader below
// walk the same list, so encoder and decoder cannot drift apart.
// Writes at a raw cursor: the encoder has made room for the largest record beforehand, so
// each field is one store, with no capacity check or size update per byte.
class Writer {
 public:
  explicit Writer(std::byte* p) : p_(p) {}
  std::byte* position() const { return p_; }
  void u8(const std::uint8_t& v) { put(v, 1); }
  template <typename E>
  void any8(const E& v) {
    put(static_cast<std::uint8_t>(v), 1);
  }
  void u16(const std::uint16_t& v) { put(v, 2); }
  void u32(const std::uint32_t& v) { put(v, 4); }
  void u64(const std::uint64_t& v) { put(v, 8); }
  void i64(const std::int64_t& v) { put(static_cast<std::uint64_t>(v), 8); }
  template <typename E>
  void e8(const E& v, E /*max*/) {
    put(static_cast<std::uint8_t>(v), 1);
  }
  void ip(const IpAddr& a) {
    put(static_cast<std::uint8_t>(a.family), 1);
    if (a.family == IpAddr::Family::kV4) bytes(a.bytes.data(), 4);
    if (a.family == IpAddr::Family::kV6) bytes(a.bytes.data(), 16);
  }
  template <std::size_t N>
  void str(const InlineString<N>& s) {
    put(s.size(), 1);
    bytes(s.view().data(), s.size());
  }
  template <std::size_t N>
  void array(const std::array<std::uint8_t, N>& a) {
    bytes(a.data(), N);
  }
  // An element count of a bounded array; the reader refuses one beyond max.
  void count(const std::uint8_t& n, std::size_t /*max*/) { put(n, 1); }
  // A field added at the end of a body: always written; a body from an older agent that
  // ends before it reads as 0.
  void tail_u32(const std::uint32_t& v) { put(v, 4); }
  void oid(const std::array<std::uint32_t, 16>& a, const std::uint8_t& len) {
    put(len, 1);
    for (std::uint8_t i = 0; i < len && i < a.size(); ++i) put(a[i], 4);
  }

 protected:
  void bytes(const void* src, std::size_t n) {
    if (n) std::memcpy(p_, src, n);
    p_ += n;
  }
  void put(std::uint64_t v, int n) {
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(p_, &v, static_cast<std::size_t>(n));
    } else {
      for (int i = 0; i < n; ++i) p_[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
    }
    p_ += n;
  }
  std::byte* p_;
};

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}
// a - b and a + b as two's complement, without signed overflow.
std::int64_t wrap_sub(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) - static_cast<std::uint64_t>(b));
}
std::int64_t wrap_add(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}

// The compact encoding (docs/wire-protocol.md, "Compact records"): the same fields in the
// same order, 32- and 64-bit integers as LEB128 varints, times as zigzag varints relative to
// the record's event time. Bytes, 8- and 16-bit fields, addresses and strings as fixed.
class CompactWriter : public Writer {
 public:
  CompactWriter(std::byte* p, std::int64_t base_ns) : Writer(p), base_(base_ns) {}
  void u32(const std::uint32_t& v) { varint(v); }
  void u64(const std::uint64_t& v) { varint(v); }
  void i64(const std::int64_t& v) { varint(zigzag(wrap_sub(v, base_))); }
  void tail_u32(const std::uint32_t& v) { varint(v); }
  void oid(const std::array<std::uint32_t, 16>& a, const std::uint8_t& len) {
    u8(len);
    for (std::uint8_t i = 0; i < len && i < a.size(); ++i) varint(a[i]);
  }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      *p_++ = static_cast<std::byte>(v | 0x80);
      v >>= 7;
    }
    *p_++ = static_cast<std::byte>(v);
  }

 private:
  std::int64_t base_;
};

// The largest encoded record: kind, length, time and the widest body (an SnmpTrap with all
// its varbinds: about 760 bytes), with room to spare. Checked per record below.
constexpr std::size_t kMaxEncodedRecord = 1024;

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : r_(in) {}
  bool ok() const { return r_.ok() && error_ == DecodeError::kOk; }
  DecodeError error() const { return r_.ok() ? error_ : DecodeError::kTruncated; }
  std::size_t remaining() const { return r_.remaining(); }

  void u8(std::uint8_t& v) { v = r_.u8(); }
  template <typename E>
  void any8(E& v) {
    v = static_cast<E>(r_.u8());
  }
  void u16(std::uint16_t& v) { v = r_.u16(); }
  void u32(std::uint32_t& v) { v = r_.u32(); }
  void u64(std::uint64_t& v) { v = r_.u64(); }
  void i64(std::int64_t& v) { v = r_.i64(); }
  void tail_u32(std::uint32_t& v) { v = r_.remaining() == 0 ? 0 : r_.u32(); }
  template <typename E>
  void e8(E& v, E max) {
    const std::uint8_t raw = r_.u8();
    v = static_cast<E>(raw);
    if (raw > static_cast<std::uint8_t>(max) || !valid(v)) error_ = DecodeError::kBadRecord;
  }
  void ip(IpAddr& a) {
    const std::uint8_t family = r_.u8();
    a = IpAddr{};
    if (family == 4) {
      r_.bytes(a.bytes.data(), 4);
      a.family = IpAddr::Family::kV4;
    } else if (family == 6) {
      r_.bytes(a.bytes.data(), 16);
      a.family = IpAddr::Family::kV6;
    } else if (family != 0) {
      error_ = DecodeError::kBadRecord;
    }
  }
  template <std::size_t N>
  void str(InlineString<N>& s) {
    const std::uint8_t len = r_.u8();
    if (len > N) {
      error_ = DecodeError::kBadString;
      return;
    }
    const auto bytes = r_.view(len);
    s.assign({reinterpret_cast<const char*>(bytes.data()), bytes.size()});
  }
  template <std::size_t N>
  void array(std::array<std::uint8_t, N>& a) {
    r_.bytes(a.data(), N);
  }
  void count(std::uint8_t& n, std::size_t max) {
    n = r_.u8();
    if (n > max) {
      n = 0;
      error_ = DecodeError::kBadRecord;
    }
  }
  void oid(std::array<std::uint32_t, 16>& a, std::uint8_t& len) {
    len = r_.u8();
    if (len > a.size()) {
      error_ = DecodeError::kBadRecord;
      return;
    }
    for (std::uint8_t i = 0; i < len; ++i) a[i] = r_.u32();
  }

 protected:
  ByteReader r_;
  DecodeError error_ = DecodeError::kOk;
};

class CompactReader : public Reader {
 public:
  CompactReader(std::span<const std::byte> in, std::int64_t base_ns) : Reader(in), base_(base_ns) {}
  void u32(std::uint32_t& v) { v = narrow<std::uint32_t>(r_.varint()); }
  void u64(std::uint64_t& v) { v = r_.varint(); }
  void i64(std::int64_t& v) { v = wrap_add(base_, unzigzag(r_.varint())); }
  void tail_u32(std::uint32_t& v) {
    v = r_.remaining() == 0 ? 0 : narrow<std::uint32_t>(r_.varint());
  }
  void oid(std::array<std::uint32_t, 16>& a, std::uint8_t& len) {
    len = r_.u8();
    if (len > a.size()) {
      error_ = DecodeError::kBadRecord;
      return;
    }
    for (std::uint8_t i = 0; i < len; ++i) a[i] = narrow<std::uint32_t>(r_.varint());
  }

 private:
  template <typename T>
  T narrow(std::uint64_t v) {
    if (v > std::numeric_limits<T>::max()) error_ = DecodeError::kBadRecord;
    return static_cast<T>(v);
  }
  std::int64_t base_;
};

// Constness is cast away for the writer's sake only; the Writer never modifies.
template <typename A, typename T>
void fields(A& a, T& f);

template <typename A>
void fields(A& a, FlowRecord& f) {
  a.i64(f.start_ns);
  a.i64(f.end_ns);
  a.ip(f.src);
  a.ip(f.dst);
  a.ip(f.exporter);
  a.u64(f.packets);
  a.u64(f.bytes);
  a.u32(f.observation_domain);
  a.u32(f.sampling_rate);
  a.u32(f.input_if);
  a.u32(f.output_if);
  a.u16(f.src_port);
  a.u16(f.dst_port);
  a.u16(f.vlan);
  a.u8(f.protocol);
  a.u8(f.tcp_flags);
  a.e8(f.direction, FlowDirection::kEgress);
  a.e8(f.source, FlowSource::kSflow);
}

template <typename A>
void fields(A& a, InterfaceSample& f) {
  a.ip(f.device);
  a.str(f.target);
  a.u32(f.if_index);
  a.u32(f.if_type);
  a.str(f.if_name);
  a.str(f.if_alias);
  a.str(f.if_descr);
  a.u64(f.in_octets);
  a.u64(f.out_octets);
  a.u64(f.in_packets);
  a.u64(f.out_packets);
  a.u64(f.in_multicast);
  a.u64(f.out_multicast);
  a.u64(f.in_broadcast);
  a.u64(f.out_broadcast);
  a.u64(f.in_errors);
  a.u64(f.out_errors);
  a.u64(f.in_discards);
  a.u64(f.out_discards);
  a.u64(f.speed_bps);
  // Wire version 1 carries admin_up and oper_up flags before the statuses. They are written
  // from the statuses; on reading they matter only where a status is 0: agents before the
  // one status representation sent sFlow interfaces with the flags alone.
  std::uint8_t admin_flag = f.admin_up() ? 1 : 0, oper_flag = f.oper_up() ? 1 : 0;
  a.u8(admin_flag);
  a.u8(oper_flag);
  a.u8(f.admin_status);
  a.u8(f.oper_status);
  if (f.admin_status == 0 && admin_flag == 1) f.admin_status = 1;
  if (f.oper_status == 0 && oper_flag == 1) f.oper_status = 1;
  a.u8(f.prev_oper_status);
  a.u8(f.flags);
  a.e8(f.event, SnmpEvent::kOperChange);
}

template <typename A>
void fields(A& a, DeviceStatus& f) {
  a.ip(f.device);
  a.str(f.target);
  a.str(f.site);
  a.str(f.name);
  a.str(f.descr);
  a.str(f.object_id);
  a.u64(f.uptime_cs);
  a.u32(f.poll_duration_us);
  a.u16(f.interfaces);
  a.u16(f.consecutive_failures);
  a.u8(f.reachable);
  // Any value: a cause a newer agent knows and this collector does not must not cost the
  // batch (consumers treat unknown causes as "unreachable").
  a.any8(f.cause);
  a.e8(f.event, SnmpEvent::kOperChange);
}

template <typename A>
void fields(A& a, SnmpTrap& f) {
  a.ip(f.device);
  a.str(f.target);
  a.oid(f.trap_oid, f.trap_oid_len);
  a.u32(f.if_index);
  a.u64(f.uptime_cs);
  a.e8(f.kind, SnmpTrapKind::kAuthenticationFailure);
  a.u8(f.version);
  a.u8(f.inform);
  a.u8(f.admin_status);
  a.u8(f.oper_status);
  a.u8(f.varbind_count);
  a.count(f.varbinds_len, SnmpTrap::kMaxVarbinds);
  for (std::uint8_t i = 0; i < f.varbinds_len && i < SnmpTrap::kMaxVarbinds; ++i) {
    SnmpVarbind& v = f.varbinds[i];
    a.oid(v.oid, v.oid_len);
    a.u8(v.type);
    a.str(v.value);
  }
}

template <typename A>
void fields(A& a, PacketEvent& f) {
  a.ip(f.src);
  a.ip(f.dst);
  a.u16(f.src_port);
  a.u16(f.dst_port);
  a.u16(f.vlan);
  a.u16(f.dns_qtype);
  a.array(f.mac);
  a.u8(f.protocol);
  a.u8(f.dns_rcode);
  a.e8(f.kind, PacketEventKind::kArpReplyFlood);
  a.str(f.name);
  a.u8(f.flags);
  a.u8(f.icmp_code);
  a.array(f.prev_mac);
  a.tail_u32(f.count);
}

constexpr std::uint8_t kMaxKind = static_cast<std::uint8_t>(RecordKind::kPacketEvent);

}  // namespace

void encode_hello(const Hello& hello, std::vector<std::byte>& payload) {
  ByteWriter w(payload);
  w.str8(hello.agent_id.view());
  w.str8(hello.segment.view());
  w.str8(hello.software.view());
  w.u64(hello.stream_id);
}

DecodeError decode_hello(std::span<const std::byte> payload, Hello& out) {
  Reader r(payload);
  r.str(out.agent_id);
  r.str(out.segment);
  r.str(out.software);
  r.u64(out.stream_id);
  if (!r.ok()) return r.error();
  if (r.remaining() != 0) return DecodeError::kTrailingBytes;
  if (out.agent_id.empty()) return DecodeError::kBadString;
  return DecodeError::kOk;
}

void encode_sequence(std::uint64_t seq, std::vector<std::byte>& payload) {
  ByteWriter(payload).u64(seq);
}

DecodeError decode_sequence(std::span<const std::byte> payload, std::uint64_t& seq) {
  ByteReader r(payload);
  seq = r.u64();
  if (!r.ok()) return DecodeError::kTruncated;
  if (r.remaining() != 0) return DecodeError::kTrailingBytes;
  return DecodeError::kOk;
}

void encode_error(ErrorCode code, std::string_view text, std::vector<std::byte>& payload) {
  ByteWriter w(payload);
  w.u16(static_cast<std::uint16_t>(code));
  w.str8(text);
}

// BATCH payload: u64 sequence, u32 record count (its top bit set for compact records), then
// per record u8 kind, body length (fixed: u16; compact: varint) and body (event time: fixed
// i64; compact: zigzag varint from the previous record's; then the kind's fields).
constexpr std::uint32_t kCompactCount = 0x8000'0000u;

void BatchEncoder::begin(Encoding encoding) {
  // A buffer handed in by finish_into() comes at the size of the batch it held: those bytes
  // are overwritten as they are, and add_body() grows it only as far as a batch needs.
  if (buf_.size() < 12 + kMaxEncodedRecord) buf_.resize(64 * kMaxEncodedRecord);
  std::memset(buf_.data(), 0, 12);  // sequence and count, filled in by finish()
  used_ = 12;
  count_ = 0;
  encoding_ = encoding;
  prev_time_ns_ = 0;
}

template <typename Body>
void BatchEncoder::add_body(RecordKind kind, std::int64_t event_time_ns, const Body& body) {
  if (buf_.size() - used_ < kMaxEncodedRecord) {
    // Growing zero-fills the new bytes: within the capacity (a recycled buffer's), by steps of
    // an eighth, so no more is filled than the batch is about to write; past it, doubling.
    const std::size_t step = std::max(buf_.size() / 8, 16 * kMaxEncodedRecord);
    std::size_t n = buf_.size() < buf_.capacity() ? std::min(buf_.size() + step, buf_.capacity())
                                                  : buf_.size() * 2;
    buf_.resize(std::max(n, used_ + kMaxEncodedRecord));
  }
  std::byte* const start = buf_.data() + used_;
  std::size_t len;
  if (encoding_ == Encoding::kFixed) {
    Writer w(start);
    w.u8(static_cast<std::uint8_t>(kind));
    w.u16(0);  // body length, patched below
    w.i64(event_time_ns);
    fields(w, const_cast<Body&>(body));
    len = static_cast<std::size_t>(w.position() - start);
    const auto body_len = static_cast<std::uint16_t>(len - 3);
    start[1] = static_cast<std::byte>(body_len & 0xff);
    start[2] = static_cast<std::byte>(body_len >> 8);
  } else {
    // The body goes after a one-byte length (most bodies are under 128 bytes) and moves up
    // when its length takes more.
    std::byte* const body_start = start + 2;
    CompactWriter w(body_start, event_time_ns);
    w.varint(zigzag(wrap_sub(event_time_ns, prev_time_ns_)));
    fields(w, const_cast<Body&>(body));
    const auto body_len = static_cast<std::size_t>(w.position() - body_start);
    CompactWriter head(start, 0);
    head.u8(static_cast<std::uint8_t>(kind));
    if (body_len >= 0x80)
      std::memmove(body_start + (body_len >= 0x4000 ? 2 : 1), body_start, body_len);
    head.varint(body_len);
    len = static_cast<std::size_t>(head.position() - start) + body_len;
    prev_time_ns_ = event_time_ns;
  }
  assert(len <= kMaxEncodedRecord);
  used_ += len;
  ++count_;
}

void BatchEncoder::add(const Record& record) {
  std::visit([&](const auto& body) { add_body(record.kind(), record.event_time_ns, body); },
             record.body);
}

void BatchEncoder::add(std::int64_t event_time_ns, const FlowRecord& flow) {
  add_body(RecordKind::kFlow, event_time_ns, flow);
}

void BatchEncoder::add(std::int64_t event_time_ns, const PacketEvent& event) {
  add_body(RecordKind::kPacketEvent, event_time_ns, event);
}

std::span<const std::byte> BatchEncoder::finish(std::uint64_t seq) {
  Writer w(buf_.data());
  w.u64(seq);
  w.u32(encoding_ == Encoding::kCompact ? count_ | kCompactCount : count_);
  return {buf_.data(), used_};
}

void BatchEncoder::finish_into(std::uint64_t seq, std::vector<std::byte>& out) {
  finish(seq);
  buf_.resize(used_);
  buf_.swap(out);
  used_ = 0;
  count_ = 0;
}

void set_batch_sequence(std::span<std::byte> payload, std::uint64_t seq) {
  if (payload.size() < 8) return;
  Writer w(payload.data());
  w.u64(seq);
}

DecodeError peek_batch_sequence(std::span<const std::byte> payload, std::uint64_t& seq) {
  ByteReader r(payload);
  seq = r.u64();
  return r.ok() ? DecodeError::kOk : DecodeError::kTruncated;
}

namespace {

// Decodes a BATCH payload's records into `out`: Out::begin(count) before the first,
// Out::add(time_ns, body) per record, Out::rollback() when the payload turns out bad (out
// is then as it was).
template <typename BodyReader, typename Out>
DecodeError decode_bodies(ByteReader& r, std::uint32_t count, Out& out,
                          std::uint32_t& unknown_records) {
  constexpr bool kCompact = std::is_same_v<BodyReader, CompactReader>;
  out.begin(count);
  unknown_records = 0;
  std::int64_t prev_time_ns = 0;
  std::size_t decoded_bytes = 0;  // what the records weigh in a RecordBatch, so far
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint8_t kind = r.u8();
    const std::uint64_t len = kCompact ? r.varint() : r.u16();
    if (len > 0xffff) r.fail();
    const auto body = r.view(len);
    if (!r.ok()) {
      out.rollback();
      return DecodeError::kTruncated;
    }
    // A compact record's time is relative to the record before it, of whatever kind.
    std::int64_t time_ns = 0;
    auto rest = body;
    if constexpr (kCompact) {
      ByteReader tr(body);
      time_ns = wrap_add(prev_time_ns, unzigzag(tr.varint()));
      if (!tr.ok()) {
        out.rollback();
        return DecodeError::kTruncated;
      }
      prev_time_ns = time_ns;
      rest = body.subspan(tr.position());
    }
    if (kind == 0 || kind > kMaxKind) {
      ++unknown_records;
      continue;
    }
    BodyReader br = [&] {
      if constexpr (kCompact) {
        return CompactReader(rest, time_ns);
      } else {
        Reader fr(body);
        fr.i64(time_ns);
        return fr;
      }
    }();
    bool too_large = false;
    auto one = [&](auto b) {
      fields(br, b);
      if (!br.ok() || br.remaining() != 0) return false;
      decoded_bytes += RecordBatch::record_bytes<decltype(b)>();
      if (decoded_bytes > kMaxDecodedBytes) {
        too_large = true;
        return false;
      }
      out.add(time_ns, b);
      return true;
    };
    bool ok = false;
    switch (static_cast<RecordKind>(kind)) {
      case RecordKind::kFlow:
        ok = one(FlowRecord{});
        break;
      case RecordKind::kInterfaceSample:
        ok = one(InterfaceSample{});
        break;
      case RecordKind::kDeviceStatus:
        ok = one(DeviceStatus{});
        break;
      case RecordKind::kSnmpTrap:
        ok = one(SnmpTrap{});
        break;
      case RecordKind::kPacketEvent:
        ok = one(PacketEvent{});
        break;
    }
    if (!ok) {
      out.rollback();
      if (too_large) return DecodeError::kDecodedTooLarge;
      return br.ok() ? DecodeError::kTrailingBytes : br.error();
    }
  }
  if (r.remaining() != 0) {
    out.rollback();
    return DecodeError::kTrailingBytes;
  }
  return DecodeError::kOk;
}

template <typename Out>
DecodeError decode_records(std::span<const std::byte> payload, std::uint64_t& seq, Out& out,
                           std::uint32_t& unknown_records) {
  ByteReader r(payload);
  seq = r.u64();
  std::uint32_t count = r.u32();
  if (!r.ok()) return DecodeError::kTruncated;
  const bool compact = (count & kCompactCount) != 0;
  count &= ~kCompactCount;
  if (count > kMaxRecordsPerBatch) return DecodeError::kTooManyRecords;
  // Every record takes at least 3 bytes of framing (compact: 2): a count beyond that is a
  // lie, refused before it can drive a large reserve().
  if (count > r.remaining() / (compact ? 2 : 3)) return DecodeError::kTruncated;
  return compact ? decode_bodies<CompactReader>(r, count, out, unknown_records)
                 : decode_bodies<Reader>(r, count, out, unknown_records);
}

// decode_records() into whole Records.
struct ToVector {
  std::vector<Record>& v;
  const ShortName& agent;
  const ShortName& segment;
  std::size_t first = 0;
  void begin(std::uint32_t count) {
    first = v.size();
    v.reserve(first + count);
  }
  void add(std::int64_t time_ns, const auto& body) {
    Record& rec = v.emplace_back();
    rec.event_time_ns = time_ns;
    rec.agent = agent;
    rec.segment = segment;
    rec.body = body;
  }
  void rollback() { v.resize(first); }
};

// decode_records() into a RecordBatch.
struct ToBatch {
  RecordBatch& b;
  RecordBatch::Mark first;
  // Only the order is reserved: bodies grow with what really arrives, so a count claimed
  // in a header cannot reserve more than 8 bytes per record.
  void begin(std::uint32_t count) {
    first = b.mark();
    b.reserve(b.size() + count);
  }
  void add(std::int64_t time_ns, const auto& body) { b.add(time_ns, body); }
  void rollback() { b.rollback(first); }
};

}  // namespace

DecodeError decode_batch(std::span<const std::byte> payload, const ShortName& agent,
                         const ShortName& segment, std::uint64_t& seq, std::vector<Record>& out,
                         std::uint32_t& unknown_records) {
  ToVector to{out, agent, segment};
  return decode_records(payload, seq, to, unknown_records);
}

DecodeError decode_batch(std::span<const std::byte> payload, std::uint64_t& seq, RecordBatch& out,
                         std::uint32_t& unknown_records) {
  ToBatch to{out, {}};
  return decode_records(payload, seq, to, unknown_records);
}

Encoding batch_encoding(std::span<const std::byte> payload) {
  ByteReader r(payload);
  r.skip(8);
  const std::uint32_t count = r.u32();
  return r.ok() && (count & kCompactCount) != 0 ? Encoding::kCompact : Encoding::kFixed;
}

DecodeError to_fixed(std::span<const std::byte> payload, std::vector<std::byte>& out) {
  std::vector<Record> records;
  std::uint64_t seq = 0;
  std::uint32_t unknown = 0;
  const ShortName none;
  if (const auto e = decode_batch(payload, none, none, seq, records, unknown);
      e != DecodeError::kOk)
    return e;
  BatchEncoder enc;
  enc.begin(Encoding::kFixed);
  for (const Record& r : records) enc.add(r);
  const auto fixed = enc.finish(seq);
  out.assign(fixed.begin(), fixed.end());
  return DecodeError::kOk;
}

}  // namespace citywatch::wire
