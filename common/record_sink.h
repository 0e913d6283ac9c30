// RecordSink: where the agent's producers (packet meter, flow listeners, SNMP poller, packet
// events) hand over finished records. The agent's runtime is the sink: it stamps the agent
// id and segment, batches, spools and forwards.
//
// Thread-safety: add() is called on the agent's io_context thread only.
#pragma once

#include "common/record.h"

namespace citywatch {

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  // The record's event_time_ns and body must be set; agent and segment are filled in.
  virtual void add(const Record& record) = 0;
};

}  // namespace citywatch
