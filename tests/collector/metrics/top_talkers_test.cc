// TopTalkers and HeavyHitters: exact while few addresses talk, bounded when 100,000 do.
#include "collector/metrics/top_talkers.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace citywatch::collector {
namespace {

constexpr std::int64_t kMinute = 60'000'000'000;

IpAddr v4(std::uint32_t x) {
  const std::uint8_t b[4] = {static_cast<std::uint8_t>(x >> 24), static_cast<std::uint8_t>(x >> 16),
                             static_cast<std::uint8_t>(x >> 8), static_cast<std::uint8_t>(x)};
  return IpAddr::v4(b);
}

Record flow(const char* segment, IpAddr src, IpAddr dst, std::uint64_t bytes, std::int64_t t) {
  Record r;
  r.segment.assign(segment);
  r.event_time_ns = t;
  FlowRecord f;
  f.src = src;
  f.dst = dst;
  f.bytes = bytes;
  f.packets = 1;
  f.end_ns = t;
  r.body = f;
  return r;
}

std::size_t series(const std::vector<prometheus::MetricFamily>& fams, const std::string& name) {
  for (const auto& f : fams)
    if (f.name == name) return f.metric.size();
  return 0;
}

TEST(HeavyHitters, ExactBelowCapacityAndKeepsAHeavyKeyAmongManyLightOnes) {
  HeavyHitters<int> h(8);
  for (int i = 0; i < 5; ++i) h.add(i, static_cast<std::uint64_t>(10 * (i + 1)));
  const auto top = h.top(3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].key, 4);
  EXPECT_EQ(top[0].count, 50u);
  EXPECT_EQ(top[0].error, 0u);
  EXPECT_EQ(top[2].key, 2);
  // One key with a tenth of the weight among 100,000 light ones: Space-Saving keeps it.
  HeavyHitters<int> g(64);
  for (int i = 0; i < 100000; ++i) {
    g.add(1000000 + i, 1);
    if (i % 10 == 0) g.add(7, 1);
  }
  EXPECT_LE(g.size(), 64u);
  EXPECT_EQ(g.top(1)[0].key, 7);
  EXPECT_GE(g.top(1)[0].count, 10000u);
  EXPECT_LE(g.top(1)[0].count - g.top(1)[0].error, 10000u);  // true weight within the bound
}

TEST(TopTalkers, RanksBytesPerSegmentAndClosesWindowsByEventTime) {
  TopTalkers t;
  const std::int64_t m0 = 1'764'000'000 * 1'000'000'000LL / kMinute * kMinute;
  std::vector<Record> batch = {
      flow("a", v4(1), v4(100), 500, m0 + 1), flow("a", v4(2), v4(100), 300, m0 + 2),
      flow("a", v4(1), v4(101), 100, m0 + 3), flow("b", v4(9), v4(100), 50, m0 + 4)};
  t.consume_records(batch);
  auto cur = t.current("a");
  ASSERT_EQ(cur.src.size(), 2u);
  EXPECT_EQ(cur.src[0].address, v4(1));
  EXPECT_EQ(cur.src[0].bytes, 600u);
  EXPECT_EQ(cur.dst[0].address, v4(100));
  EXPECT_EQ(cur.dst[0].bytes, 800u);
  EXPECT_EQ(cur.window_start_ns, m0);
  EXPECT_TRUE(t.previous("a").src.empty());
  // A flow of the next minute closes segment a's window; segment b's stays open.
  const std::vector<Record> next = {flow("a", v4(3), v4(102), 10, m0 + kMinute + 5)};
  t.consume_records(next);
  EXPECT_EQ(t.previous("a").src[0].bytes, 600u);
  EXPECT_EQ(t.current("a").src[0].address, v4(3));
  EXPECT_EQ(t.current("b").src[0].bytes, 50u);
  const auto fams = t.Collect();
  // a: current (1 src + 1 dst) + previous (2 + 2); b: current 1 + 1.
  EXPECT_EQ(series(fams, "citywatch_top_talker_bytes"), 8u);
}

// Acceptance 3 of issue 12: 100,000 distinct addresses stay within the label bound.
TEST(TopTalkers, HundredThousandAddressesStayWithinTheLabelBound) {
  TopTalkers t;
  const std::int64_t m0 = 1'764'000'000 * 1'000'000'000LL / kMinute * kMinute;
  std::vector<Record> batch;
  for (std::uint32_t i = 0; i < 100000; ++i) {
    // Two minutes of traffic; address 10.0.0.1 sends a heavy stream among them.
    const std::int64_t at = m0 + (i < 50000 ? 0 : kMinute) + i;
    batch.push_back(flow("seg", v4(0x0a800000 + i), v4(0x0a900000 + i), 100, at));
    if (i % 100 == 0) batch.push_back(flow("seg", v4(0x0a000001), v4(0x0a900000 + i), 10000, at));
    if (batch.size() >= 1000) {
      t.consume_records(batch);
      batch.clear();
    }
  }
  t.consume_records(batch);
  const auto fams = t.Collect();
  std::set<std::string> labels;
  for (const auto& f : fams)
    if (f.name == "citywatch_top_talker_bytes")
      for (const auto& m : f.metric) {
        std::string id;
        for (const auto& l : m.label) id += l.name + "=" + l.value + ",";
        labels.insert(id);
      }
  EXPECT_LE(labels.size(), 40u) << "k=10 per direction and window";
  EXPECT_EQ(series(fams, "citywatch_top_talker_bytes"), 40u);
  EXPECT_EQ(t.previous("seg").src[0].address, v4(0x0a000001));
  EXPECT_EQ(t.current("seg").src[0].address, v4(0x0a000001));
}

TEST(TopTalkers, SegmentsBeyondTheCapAreCountedNotExported) {
  TopTalkers::Options o;
  o.max_segments = 2;
  TopTalkers t(o);
  const std::vector<Record> batch = {flow("a", v4(1), v4(2), 1, 1), flow("b", v4(1), v4(2), 1, 1),
                                     flow("c", v4(1), v4(2), 1, 1)};
  t.consume_records(batch);
  EXPECT_EQ(t.segments(), 2u);
  EXPECT_EQ(t.segments_dropped(), 1u);
}

}  // namespace
}  // namespace citywatch::collector
