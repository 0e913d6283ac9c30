// FlowDecoder: format detection by version and the bounded per-exporter accounting.
#include <gtest/gtest.h>

#include "agent/flow/flow_decoder.h"
#include "tests/agent/flow/test_sink.h"

namespace citywatch::agent::flow {
namespace {

TEST(FlowDecoder, UnknownVersionIsCounted) {
  VectorSink sink;
  FlowDecoder d({}, sink);
  Bytes b;
  b.u16(7).u16(0).u32(0);
  EXPECT_EQ(d.decode(b.data, ip4(10, 0, 0, 1), 0), FlowError::kUnknownVersion);
  Bytes tiny;
  tiny.u16(9);
  EXPECT_EQ(d.decode(tiny.data, ip4(10, 0, 0, 1), 0), FlowError::kTruncatedHeader);
  const ExporterStats t = d.totals();
  EXPECT_EQ(t.errors[static_cast<std::size_t>(FlowError::kUnknownVersion)], 1u);
  EXPECT_EQ(t.datagrams, 2u);
}

TEST(FlowDecoder, ExporterTableIsBounded) {
  VectorSink sink;
  FlowDecoderOptions o;
  o.max_exporters = 3;
  FlowDecoder d(o, sink);
  Bytes b;
  b.u16(7).u16(0).u32(0);
  for (int i = 1; i <= 10; ++i) d.decode(b.data, ip4(10, 0, 0, static_cast<std::uint8_t>(i)), i);
  int named = 0;
  std::uint64_t other = 0;
  d.for_each_exporter([&](const IpAddr& a, const ExporterStats& s) {
    if (a.family == IpAddr::Family::kNone)
      other = s.datagrams;
    else
      ++named;
  });
  EXPECT_EQ(named, 3);
  EXPECT_EQ(other, 7u);
}

}  // namespace
}  // namespace citywatch::agent::flow
