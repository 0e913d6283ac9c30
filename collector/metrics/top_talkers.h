// TopTalkers: the heaviest sources and destinations of flow traffic, per segment and minute,
// exported with a fixed number of series.
//
// Each segment has a window per minute of event time (the flow's end). Bytes are counted per
// source and per destination address in a HeavyHitters table of `capacity` entries (Space-
// Saving: a flood of distinct addresses costs fixed memory); when a flow of a later minute
// arrives, the window closes and its top `k` become the `previous` window. Exported:
//   citywatch_top_talker_bytes{segment, window="current"|"previous", direction="src"|"dst",
//                              rank="1".."k", address}
// at most 4k series per segment (k = 10: 40), for at most `max_segments` segments (later
// segments are counted in citywatch_top_talker_segments_dropped_total, not exported). The
// values are bytes in the window (sampling-scaled, as the flow records carry them); an
// address's count may overstate its true bytes by the error Space-Saving allows, which is
// zero while the window has seen fewer than `capacity` addresses.
//
// Thread-safety: consume() on the ingest thread, Collect() on the exposer's; one mutex.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "collector/records/record_consumer.h"
#include "common/heavy_hitters.h"
#include "common/record.h"

namespace citywatch::collector {

struct IpAddrHash {
  std::size_t operator()(const IpAddr& a) const noexcept;
};

class TopTalkers : public RecordConsumer, public prometheus::Collectable {
 public:
  struct Options {
    std::size_t k = 10;          // ranks exported per direction and window
    std::size_t capacity = 256;  // addresses counted per direction and window
    std::size_t max_segments = 256;
    std::int64_t window_ns = 60'000'000'000;
  };
  struct Talker {
    IpAddr address;
    std::uint64_t bytes = 0;
  };
  struct Snapshot {
    std::int64_t window_start_ns = 0;
    std::vector<Talker> src, dst;  // heaviest first, at most k
  };

  TopTalkers();
  explicit TopTalkers(Options o);

  void consume(const RecordBatch& batch) override;
  std::vector<prometheus::MetricFamily> Collect() const override;

  // For tests and the decode tools: the segment's windows (empty when unknown).
  Snapshot current(const std::string& segment) const;
  Snapshot previous(const std::string& segment) const;
  std::size_t segments() const;
  std::uint64_t segments_dropped() const;

 private:
  struct Segment {
    std::int64_t window = -1;  // index of the current window (event time / window_ns)
    HeavyHitters<IpAddr, IpAddrHash> src, dst;
    Snapshot previous;
    explicit Segment(std::size_t capacity) : src(capacity), dst(capacity) {}
  };
  Snapshot snapshot(const Segment& s) const;

  Options o_;
  mutable std::mutex mu_;
  std::map<std::string, Segment, std::less<>> segments_;
  std::uint64_t dropped_segments_ = 0;  // records of segments past max_segments
};

}  // namespace citywatch::collector
