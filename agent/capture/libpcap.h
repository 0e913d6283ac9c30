// libpcap, loaded when first needed (dlopen) instead of when the agent starts.
//
// On Debian 12 libpcap brings eight libraries with it (libdbus, libsystemd, libgcrypt,
// libgpg-error, liblzma, liblz4, libcap, and their relocations): mapping them costs every
// start about 3 ms of CPU and 70 page faults (docs/packet-capture.md). An agent that only
// receives flows or polls SNMP, or reads classic pcap files without a filter (the fast path
// in packet_source.cc), never needs them; live capture, pcapng files and BPF filters load
// the library on first use.
//
// Thread-safety: libpcap() may be called from any thread; the table it returns is immutable.
#pragma once

#include <pcap/pcap.h>

#include <string>

namespace citywatch::agent {

// The functions the agent calls, by their libpcap names.
struct Libpcap {
  decltype(&::pcap_activate) activate;
  decltype(&::pcap_close) close;
  decltype(&::pcap_compile) compile;
  decltype(&::pcap_create) create;
  decltype(&::pcap_datalink) datalink;
  decltype(&::pcap_dispatch) dispatch;
  decltype(&::pcap_freecode) freecode;
  decltype(&::pcap_get_selectable_fd) get_selectable_fd;
  decltype(&::pcap_get_tstamp_precision) get_tstamp_precision;
  decltype(&::pcap_geterr) geterr;
  decltype(&::pcap_offline_filter) offline_filter;
  decltype(&::pcap_open_dead) open_dead;
  decltype(&::pcap_open_offline_with_tstamp_precision) open_offline_with_tstamp_precision;
  decltype(&::pcap_set_buffer_size) set_buffer_size;
  decltype(&::pcap_set_immediate_mode) set_immediate_mode;
  decltype(&::pcap_set_promisc) set_promisc;
  decltype(&::pcap_set_snaplen) set_snaplen;
  decltype(&::pcap_set_timeout) set_timeout;
  decltype(&::pcap_set_tstamp_precision) set_tstamp_precision;
  decltype(&::pcap_setfilter) setfilter;
  decltype(&::pcap_setnonblock) setnonblock;
  decltype(&::pcap_stats) stats;
  decltype(&::pcap_statustostr) statustostr;
};

// The library, loaded on the first call. Null when it cannot be loaded or lacks a function,
// with `err` saying which (the first failure is remembered: later calls say the same).
const Libpcap* libpcap(std::string& err);

}  // namespace citywatch::agent
