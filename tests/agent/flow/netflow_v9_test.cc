// NetFlow v9 / IPFIX: templates, options (several samplers), data before its template held
// and released, withdrawal and redefinition, variable-length and enterprise fields,
// reduced-size counters, every timestamp kind, persistence across a restart, and malformed
// sets dropped by reason.
#include <gtest/gtest.h>

#include <filesystem>

#include "agent/flow/flow_decoder.h"
#include "tests/agent/flow/test_sink.h"

namespace citywatch::agent::flow {
namespace {

const IpAddr kExporter = ip4(192, 0, 2, 1);
constexpr std::int64_t kSec = 1'000'000'000;

// An IPFIX message: header, then sets appended by the caller; finish() fixes the length.
struct Ipfix : Bytes {
  explicit Ipfix(std::uint32_t domain = 1, std::uint32_t export_secs = 1700000000) {
    u16(10).u16(0).u32(export_secs).u32(0).u32(domain);
  }
  std::size_t open_set(std::uint16_t id) {
    const std::size_t at = size();
    u16(id).u16(0);
    return at;
  }
  void close_set(std::size_t at) { patch16(at + 2, size() - at); }
  std::vector<std::byte> finish() {
    patch16(2, size());
    return data;
  }
};

struct V9 : Bytes {
  explicit V9(std::uint32_t uptime_ms = 100'000, std::uint32_t source_id = 0) {
    u16(9).u16(1).u32(uptime_ms).u32(1700000000).u32(0).u32(source_id);
  }
  std::size_t open_set(std::uint16_t id) {
    const std::size_t at = size();
    u16(id).u16(0);
    return at;
  }
  void close_set(std::size_t at) { patch16(at + 2, size() - at); }
};

// Template 256: src v4, dst v4, protocol, packets (reduced to 2 bytes), octets (4 bytes),
// flowStartMilliseconds, flowEndMilliseconds, an enterprise field of 3 bytes, and a
// variable-length enterprise field.
void add_ipfix_template(Ipfix& m, std::uint16_t id = 256) {
  const auto s = m.open_set(2);
  m.u16(id).u16(9);
  m.u16(8).u16(4).u16(12).u16(4).u16(4).u16(1).u16(2).u16(2).u16(1).u16(4);
  m.u16(152).u16(8).u16(153).u16(8);
  m.u16(0x8000 | 100).u16(3).u32(29305);
  m.u16(0x8000 | 101).u16(65535).u32(9);
  m.close_set(s);
}

void add_ipfix_data(Ipfix& m, std::uint16_t id = 256, std::uint16_t packets = 3,
                    std::size_t var_len = 5) {
  const auto s = m.open_set(id);
  m.ip4({10, 1, 0, 1}).ip4({10, 1, 0, 2}).u8(17).u16(packets).u32(packets * 100u);
  m.u64(1700000000'000ull - 2000).u64(1700000000'000ull - 1000);
  m.u8(1).u8(2).u8(3);
  if (var_len < 255) {
    m.u8(var_len);
  } else {
    m.u8(255).u16(var_len);
  }
  for (std::size_t i = 0; i < var_len; ++i) m.u8(0xaa);
  m.close_set(s);
}

TEST(Ipfix, TemplateThenDataWithVariableAndEnterpriseFields) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  for (std::size_t var : {std::size_t{0}, std::size_t{5}, std::size_t{300}}) {
    Ipfix m;
    add_ipfix_template(m);
    add_ipfix_data(m, 256, 3, var);
    EXPECT_EQ(d.decode(m.finish(), kExporter, 0), FlowError::kOk);
  }
  const auto flows = sink.flows();
  ASSERT_EQ(flows.size(), 3u);
  for (const FlowRecord& f : flows) {
    EXPECT_EQ(f.source, FlowSource::kIpfix);
    EXPECT_EQ(f.src, ip4(10, 1, 0, 1));
    EXPECT_EQ(f.dst, ip4(10, 1, 0, 2));
    EXPECT_EQ(f.protocol, 17);
    EXPECT_EQ(f.packets, 3u);
    EXPECT_EQ(f.bytes, 300u);
    EXPECT_EQ(f.observation_domain, 1u);
    EXPECT_EQ(f.start_ns, 1700000000 * kSec - 2 * kSec);
    EXPECT_EQ(f.end_ns, 1700000000 * kSec - kSec);
  }
  EXPECT_EQ(d.templates().size(), 1u);
  EXPECT_EQ(d.totals().errors, (std::array<std::uint64_t, kFlowErrorCount>{}));
}

TEST(Ipfix, DataBeforeTemplateIsHeldThenDecoded) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  Ipfix data;
  add_ipfix_data(data);
  EXPECT_EQ(d.decode(data.finish(), kExporter, 1 * kSec), FlowError::kOk);
  EXPECT_TRUE(sink.records.empty());
  EXPECT_EQ(d.held(), 1u);
  Ipfix tmpl;
  add_ipfix_template(tmpl);
  EXPECT_EQ(d.decode(tmpl.finish(), kExporter, 2 * kSec), FlowError::kOk);
  EXPECT_EQ(sink.flows().size(), 1u);
  EXPECT_EQ(d.held(), 0u);
  EXPECT_EQ(d.totals().released, 1u);
}

TEST(Ipfix, HeldDataExpiresAndIsCounted) {
  VectorSink sink;
  FlowDecoderOptions o;
  o.hold.hold_ns = 10 * kSec;
  o.hold.max_sets = 2;
  FlowDecoder d(o, sink);
  for (int i = 0; i < 3; ++i) {  // the third evicts the first
    Ipfix data;
    add_ipfix_data(data);
    d.decode(data.finish(), kExporter, i * kSec);
  }
  EXPECT_EQ(d.held(), 2u);
  d.expire(30 * kSec);
  EXPECT_EQ(d.held(), 0u);
  EXPECT_EQ(d.totals().errors[static_cast<std::size_t>(FlowError::kTemplateMissing)], 3u);
  EXPECT_TRUE(sink.records.empty());
}

TEST(Ipfix, WithdrawalAndRedefinition) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  Ipfix m;
  add_ipfix_template(m);
  d.decode(m.finish(), kExporter, 0);
  ASSERT_EQ(d.templates().size(), 1u);
  Ipfix w;  // withdraw template 256 (field count 0)
  auto s = w.open_set(2);
  w.u16(256).u16(0);
  w.close_set(s);
  d.decode(w.finish(), kExporter, 0);
  EXPECT_EQ(d.templates().size(), 0u);
  // Redefined with one 8-byte octet counter only.
  Ipfix r;
  s = r.open_set(2);
  r.u16(256).u16(1).u16(1).u16(8);
  r.close_set(s);
  s = r.open_set(256);
  r.u64(12345);
  r.close_set(s);
  d.decode(r.finish(), kExporter, 0);
  ASSERT_EQ(sink.flows().size(), 1u);
  EXPECT_EQ(sink.flows()[0].bytes, 12345u);
}

TEST(Ipfix, TemplatesAreKeyedByObservationDomain) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  Ipfix m(1);
  add_ipfix_template(m);
  d.decode(m.finish(), kExporter, 0);
  Ipfix other(2);  // same exporter, another domain: no template yet
  add_ipfix_data(other);
  d.decode(other.finish(), kExporter, 0);
  EXPECT_TRUE(sink.records.empty());
  EXPECT_EQ(d.held(), 1u);
}

TEST(Ipfix, OptionsGiveSamplerRates) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  Ipfix m;
  // Options template 300: scope selectorId (302), samplingPacketInterval, samplingPacketSpace.
  auto s = m.open_set(3);
  m.u16(300).u16(3).u16(1).u16(302).u16(2).u16(305).u16(4).u16(306).u16(4);
  m.close_set(s);
  // Data template 257: octets, packets, selectorId.
  s = m.open_set(2);
  m.u16(257).u16(3).u16(1).u16(4).u16(2).u16(4).u16(302).u16(2);
  m.close_set(s);
  s = m.open_set(300);
  m.u16(1).u32(1).u32(99);   // selector 1: 1 in 100
  m.u16(2).u32(1).u32(999);  // selector 2: 1 in 1000
  m.close_set(s);
  s = m.open_set(257);
  m.u32(100).u32(2).u16(1);
  m.u32(100).u32(2).u16(2);
  m.u32(100).u32(2).u16(3);  // unknown selector: unsampled
  m.close_set(s);
  ASSERT_EQ(d.decode(m.finish(), kExporter, 0), FlowError::kOk);
  const auto f = sink.flows();
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].sampling_rate, 100u);
  EXPECT_EQ(f[0].packets, 200u);
  EXPECT_EQ(f[0].bytes, 10000u);
  EXPECT_EQ(f[1].sampling_rate, 1000u);
  EXPECT_EQ(f[2].sampling_rate, 1u);
}

TEST(Ipfix, MicroAndNanosecondTimesAndDeltas) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  Ipfix m;
  auto s = m.open_set(2);
  m.u16(256).u16(3).u16(1).u16(4).u16(154).u16(8).u16(159).u16(4);
  m.close_set(s);
  s = m.open_set(256);
  // NTP seconds for 1700000000 + half a second, and an end 1.5 s before export.
  const std::uint64_t ntp = (1700000000ull + 2208988800ull) << 32 | 0x80000000ull;
  m.u32(1).u64(ntp).u32(1'500'000);
  m.close_set(s);
  ASSERT_EQ(d.decode(m.finish(), kExporter, 0), FlowError::kOk);
  const FlowRecord f = sink.flows().at(0);
  EXPECT_EQ(f.start_ns, 1700000000 * kSec + kSec / 2);
  EXPECT_EQ(f.end_ns, 1700000000 * kSec - kSec - kSec / 2);
}

TEST(NetflowV9, SysUptimeRelativeTimesAcrossWrap) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  V9 m(2'000);  // uptime wrapped: now 2 s, the flow started 3 s before the wrap
  auto s = m.open_set(0);
  m.u16(260).u16(4).u16(1).u16(4).u16(2).u16(4).u16(22).u16(4).u16(21).u16(4);
  m.close_set(s);
  s = m.open_set(260);
  m.u32(1000).u32(10).u32(0xffffffffu - 2'999).u32(1'000);
  m.close_set(s);
  ASSERT_EQ(d.decode(m.data, kExporter, 0), FlowError::kOk);
  const FlowRecord f = sink.flows().at(0);
  EXPECT_EQ(f.source, FlowSource::kNetflowV9);
  EXPECT_EQ(f.start_ns, 1700000000 * kSec - 5 * kSec);
  EXPECT_EQ(f.end_ns, 1700000000 * kSec - kSec);
}

// IPFIX sysUpTime-relative times need the exporter's systemInitTimeMilliseconds (options
// data). That table is bounded too; a flood of init times from spoofed addresses nobody
// sends flows for neither keeps an exporter's out nor pushes it out once its flows use it.
TEST(Ipfix, SystemInitTimeInUseOutlastsAFlood) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  const std::uint64_t init_ms = 1700000000'000ull - 60'000;  // booted a minute before export
  auto announce = [&](const IpAddr& exporter, bool with_data) {
    Ipfix m;
    auto s = m.open_set(3);  // options template 301: scope observationDomainId; init time
    m.u16(301).u16(2).u16(1).u16(149).u16(4).u16(160).u16(8);
    m.close_set(s);
    s = m.open_set(301);
    m.u32(1).u64(init_ms);
    m.close_set(s);
    if (with_data) {
      s = m.open_set(2);  // data template 258: octets, packets, flowStart/EndSysUpTime
      m.u16(258).u16(4).u16(1).u16(4).u16(2).u16(4).u16(22).u16(4).u16(21).u16(4);
      m.close_set(s);
    }
    EXPECT_EQ(d.decode(m.finish(), exporter, 0), FlowError::kOk);
  };
  auto flow_start = [&] {
    Ipfix m;
    const auto s = m.open_set(258);
    m.u32(100).u32(1).u32(10'000).u32(20'000);  // started 10 s after boot
    m.close_set(s);
    EXPECT_EQ(d.decode(m.finish(), kExporter, 0), FlowError::kOk);
    return sink.flows().back().start_ns;
  };
  auto flood = [&](int from) {
    for (int i = from; i < from + 5000; ++i)
      announce(ip4(203, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i), 1), false);
  };
  const std::int64_t want = static_cast<std::int64_t>(init_ms + 10'000) * 1'000'000;
  flood(0);  // the table is full of init times nobody uses when the exporter comes
  announce(kExporter, true);
  EXPECT_EQ(flow_start(), want);
  flood(5000);  // and, once used, its own outlasts the next flood
  EXPECT_EQ(flow_start(), want);
}

TEST(NetflowV9, OptionsTemplateSeveralSamplers) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  V9 m(1000, 7);
  // Options template 257 (RFC 3954 §6.1): scope System(4), FLOW_SAMPLER_ID(2),
  // FLOW_SAMPLER_RANDOM_INTERVAL(4); 2 bytes of padding.
  auto s = m.open_set(1);
  m.u16(257).u16(4).u16(8).u16(1).u16(4).u16(48).u16(2).u16(50).u16(4).u16(0);
  m.close_set(s);
  s = m.open_set(0);
  m.u16(258).u16(3).u16(2).u16(4).u16(1).u16(4).u16(48).u16(1);
  m.close_set(s);
  s = m.open_set(257);
  m.u32(0).u16(5).u32(64);
  m.u32(0).u16(6).u32(512);
  m.u16(0);  // padding
  m.close_set(s);
  s = m.open_set(258);
  m.u32(1).u32(100).u8(5);
  m.u32(1).u32(100).u8(6);
  m.u8(0).u8(0).u8(0);  // padding shorter than a record
  m.close_set(s);
  ASSERT_EQ(d.decode(m.data, kExporter, 0), FlowError::kOk);
  const auto f = sink.flows();
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].sampling_rate, 64u);
  EXPECT_EQ(f[0].bytes, 6400u);
  EXPECT_EQ(f[1].sampling_rate, 512u);
  EXPECT_EQ(f[0].observation_domain, 7u);
  EXPECT_EQ(d.totals().errors, (std::array<std::uint64_t, kFlowErrorCount>{}));
}

TEST(Ipfix, TemplatesSurviveRestart) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("cw-flow-state-" + std::to_string(::getpid()));
  const auto file = dir / "flow-templates.state";
  {
    VectorSink sink;
    FlowDecoder d({}, sink);
    Ipfix m;
    add_ipfix_template(m);
    d.decode(m.finish(), kExporter, 0);
    ASSERT_TRUE(d.save_if_dirty(file).is_ok());
  }
  VectorSink sink;
  FlowDecoder d({}, sink);
  std::size_t loaded = 0, skipped = 0;
  ASSERT_TRUE(d.load(file, loaded, skipped).is_ok());
  EXPECT_EQ(loaded, 1u);
  EXPECT_EQ(skipped, 0u);
  Ipfix data;
  add_ipfix_data(data, 256, 3, 300);
  d.decode(data.finish(), kExporter, 0);
  ASSERT_EQ(sink.flows().size(), 1u);
  EXPECT_EQ(sink.flows()[0].packets, 3u);
  std::filesystem::remove_all(dir);
}

TEST(Ipfix, MalformedSetsDroppedByReason) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  Ipfix m;
  add_ipfix_template(m);
  auto bytes = m.finish();
  bytes[2] = std::byte{0xff};  // message length beyond the datagram
  EXPECT_EQ(d.decode(bytes, kExporter, 0), FlowError::kBadMessageLength);

  Ipfix bad_set;
  auto s = bad_set.open_set(256);
  bad_set.u32(0);
  bad_set.patch16(s + 2, 2);  // set length < 4
  EXPECT_EQ(d.decode(bad_set.finish(), kExporter, 0), FlowError::kOk);

  Ipfix bad_tmpl;  // template ID below 256
  s = bad_tmpl.open_set(2);
  bad_tmpl.u16(5).u16(1).u16(1).u16(4);
  bad_tmpl.close_set(s);
  d.decode(bad_tmpl.finish(), kExporter, 0);

  Ipfix cut;  // variable-length field longer than the set
  add_ipfix_template(cut);
  s = cut.open_set(256);
  cut.ip4({1, 1, 1, 1}).ip4({2, 2, 2, 2}).u8(6).u16(1).u32(1).u64(0).u64(0).u8(0).u8(0).u8(0);
  cut.u8(200).u8(1);
  cut.close_set(s);
  d.decode(cut.finish(), kExporter, 0);

  const ExporterStats t = d.totals();
  EXPECT_EQ(t.errors[static_cast<std::size_t>(FlowError::kBadMessageLength)], 1u);
  EXPECT_EQ(t.errors[static_cast<std::size_t>(FlowError::kBadSetLength)], 1u);
  EXPECT_EQ(t.errors[static_cast<std::size_t>(FlowError::kBadTemplate)], 1u);
  EXPECT_EQ(t.errors[static_cast<std::size_t>(FlowError::kTruncatedRecord)], 1u);
  EXPECT_TRUE(sink.records.empty());
}

void send_templates(FlowDecoder& d, const IpAddr& exporter, std::uint16_t first,
                    std::uint16_t count) {
  for (std::uint16_t id = first; id < first + count; ++id) {
    Ipfix m;
    add_ipfix_template(m, id);
    d.decode(m.finish(), exporter, 0);
  }
}

bool decodes(FlowDecoder& d, VectorSink& sink, const IpAddr& exporter, std::uint16_t id) {
  const std::size_t before = sink.records.size();
  Ipfix m;
  add_ipfix_data(m, id);
  d.decode(m.finish(), exporter, 0);
  return sink.records.size() == before + 1;
}

TEST(Ipfix, TemplateCacheIsBoundedAndEvictsLeastRecentlyUsed) {
  VectorSink sink;
  FlowDecoderOptions o;
  o.templates.max_templates = 2;
  o.templates.max_per_exporter = 2;
  FlowDecoder d(o, sink);
  send_templates(d, kExporter, 256, 2);
  EXPECT_TRUE(decodes(d, sink, kExporter, 256));  // 256 is now the more recently used
  send_templates(d, kExporter, 258, 1);           // evicts 257, not 256
  EXPECT_EQ(d.templates().size(), 2u);
  EXPECT_TRUE(d.templates().find(kExporter, 1, TemplateCache::Kind::kIpfix, 256));
  EXPECT_FALSE(d.templates().find(kExporter, 1, TemplateCache::Kind::kIpfix, 257));
  EXPECT_TRUE(d.templates().find(kExporter, 1, TemplateCache::Kind::kIpfix, 258));
  EXPECT_EQ(d.templates().stats().evicted_exporter_share, 1u);
}

// Issue 11, item 6: one exporter flooding templates used to fill the first-come cache, and
// every other exporter's new templates were refused, even after a restart.
TEST(Ipfix, OneExporterCannotLockOutTheOthers) {
  VectorSink sink;
  FlowDecoderOptions o;
  o.templates.max_templates = 16;
  o.templates.max_per_exporter = 4;
  FlowDecoder d(o, sink);
  const IpAddr flood = ip4(192, 0, 2, 66);
  send_templates(d, flood, 256, 1000);
  EXPECT_EQ(d.templates().size(), 4u);  // its share, its newest four
  EXPECT_TRUE(decodes(d, sink, flood, 256 + 999));
  EXPECT_EQ(d.templates().stats().evicted_exporter_share, 996u);
  // Five more exporters: each gets all its templates; the cache-wide LRU makes way at 16.
  for (std::uint8_t e = 1; e <= 5; ++e) {
    const IpAddr other = ip4(198, 51, 100, e);
    send_templates(d, other, 256, 3);
    for (std::uint16_t id = 256; id < 259; ++id) EXPECT_TRUE(decodes(d, sink, other, id)) << int{e};
  }
  EXPECT_LE(d.templates().size(), 16u);
  EXPECT_GT(d.templates().stats().evicted_cache_full, 0u);
  EXPECT_EQ(d.totals().errors[static_cast<std::size_t>(FlowError::kTemplateLimit)], 0u);
}

// A flood of templates from many addresses, each within its share, that no data set uses:
// the template an exporter is sending data with is not what makes way.
TEST(Ipfix, ATemplateInUseOutlastsAFloodOfUnusedOnes) {
  VectorSink sink;
  FlowDecoderOptions o;
  o.templates.max_templates = 16;
  o.templates.max_per_exporter = 8;
  FlowDecoder d(o, sink);
  send_templates(d, kExporter, 256, 1);
  EXPECT_TRUE(decodes(d, sink, kExporter, 256));
  for (std::uint8_t e = 1; e <= 100; ++e) send_templates(d, ip4(203, 0, 113, e), 256, 5);
  EXPECT_EQ(d.templates().size(), 16u);
  EXPECT_TRUE(decodes(d, sink, kExporter, 256));
  EXPECT_EQ(d.totals().held, 0u);
  EXPECT_GT(d.templates().stats().evicted_cache_full, 400u);
}

TEST(Ipfix, TemplatesWithTooManyFieldsAreRefusedAndFieldsAreBounded) {
  VectorSink sink;
  FlowDecoderOptions o;
  o.templates.max_fields = 64;
  o.templates.max_total_fields = 1024;
  FlowDecoder d(o, sink);
  auto wide = [&](std::uint16_t id, std::uint16_t fields, const IpAddr& exporter) {
    Ipfix m;
    const auto s = m.open_set(2);
    m.u16(id).u16(fields);
    for (std::uint16_t f = 0; f < fields; ++f) m.u16(1).u16(4);  // octetDeltaCount
    m.close_set(s);
    d.decode(m.finish(), exporter, 0);
  };
  wide(256, 65, kExporter);
  EXPECT_EQ(d.templates().size(), 0u);
  EXPECT_EQ(d.totals().errors[static_cast<std::size_t>(FlowError::kTemplateLimit)], 1u);
  // 337 templates of 64 fields from many exporters: the field budget holds.
  for (std::uint16_t i = 0; i < 337; ++i)
    wide(static_cast<std::uint16_t>(256 + i % 16), 64,
         ip4(203, 0, 113, static_cast<std::uint8_t>(i / 16)));
  EXPECT_LE(d.templates().fields(), 1024u);
  // Each exporter's share is an eighth of the field budget: 128 fields, two templates.
  EXPECT_EQ(d.templates().size(), 1024u / 64u);
}

}  // namespace
}  // namespace citywatch::agent::flow

namespace citywatch::agent::flow {
namespace {

// RFC 7014 / IANA PSAMP selector algorithms and the deprecated RFC 5102 elements: the rate
// each states.
TEST(Sampling, EachSelectorAlgorithmStatesItsRate) {
  SamplingElements count;  // 1: systematic count-based, 1 sampled then 99 skipped
  count.selector_algorithm = 1;
  count.packet_interval = 1;
  count.packet_space = 99;
  EXPECT_EQ(stated_rate(count).rate, 100u);
  SamplingElements time;  // 2: systematic time-based: no packet rate
  time.selector_algorithm = 2;
  time.time_interval = 1000;
  time.time_space = 99000;
  EXPECT_EQ(stated_rate(time).rate, 0u);
  EXPECT_TRUE(stated_rate(time).time_based);
  SamplingElements cisco;  // 3: random 1 out of 256, with a misleading packet interval of 1
  cisco.selector_algorithm = 3;
  cisco.size = 1;
  cisco.population = 256;
  cisco.packet_interval = 1;
  EXPECT_EQ(stated_rate(cisco).rate, 256u);
  SamplingElements prob;  // 4: uniform probabilistic, p = 1/512
  prob.selector_algorithm = 4;
  prob.probability = 1.0 / 512;
  EXPECT_EQ(stated_rate(prob).rate, 512u);
  SamplingElements filter;  // 5: property match filtering is not sampling
  filter.selector_algorithm = 5;
  EXPECT_EQ(stated_rate(filter).rate, 1u);
  SamplingElements old;  // RFC 5102 samplingInterval + samplingAlgorithm 2 (random)
  old.interval = 64;
  old.algorithm = 2;
  EXPECT_EQ(stated_rate(old).rate, 64u);
  SamplingElements random;  // v9 FLOW_SAMPLER_RANDOM_INTERVAL
  random.random_interval = 1000;
  EXPECT_EQ(stated_rate(random).rate, 1000u);
}

// The Cisco router: options data announce selector 1 as random 1-out-of-256 (with
// samplingPacketInterval 1 beside it); every data record names selector 1.
TEST(Sampling, CiscoRandomNOutOfNFromOptionsScalesEveryRecord) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  Ipfix m;
  auto s = m.open_set(
      3);  // options template 300: scope selectorId; algorithm, size, population, interval
  m.u16(300).u16(5).u16(1).u16(302).u16(2).u16(304).u16(2).u16(309).u16(4).u16(310).u16(4);
  m.u16(305).u16(4);
  m.close_set(s);
  s = m.open_set(2);  // data template 257: octets, packets, selectorId
  m.u16(257).u16(3).u16(1).u16(4).u16(2).u16(4).u16(302).u16(2);
  m.close_set(s);
  s = m.open_set(300);
  m.u16(1).u16(3).u32(1).u32(256).u32(1);
  m.close_set(s);
  s = m.open_set(257);
  m.u32(1500).u32(1).u16(1);
  m.close_set(s);
  ASSERT_EQ(d.decode(m.finish(), kExporter, 0), FlowError::kOk);
  const auto f = sink.flows();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].sampling_rate, 256u);
  EXPECT_EQ(f[0].packets, 256u);
  EXPECT_EQ(f[0].bytes, 1500u * 256u);
  EXPECT_EQ(to_string(d.last_sampling_decision()), "options:selectorId=1");
}

TEST(Sampling, PrecedenceOverridesCeilingAndChanges) {
  SamplingTable t;
  ExporterStats st;
  SamplingElements opts;  // domain-wide 1 in 10
  opts.interval = 10;
  t.learn(kExporter, 7, opts, st);
  SamplingElements rec;
  EXPECT_EQ(t.decide(kExporter, 7, rec, st).rate, 10u);
  EXPECT_EQ(t.decide(kExporter, 8, rec, st).source, SamplingSource::kExporter);
  rec.interval = 20;  // the record's own statement beats options data
  EXPECT_EQ(t.decide(kExporter, 7, rec, st).rate, 20u);
  t.set_override(kExporter, 5);  // configuration beats everything
  EXPECT_EQ(t.decide(kExporter, 7, rec, st).rate, 5u);
  EXPECT_EQ(t.decide(kExporter, 7, rec, st).source, SamplingSource::kConfigOverride);
  // A rate change is counted; an absurd rate is not applied, and counted.
  SamplingTable u;
  opts.interval = 100;
  t.learn(kExporter, 7, opts, st);  // 10 -> 100
  EXPECT_EQ(st.sampling_rate_changes, 1u);
  u.set_ceiling(65536);
  SamplingElements absurd;
  absurd.interval = 1u << 20;
  const SamplingDecision dec = u.decide(kExporter, 7, absurd, st);
  EXPECT_EQ(dec.rate, 1u);
  EXPECT_EQ(dec.source, SamplingSource::kAboveCeiling);
  EXPECT_EQ(st.sampling_above_ceiling, 1u);
  // v5 header: configured default only when the header states nothing.
  SamplingTable v;
  v.set_config_default(kExporter, 8);
  EXPECT_EQ(v.decide_stated(kExporter, 0, SamplingSource::kV5Header, st).rate, 8u);
  EXPECT_EQ(v.decide_stated(kExporter, 50, SamplingSource::kV5Header, st).rate, 50u);
}

// One address announcing many samplers keeps its share; many addresses announcing samplers
// nobody sends data for fill the table, and a real exporter's sampler still gets in and,
// once used, stays.
TEST(Sampling, NoExporterCanLockAnotherOutOfTheTable) {
  SamplingTable t(16, 4);
  ExporterStats flood, legit;
  SamplingElements e;
  e.has_sampler = true;
  e.interval = 10;
  for (std::uint64_t id = 1; id <= 100; ++id) {
    e.sampler_id = id;
    t.learn(ip4(192, 0, 2, 66), 1, e, flood);
  }
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(flood.sampling_not_learned, 96u);
  e.sampler_id = 1;
  for (std::uint8_t a = 1; a <= 50; ++a) t.learn(ip4(203, 0, 113, a), 1, e, flood);
  EXPECT_EQ(t.size(), 16u);

  SamplingElements announced;
  announced.has_sampler = true;
  announced.sampler_id = 1;
  announced.interval = 100;
  t.learn(kExporter, 1, announced, legit);
  EXPECT_EQ(legit.sampling_not_learned, 0u);
  SamplingElements rec;
  rec.has_sampler = true;
  rec.sampler_id = 1;
  EXPECT_EQ(t.decide(kExporter, 1, rec, legit).rate, 100u);
  for (std::uint8_t a = 51; a <= 200; ++a) t.learn(ip4(203, 0, 113, a), 1, e, flood);
  EXPECT_EQ(t.decide(kExporter, 1, rec, legit).rate, 100u);
  EXPECT_EQ(t.size(), 16u);
  EXPECT_GT(t.evicted(), 100u);
}

}  // namespace
}  // namespace citywatch::agent::flow
