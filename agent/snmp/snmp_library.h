// SnmpLibrary: net-snmp's process-wide set-up, and the session helpers the poller and the
// trap receiver share.
//
// net-snmp keeps global state (USM users, engine times, transports). SnmpLibrary owns it for
// the agent's lifetime: it is created once, by the runtime, before any session, with MIB
// loading, snmp.conf reading and persistent-state files disabled (numeric OIDs only; the
// agent writes nothing under /var/lib/snmp), and shut down when destroyed.
//
// Thread-safety: net-snmp is not thread-safe; everything here runs on the agent's io thread.
#pragma once

#include <string>

#include "agent/snmp/snmp_config.h"

struct snmp_session;
struct snmp_pdu;

namespace citywatch::agent {

using SnmpCallback = int (*)(int op, snmp_session* session, int reqid, snmp_pdu* pdu, void* magic);

class SnmpLibrary {
 public:
  explicit SnmpLibrary(const char* app_name);
  ~SnmpLibrary();
  SnmpLibrary(const SnmpLibrary&) = delete;
  SnmpLibrary& operator=(const SnmpLibrary&) = delete;
};

// Opens a client session (single-session API) to a target: v2c community or v3 USM keys
// derived from the passwords (RFC 3414 section 2.6). v3 sessions skip net-snmp's blocking
// engine-ID probe; the poller discovers the engine asynchronously. nullptr and `err` set
// (never containing a secret) on failure.
void* open_client_session(const SnmpTarget& target, SnmpCallback callback, void* magic,
                          std::string& err);

// The empty USM user that an engine-ID discovery request is sent as (RFC 3414 section 4).
void ensure_probe_user();
// Copies the engine ID of a discovery Report into the session; false if there is none.
bool learn_engine_id(snmp_session* session, snmp_pdu* report);
void forget_engine_id(snmp_session* session);

// Registers a USM user for receiving v3 notifications: with engine_id set, traps from that
// engine; without, informs (sent to this agent's own engine ID). False on a bad protocol.
bool add_trap_user(const SnmpV3Credentials& user, std::string& err);
// Removes a user registered by add_trap_user (SIGHUP: the user is gone or its keys changed).
void remove_trap_user(const SnmpV3Credentials& user);

}  // namespace citywatch::agent
