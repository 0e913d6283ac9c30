// RecordConsumer: a collector component fed with every accepted record (rules engine,
// uptime tracker, SNMP metrics, ...).
//
// The ingest server calls consume() after a batch is committed to the ledger and applied to
// the flow metrics, on its io thread, with the batch's records (one agent and segment, each
// kind stored at its own size: common/record_batch.h). A resent duplicate batch is never passed on,
// so consumers see each record once. on_agent_session() reports sessions opening and closing (agent
// lost, agent back).
//
// Thread-safety: all calls come from the collector's single ingest io thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/record.h"
#include "common/record_batch.h"

namespace citywatch::collector {

class RecordConsumer {
 public:
  virtual ~RecordConsumer() = default;
  virtual void consume(const RecordBatch& batch) = 0;
  // Whole records (tests, tools): consumed as batches of consecutive records that share an
  // agent and a segment.
  void consume_records(std::span<const Record> records) {
    for_each_batch(records, [this](const RecordBatch& b) { consume(b); });
  }
  virtual void on_agent_session(const std::string& /*agent*/, const std::string& /*segment*/,
                                bool /*connected*/, std::int64_t /*time_ns*/) {}
};

}  // namespace citywatch::collector
