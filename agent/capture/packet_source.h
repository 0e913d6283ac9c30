// Packet source: a thin libpcap wrapper that reads frames from a live interface or a
// pcap/pcapng file, with nanosecond timestamps where libpcap and the driver provide them.
//
// open() is control path: it fails with a Status a person can act on (no such interface,
// permission, bad BPF filter, unreadable file). dispatch() is data path: it hands each frame
// to the callback as a span into libpcap's buffer (or the agent's, for a classic pcap file
// without a filter), valid only during the call, and never throws. The callback is a
// template parameter, not a std::function: a file's frames reach it from a loop it is
// inlined into, the others through libpcap's one callback pointer. Live sources are
// non-blocking: selectable_fd() is for the agent's event loop to wait on before calling
// dispatch().
//
// libpcap itself is loaded on first use (libpcap.h): a classic pcap file read without a
// filter does not load it.
//
// Ownership: the capture loop owns the PacketSource (unique_ptr); closing it closes the pcap
// handle. Thread-safety: none; use one PacketSource from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <type_traits>

#include "common/status.h"
#include "common/zeroed_array.h"

struct pcap;
struct bpf_program;
struct pcap_pkthdr;

namespace citywatch::agent {

struct Libpcap;

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
  // Files: read classic pcap files with O_DIRECT where the file system allows it (the device
  // copies the bytes, not the CPU; docs/packet-capture.md). False: through the page cache.
  bool file_direct_io = true;

  bool operator==(const CaptureOptions&) const = default;
};

class PacketSource {
 public:
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

  // Delivers up to max_packets frames (<= 0: one buffer's worth) to
  // fn(std::int64_t ts_ns, std::span<const std::byte> frame, std::uint32_t wire_len).
  // kPackets when any were read (a file with a filter: read, and maybe none passed it); kNone
  // when a live source has nothing now; kEnd at end of file; kError with err set. A file
  // reads at most max_packets records per call whatever its filter passes, so a selective
  // filter over a large file cannot hold the caller's event loop for the whole file.
  template <class Fn>
  ReadResult dispatch(int max_packets, Fn&& fn, Status& err) {
    using F = std::remove_reference_t<Fn>;
    if (file_fd_ >= 0) return dispatch_file(max_packets, fn, err);
    PcapCall<F> call{{this, file_filter_.get(), 0}, &fn};
    return dispatch_pcap(max_packets, &on_pcap_packet<F>, call, err);
  }

  // pcap_stats for live sources, widened to 64 bits across 32-bit wraps; for files, the
  // packets read so far (nothing is dropped). False on failure.
  bool stats(Stats& out) const;

  // True when a file is read through the fast path (classic pcap read in large chunks into
  // a buffer of the agent's, parsed here) rather than by libpcap (for tests and logs).
  bool mapped() const { return file_fd_ >= 0; }
  // True while the fast path reads the file with O_DIRECT (for tests and logs).
  bool direct() const { return direct_fd_ >= 0; }

  // Joins this live socket to a PACKET_FANOUT group hashing flows across its members
  // (PACKET_FANOUT_HASH, defragmenting first so fragments follow their flow). `group` 0
  // creates a group with an id no other socket uses and returns it; members join with it.
  Status join_fanout(std::uint16_t& group);

  // Compiles a BPF filter for a link type without any handle (a threaded capture's handles
  // belong to their threads); returns why it does not compile.
  static Status check_filter(int linktype, int snaplen, const std::string& name,
                             const std::string& filter);

  // SIGHUP: check_filter compiles a BPF filter against this source without installing it;
  // set_filter installs one ("" removes the filter). Each returns why it could not; a file
  // read by the fast path (mapped()) keeps the filter it was opened with.
  Status check_filter(const std::string& filter);
  Status set_filter(const std::string& filter);

  // The interface or file name, for logs and metric labels.
  const std::string& name() const { return name_; }

 private:
  PacketSource(const Libpcap* lib, pcap* handle, std::string name, bool is_file);
  bool try_map(const std::string& path, bool direct, int& dlt);
  Status fixed_filter() const;

  // Live interfaces, pcapng files and files with a filter: libpcap calls on_pcap_packet<F>
  // (its pcap_handler) for each frame, which calls the caller's F directly.
  struct Frame {
    std::int64_t ts_ns;
    std::span<const std::byte> data;
    std::uint32_t wire_len;
  };
  struct PcapCallBase {
    const PacketSource* self;
    // A file's filter, applied here: libpcap's own (pcap_setfilter) does not count the
    // records it skips towards pcap_dispatch's limit, so a filter passing nothing read the
    // whole file in one call. Null: none, or a live source's (in the kernel).
    const ::bpf_program* filter;
    std::uint64_t delivered;
  };
  template <class F>
  struct PcapCall : PcapCallBase {
    F* fn;
  };
  using PcapHandler = void (*)(unsigned char* user, const ::pcap_pkthdr* h,
                               const unsigned char* bytes);
  template <class F>
  static void on_pcap_packet(unsigned char* user, const ::pcap_pkthdr* h,
                             const unsigned char* bytes) {
    auto* call = reinterpret_cast<PcapCall<F>*>(user);
    if (call->filter != nullptr && !passes_filter(*call, h, bytes)) return;
    ++call->delivered;
    const Frame f = call->self->frame_of(h, bytes);
    (*call->fn)(f.ts_ns, f.data, f.wire_len);
  }
  static bool passes_filter(const PcapCallBase& call, const ::pcap_pkthdr* h,
                            const unsigned char* bytes);
  Frame frame_of(const ::pcap_pkthdr* h, const unsigned char* bytes) const;
  ReadResult dispatch_pcap(int max_packets, PcapHandler handler, PcapCallBase& call, Status& err);
  // Compiles `filter` as the file's own filter (file_filter_); "" removes it.
  Status set_file_filter(const std::string& filter);

  // Files through the fast path: records parsed in place from buf_; a record not wholly in
  // [buf_pos_, buf_end_) goes through next_record_slow(), which refills or says why not.
  template <class Fn>
  ReadResult dispatch_file(int max_packets, Fn& fn, Status& err);
  enum class Next { kRecord, kEnd, kError };
  Next next_record_slow(std::uint32_t& caplen, Status& err);
  static std::uint32_t load32(const std::uint8_t* p, bool swapped) {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return swapped ? __builtin_bswap32(v) : v;
  }
  static constexpr std::size_t kRecordHeader = 16;  // classic pcap, per packet

  // A 32-bit pcap_stats counter widened to 64 bits: each read adds the (wrapping) difference.
  struct Widened {
    std::uint32_t last = 0;
    std::uint64_t total = 0;
    void update(std::uint32_t now) {
      total += static_cast<std::uint32_t>(now - last);
      last = now;
    }
  };

  const Libpcap* lib_;  // null until libpcap is needed: a file read by the fast path
  pcap* handle_;        // null without libpcap
  std::string name_;
  bool is_file_;
  int linktype_ = 0;
  int fd_ = -1;
  std::int64_t ts_scale_ = 1000;  // tv_usec units to ns: 1 when nanosecond precision
  // Fast path (classic pcap, no filter): the file read in chunks into buf_ (huge pages,
  // reused), records parsed in place; [buf_pos_, buf_end_) is read but not yet parsed.
  bool refill(std::size_t need, Status& err);
  int file_fd_ = -1;
  int direct_fd_ = -1;  // the same file opened with O_DIRECT, while the file system accepts it
  std::uint64_t file_size_ = 0;
  std::uint64_t file_off_ = 0;  // next byte to read from the file
  ZeroedArray<std::uint8_t> buf_;
  std::size_t buf_pos_ = 0;
  std::size_t buf_end_ = 0;
  std::size_t head_left_ = 0;  // bytes of the file header still to skip (direct reads)
  bool map_swapped_ = false;
  std::uint32_t map_max_caplen_ = 0;
  mutable Widened recv_, drop_, ifdrop_;
  std::uint64_t file_packets_ = 0;  // files: packets delivered by dispatch()
  // A file read by libpcap with a filter: the compiled program (PcapCallBase), null without.
  struct FilterFree {
    const Libpcap* lib;
    void operator()(::bpf_program* p) const;
  };
  std::unique_ptr<::bpf_program, FilterFree> file_filter_;
};

template <class Fn>
PacketSource::ReadResult PacketSource::dispatch_file(int max_packets, Fn& fn, Status& err) {
  const int limit = max_packets <= 0 ? 4096 : max_packets;  // "one buffer's worth"
  int n = 0;
  while (n < limit) {
    const std::size_t avail = buf_end_ - buf_pos_;
    std::uint32_t caplen =
        avail >= kRecordHeader ? load32(buf_.data() + buf_pos_ + 8, map_swapped_) : 0;
    if (avail < kRecordHeader || caplen > map_max_caplen_ || avail - kRecordHeader < caplen) {
      const Next next = next_record_slow(caplen, err);
      if (next == Next::kError) {
        file_packets_ += static_cast<std::uint64_t>(n);  // delivered before the error
        return ReadResult::kError;
      }
      if (next == Next::kEnd) break;
    }
    const std::uint8_t* h = buf_.data() + buf_pos_;
    const std::uint32_t sec = load32(h, map_swapped_);
    const std::uint32_t frac = load32(h + 4, map_swapped_);
    const std::uint32_t len = load32(h + 12, map_swapped_);
    buf_pos_ += kRecordHeader + caplen;
    ++n;
    // The frame lives in buf_ until the next refill: only during this call, as with libpcap.
    fn(static_cast<std::int64_t>(sec) * 1'000'000'000 + static_cast<std::int64_t>(frac) * ts_scale_,
       std::span<const std::byte>(reinterpret_cast<const std::byte*>(h + kRecordHeader), caplen),
       len);
  }
  file_packets_ += static_cast<std::uint64_t>(n);
  return n > 0 ? ReadResult::kPackets : ReadResult::kEnd;
}

}  // namespace citywatch::agent
