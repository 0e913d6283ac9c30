// TrapReceiver: listens for SNMP notifications (v1 and v2c traps, v3 traps and informs) and
// hands each to the agent's RecordSink as an SnmpTrap record (docs/snmp.md).
//
// The socket is a net-snmp server transport driven by the agent's Boost.Asio io_context;
// informs are acknowledged. linkDown, linkUp, coldStart, warmStart and authenticationFailure
// (RFC 3418 section 2, snmpTraps) are classified, with ifIndex/ifAdminStatus/ifOperStatus
// pulled out of link traps; any other notification is kept as a generic trap with its OID
// and first varbinds. v1/v2c notifications whose community is not configured are dropped and
// counted. SNMPv3 notifications are accepted only from a configured trap user, from the
// engine ID configured for it, at (at least) the security level its configuration implies
// (auth and priv protocols set: authPriv), with a correct digest: net-snmp's USM hands even
// a notification that failed authentication to the callback (so snmptrapd can report it),
// and checks no level at all, so both are enforced here, as snmptrapd does. Every refusal is
// counted by reason; the reasons USM decides before the callback (unknown user or engine,
// decryption, time window) are taken from its statistics around each read, with the user
// name read from the datagram's own USM header to tell an unknown user from a known user at
// the wrong engine. Communities and keys are never logged.
//
// Thread-safety: none; everything runs on the io_context thread, like every net-snmp call.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>
#include <memory>
#include <span>
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
    std::uint64_t datagrams = 0;  // read from the socket
    std::uint64_t accepted = 0;   // handed to the sink as SnmpTrap records
    std::uint64_t informs = 0;
    std::uint64_t bad_community = 0;
    std::uint64_t malformed = 0;  // not BER, no snmpTrapOID, or not a notification
    // SNMPv3 refusals (RFC 3414 section 3.2 and the configured security level).
    std::uint64_t unknown_user = 0;
    std::uint64_t wrong_engine = 0;  // a configured user, from another engine ID
    std::uint64_t bad_auth = 0;      // wrong digest: wrong password or forged
    std::uint64_t level_too_low = 0;
    std::uint64_t decryption_error = 0;
    std::uint64_t not_in_time_window = 0;
    std::uint64_t kernel_dropped = 0;  // SO_RXQ_OVFL: the socket buffer was full
  };

  // The user name and authoritative engine ID of an SNMPv3 message (RFC 3412 section 6,
  // RFC 3414 section 2.4), read with bounds checks from the raw datagram; false if it is not
  // one. Public for the unit tests and the fuzzer.
  static bool peek_usm_header(std::span<const std::uint8_t> datagram, std::string& user,
                              std::string& engine_id);

  TrapReceiver(boost::asio::io_context& io, const SnmpConfig& config, RecordSink& sink);
  ~TrapReceiver();
  TrapReceiver(const TrapReceiver&) = delete;
  TrapReceiver& operator=(const TrapReceiver&) = delete;

  // Binds the listener (needs SnmpLibrary alive) and registers the v3 users.
  Status open();
  void start();
  void stop();
  // SIGHUP: swaps in new users and communities (the listen address stays). Users no longer
  // configured, or configured differently, are removed from net-snmp's USM first. `config`
  // must outlive the receiver or the next reconfigure.
  Status reconfigure(const SnmpConfig& config);
  std::uint16_t port() const { return port_; }
  const Stats& stats() const { return stats_; }

  // Fills `out` from a notification PDU; false if it is not one. Public for the unit tests.
  static bool decode(const snmp_pdu* pdu, SnmpTrap& out);

 private:
  static int on_pdu(int op, snmp_session* session, int reqid, snmp_pdu* pdu, void* magic);
  void handle(snmp_pdu* pdu);
  // True if a v3 PDU's user, engine and security level are what is configured; counts why not.
  bool v3_allowed(const snmp_pdu* pdu);
  void read_one();
  void learn_names();  // configured target names by address, for the trap's `target`
  void wait_readable();

  boost::asio::io_context& io_;
  const SnmpConfig* config_;
  RecordSink& sink_;
  std::vector<std::pair<IpAddr, std::string>> names_;  // configured targets by address
  std::unique_ptr<TrapReceiverFdSet> fds_;
  void* sess_ = nullptr;
  int fd_ = -1;
  std::unique_ptr<boost::asio::posix::stream_descriptor> sock_;
  std::uint16_t port_ = 0;
  Record record_;
  Stats stats_;
  std::vector<std::uint8_t> peek_;  // the datagram about to be read, for its USM header
  std::string peek_user_, peek_engine_;
  std::uint32_t ovfl_last_ = 0;
  bool stopping_ = false;
};

}  // namespace citywatch::agent
