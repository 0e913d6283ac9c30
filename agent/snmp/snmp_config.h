// SnmpConfig: the agent's `snmp:` section (docs/configuration.md, docs/snmp.md): the devices
// to poll, how often and with which credentials, and the trap/inform listener.
//
// Secrets (communities, passwords) live only here and in net-snmp's session structures:
// nothing that logs or exports metrics reads them. Addresses are IP literals, so opening a
// session never waits on DNS.
//
// Thread-safety: a plain value, built once at start-up.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/config_reader.h"

namespace citywatch::agent {

// SNMPv3 USM credentials (RFC 3414), with the RFC 7860 SHA-2 and RFC 3826 AES options.
struct SnmpV3Credentials {
  std::string user;
  std::string auth_protocol = "none";  // none | SHA | SHA-256 | SHA-512
  std::string auth_password;
  std::string priv_protocol = "none";  // none | AES | AES-256
  std::string priv_password;
  std::string context;
  std::string engine_id;  // hex; traps only: the sender's authoritative engine ID

  bool operator==(const SnmpV3Credentials&) const = default;
};

struct SnmpTarget {
  std::string name;     // the `device` label; defaults to the address
  std::string address;  // IPv4 or IPv6 literal
  std::uint16_t port = 161;
  int version = 2;  // 2 (v2c) or 3
  std::string community = "public";
  SnmpV3Credentials v3;
  std::chrono::nanoseconds interval = std::chrono::seconds(60);
  std::chrono::nanoseconds timeout = std::chrono::seconds(2);
  int retries = 2;  // resends after the first request; a poll fails after 1 + retries timeouts
  int bulk_repetitions = 25;            // config key max_repetitions (net-snmp #defines that name)
  std::uint32_t max_interfaces = 1024;  // rows beyond this are dropped and counted
  std::string site;

  bool operator==(const SnmpTarget&) const = default;
};

struct SnmpConfig {
  std::vector<SnmpTarget> targets;
  std::uint32_t max_in_flight = 256;  // polls running at once
  // Trap and inform listener; empty host: no listener.
  std::string trap_host;
  std::uint16_t trap_port = 0;
  std::vector<std::string> trap_communities;  // empty: any v1/v2c community is accepted
  std::vector<SnmpV3Credentials> trap_users;

  bool enabled() const { return !targets.empty() || !trap_host.empty(); }

  bool operator==(const SnmpConfig&) const = default;
};

// Reads the `snmp:` mapping; errors are recorded in the map's reader (file:line: key).
void read_snmp_config(ConfigMap& snmp, SnmpConfig& out);

}  // namespace citywatch::agent
