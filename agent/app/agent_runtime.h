// AgentRuntime: one running agent, wired from its configuration.
//
// Packets from each capture source are decoded and metered into flow records; records are
// packed into batches, each batch is numbered and written to the spool, and the forwarder
// ships the spool to the collector. Live sources are read when their descriptor is readable;
// files are read one after another, in slices of a few thousand packets so timers and the
// forwarder keep running. When every source is a file, the runtime ends by itself once all
// files are read, every flow is flushed and the collector has acked every batch.
//
// Thread-safety: none. Everything, spool included, runs on one io_context thread; this is
// what lets the data path go without locks. The one exception is a live capture with
// `threads` > 1: its CaptureWorkers read, meter and encode on threads of their own and hand
// sealed batches to this thread (capture_worker.h).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/app/agent_config.h"
#include "agent/app/agent_metrics.h"
#include "agent/app/capture_worker.h"
#include "agent/capture/flow_meter.h"
#include "agent/capture/meter_frame.h"
#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_events.h"
#include "agent/capture/packet_source.h"
#include "agent/flow/flow_decoder.h"
#include "agent/flow/flow_listener.h"
#include "agent/flow/flow_metrics.h"
#include "agent/forward/forwarder.h"
#include "agent/snmp/snmp_library.h"
#include "agent/snmp/snmp_poller.h"
#include "agent/snmp/trap_receiver.h"
#include "agent/spool/spool.h"
#include "common/record.h"
#include "common/record_sink.h"
#include "common/service_notify.h"
#include "common/status.h"
#include "common/wire_codec.h"

namespace citywatch::agent {

class AgentRuntime : public RecordSink {
 public:
  explicit AgentRuntime(AgentConfig config);
  ~AgentRuntime();

  // Opens the spool, the TLS context, the capture sources and the metrics endpoint.
  Status init();
  // Runs until a signal, or until every file source is done and drained. Returns the exit
  // code.
  int run();

  // Where SIGHUP re-reads the configuration: the file given with --config (empty: the
  // embedded default, which a reload leaves as it is), and whether -r replaced the
  // configured sources with files (a reload keeps them replaced).
  void set_reload_source(std::string config_file, bool files_from_command_line);
  // The service manager to tell of readiness, reloads and stopping, and to ping as a
  // watchdog from this runtime's io_context (common/service_notify.h). Not owned; outlives
  // run(). Unset: nobody is told.
  void set_service_notifier(ServiceNotifier* notifier) { notifier_ = notifier; }

  // SIGHUP: re-reads the configuration and applies it all-or-nothing. Reloadable: capture
  // BPF filters, SNMP targets, trap users and communities. A change to anything else is
  // refused with the keys named, and the running configuration stays whole. Public for
  // tests; the runtime calls it on SIGHUP.
  Status reload();

  // Called as each file source is opened for reading, before its first packet; a failure
  // stops the run (exit code 1) before that file is read. main() records the file in the
  // -r ledger here, so a run that stops leaves the files it never opened unmarked.
  void on_file_start(std::function<Status(const std::string& file)> fn) {
    on_file_start_ = std::move(fn);
  }

  // The spool's stream of sequence numbers (after init()).
  std::uint64_t stream_id() const { return spool_->stream_id(); }
  // True once every file source was read and every batch acked (an -r run that finished).
  bool drained() const { return finished_reading_; }

  // RecordSink: producers hand their records here.
  void add(const Record& r) override;
  // Around each record encoded: the batch timer for a new batch, sealing a full one.
  void start_record();
  void end_record();

 private:
  // Each source has its own flow meter: a file runs on its packets' clock, a live interface
  // on the wall clock, and one meter cannot follow two clocks.
  //
  // Files are read one after another, in the order given. A file is opened at init() only to
  // check it; its handle, meter, events and pipeline exist only while it is read, and are
  // released once its flows are flushed. An agent given hundreds of files (-r with a month
  // of hourly captures) holds one file's descriptors and memory, not every file's.
  struct Source {
    std::size_t capture = 0;  // index in config_.captures
    bool file = false;
    std::unique_ptr<PacketSource> pcap;
    std::unique_ptr<FlowMeter> meter;
    std::unique_ptr<MeterPipeline> pipeline;  // into `events` and `meter`; drained after each read
    // Packet events, on the same clock as the meter.
    std::unique_ptr<PacketEventExtractor> events;
    std::unique_ptr<boost::asio::posix::stream_descriptor> fd;  // live sources only
    bool done = false;
    AgentMetrics::SourceMetrics* metrics = nullptr;
  };

  // A live capture read by several threads (`threads` > 1): one worker per thread.
  struct Threaded {
    std::size_t capture = 0;  // index in config_.captures
    std::vector<std::unique_ptr<CaptureWorker>> workers;
    std::vector<AgentMetrics::SourceMetrics*> metrics;
  };

  Status open_threaded(std::size_t capture, const CaptureOptions& opts);
  std::string ready_status() const;
  // Numbers, spools and announces the batches the capture threads sealed.
  void collect_worker_batches();
  void spool_batch(std::vector<std::byte> payload, std::uint32_t records);
  void stop_workers();
  void on_frame(Source& s, std::int64_t ts_ns, std::span<const std::byte> frame);
  void on_flow(const FlowRecord& flow);
  void on_packet_event(const PacketEvent& ev, std::int64_t ts_ns);
  void seal_batch();
  // The meter, events and pipeline of a source, on its packets' clock for a file.
  void make_meters(Source& s);
  // Opens the next file not yet read and starts reading it; with none left, maybe_finish().
  void start_next_file();
  // A file read to its end (or its error): its flows flushed, its state released.
  void finish_file(Source& s);
  void read_file(Source& s);
  // Offline pacing: reading a file waits while the spool holds kReadAhead bytes of batches
  // not yet taken by a connected forwarder (they would be evicted from memory and read back
  // from disk), for at most kPaceWait.
  bool reading_ahead() const;
  void resume_reads();
  void wait_live(Source& s);
  void read_live(Source& s);
  void tick();
  void maybe_finish();
  void shutdown(const char* why);
  void update_metrics();
  void flush_meters();
  void wait_hangup();

  AgentConfig config_;
  boost::asio::io_context io_{1};
  std::unique_ptr<boost::asio::ssl::context> tls_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Forwarder> forwarder_;
  std::unique_ptr<AgentMetrics> metrics_;
  std::vector<Source> sources_;
  std::vector<int> source_of_capture_;  // index in sources_, -1 for a threaded capture
  std::vector<Threaded> threaded_;
  DecodeCounters decode_counters_;
  // Counters of the files read and released: update_metrics() adds them to the open ones'.
  FlowMeterStats finished_meters_;
  PacketEventStats finished_events_;
  wire::BatchEncoder encoder_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t records_ = 0;
  std::uint64_t records_lost_ = 0;  // batches the spool refused to store (disk full, I/O error)
  boost::asio::steady_timer batch_timer_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer pace_timer_;
  std::vector<Source*> paced_;  // files waiting for the forwarder to catch up
  boost::asio::signal_set signals_;
  boost::asio::signal_set hangup_;
  std::string config_file_;
  bool files_from_command_line_ = false;
  ServiceNotifier no_notifier_;  // notifies nobody: what notifier_ points at unless set
  ServiceNotifier* notifier_ = &no_notifier_;
  std::function<Status(const std::string&)> on_file_start_;
  bool offline_ = false;
  // SNMP (live sources): the library outlives the poller and the trap receiver, and the
  // configuration they read outlives both (a reload swaps all three in order).
  std::unique_ptr<SnmpLibrary> snmp_library_;
  std::unique_ptr<SnmpConfig> poller_config_;
  std::unique_ptr<SnmpConfig> trap_config_;
  std::unique_ptr<SnmpPoller> snmp_poller_;
  // Pollers replaced by a reload, with their config: stopped, but their cancelled handlers
  // may still be queued, so they are freed by a later tick.
  struct RetiredPoller {
    std::unique_ptr<SnmpConfig> config;
    std::unique_ptr<SnmpPoller> poller;
    std::int64_t retired_ns;
  };
  std::vector<RetiredPoller> retired_pollers_;
  std::unique_ptr<TrapReceiver> trap_receiver_;
  // Flow listeners (live sources) share one decoder: templates are keyed by exporter.
  std::unique_ptr<flow::FlowDecoder> flow_decoder_;
  std::vector<std::unique_ptr<flow::FlowListener>> flow_listeners_;
  std::unique_ptr<flow::FlowMetrics> flow_metrics_;
  std::filesystem::path flow_state_file_;
  bool finishing_ = false;
  bool finished_reading_ = false;
  int exit_code_ = 0;
};

}  // namespace citywatch::agent
