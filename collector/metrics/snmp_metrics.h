// SnmpMetrics: turns the SNMP records agents send (InterfaceSample, DeviceStatus, SnmpTrap)
// into Prometheus metrics, named like node_exporter's network metrics where they overlap
// (citywatch_interface_receive_bytes_total ~ node_network_receive_bytes_total). docs/metrics.md
// lists them; docs/snmp.md says where each value comes from.
//
// Interface counters are exported as counters holding the agent's monotonic 64-bit values
// (equal to the device's HC counters; extended across 32-bit wraps; restarting after a
// reboot, which Prometheus reads as a counter reset, so a reboot is never a spike). That is
// why this is a prometheus::Collectable serving the latest samples, not a set of
// incremented prometheus-cpp counters.
//
// Labels are bounded: device is a configured target name (or a trap sender's address),
// ifindex/ifname/ifalias come from a device's finite interface table, and the number of
// series kept is capped (max_series); samples beyond the cap are dropped and counted in
// citywatch_snmp_series_dropped_total.
//
// Thread-safety: consume() runs on the ingest thread, Collect() on the exposer's threads;
// one mutex guards the state.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "collector/records/record_consumer.h"
#include "common/record.h"

namespace citywatch::collector {

class SnmpMetrics : public RecordConsumer, public prometheus::Collectable {
 public:
  explicit SnmpMetrics(std::size_t max_series = 200000);

  void consume(const RecordBatch& batch) override;
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  using DevKey = std::tuple<std::string, std::string>;                // segment, device
  using IfKey = std::tuple<std::string, std::string, std::uint32_t>;  // + ifIndex
  using TrapKey = std::tuple<std::string, std::string, std::string, std::string>;
  struct Interface {
    InterfaceSample last;
    std::uint64_t oper_changes = 0;
  };
  struct Device {
    DeviceStatus last;
    bool polled = false;
    std::array<std::uint64_t, kSnmpCauses> polls{};  // by SnmpCause
    std::uint64_t downs = 0;
    std::uint64_t ups = 0;
    std::uint64_t reboots = 0;
    double last_change_s = 0;
    double last_poll_s = 0;
  };

  void on_interface(const RecordRef& r, const InterfaceSample& s);
  void on_device(const RecordRef& r, const DeviceStatus& d);
  void on_trap(const RecordRef& r, const SnmpTrap& t);
  bool room() const;
  std::vector<prometheus::ClientMetric::Label> interface_labels(const IfKey& k,
                                                                const InterfaceSample& s) const;

  const std::size_t max_series_;
  mutable std::mutex mu_;
  std::map<IfKey, Interface> interfaces_;
  std::map<DevKey, Device> devices_;
  std::map<TrapKey, std::uint64_t> traps_;
  std::uint64_t dropped_ = 0;
};

}  // namespace citywatch::collector
