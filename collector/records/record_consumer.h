// RecordConsumer: a collector component fed with every accepted record (rules engine,
// uptime tracker, SNMP metrics, ...).
//
// The ingest server calls consume() after a batch is committed to the ledger and applied to
// the flow metrics, on its io thread, with the batch's records (agent and segment set from
// the session). A resent duplicate batch is never passed on, so consumers see each record
// once. on_agent_session() reports sessions opening and closing (agent lost, agent back).
//
// Thread-safety: all calls come from the collector's single ingest io thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/record.h"

namespace citywatch::collector {

class RecordConsumer {
 public:
  virtual ~RecordConsumer() = default;
  virtual void consume(std::span<const Record> records) = 0;
  virtual void on_agent_session(const std::string& /*agent*/, const std::string& /*segment*/,
                                bool /*connected*/, std::int64_t /*time_ns*/) {}
};

}  // namespace citywatch::collector
