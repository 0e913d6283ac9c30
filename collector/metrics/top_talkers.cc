#include "collector/metrics/top_talkers.h"

#include "common/ip_text.h"

#include <cstring>
#include <functional>
#include <string_view>

namespace citywatch::collector {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

namespace {

std::vector<TopTalkers::Talker> talkers(const HeavyHitters<IpAddr, IpAddrHash>& h, std::size_t k) {
  std::vector<TopTalkers::Talker> out;
  for (const auto& e : h.top(k)) out.push_back({e.key, e.count});
  return out;
}

}  // namespace

std::size_t IpAddrHash::operator()(const IpAddr& a) const noexcept {
  std::uint64_t x[2];
  std::memcpy(x, a.bytes.data(), sizeof x);
  return std::hash<std::uint64_t>{}(x[0] * 0x9e3779b97f4a7c15ULL ^ x[1] ^
                                    static_cast<std::uint64_t>(a.family));
}

TopTalkers::TopTalkers() : TopTalkers(Options{}) {}
TopTalkers::TopTalkers(Options o) : o_(o) {
  if (o_.window_ns <= 0) o_.window_ns = 60'000'000'000;
  if (o_.capacity < o_.k) o_.capacity = o_.k;
}

TopTalkers::Snapshot TopTalkers::snapshot(const Segment& s) const {
  return {s.window * o_.window_ns, talkers(s.src, o_.k), talkers(s.dst, o_.k)};
}

void TopTalkers::consume(const RecordBatch& records) {
  std::lock_guard lock(mu_);
  Segment* seg = nullptr;
  std::string_view seg_name;
  for (const RecordRef r : records) {
    const auto* f = r.get_if<FlowRecord>();
    if (!f || f->bytes == 0) continue;
    if (!seg || r.segment.view() != seg_name) {
      seg_name = r.segment.view();
      auto it = segments_.find(seg_name);
      if (it == segments_.end()) {
        if (segments_.size() >= o_.max_segments) {
          ++dropped_segments_;
          seg = nullptr;
          seg_name = {};
          continue;
        }
        it = segments_.emplace(std::string(seg_name), Segment(o_.capacity)).first;
      }
      seg = &it->second;
    }
    const std::int64_t t = f->end_ns ? f->end_ns : r.event_time_ns;
    const std::int64_t w = t >= 0 ? t / o_.window_ns : 0;
    if (w > seg->window) {
      if (seg->window >= 0) seg->previous = snapshot(*seg);
      seg->src.clear();
      seg->dst.clear();
      seg->window = w;
    }
    // A late flow (an earlier minute) counts in the current window: it is traffic now seen.
    seg->src.add(f->src, f->bytes);
    seg->dst.add(f->dst, f->bytes);
  }
}

TopTalkers::Snapshot TopTalkers::current(const std::string& segment) const {
  std::lock_guard lock(mu_);
  auto it = segments_.find(segment);
  return it == segments_.end() ? Snapshot{} : snapshot(it->second);
}

TopTalkers::Snapshot TopTalkers::previous(const std::string& segment) const {
  std::lock_guard lock(mu_);
  auto it = segments_.find(segment);
  return it == segments_.end() ? Snapshot{} : it->second.previous;
}

std::size_t TopTalkers::segments() const {
  std::lock_guard lock(mu_);
  return segments_.size();
}

std::uint64_t TopTalkers::segments_dropped() const {
  std::lock_guard lock(mu_);
  return dropped_segments_;
}

std::vector<MetricFamily> TopTalkers::Collect() const {
  std::lock_guard lock(mu_);
  MetricFamily bytes;
  bytes.name = "citywatch_top_talker_bytes";
  bytes.help =
      "Bytes of flow traffic of the heaviest sources (direction=\"src\") and destinations "
      "(\"dst\") per segment, in the minute in progress (window=\"current\") and the last "
      "complete one (\"previous\"); ranks 1 to 10";
  bytes.type = MetricType::Gauge;
  MetricFamily start;
  start.name = "citywatch_top_talker_window_start_timestamp_seconds";
  start.help = "Start of each top-talker window (flow end time, Unix seconds)";
  start.type = MetricType::Gauge;
  auto emit = [&](const std::string& segment, const char* window, const Snapshot& s) {
    if (s.src.empty() && s.dst.empty()) return;
    ClientMetric m;
    m.label = {{"segment", segment}, {"window", window}};
    m.gauge.value = static_cast<double>(s.window_start_ns) / 1e9;
    start.metric.push_back(std::move(m));
    for (const auto& [dir, list] : {std::pair{"src", &s.src}, std::pair{"dst", &s.dst}})
      for (std::size_t i = 0; i < list->size(); ++i) {
        ClientMetric t;
        t.label = {{"segment", segment},
                   {"window", window},
                   {"direction", dir},
                   {"rank", std::to_string(i + 1)},
                   {"address", to_string((*list)[i].address)}};
        t.gauge.value = static_cast<double>((*list)[i].bytes);
        bytes.metric.push_back(std::move(t));
      }
  };
  for (const auto& [name, seg] : segments_) {
    emit(name, "current", snapshot(seg));
    emit(name, "previous", seg.previous);
  }
  MetricFamily dropped;
  dropped.name = "citywatch_top_talker_segments_dropped_total";
  dropped.help = "Flow records of segments beyond the top-talker segment cap, not ranked";
  dropped.type = MetricType::Counter;
  ClientMetric d;
  d.counter.value = static_cast<double>(dropped_segments_);
  dropped.metric.push_back(std::move(d));
  return {std::move(bytes), std::move(start), std::move(dropped)};
}

}  // namespace citywatch::collector
