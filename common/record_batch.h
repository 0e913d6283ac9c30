// RecordBatch: a batch of records from one agent's segment, stored per kind.
//
// A Record (common/record.h) is a variant as large as its largest body (776 bytes, an SNMP
// trap's), so a vector of them costs every 77-byte flow on the wire 776 bytes in memory.
// A RecordBatch keeps each kind in its own vector of (time, body) and the arrival order in
// 8 bytes per record: a flow costs 136 bytes, what it weighs plus its place in line, and
// the agent and segment are stored once. Consumers read it in arrival order through
// RecordRef, which has a Record's fields and reaches the body without a copy.
//
// Thread-safety: plain values; no shared state.
#pragma once

#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "common/record.h"

namespace citywatch {

// The RecordKind of a body type.
template <typename Body, std::size_t I = 0>
constexpr RecordKind kind_of() {
  static_assert(I < kRecordKinds, "not a record body");
  if constexpr (std::is_same_v<Body, std::variant_alternative_t<I, RecordBody>>)
    return static_cast<RecordKind>(I + 1);
  else
    return kind_of<Body, I + 1>();
}

// One record of a batch (or a whole Record): valid while what it refers to is.
class RecordRef {
 public:
  RecordRef(std::int64_t time_ns, const ShortName& agent_name, const ShortName& segment_name,
            RecordKind kind, const void* body)
      : event_time_ns(time_ns),
        agent(agent_name),
        segment(segment_name),
        kind_(kind),
        body_(body) {}
  explicit RecordRef(const Record& r)
      : RecordRef(r.event_time_ns, r.agent, r.segment, r.kind(),
                  std::visit([](const auto& b) -> const void* { return &b; }, r.body)) {}

  const std::int64_t event_time_ns;
  const ShortName& agent;
  const ShortName& segment;

  RecordKind kind() const { return kind_; }
  template <typename Body>
  const Body* get_if() const {
    return kind_ == kind_of<Body>() ? static_cast<const Body*>(body_) : nullptr;
  }
  template <typename Body>
  const Body& get() const {
    assert(kind_ == kind_of<Body>());
    return *static_cast<const Body*>(body_);
  }

 private:
  RecordKind kind_;
  const void* body_;
};

class RecordBatch {
 public:
  RecordBatch() = default;
  RecordBatch(const ShortName& agent, const ShortName& segment) { reset(agent, segment); }

  const ShortName& agent() const { return agent_; }
  const ShortName& segment() const { return segment_; }

  // Empties the batch for another agent and segment, keeping its memory.
  void reset(const ShortName& agent, const ShortName& segment) {
    agent_ = agent;
    segment_ = segment;
    clear();
  }
  void clear() {
    std::apply([](auto&... v) { (v.clear(), ...); }, bodies_);
    order_.clear();
  }
  void reserve(std::size_t records) { order_.reserve(records); }

  template <typename Body>
  void add(std::int64_t time_ns, const Body& body) {
    auto& v = std::get<static_cast<std::size_t>(kind_of<Body>()) - 1>(bodies_);
    order_.push_back({kind_of<Body>(), static_cast<std::uint32_t>(v.size())});
    v.push_back({time_ns, body});
  }
  // A whole record; its agent and segment are the batch's.
  void add(const Record& r) {
    std::visit([&](const auto& b) { add(r.event_time_ns, b); }, r.body);
  }

  // Where the batch stands, to go back to it (a decode that fails half-way).
  struct Mark {
    std::size_t order = 0;
    std::array<std::size_t, kRecordKinds> bodies{};
  };
  Mark mark() const {
    Mark m;
    m.order = order_.size();
    mark_sizes(m, std::make_index_sequence<kRecordKinds>{});
    return m;
  }
  void rollback(const Mark& m) {
    order_.resize(m.order);
    rollback_sizes(m, std::make_index_sequence<kRecordKinds>{});
  }

  std::size_t size() const { return order_.size(); }
  bool empty() const { return order_.empty(); }
  // Records of one kind.
  template <typename Body>
  std::size_t count() const {
    return std::get<static_cast<std::size_t>(kind_of<Body>()) - 1>(bodies_).size();
  }
  // Bytes one record of a kind takes here: its body, its time, its place in the order.
  template <typename Body>
  static constexpr std::size_t record_bytes() {
    return sizeof(Timed<Body>) + sizeof(Slot);
  }
  // Bytes of record storage held (capacity), for sizing.
  std::size_t capacity_bytes() const {
    std::size_t n = order_.capacity() * sizeof(Slot);
    std::apply([&](const auto&... v) { ((n += v.capacity() * sizeof(v[0])), ...); }, bodies_);
    return n;
  }

  RecordRef operator[](std::size_t i) const {
    return at(order_[i], std::make_index_sequence<kRecordKinds>{});
  }

  class Iterator {
   public:
    Iterator(const RecordBatch* b, std::size_t i) : batch_(b), i_(i) {}
    RecordRef operator*() const { return (*batch_)[i_]; }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator==(const Iterator& o) const { return i_ == o.i_; }

   private:
    const RecordBatch* batch_;
    std::size_t i_;
  };
  Iterator begin() const { return {this, 0}; }
  Iterator end() const { return {this, order_.size()}; }

 private:
  template <typename Body>
  struct Timed {
    std::int64_t time_ns;
    Body body;
  };
  template <typename V>
  struct Stores;
  template <typename... Bodies>
  struct Stores<std::variant<Bodies...>> {
    using type = std::tuple<std::vector<Timed<Bodies>>...>;
  };
  struct Slot {
    RecordKind kind;
    std::uint32_t index;
  };

  template <std::size_t... I>
  RecordRef at(Slot s, std::index_sequence<I...>) const {
    std::int64_t t = 0;
    const void* body = nullptr;
    (void)((static_cast<std::size_t>(s.kind) == I + 1 &&
            (t = std::get<I>(bodies_)[s.index].time_ns, body = &std::get<I>(bodies_)[s.index].body,
             true)) ||
           ...);
    return RecordRef(t, agent_, segment_, s.kind, body);
  }
  template <std::size_t... I>
  void mark_sizes(Mark& m, std::index_sequence<I...>) const {
    ((m.bodies[I] = std::get<I>(bodies_).size()), ...);
  }
  template <std::size_t... I>
  void rollback_sizes(const Mark& m, std::index_sequence<I...>) {
    (std::get<I>(bodies_).resize(m.bodies[I]), ...);
  }

  ShortName agent_;
  ShortName segment_;
  typename Stores<RecordBody>::type bodies_;
  std::vector<Slot> order_;
};

// Calls fn(batch) for each run of consecutive records sharing an agent and a segment: how
// tests and tools hand whole Records to what consumes batches.
template <typename Fn>
void for_each_batch(std::span<const Record> records, Fn&& fn) {
  RecordBatch batch;
  for (std::size_t i = 0; i < records.size();) {
    batch.reset(records[i].agent, records[i].segment);
    std::size_t j = i;
    for (; j < records.size() && records[j].agent == records[i].agent &&
           records[j].segment == records[i].segment;
         ++j)
      batch.add(records[j]);
    fn(static_cast<const RecordBatch&>(batch));
    i = j;
  }
}

}  // namespace citywatch
