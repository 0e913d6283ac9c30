// TrapReceiver: listens for SNMP notifications (v1 and v2c traps, v3 traps and informs) and
// hands each to the agent's RecordSink as an SnmpTrap record (docs/snmp.md).
//
// The socket is a net-snmp server transport driven by the agent's Boost.Asio io_context;
// informs are acknowledged. linkDown, linkUp, coldStart, warmStart and authenticationFailure
// (RFC 3418 section 2, snmpTraps) are classified, with ifIndex/ifAdminStatus/ifOperStatus
// pulled out of link traps; any other notification is kept as a generic trap with its OID
// and first varbinds. v1/v2c notifications whose community is not configured, and v3 ones
// from unknown users (net-snmp's USM refuses them), are dropped and counted. Communities
// and keys are never logged.
//
// Thread-safety: none; everything runs on the io_context thread, like every net-snmp call.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/snmp/snmp_config.h"
#include "common/record.h"
#include "common/record_sink.h"
#include "common/status.h"

struct snmp_pdu;
struct snmp_session;

namespace citywatch::agent {

struct TrapReceiverFdSet;

class TrapReceiver {
 public:
  struct Stats {
    std::uint64_t received = 0;
    std::uint64_t informs = 0;
    std::uint64_t bad_community = 0;
    std::uint64_t malformed = 0;  // no snmpTrapOID, or not a notification
  };

  TrapReceiver(boost::asio::io_context& io, const SnmpConfig& config, RecordSink& sink);
  ~TrapReceiver();
  TrapReceiver(const TrapReceiver&) = delete;
  TrapReceiver& operator=(const TrapReceiver&) = delete;

  // Binds the listener (needs SnmpLibrary alive) and registers the v3 users.
  Status open();
  void start();
  void stop();
  std::uint16_t port() const { return port_; }
  const Stats& stats() const { return stats_; }

  // Fills `out` from a notification PDU; false if it is not one. Public for the unit tests.
  static bool decode(const snmp_pdu* pdu, SnmpTrap& out);

 private:
  static int on_pdu(int op, snmp_session* session, int reqid, snmp_pdu* pdu, void* magic);
  void handle(snmp_pdu* pdu);
  void wait_readable();

  boost::asio::io_context& io_;
  const SnmpConfig& config_;
  RecordSink& sink_;
  std::vector<std::pair<IpAddr, std::string>> names_;  // configured targets by address
  std::unique_ptr<TrapReceiverFdSet> fds_;
  void* sess_ = nullptr;
  int fd_ = -1;
  std::unique_ptr<boost::asio::posix::stream_descriptor> sock_;
  std::uint16_t port_ = 0;
  Record record_;
  Stats stats_;
  bool stopping_ = false;
};

}  // namespace citywatch::agent
