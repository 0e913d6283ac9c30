// JsonlSink: appends one JSON object per alert state change (firing, resolved) to a file, for
// the SIEM to tail. reopen() (on SIGHUP) starts a new file after log rotation.
//
// Each line goes out in write(2) calls of its own, never through a stdio buffer, so a full
// disk costs the lines it refuses and nothing after them: a line the disk took only part of
// is cut off again (ftruncate back to where it began) or, if that fails too, ended with a
// newline before the next line, so every later line still parses. Lines that could not be
// written are counted in citywatch_alert_sink_{failures,dropped}_total{sink="jsonl"}, and the
// log says once when writing stops and once when it resumes.
//
// Thread-safety: io thread only. Owned by collector/app.
#pragma once

#include <cstddef>
#include <string>

#include "collector/alerts/alert_metrics.h"
#include "collector/alerts/alert_sink.h"
#include "common/status.h"

namespace citywatch::collector {

class JsonlSink : public AlertSink {
 public:
  JsonlSink(std::string path, AlertMetrics& metrics);
  ~JsonlSink() override;
  JsonlSink(const JsonlSink&) = delete;
  JsonlSink& operator=(const JsonlSink&) = delete;

  Status open();
  void reopen();
  void deliver(const Alert& alert, AlertEvent event, std::int64_t wall_ns) override;
  bool wants_updates() const override { return true; }

 private:
  // Writes all of data or returns how much it wrote before an error (errno kept).
  std::size_t write_all(const char* data, std::size_t size);
  void failed(const char* what);

  std::string path_;
  SinkCounters counters_;
  int fd_ = -1;
  bool torn_ = false;     // the file ends in part of a line: a newline goes first
  bool failing_ = false;  // the last write failed (logged once)
};

}  // namespace citywatch::collector
