// The collector's view of what a batch adds, shared by ingest (which fills and commits it)
// and the metrics (which export it): flow traffic grouped by label, in binary form and as
// labelled rows, and the caps that keep those labels finite.
//
// Thread-safety: plain values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/record.h"
#include "common/record_batch.h"

namespace citywatch::collector {

struct FlowTotals {
  std::uint64_t flows = 0;
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

// Flow traffic of one batch grouped by what its labels will be, still in binary form: the
// per-record work is a compare of a few bytes, and labels are made once per group.
struct FlowGroup {
  IpAddr exporter;  // unset (family kNone) for the agent's own packet meter
  std::uint8_t protocol = 0;
  FlowDirection direction = FlowDirection::kUnknown;
  FlowTotals totals;
};
struct InterfaceGroup {
  IpAddr exporter;
  std::uint32_t if_index = 0;
  bool input = true;  // traffic into the exporter on if_index (else out of it)
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

// What one batch adds: filled by the ingest session, committed by the ledger, then applied
// to the metrics.
struct BatchSummary {
  std::string agent;
  std::string segment;
  std::uint64_t stream = 0;
  std::uint64_t seq = 0;
  PerRecordKind<std::uint64_t> records_by_kind{};
  std::vector<FlowGroup> flows;
  std::vector<InterfaceGroup> interfaces;  // exported flows only: they name ifIndexes
  void clear();
  void add(const RecordRef& r);
};

// The same traffic with its label values, as stored in the ledger and exported.
struct FlowRow {
  std::string exporter;  // address; "capture" for the packet meter; "other" past the cap
  int protocol = 0;
  std::string direction;  // "unknown", "ingress" or "egress"
  FlowTotals totals;
};
struct InterfaceRow {
  std::string exporter;
  std::string if_index;   // decimal, or "other" past the cap
  std::string direction;  // "in" or "out"
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

// Label bounds: an agent may report many exporters and an exporter many interfaces, but the
// series they make must stay finite. Past these caps traffic is still counted, as "other".
inline constexpr std::size_t kMaxExportersPerAgent = 64;
inline constexpr std::size_t kMaxInterfacesPerExporter = 512;

}  // namespace citywatch::collector
