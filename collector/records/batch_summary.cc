#include "collector/records/batch_summary.h"

#include <algorithm>

namespace citywatch::collector {

void BatchSummary::clear() {
  agent.clear();
  segment.clear();
  stream = seq = 0;
  records_by_kind = {};
  flows.clear();  // keeps capacity: no allocation per batch once warmed up
  interfaces.clear();
}

void BatchSummary::add(const RecordRef& r) {
  ++records_by_kind[static_cast<std::size_t>(r.kind())];
  const auto* f = r.get_if<FlowRecord>();
  if (!f) return;
  const bool exported = f->source != FlowSource::kPacketMeter;
  const IpAddr exporter = exported ? f->exporter : IpAddr{};
  // A batch holds a handful of groups (one exporter or capture, a few protocols), so a
  // linear search beats a hash map here.
  auto g = std::find_if(flows.begin(), flows.end(), [&](const FlowGroup& x) {
    return x.protocol == f->protocol && x.direction == f->direction && x.exporter == exporter;
  });
  if (g == flows.end()) g = flows.insert(flows.end(), {exporter, f->protocol, f->direction, {}});
  ++g->totals.flows;
  g->totals.packets += f->packets;
  g->totals.bytes += f->bytes;
  if (!exported) return;
  for (const auto& side : {std::pair{f->input_if, true}, {f->output_if, false}}) {
    // Plain copies: clang before 16 cannot capture structured bindings in the lambda.
    const std::uint32_t if_index = side.first;
    const bool input = side.second;
    if (if_index == 0) continue;  // not reported by the exporter
    auto i = std::find_if(interfaces.begin(), interfaces.end(), [&](const InterfaceGroup& x) {
      return x.if_index == if_index && x.input == input && x.exporter == exporter;
    });
    if (i == interfaces.end())
      i = interfaces.insert(interfaces.end(), {exporter, if_index, input, 0, 0});
    i->packets += f->packets;
    i->bytes += f->bytes;
  }
}

}  // namespace citywatch::collector
