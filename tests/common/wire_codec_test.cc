#include "common/wire_codec.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "common/byte_io.h"
#include "common/crc32c.h"

namespace citywatch::wire {
namespace {

Record flow_record() {
  Record r;
  r.event_time_ns = 1'700'000'000'123'456'789;
  FlowRecord f;
  f.start_ns = 1'700'000'000'000'000'000;
  f.end_ns = r.event_time_ns;
  const std::uint8_t src[4] = {10, 99, 1, 10};
  const std::uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  f.src = IpAddr::v4(src);
  f.dst = IpAddr::v6(dst);
  f.packets = 12345678901ull;
  f.bytes = 98765432109876ull;
  f.observation_domain = 7;
  f.sampling_rate = 1000;
  f.input_if = 3;
  f.output_if = 4;
  f.src_port = 51515;
  f.dst_port = 443;
  f.vlan = 100;
  f.protocol = 6;
  f.tcp_flags = 0x1b;
  f.direction = FlowDirection::kEgress;
  f.source = FlowSource::kIpfix;
  r.body = f;
  return r;
}

std::vector<Record> one_of_each() {
  std::vector<Record> v{flow_record()};
  Record r;
  r.event_time_ns = 42;
  InterfaceSample is;
  const std::uint8_t dev[4] = {192, 0, 2, 1};
  is.device = IpAddr::v4(dev);
  is.if_index = 10101;
  is.if_name.assign("GigabitEthernet0/1");
  is.in_octets = ~0ull;
  is.out_discards = 5;
  is.speed_bps = 10'000'000'000ull;
  is.admin_status = 1;
  is.oper_status = 2;
  r.body = is;
  v.push_back(r);
  DeviceStatus ds;
  ds.device = is.device;
  ds.name.assign("core-sw-1");
  ds.uptime_cs = 123456;
  ds.reachable = 1;
  r.body = ds;
  v.push_back(r);
  SnmpTrap t;
  t.device = is.device;
  const std::uint32_t oid[] = {1, 3, 6, 1, 6, 3, 1, 1, 5, 3};
  std::copy(std::begin(oid), std::end(oid), t.trap_oid.begin());
  t.trap_oid_len = 10;
  t.if_index = 2;
  r.body = t;
  v.push_back(r);
  PacketEvent pe;
  pe.kind = PacketEventKind::kDnsQuery;
  pe.src = is.device;
  pe.dns_qtype = 16;
  pe.name.assign("aGVsbG8.city.example");
  pe.mac = {0, 1, 2, 3, 4, 5};
  r.body = pe;
  v.push_back(r);
  return v;
}

std::vector<std::byte> encode(const std::vector<Record>& records, std::uint64_t seq,
                              Encoding encoding = Encoding::kFixed) {
  BatchEncoder enc;
  enc.begin(encoding);
  for (const auto& r : records) enc.add(r);
  auto p = enc.finish(seq);
  return {p.begin(), p.end()};
}

bool same_bytes(const Record& a, const Record& b) {
  // Records are trivially copyable and value-initialised, so equal content means equal
  // bytes once padding is cleared by the same construction path; compare field-wise instead.
  if (a.event_time_ns != b.event_time_ns || a.kind() != b.kind() || !(a.agent == b.agent) ||
      !(a.segment == b.segment))
    return false;
  return std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        const T& y = std::get<T>(b.body);
        if constexpr (std::is_same_v<T, FlowRecord>)
          return x.start_ns == y.start_ns && x.end_ns == y.end_ns && x.src == y.src &&
                 x.dst == y.dst && x.exporter == y.exporter && x.packets == y.packets &&
                 x.bytes == y.bytes && x.observation_domain == y.observation_domain &&
                 x.sampling_rate == y.sampling_rate && x.input_if == y.input_if &&
                 x.output_if == y.output_if && x.src_port == y.src_port &&
                 x.dst_port == y.dst_port && x.vlan == y.vlan && x.protocol == y.protocol &&
                 x.tcp_flags == y.tcp_flags && x.direction == y.direction && x.source == y.source;
        if constexpr (std::is_same_v<T, InterfaceSample>)
          return x.device == y.device && x.if_index == y.if_index && x.if_name == y.if_name &&
                 x.in_octets == y.in_octets && x.out_discards == y.out_discards &&
                 x.speed_bps == y.speed_bps && x.admin_status == y.admin_status &&
                 x.oper_status == y.oper_status;
        if constexpr (std::is_same_v<T, DeviceStatus>)
          return x.device == y.device && x.name == y.name && x.uptime_cs == y.uptime_cs &&
                 x.reachable == y.reachable;
        if constexpr (std::is_same_v<T, SnmpTrap>)
          return x.device == y.device && x.trap_oid == y.trap_oid &&
                 x.trap_oid_len == y.trap_oid_len && x.if_index == y.if_index;
        if constexpr (std::is_same_v<T, PacketEvent>)
          return x.kind == y.kind && x.src == y.src && x.dns_qtype == y.dns_qtype &&
                 x.name == y.name && x.mac == y.mac;
        return false;
      },
      a.body);
}

// The tests that hold for either record encoding run for both.
class WireCodecBoth : public ::testing::TestWithParam<Encoding> {};
INSTANTIATE_TEST_SUITE_P(Encodings, WireCodecBoth,
                         ::testing::Values(Encoding::kFixed, Encoding::kCompact),
                         [](const ::testing::TestParamInfo<Encoding>& p) {
                           return p.param == Encoding::kFixed ? "Fixed" : "Compact";
                         });

TEST_P(WireCodecBoth, BatchRoundTripEveryKind) {
  const auto records = one_of_each();
  const auto payload = encode(records, 77, GetParam());
  std::vector<Record> out;
  std::uint64_t seq = 0;
  std::uint32_t unknown = 9;
  ShortName agent("agent-7"), segment("library");
  ASSERT_EQ(decode_batch(payload, agent, segment, seq, out, unknown), DecodeError::kOk);
  EXPECT_EQ(seq, 77u);
  EXPECT_EQ(unknown, 0u);
  ASSERT_EQ(out.size(), records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    Record expect = records[i];
    expect.agent = agent;
    expect.segment = segment;
    EXPECT_TRUE(same_bytes(expect, out[i])) << "record " << i;
  }
  std::uint64_t peeked = 0;
  EXPECT_EQ(peek_batch_sequence(payload, peeked), DecodeError::kOk);
  EXPECT_EQ(peeked, 77u);
  EXPECT_EQ(batch_encoding(payload), GetParam());
}

TEST_P(WireCodecBoth, BodiesEncodeAsTheirRecords) {
  // The agent's hot path encodes flows and packet events without a Record around them: the
  // bytes must be those of add(Record).
  BatchEncoder whole, bodies;
  whole.begin(GetParam());
  bodies.begin(GetParam());
  for (const Record& r : one_of_each()) {
    whole.add(r);
    if (const auto* f = std::get_if<FlowRecord>(&r.body))
      bodies.add(r.event_time_ns, *f);
    else if (const auto* e = std::get_if<PacketEvent>(&r.body))
      bodies.add(r.event_time_ns, *e);
    else
      bodies.add(r);
  }
  const auto a = whole.finish(5);
  const std::vector<std::byte> first(a.begin(), a.end());
  const auto b = bodies.finish(5);
  EXPECT_EQ(first, std::vector<std::byte>(b.begin(), b.end()));
}

TEST_P(WireCodecBoth, FinishIntoHandsOverTheBatchWithoutACopy) {
  // The agent's encoder hands each batch to the spool by swapping buffers, then encodes the
  // next one in whatever buffer it got back: small, large, or holding an old batch.
  const auto records = one_of_each();
  std::vector<std::byte> small(3, std::byte{0x5a});
  std::vector<std::byte> large(1 << 20, std::byte{0xa5});
  large.resize(100);
  BatchEncoder enc;
  for (std::vector<std::byte>* given : {&small, &large, &small}) {
    enc.begin(GetParam());
    for (const auto& r : records) enc.add(r);
    const std::byte* const buffer = enc.finish(9).data();
    enc.finish_into(9, *given);
    EXPECT_EQ(given->data(), buffer) << "the batch was copied";
    EXPECT_EQ(*given, encode(records, 9, GetParam()));
  }
  // The encoder now holds the buffer of the first batch: a new batch starts empty in it.
  enc.begin(GetParam());
  EXPECT_EQ(enc.size(), 12u);
  const auto empty = enc.finish(4);
  EXPECT_EQ(std::vector<std::byte>(empty.begin(), empty.end()), encode({}, 4, GetParam()));
}

TEST_P(WireCodecBoth, EmptyBatch) {
  const auto payload = encode({}, 1, GetParam());
  std::vector<Record> out;
  std::uint64_t seq = 0;
  std::uint32_t unknown = 0;
  EXPECT_EQ(decode_batch(payload, {}, {}, seq, out, unknown), DecodeError::kOk);
  EXPECT_TRUE(out.empty());
}

TEST(WireCodec, AFrameHeadAndTheRestAreTheWholeFrame) {
  // The agent sends a batch as the frame's head (header and first bytes) and then the rest
  // of the payload from where it lies: together, the bytes of encode_frame().
  std::vector<std::byte> payload(40000);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::byte>(i * 7);
  std::vector<std::byte> whole;
  encode_frame(FrameType::kBatch, payload, whole, kFlagZstd);
  for (const std::size_t head :
       {std::size_t{0}, std::size_t{1}, std::size_t{16368}, payload.size(), payload.size() + 5}) {
    std::vector<std::byte> frame;
    encode_frame_head(FrameType::kBatch, payload, head, frame, kFlagZstd);
    ASSERT_EQ(frame.size(), kHeaderSize + std::min(head, payload.size())) << head;
    frame.insert(frame.end(),
                 payload.begin() + static_cast<std::ptrdiff_t>(frame.size() - kHeaderSize),
                 payload.end());
    EXPECT_EQ(frame, whole) << head;
  }
}

TEST(WireCodec, FrameRoundTrip) {
  std::vector<std::byte> payload;
  Hello h;
  h.agent_id.assign("a1");
  h.segment.assign("water-plant");
  h.software.assign("citywatch-agent 0.1.0");
  h.stream_id = 0x0123456789abcdefull;
  encode_hello(h, payload);
  std::vector<std::byte> frame;
  encode_frame(FrameType::kHello, payload, frame);
  ASSERT_EQ(frame.size(), kHeaderSize + payload.size());
  FrameHeader fh;
  ASSERT_EQ(decode_header(std::span<const std::byte, kHeaderSize>(frame.data(), kHeaderSize), fh),
            DecodeError::kOk);
  EXPECT_EQ(fh.type, FrameType::kHello);
  const std::span<const std::byte> body(frame.data() + kHeaderSize, fh.length);
  ASSERT_EQ(verify_payload(fh, body), DecodeError::kOk);
  Hello back;
  ASSERT_EQ(decode_hello(body, back), DecodeError::kOk);
  EXPECT_EQ(back.agent_id.view(), "a1");
  EXPECT_EQ(back.segment.view(), "water-plant");
  EXPECT_EQ(back.software.view(), "citywatch-agent 0.1.0");
  EXPECT_EQ(back.stream_id, 0x0123456789abcdefull);

  std::vector<std::byte> seqp;
  encode_sequence(0xfedcba9876543210ull, seqp);
  std::uint64_t s = 0;
  EXPECT_EQ(decode_sequence(seqp, s), DecodeError::kOk);
  EXPECT_EQ(s, 0xfedcba9876543210ull);
}

FrameHeader header_of(std::vector<std::byte> frame, DecodeError& e) {
  FrameHeader fh;
  e = decode_header(std::span<const std::byte, kHeaderSize>(frame.data(), kHeaderSize), fh);
  return fh;
}

TEST(WireCodec, HeaderRejectsEachMalformation) {
  std::vector<std::byte> payload{std::byte{1}, std::byte{2}};
  std::vector<std::byte> good;
  encode_frame(FrameType::kAck, payload, good);
  DecodeError e;

  auto f = good;
  f[0] = std::byte{'X'};
  header_of(f, e);
  EXPECT_EQ(e, DecodeError::kBadMagic);

  f = good;
  f[4] = std::byte{2};
  header_of(f, e);
  EXPECT_EQ(e, DecodeError::kBadVersion);

  for (std::uint8_t t : {0, 6, 255}) {
    f = good;
    f[5] = std::byte{t};
    header_of(f, e);
    EXPECT_EQ(e, DecodeError::kBadType) << int(t);
  }

  f = good;
  const std::uint32_t big = kMaxPayload + 1;
  for (int i = 0; i < 4; ++i) f[8 + i] = std::byte((big >> (8 * i)) & 0xff);
  header_of(f, e);
  EXPECT_EQ(e, DecodeError::kTooLarge);

  f = good;
  FrameHeader fh = header_of(f, e);
  ASSERT_EQ(e, DecodeError::kOk);
  auto body = std::vector<std::byte>(f.begin() + kHeaderSize, f.end());
  body[1] ^= std::byte{0x40};
  EXPECT_EQ(verify_payload(fh, body), DecodeError::kBadChecksum);
  body.pop_back();
  EXPECT_EQ(verify_payload(fh, body), DecodeError::kTruncated);
}

TEST_P(WireCodecBoth, BatchTruncatedAtEveryLengthIsRejected) {
  const auto payload = encode(one_of_each(), 5, GetParam());
  std::vector<Record> out;
  for (std::size_t n = 0; n < payload.size(); ++n) {
    // A copy of exactly n bytes, so ASan catches any read past the end.
    std::vector<std::byte> cut(payload.begin(), payload.begin() + static_cast<long>(n));
    std::uint64_t seq = 0;
    std::uint32_t unknown = 0;
    out.clear();
    EXPECT_NE(decode_batch(cut, {}, {}, seq, out, unknown), DecodeError::kOk) << n;
    EXPECT_TRUE(out.empty()) << n;
  }
}

TEST_P(WireCodecBoth, BatchTrailingBytesRejected) {
  auto payload = encode(one_of_each(), 5, GetParam());
  payload.push_back(std::byte{0});
  std::vector<Record> out;
  std::uint64_t seq;
  std::uint32_t unknown;
  EXPECT_EQ(decode_batch(payload, {}, {}, seq, out, unknown), DecodeError::kTrailingBytes);
}

TEST(WireCodec, RecordWithBadFieldsRejected) {
  const auto base = encode({flow_record()}, 1);
  // Layout: seq(8) count(4) kind(1) len(2) time(8) start(8) end(8) src-family(1)...
  const std::size_t body = 8 + 4 + 1 + 2;
  const std::size_t src_family = body + 8 + 8 + 8;
  std::vector<Record> out;
  std::uint64_t seq;
  std::uint32_t unknown;

  auto p = base;
  p[src_family] = std::byte{5};  // neither 0, 4 nor 6
  EXPECT_EQ(decode_batch(p, {}, {}, seq, out, unknown), DecodeError::kBadRecord);

  p = base;
  p[p.size() - 1] = std::byte{99};  // FlowSource out of range
  EXPECT_EQ(decode_batch(p, {}, {}, seq, out, unknown), DecodeError::kBadRecord);

  p = base;
  p[body - 2] = std::byte{0xff};  // record length beyond the payload
  EXPECT_EQ(decode_batch(p, {}, {}, seq, out, unknown), DecodeError::kTruncated);

  p = base;
  p[8] = std::byte{0xff};  // count larger than the records present
  p[9] = std::byte{0xff};
  EXPECT_EQ(decode_batch(p, {}, {}, seq, out, unknown), DecodeError::kTruncated);

  p = base;
  p[11] = std::byte{0x7f};  // count beyond the per-batch limit
  EXPECT_EQ(decode_batch(p, {}, {}, seq, out, unknown), DecodeError::kTooManyRecords);
  EXPECT_TRUE(out.empty());
}

// A batch of the smallest records that weigh the most decoded (SNMP traps: a few bytes each
// on the wire, 664 in memory) is refused once its records would weigh more than
// kMaxDecodedBytes, by both decoders alike, and leaves nothing behind; one record fewer is
// read whole.
TEST(WireCodec, ABatchTooHeavyDecodedIsRefused) {
  const std::size_t fits = kMaxDecodedBytes / RecordBatch::record_bytes<SnmpTrap>();
  auto encode = [](std::size_t n) {
    BatchEncoder enc;
    enc.begin(Encoding::kCompact);
    Record r;
    r.event_time_ns = 1;
    r.body = SnmpTrap{};
    for (std::size_t i = 0; i < n; ++i) enc.add(r);
    const auto p = enc.finish(7);
    return std::vector<std::byte>(p.begin(), p.end());
  };
  const auto heavy = encode(fits + 1);
  EXPECT_LT(heavy.size(), std::size_t{kMaxPayload});  // within a frame: the weight decides
  std::uint64_t seq = 0;
  std::uint32_t unknown = 0;
  RecordBatch batch;
  EXPECT_EQ(decode_batch(heavy, seq, batch, unknown), DecodeError::kDecodedTooLarge);
  EXPECT_TRUE(batch.empty());
  std::vector<Record> out;
  EXPECT_EQ(decode_batch(heavy, {}, {}, seq, out, unknown), DecodeError::kDecodedTooLarge);
  EXPECT_TRUE(out.empty());
  EXPECT_STREQ(to_string(DecodeError::kDecodedTooLarge), "decoded_too_large");

  const auto heaviest = encode(fits);
  ASSERT_EQ(decode_batch(heaviest, seq, batch, unknown), DecodeError::kOk);
  EXPECT_EQ(batch.count<SnmpTrap>(), fits);
  EXPECT_EQ(seq, 7u);
}

TEST(WireCodec, OverlongStringRejected) {
  std::vector<std::byte> payload;
  ByteWriter w(payload);
  w.str8(std::string(60, 'a'));  // longer than ShortName holds
  w.str8("seg");
  w.str8("sw");
  Hello h;
  EXPECT_EQ(decode_hello(payload, h), DecodeError::kBadString);
  payload.clear();
  encode_hello(Hello{}, payload);  // empty agent id
  EXPECT_EQ(decode_hello(payload, h), DecodeError::kBadString);
}

TEST_P(WireCodecBoth, UnknownRecordKindSkippedAndCounted) {
  auto payload = encode({flow_record(), flow_record()}, 3, GetParam());
  payload[12] = std::byte{200};  // first record's kind: from a newer agent
  std::vector<Record> out;
  std::uint64_t seq;
  std::uint32_t unknown = 0;
  ASSERT_EQ(decode_batch(payload, {}, {}, seq, out, unknown), DecodeError::kOk);
  EXPECT_EQ(unknown, 1u);
  EXPECT_EQ(out.size(), 1u);
}

TEST_P(WireCodecBoth, RandomCorruptionNeverCrashes) {
  const auto base = encode(one_of_each(), 9, GetParam());
  std::mt19937 rng(1234);
  std::vector<Record> out;
  for (int i = 0; i < 20000; ++i) {
    auto p = base;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) p[rng() % p.size()] = std::byte(rng() & 0xff);
    std::uint64_t seq;
    std::uint32_t unknown;
    out.clear();
    const auto e = decode_batch(p, {}, {}, seq, out, unknown);
    if (e != DecodeError::kOk) {
      EXPECT_TRUE(out.empty());
    }
  }
}

// A flow as the agent's packet meter makes it: IPv4, no exporter, sampling 1, a short TCP
// exchange ending at the record's time.
Record meter_flow(std::int64_t t, std::uint8_t host) {
  Record r;
  r.event_time_ns = t;
  FlowRecord f;
  const std::uint8_t src[4] = {10, 99, 1, host}, dst[4] = {10, 99, 2, 80};
  f.src = IpAddr::v4(src);
  f.dst = IpAddr::v4(dst);
  f.start_ns = t - 1'234'567;
  f.end_ns = t;
  f.packets = 6;
  f.bytes = 1'480;
  f.sampling_rate = 1;
  f.src_port = 51515;
  f.dst_port = 80;
  f.protocol = 6;
  f.tcp_flags = 0x1b;
  f.source = FlowSource::kPacketMeter;
  r.body = f;
  return r;
}

TEST(WireCodecCompact, AMeteredFlowTakesUnderHalfTheBytes) {
  std::vector<Record> flows;
  for (int i = 0; i < 100; ++i)
    flows.push_back(
        meter_flow(1'700'000'000'000'000'000 + i * std::int64_t{37'000'000}, std::uint8_t(i)));
  const auto fixed = encode(flows, 1, Encoding::kFixed);
  const auto compact = encode(flows, 1, Encoding::kCompact);
  // Fixed: 3 bytes of framing and 77 of body per flow. Compact: kind and length 2, a
  // 37 ms time step 4 (the first record's absolute time 9), start 4 and end 1, the three
  // addresses 11, packets and bytes 3, the four 32-bit fields 4, ports and VLAN 6, the
  // four single bytes 4: 39, under half.
  EXPECT_EQ(fixed.size() - 12, 100u * 80);
  EXPECT_EQ(compact.size() - 12, 100u * 39 + 5);
}

TEST(WireCodecCompact, TimesRoundTripAcrossTheWholeRange) {
  constexpr std::int64_t lo = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t hi = std::numeric_limits<std::int64_t>::max();
  std::vector<Record> records;
  for (const std::int64_t t : {hi, lo, std::int64_t{0}, std::int64_t{-1}, hi, std::int64_t{1}}) {
    Record r = meter_flow(0, 1);  // its times are set here
    r.event_time_ns = t;
    auto& f = std::get<FlowRecord>(r.body);
    f.start_ns = t == hi ? lo : hi;  // the widest delta either way
    f.end_ns = t;
    records.push_back(r);
  }
  const auto payload = encode(records, 4, Encoding::kCompact);
  std::vector<Record> out;
  std::uint64_t seq = 0;
  std::uint32_t unknown = 0;
  ASSERT_EQ(decode_batch(payload, {}, {}, seq, out, unknown), DecodeError::kOk);
  ASSERT_EQ(out.size(), records.size());
  for (std::size_t i = 0; i < records.size(); ++i)
    EXPECT_TRUE(same_bytes(records[i], out[i])) << "record " << i;
}

TEST(WireCodecCompact, AnUnknownKindKeepsTheTimesAfterIt) {
  // A compact record's time is a step from the record before it: a record of a kind this
  // version skips must still take its step, or every later time would be off.
  auto payload =
      encode({meter_flow(5'000'000'000, 1), meter_flow(9'000'000'000, 2)}, 3, Encoding::kCompact);
  payload[12] = std::byte{200};  // the first record's kind: from a newer agent
  std::vector<Record> out;
  std::uint64_t seq = 0;
  std::uint32_t unknown = 0;
  ASSERT_EQ(decode_batch(payload, {}, {}, seq, out, unknown), DecodeError::kOk);
  EXPECT_EQ(unknown, 1u);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].event_time_ns, 9'000'000'000);
}

// A compact batch of one flow whose observation domain is the varint `domain` (every other
// field minimal).
std::vector<std::byte> compact_flow_with_domain(std::vector<std::uint8_t> domain) {
  std::vector<std::uint8_t> body = {0x00,           // time step 0
                                    0x00, 0x00,     // start, end: the record's time
                                    0,    0,    0,  // src, dst, exporter: unset
                                    0x00, 0x00};    // packets, bytes
  body.insert(body.end(), domain.begin(), domain.end());
  const std::uint8_t rest[] = {0x01, 0x00, 0x00,           // sampling, input, output
                               0,    0,    0,    0, 0, 0,  // ports, vlan
                               6,    0,    0,    1};       // protocol, flags, direction, source
  body.insert(body.end(), std::begin(rest), std::end(rest));
  std::vector<std::byte> p(8, std::byte{0});
  p[0] = std::byte{1};
  for (const std::uint8_t b : {0x01, 0x00, 0x00, 0x80, 0x01}) p.push_back(std::byte{b});
  p.push_back(static_cast<std::byte>(body.size()));
  for (const std::uint8_t b : body) p.push_back(std::byte{b});
  return p;
}

TEST(WireCodecCompact, VarintsTooWideOrTooLongAreRefused) {
  std::vector<Record> out;
  std::uint64_t seq = 0;
  std::uint32_t unknown = 0;
  // The hand-made batch decodes as it is, with the domain it says.
  ASSERT_EQ(decode_batch(compact_flow_with_domain({0xff, 0xff, 0xff, 0xff, 0x0f}), {}, {}, seq, out,
                         unknown),
            DecodeError::kOk);
  EXPECT_EQ(std::get<FlowRecord>(out.at(0).body).observation_domain, 0xffffffffu);
  // 2^32 in a 32-bit field.
  out.clear();
  EXPECT_EQ(decode_batch(compact_flow_with_domain({0x80, 0x80, 0x80, 0x80, 0x10}), {}, {}, seq, out,
                         unknown),
            DecodeError::kBadRecord);
  // Eleven bytes, and ten whose last holds more than bit 63.
  std::vector<std::uint8_t> eleven(10, 0x80);
  eleven.push_back(0x00);
  EXPECT_NE(decode_batch(compact_flow_with_domain(eleven), {}, {}, seq, out, unknown),
            DecodeError::kOk);
  std::vector<std::uint8_t> ten(9, 0xff);
  ten.push_back(0x02);
  EXPECT_NE(decode_batch(compact_flow_with_domain(ten), {}, {}, seq, out, unknown),
            DecodeError::kOk);
  EXPECT_TRUE(out.empty());
}

TEST(WireCodecCompact, ToFixedIsTheFixedEncodingOfTheSameRecords) {
  auto records = one_of_each();
  records.push_back(meter_flow(1'700'000'000'000'000'000, 9));
  const auto compact = encode(records, 12, Encoding::kCompact);
  std::vector<std::byte> fixed;
  ASSERT_EQ(to_fixed(compact, fixed), DecodeError::kOk);
  EXPECT_EQ(fixed, encode(records, 12, Encoding::kFixed));
  EXPECT_EQ(batch_encoding(fixed), Encoding::kFixed);
  // A payload that does not decode is not re-encoded.
  auto bad = compact;
  bad.pop_back();
  EXPECT_NE(to_fixed(bad, fixed), DecodeError::kOk);
}

}  // namespace
}  // namespace citywatch::wire

namespace citywatch::wire {
namespace {

// One record's batch payload, so its body's last bytes are the payload's last bytes.
std::vector<std::byte> single(const Record& r) {
  BatchEncoder enc;
  enc.begin(Encoding::kFixed);  // what those agents wrote
  enc.add(r);
  const auto p = enc.finish(1);
  return {p.begin(), p.end()};
}

TEST(WireCodecCompat, AnOlderAgentsSflowInterfaceFlagsStillSayUp) {
  // Agents before the one status representation sent sFlow interfaces with admin_up and
  // oper_up flags and statuses 0. The body ends: admin flag, oper flag, admin status, oper
  // status, previous oper status, flags, event.
  Record r;
  InterfaceSample s;
  s.if_index = 7;
  r.body = s;
  auto p = single(r);
  p[p.size() - 7] = std::byte{1};  // admin_up flag
  p[p.size() - 6] = std::byte{1};  // oper_up flag
  std::vector<Record> out;
  std::uint64_t seq = 0;
  std::uint32_t unknown = 0;
  ASSERT_EQ(decode_batch(p, {}, {}, seq, out, unknown), DecodeError::kOk);
  const auto& got = std::get<InterfaceSample>(out.at(0).body);
  EXPECT_TRUE(got.admin_up());
  EXPECT_TRUE(got.oper_up());
  EXPECT_EQ(got.admin_status, 1);
  // And a current agent's statuses win over its (derived) flags.
  s.admin_status = 2;
  s.oper_status = 7;  // lowerLayerDown
  r.body = s;
  out.clear();
  ASSERT_EQ(decode_batch(single(r), {}, {}, seq, out, unknown), DecodeError::kOk);
  EXPECT_EQ(std::get<InterfaceSample>(out.at(0).body).admin_status, 2);
  EXPECT_EQ(std::get<InterfaceSample>(out.at(0).body).oper_status, 7);
}

TEST(WireCodecCompat, ACauseThisVersionDoesNotKnowKeepsTheBatch) {
  Record r;
  DeviceStatus d;
  d.cause = SnmpCause::kTimeout;
  r.body = d;
  auto p = single(r);
  p[p.size() - 2] = std::byte{9};  // cause; the event is the last byte
  std::vector<Record> out;
  std::uint64_t seq = 0;
  std::uint32_t unknown = 0;
  ASSERT_EQ(decode_batch(p, {}, {}, seq, out, unknown), DecodeError::kOk);
  EXPECT_EQ(static_cast<int>(std::get<DeviceStatus>(out.at(0).body).cause), 9);
}

}  // namespace
}  // namespace citywatch::wire
