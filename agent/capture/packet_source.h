// Packet source: a thin libpcap wrapper that reads frames from a live interface or a
// pcap/pcapng file, with nanosecond timestamps where libpcap and the driver provide them.
//
// open() is control path: it fails with a Status a person can act on (no such interface,
// permission, bad BPF filter, unreadable file). dispatch() is data path: it hands each frame
// to the callback as a span into libpcap's buffer, valid only during the call, and never
// throws. Live sources are non-blocking: selectable_fd() is for the agent's event loop to
// wait on before calling dispatch().
//
// Ownership: the capture loop owns the PacketSource (unique_ptr); closing it closes the pcap
// handle. Thread-safety: none; use one PacketSource from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "common/status.h"
#include "common/zeroed_array.h"

struct pcap;
struct pcap_pkthdr;

namespace citywatch::agent {

struct CaptureOptions {
  std::string interface;   // live capture when file is empty ("any" for all interfaces)
  std::string file;        // pcap or pcapng file; takes precedence over interface
  std::string bpf_filter;  // optional, applied to files too
  // Headers and a DNS message (docs/packet-capture.md, "Ring sizing").
  int snaplen = 4096;
  bool promiscuous = true;
  int buffer_bytes = 32 << 20;
  // Not immediate: libpcap uses TPACKET_V3 blocks, handed over when full or timeout_ms old,
  // packed by captured length; immediate mode wakes per packet and gives every packet a
  // snaplen-sized frame (TPACKET_V2).
  bool immediate = false;
  int timeout_ms = 100;
  // Live only: capture threads sharing the interface through a PACKET_FANOUT group (flows
  // hashed to threads, both directions of a connection to the same one), each with its own
  // ring, meter and extractor. 1: the agent's main thread reads the interface itself.
  int threads = 1;

  bool operator==(const CaptureOptions&) const = default;
};

class PacketSource {
 public:
  using FrameFn = std::function<void(std::int64_t ts_ns, std::span<const std::byte> frame,
                                     std::uint32_t wire_len)>;
  enum class ReadResult { kPackets, kNone /*nothing now*/, kEnd /*end of file*/, kError };
  struct Stats {
    std::uint64_t received = 0;
    std::uint64_t kernel_dropped = 0;
    std::uint64_t interface_dropped = 0;
  };

  // Opens options.file if set, else the live options.interface. On failure returns null and
  // sets err.
  static std::unique_ptr<PacketSource> open(const CaptureOptions& options, Status& err);

  ~PacketSource();
  PacketSource(const PacketSource&) = delete;
  PacketSource& operator=(const PacketSource&) = delete;

  int linktype() const { return linktype_; }
  // Readable when packets wait; -1 for files (always ready until kEnd).
  int selectable_fd() const { return fd_; }
  bool is_file() const { return is_file_; }

  // Delivers up to max_packets frames (<= 0: one buffer's worth) to fn. kPackets when any
  // were delivered; kNone when a live source has nothing now; kEnd at end of file; kError
  // with err set.
  ReadResult dispatch(int max_packets, const FrameFn& fn, Status& err);

  // pcap_stats for live sources, widened to 64 bits across 32-bit wraps; false for files or
  // on failure.
  bool stats(Stats& out) const;

  // True when a file is read through the fast path (classic pcap read in large chunks into
  // a buffer of the agent's, parsed here) rather than by libpcap (for tests and logs).
  bool mapped() const { return file_fd_ >= 0; }

  // Joins this live socket to a PACKET_FANOUT group hashing flows across its members
  // (PACKET_FANOUT_HASH, defragmenting first so fragments follow their flow). `group` 0
  // creates a group with an id no other socket uses and returns it; members join with it.
  Status join_fanout(std::uint16_t& group);

  // Compiles a BPF filter for a link type without any handle (a threaded capture's handles
  // belong to their threads); returns why it does not compile.
  static Status check_filter(int linktype, int snaplen, const std::string& name,
                             const std::string& filter);

  // SIGHUP: check_filter compiles a BPF filter against this source without installing it;
  // set_filter installs one ("" removes the filter). Each returns why it could not.
  Status check_filter(const std::string& filter);
  Status set_filter(const std::string& filter);

  // The interface or file name, for logs and metric labels.
  const std::string& name() const { return name_; }

 private:
  PacketSource(pcap* handle, std::string name, bool is_file);
  static void on_packet(unsigned char* user, const ::pcap_pkthdr* h, const unsigned char* bytes);
  bool try_map(const std::string& path);
  ReadResult dispatch_mapped(int max_packets, const FrameFn& fn, Status& err);

  // A 32-bit pcap_stats counter widened to 64 bits: each read adds the (wrapping) difference.
  struct Widened {
    std::uint32_t last = 0;
    std::uint64_t total = 0;
    void update(std::uint32_t now) {
      total += static_cast<std::uint32_t>(now - last);
      last = now;
    }
  };

  pcap* handle_;
  std::string name_;
  bool is_file_;
  int linktype_ = 0;
  int fd_ = -1;
  std::int64_t ts_scale_ = 1000;  // tv_usec units to ns: 1 when nanosecond precision
  const FrameFn* fn_ = nullptr;   // set only during dispatch()
  // Fast path (classic pcap, no filter): the file read in chunks into buf_ (huge pages,
  // reused), records parsed in place; [buf_pos_, buf_end_) is read but not yet parsed.
  bool refill(std::size_t need, Status& err);
  int file_fd_ = -1;
  std::uint64_t file_size_ = 0;
  std::uint64_t file_off_ = 0;  // next byte to read from the file
  ZeroedArray<std::uint8_t> buf_;
  std::size_t buf_pos_ = 0;
  std::size_t buf_end_ = 0;
  bool map_swapped_ = false;
  std::uint32_t map_max_caplen_ = 0;
  mutable Widened recv_, drop_, ifdrop_;
};

}  // namespace citywatch::agent
