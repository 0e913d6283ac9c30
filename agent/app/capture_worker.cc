#include "agent/app/capture_worker.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "common/log.h"

namespace citywatch::agent {
namespace {

constexpr int kLiveSlice = 1024;  // packets per read, as on the main thread
constexpr auto kTick = std::chrono::seconds(1);

std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

CaptureWorker::CaptureWorker(std::unique_ptr<PacketSource> source, CaptureWorkerOptions options,
                             std::function<void()> ready)
    : source_(std::move(source)),
      options_(std::move(options)),
      ready_(std::move(ready)),
      linktype_(source_->linktype()),
      meter_(options_.meter, [this](const FlowRecord& f) { emit_flow(f); }),
      events_(options_.events,
              [this](const PacketEvent& e, std::int64_t ts) { emit_event(e, ts); }),
      pipeline_(meter_, events_, /*packet_clock=*/false) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  encoder_.begin();
}

CaptureWorker::~CaptureWorker() {
  stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void CaptureWorker::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void CaptureWorker::stop() {
  stopping_.store(true);
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

std::vector<CaptureWorker::Batch> CaptureWorker::take_batches() {
  std::lock_guard lock(mu_);
  std::vector<Batch> out(std::make_move_iterator(ready_batches_.begin()),
                         std::make_move_iterator(ready_batches_.end()));
  ready_batches_.clear();
  pending_bytes_ = 0;
  return out;
}

CaptureWorker::Snapshot CaptureWorker::snapshot() const {
  std::lock_guard lock(mu_);
  Snapshot s = published_;
  s.records_lost = records_lost_;
  return s;
}

void CaptureWorker::request_filter(std::string filter) {
  {
    std::lock_guard lock(mu_);
    pending_filter_ = std::move(filter);
  }
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

std::optional<std::string> CaptureWorker::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

void CaptureWorker::run() {
  pollfd fds[2] = {{source_->selectable_fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  auto last_tick = std::chrono::steady_clock::now();
  while (!stopping_.load()) {
    std::optional<std::string> filter;
    {
      std::lock_guard lock(mu_);
      filter.swap(pending_filter_);
    }
    if (filter) {
      // Compiled by the main thread a moment ago: only the kernel can refuse it now.
      if (auto s = source_->set_filter(*filter); !s) {
        std::lock_guard lock(mu_);
        failure_ = s.message();
        break;
      }
      // From here on the kernel filters this thread's socket: the reload's own log line comes
      // before the threads get to it.
      log::info("capture: " + options_.name + ": filter " +
                (filter->empty() ? std::string("removed") : "\"" + *filter + "\" installed"));
    }
    auto now = std::chrono::steady_clock::now();
    auto wait = kTick - (now - last_tick);
    if (encoder_.count() != 0)
      wait = std::min<std::chrono::steady_clock::duration>(
          wait, options_.batch_delay - (now - batch_started_));
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wait).count();
    if (::poll(fds, 2, static_cast<int>(std::clamp<long long>(ms + 1, 0, 1000))) < 0 &&
        errno != EINTR) {
      std::lock_guard lock(mu_);
      failure_ = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (fds[1].revents != 0) {
      std::uint64_t n;
      (void)!::read(wake_fd_, &n, sizeof n);
    }
    read_once();
    now = std::chrono::steady_clock::now();
    if (now - last_tick >= kTick) {
      last_tick = now;
      const std::int64_t wall = wall_ns();
      meter_.advance(wall);
      events_.advance(wall);
      publish();
    }
    if (encoder_.count() != 0 && now - batch_started_ >= options_.batch_delay) seal();
  }
  // Everything the thread holds goes to the main thread before it ends: what the ring has
  // handed over, then the pipeline, the meter's flows and the extractor's attempts.
  if (!failure()) read_once();
  pipeline_.drain();
  meter_.flush();
  events_.flush();
  seal();
  publish();
}

void CaptureWorker::read_once() {
  static_assert(kLiveSlice > 0);
  const auto fn = [this](std::int64_t ts, std::span<const std::byte> frame, std::uint32_t) {
    pipeline_.frame(linktype_, ts, frame, decode_);
  };
  Status err;
  auto res = PacketSource::ReadResult::kPackets;
  // Drain what the ring holds, a slice at a time, as the main thread does for its sources.
  for (int i = 0; i < 16 && res == PacketSource::ReadResult::kPackets; ++i)
    res = source_->dispatch(kLiveSlice, fn, err);
  pipeline_.drain();
  if (res == PacketSource::ReadResult::kError) {
    std::lock_guard lock(mu_);
    failure_ = err.message();
    stopping_.store(true);
  }
}

void CaptureWorker::publish() {
  Snapshot s;
  s.pcap_ok = source_->stats(s.pcap);
  s.meter = meter_.stats();
  s.events = events_.stats();
  s.decode = decode_;
  s.records = records_;
  std::lock_guard lock(mu_);
  published_ = s;
}

void CaptureWorker::emit_flow(const FlowRecord& f) {
  if (encoder_.count() == 0) batch_started_ = std::chrono::steady_clock::now();
  encoder_.add(f.end_ns, f);
  after_record();
}

void CaptureWorker::emit_event(const PacketEvent& e, std::int64_t ts) {
  if (encoder_.count() == 0) batch_started_ = std::chrono::steady_clock::now();
  encoder_.add(ts, e);
  after_record();
}

void CaptureWorker::after_record() {
  ++records_;
  if (encoder_.count() >= options_.batch_records || encoder_.size() >= options_.batch_bytes) seal();
}

void CaptureWorker::seal() {
  if (encoder_.count() == 0) return;
  const auto payload = encoder_.finish(0);
  const std::uint32_t records = encoder_.count();
  bool handed = false;
  {
    std::lock_guard lock(mu_);
    if (pending_bytes_ + payload.size() > options_.max_pending_bytes) {
      records_lost_ += records;  // the main thread is not keeping up: counted, not queued
    } else {
      pending_bytes_ += payload.size();
      ready_batches_.push_back({std::vector<std::byte>(payload.begin(), payload.end()), records});
      handed = true;
    }
  }
  encoder_.begin();
  if (handed && ready_) ready_();
}

}  // namespace citywatch::agent
