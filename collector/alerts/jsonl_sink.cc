#include "collector/alerts/jsonl_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "collector/alerts/alert_json.h"
#include "common/log.h"

namespace citywatch::collector {

JsonlSink::JsonlSink(std::string path, AlertMetrics& metrics)
    : path_(std::move(path)), counters_(metrics.sink("jsonl")) {}

JsonlSink::~JsonlSink() {
  if (fd_ >= 0) ::close(fd_);
}

Status JsonlSink::open() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (fd_ < 0) return Status::error(path_ + ": cannot open alert log: " + std::strerror(errno));
  // A file that ends in part of a line (an earlier run met a full disk) gets its newline
  // before the first new line.
  torn_ = false;
  if (const int rd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC); rd >= 0) {
    char last = '\n';
    const off_t size = ::lseek(rd, 0, SEEK_END);
    torn_ = size > 0 && ::pread(rd, &last, 1, size - 1) == 1 && last != '\n';
    ::close(rd);
  }
  return Status::ok();
}

void JsonlSink::reopen() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (auto s = open(); !s) log::error(s.message());
}

std::size_t JsonlSink::write_all(const char* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd_, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  return done;
}

void JsonlSink::failed(const char* what) {
  counters_.failures->Increment();
  counters_.dropped->Increment();
  if (!failing_)
    log::error(path_ + ": cannot " + what + " the alert log (" + std::strerror(errno) +
               "): alert lines are dropped and counted until it can");
  failing_ = true;
}

void JsonlSink::deliver(const Alert& alert, AlertEvent event, std::int64_t wall_ns) {
  if (event == AlertEvent::kResend) return;
  if (fd_ < 0) {
    counters_.dropped->Increment();
    return;
  }
  if (torn_) {
    if (write_all("\n", 1) != 1) return failed("write to");
    torn_ = false;
  }
  const std::string line = alert_jsonl(alert, event, wall_ns) + "\n";
  const off_t start = ::lseek(fd_, 0, SEEK_END);
  const std::size_t written = write_all(line.data(), line.size());
  if (written != line.size()) {
    const int err = errno;
    // Take back the part of the line the disk accepted; failing that, end it next time.
    if (written > 0 && (start < 0 || ::ftruncate(fd_, start) != 0)) torn_ = true;
    errno = err;
    return failed("write to");
  }
  if (failing_) log::info(path_ + ": writing the alert log again");
  failing_ = false;
  counters_.sent->Increment();
}

}  // namespace citywatch::collector
