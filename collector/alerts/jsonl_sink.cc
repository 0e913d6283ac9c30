#include "collector/alerts/jsonl_sink.h"

#include <cerrno>
#include <cstring>

#include "collector/alerts/alert_json.h"
#include "common/log.h"

namespace citywatch::collector {

JsonlSink::JsonlSink(std::string path, AlertMetrics& metrics)
    : path_(std::move(path)), counters_(metrics.sink("jsonl")) {}

JsonlSink::~JsonlSink() {
  if (file_) std::fclose(file_);
}

Status JsonlSink::open() {
  file_ = std::fopen(path_.c_str(), "a");
  if (!file_) return Status::error(path_ + ": cannot open alert log: " + std::strerror(errno));
  return Status::ok();
}

void JsonlSink::reopen() {
  if (file_) std::fclose(file_);
  file_ = nullptr;
  if (auto s = open(); !s) log::error(s.message());
}

void JsonlSink::deliver(const Alert& alert, AlertEvent event, std::int64_t wall_ns) {
  if (event == AlertEvent::kResend) return;
  if (!file_) {
    counters_.dropped->Increment();
    return;
  }
  const std::string line = alert_jsonl(alert, event, wall_ns) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    counters_.failures->Increment();
    counters_.dropped->Increment();
    return;
  }
  counters_.sent->Increment();
}

}  // namespace citywatch::collector
