// JsonlSink: appends one JSON object per alert state change (firing, resolved) to a file, for
// the SIEM to tail. reopen() (on SIGHUP) starts a new file after log rotation.
//
// Thread-safety: io thread only. Owned by collector/app.
#pragma once

#include <cstdio>
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
  std::string path_;
  SinkCounters counters_;
  std::FILE* file_ = nullptr;
};

}  // namespace citywatch::collector
