// HeavyHitters: the heaviest keys of a stream in bounded memory, by the Space-Saving
// algorithm (Metwally, Agrawal, El Abbadi, "Efficient Computation of Frequent and Top-k
// Elements in Data Streams", ICDT 2005).
//
// At most `capacity` keys are counted. A new key arriving when the table is full takes the
// place of the lightest one and inherits its count as a possible overcount (`error`). Any key
// whose true weight exceeds total / capacity is guaranteed to be in the table, and each
// count overstates its key's true weight by at most `error`. Used for the collector's top
// talkers and top alerting sources, so that a flood of distinct addresses costs a fixed
// amount of memory and a fixed number of exported series.
//
// Thread-safety: none; callers hold their own lock.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace citywatch {

template <typename Key, typename Hash = std::hash<Key>>
class HeavyHitters {
 public:
  struct Entry {
    Key key;
    std::uint64_t count = 0;
    std::uint64_t error = 0;  // the most `count` may overstate the key's true weight
  };

  explicit HeavyHitters(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {
    entries_.reserve(capacity_);
    index_.reserve(capacity_ * 2);
  }

  void add(const Key& key, std::uint64_t weight) {
    total_ += weight;
    if (auto it = index_.find(key); it != index_.end()) {
      entries_[it->second].count += weight;
      return;
    }
    if (entries_.size() < capacity_) {
      index_.emplace(key, entries_.size());
      entries_.push_back({key, weight, 0});
      return;
    }
    // Full: the lightest entry makes way (a linear scan: capacity is small, and new keys in
    // a full table are the rare case for real traffic's skewed distributions).
    std::size_t min = 0;
    for (std::size_t i = 1; i < entries_.size(); ++i)
      if (entries_[i].count < entries_[min].count) min = i;
    Entry& e = entries_[min];
    index_.erase(e.key);
    ++replaced_;
    e.error = e.count;
    e.count += weight;
    e.key = key;
    index_.emplace(key, min);
  }

  // The n heaviest entries, heaviest first (ties: the one with the smaller error first).
  std::vector<Entry> top(std::size_t n) const {
    std::vector<Entry> out = entries_;
    const std::size_t k = std::min(n, out.size());
    std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k), out.end(),
                      [](const Entry& a, const Entry& b) {
                        return a.count != b.count ? a.count > b.count : a.error < b.error;
                      });
    out.resize(k);
    return out;
  }

  void clear() {
    entries_.clear();
    index_.clear();
    total_ = 0;
  }
  std::size_t size() const { return entries_.size(); }
  std::size_t capacity() const { return capacity_; }
  std::uint64_t total() const { return total_; }
  std::uint64_t replaced() const { return replaced_; }  // keys displaced since construction

 private:
  std::size_t capacity_;
  std::vector<Entry> entries_;
  std::unordered_map<Key, std::size_t, Hash> index_;
  std::uint64_t total_ = 0;
  std::uint64_t replaced_ = 0;
};

}  // namespace citywatch
