// AlertSink: where alerts go (Alertmanager, a JSON lines file, syslog). The lifecycle calls
// deliver() for every state change and, while an alert fires, for every resend.
//
// deliver() must not block: a sink that talks to the network queues (bounded) and sends on
// the io_context. Ownership: sinks are built in collector/app and outlive the lifecycle.
//
// Thread-safety: called on the collector's io thread only.
#pragma once

#include <cstdint>

#include "collector/alerts/alert.h"

namespace citywatch::collector {

class AlertSink {
 public:
  virtual ~AlertSink() = default;
  virtual void deliver(const Alert& alert, AlertEvent event, std::int64_t wall_ns) = 0;
  // Only sinks that want resends (Alertmanager, to keep endsAt ahead) get kResend.
  virtual bool wants_resend() const { return false; }
  // Only sinks that keep a record of the evidence (JSON lines, syslog) get kUpdate.
  virtual bool wants_updates() const { return false; }
};

}  // namespace citywatch::collector
