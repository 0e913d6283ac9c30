#include "agent/app/agent_runtime.h"

#include <boost/asio/post.hpp>
#include <chrono>

#include "common/batch_compression.h"
#include "common/log.h"
#include "common/version.h"

namespace citywatch::agent {

namespace asio = boost::asio;

namespace {

constexpr int kFileSlice = 4096;  // packets per slice of file reading
constexpr int kLiveSlice = 1024;  // packets per readable event
// Offline pacing (read_file): a file read faster than the collector acks waits while this
// much is spooled and not yet taken by the forwarder, instead of pushing batches out of the
// spool's memory to be read back from disk. About 8 default batches of flows as spooled
// (16,000 compact records of ~35 bytes, packed about 4.5x): enough to keep the forwarder
// busy, little memory to touch.
constexpr std::size_t kReadAhead = std::size_t{1} << 20;
constexpr auto kPaceWait = std::chrono::milliseconds(100);

std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

AgentRuntime::AgentRuntime(AgentConfig config)
    : config_(std::move(config)),
      batch_timer_(io_),
      tick_timer_(io_),
      pace_timer_(io_),
      signals_(io_, SIGINT, SIGTERM),
      hangup_(io_, SIGHUP) {}

AgentRuntime::~AgentRuntime() {
  // The descriptors belong to libpcap: hand them back before pcap_close() closes them.
  for (Source& s : sources_)
    if (s.fd) s.fd->release();
}

Status AgentRuntime::init() {
  if (auto s = Spool::open(config_.spool, spool_); !s) return s;
  if (const std::uint64_t n = spool_->stats().corrupt_records_recovered; n != 0)
    log::warning("spool: " + std::to_string(n) +
                 " torn or corrupt record(s) skipped at start (after a crash or power loss: "
                 "the last write, torn; anywhere else: the disk changed under the spool)");
  // Continue numbering after everything this agent ever spooled.
  next_seq_ = spool_->last_seq() + 1;
  if (auto s = make_tls_context(TlsRole::kClient, config_.tls, tls_); !s) return s;

  metrics_ = std::make_unique<AgentMetrics>(config_.agent_id, config_.segment);
  if (!config_.metrics_host.empty()) {
    std::uint16_t port = config_.metrics_port;
    std::string url;
    if (auto s = metrics_->listen(config_.metrics_host, port, config_.metrics_web, url); !s)
      return s;
    log::info("agent: metrics at " + url);
  }

  if (config_.captures.empty() && !config_.snmp.enabled() && config_.flow_listeners.empty())
    return Status::error("agent: no capture source, flow listener or SNMP target configured");
  offline_ = true;
  for (std::size_t ci = 0; ci < config_.captures.size(); ++ci) {
    const CaptureOptions& opts = config_.captures[ci];
    if (opts.file.empty() && opts.threads > 1) {
      if (auto s = open_threaded(ci, opts); !s) return s;
      offline_ = false;
      source_of_capture_.push_back(-1);
      continue;
    }
    source_of_capture_.push_back(static_cast<int>(sources_.size()));
    Status err;
    auto src = PacketSource::open(opts, err);
    if (!src) return err;
    Source s;
    s.capture = ci;
    s.file = src->is_file();
    s.metrics = &metrics_->add_source(src->name());
    if (s.file) {
      // Checked now, so a wrong name or format stops the agent before it reads anything;
      // opened again when its turn comes (start_next_file).
      sources_.push_back(std::move(s));
      continue;
    }
    offline_ = false;
    s.fd = std::make_unique<asio::posix::stream_descriptor>(io_, src->selectable_fd());
    s.pcap = std::move(src);
    make_meters(s);
    sources_.push_back(std::move(s));
  }

  poller_config_ = std::make_unique<SnmpConfig>(config_.snmp);
  trap_config_ = std::make_unique<SnmpConfig>(config_.snmp);
  if (config_.snmp.enabled()) {
    offline_ = false;  // polls and traps never end by themselves
    snmp_library_ = std::make_unique<SnmpLibrary>("citywatch-agent");
    if (!config_.snmp.targets.empty()) {
      snmp_poller_ = std::make_unique<SnmpPoller>(io_, *poller_config_, *this);
      if (auto s = snmp_poller_->open(); !s) return s;
    }
    if (!config_.snmp.trap_host.empty()) {
      trap_receiver_ = std::make_unique<TrapReceiver>(io_, *trap_config_, *this);
      if (auto s = trap_receiver_->open(); !s) return s;
    }
  }

  if (!config_.flow_listeners.empty()) {
    offline_ = false;  // exporters never say they are done
    flow::FlowDecoderOptions fopts;
    fopts.hold.hold_ns = config_.flow_hold_time.count();
    fopts.templates = config_.flow_templates;
    fopts.max_sampling_rate = config_.flow_max_sampling_rate;
    flow_decoder_ = std::make_unique<flow::FlowDecoder>(fopts, *this);
    for (const auto& [exporter, rate] : config_.flow_sampling_overrides)
      flow_decoder_->sampling().set_override(exporter, rate);
    for (const auto& [exporter, rate] : config_.flow_sampling_defaults)
      flow_decoder_->sampling().set_config_default(exporter, rate);
    for (const auto& o : config_.flow_sampler_overrides)
      flow_decoder_->sampling().set_sampler_override(o.exporter, o.sampler_id, o.rate);
    const std::filesystem::path state = config_.state_dir.empty()
                                            ? config_.spool.dir.parent_path() / "agent-state"
                                            : config_.state_dir;
    flow_state_file_ = state / "flow-templates.state";
    std::size_t loaded = 0, skipped = 0;
    if (auto s = flow_decoder_->load(flow_state_file_, loaded, skipped); !s) return s;
    if (loaded || skipped)
      log::info("agent: flow state " + flow_state_file_.string() + ": " + std::to_string(loaded) +
                " entries reloaded" +
                (skipped ? ", " + std::to_string(skipped) + " malformed lines skipped" : ""));
    for (const flow::FlowListenerOptions& o : config_.flow_listeners) {
      auto l = std::make_unique<flow::FlowListener>(io_, o, *flow_decoder_);
      if (auto s = l->open(); !s) return s;
      log::info("agent: flow listener " + l->name() + " (receive buffer " +
                std::to_string(l->stats().receive_buffer_bytes) + " bytes)");
      flow_listeners_.push_back(std::move(l));
    }
    flow_metrics_ = std::make_unique<flow::FlowMetrics>(metrics_->registry());
  }

  ForwarderOptions fo;
  fo.collectors = config_.collectors;
  fo.hello.agent_id.assign(config_.agent_id);
  fo.hello.segment.assign(config_.segment);
  fo.hello.software.assign("citywatch-agent " + std::string(kVersion));
  fo.hello.stream_id = spool_->stream_id();
  fo.initial_backoff = config_.initial_backoff;
  fo.max_backoff = config_.max_backoff;
  fo.compress = config_.batch.compression == BatchOptions::Compression::kZstd;
  forwarder_ = std::make_unique<Forwarder>(io_, *tls_, *spool_, fo);
  forwarder_->on_drained([this] { maybe_finish(); });
  forwarder_->on_taken([this] {
    if (!paced_.empty() && spool_->unread_bytes_in_memory() <= kReadAhead / 2) resume_reads();
  });
  forwarder_->on_collector_ahead([this](std::uint64_t seq) {
    log::warning("agent: the collector already holds batch " + std::to_string(seq) +
                 " from this agent, beyond the local spool; numbering continues above it");
    next_seq_ = std::max(next_seq_, seq + 1);
  });
  return Status::ok();
}

Status AgentRuntime::open_threaded(std::size_t capture, const CaptureOptions& opts) {
  Threaded t;
  t.capture = capture;
  std::uint16_t group = 0;
  for (int i = 1; i <= opts.threads; ++i) {
    Status err;
    auto src = PacketSource::open(opts, err);
    if (!src) return err;
    if (auto s = src->join_fanout(group); !s) return s;
    CaptureWorkerOptions wo;
    wo.name = opts.interface + "@" + std::to_string(i);
    wo.meter = config_.flow_meter;
    wo.events = config_.packet_events;
    wo.batch_records = config_.batch.max_records;
    wo.batch_bytes = static_cast<std::size_t>(config_.batch.max_bytes);
    wo.batch_delay = config_.batch.max_delay;
    t.metrics.push_back(&metrics_->add_source(wo.name));
    t.workers.push_back(std::make_unique<CaptureWorker>(std::move(src), std::move(wo), [this] {
      asio::post(io_, [this] { collect_worker_batches(); });
    }));
  }
  log::info("agent: capturing on " + opts.interface + " with " + std::to_string(opts.threads) +
            " threads (PACKET_FANOUT group " + std::to_string(group) + ")");
  threaded_.push_back(std::move(t));
  return Status::ok();
}

void AgentRuntime::collect_worker_batches() {
  for (Threaded& t : threaded_)
    for (auto& w : t.workers)
      for (CaptureWorker::Batch& b : w->take_batches())
        spool_batch(std::move(b.payload), b.records);
}

void AgentRuntime::spool_batch(std::vector<std::byte> payload, std::uint32_t records) {
  wire::set_batch_sequence(payload, next_seq_);
  if (config_.batch.compression == BatchOptions::Compression::kLz4) {
    std::vector<std::byte> packed = spool_->spare_buffer();
    if (wire::pack(payload, packed)) payload.swap(packed);
  }
  if (auto s = spool_->append(next_seq_, std::move(payload)); !s) {
    records_lost_ += records;
    log::error("agent: " + s.message() + "; batch of " + std::to_string(records) +
               " records dropped");
    return;
  }
  ++next_seq_;
  forwarder_->notify();
}

void AgentRuntime::stop_workers() {
  for (Threaded& t : threaded_)
    for (auto& w : t.workers) w->stop();
  collect_worker_batches();  // the last batches each thread sealed as it stopped
}

int AgentRuntime::run() {
  log::info("agent '" + config_.agent_id + "' (segment '" + config_.segment +
            "'): " + std::to_string(config_.captures.size()) + " capture source(s), spool " +
            config_.spool.dir.string() + " (" + std::to_string(spool_->stats().batches_pending) +
            " batches pending)");
  signals_.async_wait([this](boost::system::error_code ec, int sig) {
    if (!ec) shutdown(sig == SIGINT ? "interrupted" : "terminated");
  });
  wait_hangup();
  forwarder_->start();
  encoder_.begin();
  for (auto& l : flow_listeners_) l->start();
  if (snmp_poller_) snmp_poller_->start();
  if (trap_receiver_) trap_receiver_->start();
  for (Threaded& t : threaded_)
    for (auto& w : t.workers) w->start();
  for (Source& s : sources_)
    if (s.fd) wait_live(s);
  asio::post(io_, [this] { start_next_file(); });
  tick();
  // Every source is open and every socket bound (init()): the service manager may count
  // the agent as started (Type=notify), and its watchdog pings come from this loop.
  notifier_->ready(ready_status());
  notifier_->start_watchdog(io_);
  io_.run();
  notifier_->stop_watchdog();
  update_metrics();
  return exit_code_;
}

// What `systemctl status` shows while the agent runs (STATUS=).
std::string AgentRuntime::ready_status() const {
  std::string s = std::to_string(config_.captures.size()) + " capture source(s), " +
                  std::to_string(config_.flow_listeners.size()) + " flow listener(s), " +
                  std::to_string(config_.snmp.targets.size()) + " SNMP target(s); forwarding to ";
  for (std::size_t i = 0; i < config_.collectors.size(); ++i)
    s += (i ? ", " : "") + config_.collectors[i].host + ":" +
         std::to_string(config_.collectors[i].port);
  return s + " through the spool in " + config_.spool.dir.string();
}

void AgentRuntime::make_meters(Source& s) {
  s.meter =
      std::make_unique<FlowMeter>(config_.flow_meter, [this](const FlowRecord& f) { on_flow(f); });
  s.events = std::make_unique<PacketEventExtractor>(
      config_.packet_events,
      [this](const PacketEvent& ev, std::int64_t ts) { on_packet_event(ev, ts); });
  // Capture files: flows expire on the packets' clock.
  s.pipeline = std::make_unique<MeterPipeline>(*s.meter, *s.events, s.file);
}

void AgentRuntime::start_next_file() {
  if (finishing_) return;
  for (Source& s : sources_) {
    if (!s.file || s.done) continue;
    if (s.pcap) return;  // being read
    Status err;
    s.pcap = PacketSource::open(config_.captures[s.capture], err);
    if (!s.pcap) {  // changed since init() checked it
      log::error("agent: " + err.message());
      exit_code_ = 1;
      s.done = true;
      continue;
    }
    if (on_file_start_)
      if (auto st = on_file_start_(config_.captures[s.capture].file); !st) {
        log::error("agent: " + st.message());
        s.pcap.reset();
        exit_code_ = 1;
        shutdown("a file could not be recorded before it was read");
        return;
      }
    make_meters(s);
    read_file(s);
    return;
  }
  maybe_finish();
}

void AgentRuntime::finish_file(Source& s) {
  if (PacketSource::Stats st; s.pcap->stats(st)) s.metrics->packets.set(st.received);
  s.pipeline->drain();
  s.meter->flush();
  s.events->flush();
  finished_meters_ += s.meter->stats();
  add_packet_event_stats(finished_events_, s.events->stats());
  s.pipeline.reset();
  s.events.reset();
  s.meter.reset();
  s.pcap.reset();
  s.done = true;
}

void AgentRuntime::on_frame(Source& s, std::int64_t ts_ns, std::span<const std::byte> frame) {
  // Events are bounded per key and per kind inside the extractor, suppressions counted.
  s.pipeline->frame(s.pcap->linktype(), ts_ns, frame, decode_counters_);
}

// Records are encoded where they are made: the batch carries who and where (the collector
// takes agent and segment from the session), so no Record is filled or copied per flow or
// packet event.
void AgentRuntime::on_packet_event(const PacketEvent& ev, std::int64_t ts_ns) {
  start_record();
  encoder_.add(ts_ns, ev);
  end_record();
}

void AgentRuntime::on_flow(const FlowRecord& flow) {
  start_record();
  encoder_.add(flow.end_ns, flow);
  end_record();
}

void AgentRuntime::add(const Record& in) {
  start_record();
  encoder_.add(in);
  end_record();
}

void AgentRuntime::start_record() {
  if (encoder_.count() != 0) return;
  // A new batch: it is sealed when full, or by the timer at max_delay.
  batch_timer_.expires_after(config_.batch.max_delay);
  batch_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) seal_batch();
  });
}

void AgentRuntime::end_record() {
  ++records_;
  if (encoder_.count() >= config_.batch.max_records || encoder_.size() >= config_.batch.max_bytes)
    seal_batch();
}

void AgentRuntime::seal_batch() {
  if (encoder_.count() == 0) return;
  batch_timer_.cancel();
  const std::uint32_t records = encoder_.count();
  // The batch moves into the spool, and the encoder goes on in a buffer of one already sent.
  // Packed (batch.compression: lz4), the batch is packed into that buffer instead, and the
  // encoder keeps its own.
  std::vector<std::byte> batch = spool_->spare_buffer();
  if (config_.batch.compression != BatchOptions::Compression::kLz4 ||
      !wire::pack(encoder_.finish(next_seq_), batch))
    encoder_.finish_into(next_seq_, batch);
  if (auto s = spool_->append(next_seq_, std::move(batch)); !s) {
    // The disk refused (full, read-only): the batch cannot be kept, so it is counted as
    // dropped rather than silently lost.
    records_lost_ += records;
    log::error("agent: " + s.message() + "; batch of " + std::to_string(records) +
               " records dropped");
  } else {
    ++next_seq_;
    forwarder_->notify();
  }
  encoder_.begin();
}

void AgentRuntime::read_file(Source& s) {
  if (s.done || finishing_) return;
  Status err;
  const auto res = s.pcap->dispatch(
      kFileSlice,
      [this, &s](std::int64_t ts, std::span<const std::byte> frame, std::uint32_t) {
        on_frame(s, ts, frame);
      },
      err);
  s.pipeline->drain();
  if (res == PacketSource::ReadResult::kError) {
    log::error("agent: " + s.pcap->name() + ": " + err.message());
    exit_code_ = 1;
  }
  if (res == PacketSource::ReadResult::kEnd || res == PacketSource::ReadResult::kError) {
    log::info("agent: finished reading " + s.pcap->name());
    finish_file(s);
    asio::post(io_, [this] { start_next_file(); });
    return;
  }
  if (reading_ahead()) {
    if (paced_.empty()) {
      pace_timer_.expires_after(kPaceWait);
      pace_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec) resume_reads();
      });
    }
    paced_.push_back(&s);
    return;
  }
  asio::post(io_, [this, &s] { read_file(s); });
}

bool AgentRuntime::reading_ahead() const {
  return forwarder_->stats().connected && spool_->unread_bytes_in_memory() >= kReadAhead;
}

void AgentRuntime::resume_reads() {
  pace_timer_.cancel();
  for (Source* s : paced_) asio::post(io_, [this, s] { read_file(*s); });
  paced_.clear();
}

void AgentRuntime::wait_live(Source& s) {
  s.fd->async_wait(asio::posix::stream_descriptor::wait_read,
                   [this, &s](boost::system::error_code ec) {
                     if (!ec) read_live(s);
                   });
}

void AgentRuntime::read_live(Source& s) {
  if (finishing_) return;
  Status err;
  auto res = PacketSource::ReadResult::kPackets;
  // Drain what is there, a slice at a time, so timers and the forwarder get their turn.
  for (int i = 0; i < 16 && res == PacketSource::ReadResult::kPackets; ++i)
    res = s.pcap->dispatch(
        kLiveSlice,
        [this, &s](std::int64_t ts, std::span<const std::byte> frame, std::uint32_t) {
          on_frame(s, ts, frame);
        },
        err);
  s.pipeline->drain();
  if (res == PacketSource::ReadResult::kError) {
    log::error("agent: " + s.pcap->name() + ": " + err.message());
    shutdown("capture failed");
    exit_code_ = 1;
    return;
  }
  // Asio's epoll reactor is edge-triggered and a wait does not look at the descriptor before
  // it sleeps: frames left in the ring after a full budget would wait for the next frame to
  // arrive (for ever, at the end of a burst). Come back for them instead.
  if (res == PacketSource::ReadResult::kPackets)
    asio::post(io_, [this, &s] { read_live(s); });
  else
    wait_live(s);
}

void AgentRuntime::tick() {
  const std::int64_t now = wall_ns();
  std::erase_if(retired_pollers_,
                [now](const RetiredPoller& r) { return now - r.retired_ns > 2'000'000'000; });
  for (Source& s : sources_)
    if (!s.file) {
      s.meter->advance(now);
      s.events->advance(now);
    }
  for (const Threaded& t : threaded_)
    for (const auto& w : t.workers)
      if (auto why = w->failure()) {
        log::error("agent: " + w->name() + ": " + *why);
        exit_code_ = 1;
        shutdown("capture failed");
        return;
      }
  update_metrics();
  if (flow_decoder_) {
    flow_decoder_->expire(now);
    if (auto s = flow_decoder_->save_if_dirty(flow_state_file_); !s) log::error(s.message());
  }
  if (auto s = spool_->sync(); !s) log::error("spool: " + s.message());
  if (auto s = spool_->checkpoint(); !s) log::error("spool: " + s.message());
  tick_timer_.expires_after(std::chrono::seconds(1));
  tick_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
}

void AgentRuntime::update_metrics() {
  for (Source& s : sources_) {
    PacketSource::Stats st;
    if (s.pcap && s.pcap->stats(st)) {
      s.metrics->packets.set(st.received);
      s.metrics->kernel_dropped.set(st.kernel_dropped);
      s.metrics->interface_dropped.set(st.interface_dropped);
    }
  }
  FlowMeterStats meters = finished_meters_;
  PacketEventStats events = finished_events_;
  for (const Source& s : sources_)
    if (s.meter) {
      meters += s.meter->stats();
      add_packet_event_stats(events, s.events->stats());
    }
  DecodeCounters decode = decode_counters_;
  std::uint64_t records = records_, lost = records_lost_;
  for (Threaded& t : threaded_)
    for (std::size_t i = 0; i < t.workers.size(); ++i) {
      const CaptureWorker::Snapshot w = t.workers[i]->snapshot();
      if (w.pcap_ok) {
        t.metrics[i]->packets.set(w.pcap.received);
        t.metrics[i]->kernel_dropped.set(w.pcap.kernel_dropped);
        t.metrics[i]->interface_dropped.set(w.pcap.interface_dropped);
      }
      meters += w.meter;
      add_packet_event_stats(events, w.events);
      for (std::size_t k = 0; k < decode.by_result.size(); ++k)
        decode.by_result[k] += w.decode.by_result[k];
      records += w.records;
      lost += w.records_lost;
    }
  metrics_->update(decode, meters, spool_->stats(), forwarder_->stats(), records, lost);
  metrics_->update_packet_events(events);
  metrics_->update_snmp(snmp_poller_ ? &snmp_poller_->stats() : nullptr,
                        trap_receiver_ ? &trap_receiver_->stats() : nullptr);
  if (flow_metrics_) flow_metrics_->update(flow_listeners_, *flow_decoder_);
}

void AgentRuntime::maybe_finish() {
  if (!offline_) return;
  for (const Source& s : sources_)
    if (!s.done) return;
  if (!finishing_) {
    finishing_ = true;
    flush_meters();
    seal_batch();
    log::info("agent: all files read (" + std::to_string(records_) + " records); waiting for " +
              "the collector to ack " + std::to_string(spool_->last_seq() - spool_->acked_seq()) +
              " batch(es)");
  }
  if (forwarder_->drained()) {
    const ForwarderStats& f = forwarder_->stats();
    log::info("agent: every batch acked by the collector; done (sent " +
              std::to_string(f.batches_sent) + " batches: " + std::to_string(f.bytes_sent) +
              " bytes on the wire for " + std::to_string(f.batch_bytes) + " bytes of batches, " +
              std::to_string(spool_->stats().batches_read_from_disk) +
              " read back from the spool's files, " +
              std::to_string(spool_->stats().segments_reused) +
              " spool segments started in a reused file)");
    finished_reading_ = true;
    shutdown("done");
  }
}

void AgentRuntime::flush_meters() {
  for (Source& s : sources_) {
    if (!s.meter) continue;  // a file not yet read, or read and released
    s.pipeline->drain();
    s.meter->flush();
    s.events->flush();
  }
}

void AgentRuntime::set_reload_source(std::string config_file, bool files_from_command_line) {
  config_file_ = std::move(config_file);
  files_from_command_line_ = files_from_command_line;
}

void AgentRuntime::wait_hangup() {
  hangup_.async_wait([this](boost::system::error_code ec, int) {
    if (ec || finishing_) return;
    notifier_->reloading();
    const Status s = reload();
    metrics_->count_reload(s.is_ok());
    if (!s) log::error("agent: reload refused, the running configuration stays: " + s.message());
    notifier_->ready(s ? ready_status()
                       : "reload refused, the running configuration stays: " + s.message());
    wait_hangup();
  });
}

Status AgentRuntime::reload() {
  if (config_file_.empty()) {
    log::info("agent: SIGHUP: running on the embedded default config; nothing to reload");
    return Status::ok();
  }
  AgentConfig next;
  if (auto s = load_agent_config(config_file_, next); !s) return s;
  if (files_from_command_line_) {
    next.captures = config_.captures;  // -r FILE... replaced the configured sources
    next.flow_listeners = config_.flow_listeners;
  }
  if (const auto keys = restart_only_changes(config_, next); !keys.empty()) {
    std::string list;
    for (const auto& k : keys) list += (list.empty() ? "" : ", ") + k;
    return Status::error(config_file_ + ": changing " + list + " needs a restart");
  }
  // Prepare everything that can fail before changing anything.
  for (std::size_t i = 0; i < config_.captures.size(); ++i) {
    if (next.captures[i].bpf_filter == config_.captures[i].bpf_filter) continue;
    if (const int si = source_of_capture_[i]; si >= 0) {
      const Source& src = sources_[si];
      if (src.pcap) {
        if (auto s = src.pcap->check_filter(next.captures[i].bpf_filter); !s) return s;
      } else if (!src.done) {
        // A file not read yet is opened with the new filter when its turn comes.
        Status err;
        if (!PacketSource::open(next.captures[i], err)) return err;
      }
    } else {
      for (const Threaded& t : threaded_)
        if (t.capture == i)
          if (auto s = PacketSource::check_filter(
                  t.workers.front()->linktype(), config_.captures[i].snaplen,
                  config_.captures[i].interface, next.captures[i].bpf_filter);
              !s)
            return s;
    }
  }
  const bool new_poller = next.snmp.targets != config_.snmp.targets ||
                          next.snmp.max_in_flight != config_.snmp.max_in_flight;
  auto poller_config = std::make_unique<SnmpConfig>(next.snmp);
  std::unique_ptr<SnmpPoller> poller;
  if (new_poller && !next.snmp.targets.empty()) {
    if (!snmp_library_) snmp_library_ = std::make_unique<SnmpLibrary>("citywatch-agent");
    poller = std::make_unique<SnmpPoller>(io_, *poller_config, *this);
    if (auto s = poller->open(); !s) return s;
  }
  // Apply. Trap users first: the only step left that can fail (a bad protocol), and one
  // that leaves the old users in place when it does.
  auto trap_config = std::make_unique<SnmpConfig>(next.snmp);
  if (trap_receiver_) {
    if (auto s = trap_receiver_->reconfigure(*trap_config); !s) return s;
    trap_config_ = std::move(trap_config);
  }
  std::size_t filters = 0;
  for (std::size_t i = 0; i < config_.captures.size(); ++i) {
    if (next.captures[i].bpf_filter == config_.captures[i].bpf_filter) continue;
    if (const int si = source_of_capture_[i]; si >= 0) {
      // A file read already needs none; one not read yet opens with the new filter.
      if (sources_[si].pcap)
        if (auto s = sources_[si].pcap->set_filter(next.captures[i].bpf_filter); !s)
          log::error("agent: " + s.message());  // compiled a moment ago: only the kernel says no
    } else {
      for (Threaded& t : threaded_)
        if (t.capture == i)
          for (auto& w : t.workers) w->request_filter(next.captures[i].bpf_filter);
    }
    ++filters;
  }
  if (new_poller) {
    if (snmp_poller_) {
      snmp_poller_->stop();
      retired_pollers_.push_back({std::move(poller_config_), std::move(snmp_poller_), wall_ns()});
    }
    poller_config_ = std::move(poller_config);
    snmp_poller_ = std::move(poller);
    if (snmp_poller_) snmp_poller_->start();
  }
  const std::size_t targets = next.snmp.targets.size();
  config_ = std::move(next);
  log::info("agent: configuration reloaded from " + config_file_ + " (" + std::to_string(filters) +
            " capture filter(s) changed, " + std::to_string(targets) + " SNMP target(s)" +
            (new_poller ? ", polling restarted" : "") + ")");
  return Status::ok();
}

void AgentRuntime::shutdown(const char* why) {
  notifier_->stopping(std::string("stopping (") + why + ")");
  notifier_->stop_watchdog();
  if (!finishing_) {
    // Flows still in the meter are flushed into the spool: they go out at the next start.
    finishing_ = true;
    stop_workers();
    flush_meters();
    seal_batch();
  }
  if (auto s = spool_->sync(); !s) log::error("spool: " + s.message());
  if (auto s = spool_->checkpoint(); !s) log::error("spool: " + s.message());
  log::info(std::string("agent: stopping (") + why + ")");
  forwarder_->stop();
  for (auto& l : flow_listeners_) l->stop();
  if (flow_decoder_)
    if (auto s = flow_decoder_->save(flow_state_file_); !s) log::error(s.message());
  if (snmp_poller_) snmp_poller_->stop();
  if (trap_receiver_) trap_receiver_->stop();
  batch_timer_.cancel();
  tick_timer_.cancel();
  pace_timer_.cancel();
  signals_.cancel();
  hangup_.cancel();
  for (Source& s : sources_)
    if (s.fd) s.fd->cancel();
  io_.stop();
}

}  // namespace citywatch::agent
