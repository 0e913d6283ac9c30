// CaptureWorker: one capture thread of a live interface read by several (`threads: N` in a
// capture entry). The interface's sockets form one PACKET_FANOUT group that hashes flows to
// threads (both directions of a connection to the same thread, so a SYN meets its answer);
// each thread owns its socket and ring, its flow meter, packet-event extractor and
// MeterPipeline, and encodes its records into batches of its own. Finished batches go to the
// agent's main thread through a bounded hand-off (the main thread numbers, spools and sends
// them); past `max_pending_bytes` waiting there, a batch is dropped and its records counted
// as lost, never queued without bound.
//
// Expiry runs on the wall clock once a second, as for a source read on the main thread.
// Per-key budgets and per-kind rates of packet events apply per thread. Statistics
// (pcap_stats, meter, extractor, decode counters) are published once a second and at stop
// for the main thread to export, one `source` per thread.
//
// Thread-safety: start() and stop() from the main thread; take_batches(), snapshot() and
// request_filter() from any thread; everything else runs on the worker's own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/capture/flow_meter.h"
#include "agent/capture/meter_frame.h"
#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_events.h"
#include "agent/capture/packet_source.h"
#include "common/status.h"
#include "common/wire_codec.h"

namespace citywatch::agent {

struct CaptureWorkerOptions {
  std::string name;  // the source label: interface@N
  FlowMeterConfig meter;
  PacketEventConfig events;
  std::uint32_t batch_records = 16000;
  std::size_t batch_bytes = 1 << 20;
  std::chrono::nanoseconds batch_delay = std::chrono::milliseconds(200);
  std::size_t max_pending_bytes = std::size_t{64} << 20;  // batches waiting for the main thread
};

class CaptureWorker {
 public:
  struct Batch {
    std::vector<std::byte> payload;  // sequence 0: the main thread numbers it
    std::uint32_t records = 0;
  };
  struct Snapshot {
    PacketSource::Stats pcap;
    bool pcap_ok = false;
    FlowMeterStats meter;
    PacketEventStats events;
    DecodeCounters decode;
    std::uint64_t records = 0;
    std::uint64_t records_lost = 0;  // batches dropped at the hand-off
  };

  // Takes an opened live source, already in its fanout group. `ready` is called (on the
  // worker's thread) whenever a batch waits in take_batches(); it must only schedule work.
  CaptureWorker(std::unique_ptr<PacketSource> source, CaptureWorkerOptions options,
                std::function<void()> ready);
  ~CaptureWorker();
  CaptureWorker(const CaptureWorker&) = delete;
  CaptureWorker& operator=(const CaptureWorker&) = delete;

  void start();
  // Stops the thread after it handed over everything: pending packets metered, flows and
  // attempts flushed, the last batch sealed. Blocks until the thread ended; idempotent.
  void stop();

  // The batches sealed since the last call, oldest first.
  std::vector<Batch> take_batches();
  Snapshot snapshot() const;
  // SIGHUP: the thread installs `filter` before its next read (compile it first with
  // PacketSource::check_filter).
  void request_filter(std::string filter);
  // Set when the thread ended on a capture error (the message), for the main thread to act.
  std::optional<std::string> failure() const;
  const std::string& name() const { return options_.name; }
  int linktype() const { return linktype_; }

 private:
  void run();
  void read_once();
  void publish();
  void seal();
  void emit_flow(const FlowRecord& f);
  void emit_event(const PacketEvent& e, std::int64_t ts);
  void after_record();

  std::unique_ptr<PacketSource> source_;
  const CaptureWorkerOptions options_;
  std::function<void()> ready_;
  const int linktype_;
  FlowMeter meter_;
  PacketEventExtractor events_;
  MeterPipeline pipeline_;
  DecodeCounters decode_;
  wire::BatchEncoder encoder_;
  std::chrono::steady_clock::time_point batch_started_;
  std::uint64_t records_ = 0;
  int wake_fd_ = -1;  // eventfd: stop and filter requests interrupt poll()
  std::atomic<bool> stopping_{false};
  std::thread thread_;

  mutable std::mutex mu_;  // guards everything below
  std::deque<Batch> ready_batches_;
  std::size_t pending_bytes_ = 0;
  std::uint64_t records_lost_ = 0;
  Snapshot published_;
  std::optional<std::string> pending_filter_;
  std::optional<std::string> failure_;
};

}  // namespace citywatch::agent
