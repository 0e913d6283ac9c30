#include "agent/capture/packet_source.h"

#include <fcntl.h>
#include <linux/if_packet.h>
#include <pcap/pcap.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "agent/capture/libpcap.h"

namespace citywatch::agent {
namespace {

std::string describe(const std::string& what, const std::string& name, const char* detail) {
  return what + " '" + name + "': " + (detail != nullptr ? detail : "unknown error");
}

// Compiles and installs the BPF filter; the program is freed once the kernel/libpcap has it.
Status apply_filter(const Libpcap& lib, pcap_t* p, const std::string& filter,
                    const std::string& name) {
  if (filter.empty()) return Status::ok();
  bpf_program prog{};
  if (lib.compile(p, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    return Status::error("bad BPF filter \"" + filter + "\" for '" + name + "': " + lib.geterr(p));
  }
  const int rc = lib.setfilter(p, &prog);
  lib.freecode(&prog);
  if (rc != 0) return Status::error(describe("cannot set BPF filter on", name, lib.geterr(p)));
  return Status::ok();
}

// The link types a classic pcap file's header names that the fast path reads without asking
// libpcap what they are: their LINKTYPE_ value (www.tcpdump.org/linktypes.html) as libpcap's
// DLT_ value (pcap_datalink), or -1 for every other (libpcap maps those).
int known_dlt(std::uint32_t linktype) {
  switch (linktype) {
    case 0:  // LINKTYPE_NULL
      return DLT_NULL;
    case 1:  // LINKTYPE_ETHERNET
      return DLT_EN10MB;
    case 101:  // LINKTYPE_RAW
      return DLT_RAW;
    case 108:  // LINKTYPE_LOOP
      return DLT_LOOP;
    case 113:  // LINKTYPE_LINUX_SLL
      return DLT_LINUX_SLL;
    case 228:  // LINKTYPE_IPV4
      return DLT_IPV4;
    case 229:  // LINKTYPE_IPV6
      return DLT_IPV6;
    case 276:  // LINKTYPE_LINUX_SLL2
      return DLT_LINUX_SLL2;
    default:
      return -1;
  }
}

// Classic pcap file format (draft-ietf-opsawg-pcap section 4): a 24-byte file header whose
// magic gives byte order and timestamp unit, then per packet a 16-byte record header.
constexpr std::uint32_t kMagicMicro = 0xa1b2c3d4;
constexpr std::uint32_t kMagicNano = 0xa1b23c4d;
constexpr std::size_t kFileHeader = 24;
constexpr std::uint32_t kMaxCaplen = 262144;  // libpcap's MAXIMUM_SNAPLEN
// The fast path's buffer (4 MiB: two huge pages) and its reads. Buffered reads take 512 KiB at
// a time, so the bytes just copied are still in the CPU's caches when parsed (reading 250 MB
// through a mapping of the page cache cost a third more CPU in TLB and cache misses;
// bench/vs_softflowd.sh). Direct reads (O_DIRECT) take up to kReadBuffer at a time: the device
// writes the bytes, no CPU copies them, so there is no cache to keep warm, and each read has a
// fixed cost (pinning the buffer, a request to the device, a wait): about 22 us on the bench
// VM, where reads of 512 KiB cost the offline meter 11 % more CPU than reads of 2 MiB, and 4 MiB
// (the largest request the VM's disk takes whole) 3 % less. A direct read needs its file
// offset, buffer address and length aligned to the device's logical block: kDirectAlign
// covers every block size up to a page.
constexpr std::size_t kReadBuffer = std::size_t{4} << 20;
constexpr std::size_t kReadChunk = std::size_t{512} << 10;
constexpr std::size_t kDirectAlign = 4096;
constexpr std::uint32_t kMaxBufferedRecord = 64u << 20;

}  // namespace

PacketSource::PacketSource(const Libpcap* lib, pcap* handle, std::string name, bool is_file)
    : lib_(lib), handle_(handle), name_(std::move(name)), is_file_(is_file) {}

PacketSource::~PacketSource() {
  file_filter_.reset();
  if (file_fd_ >= 0) ::close(file_fd_);
  if (direct_fd_ >= 0) ::close(direct_fd_);
  if (handle_ != nullptr) lib_->close(handle_);
}

// Opens a classic pcap file for the fast path; false (and libpcap reads it) for pcapng, odd
// files or errors. `dlt` is the file's link type as a DLT_ value when the header is version
// 2.4 with a link type known_dlt() maps, else -1 (libpcap reads the header).
bool PacketSource::try_map(const std::string& path, bool direct, int& dlt) {
  dlt = -1;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  std::uint8_t head[kFileHeader];
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      ::pread(fd, head, sizeof head, 0) != static_cast<ssize_t>(sizeof head)) {
    ::close(fd);
    return false;
  }
  std::uint32_t magic;
  std::memcpy(&magic, head, sizeof magic);
  bool swapped = false;
  if (magic == kMagicMicro || magic == kMagicNano) {
  } else if (__builtin_bswap32(magic) == kMagicMicro || __builtin_bswap32(magic) == kMagicNano) {
    swapped = true;
    magic = __builtin_bswap32(magic);
  } else {
    ::close(fd);
    return false;
  }
  const std::uint32_t max_caplen = std::max(kMaxCaplen, load32(head + 16, swapped));
  if (max_caplen > kMaxBufferedRecord) {  // a snaplen no real capture has: libpcap's problem
    ::close(fd);
    return false;
  }
  // Version 2.4 is what every writer since 1998 writes; libpcap judges the others. The top
  // bits of the link type field carry an FCS length, which libpcap handles.
  const auto u16 = [&](std::size_t at) {
    const std::uint16_t v = static_cast<std::uint16_t>(head[at] | head[at + 1] << 8);
    return swapped ? __builtin_bswap16(v) : v;
  };
  if (u16(4) == 2 && u16(6) == 4) dlt = known_dlt(load32(head + 20, swapped));
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  file_fd_ = fd;
  file_size_ = static_cast<std::uint64_t>(st.st_size);
  file_off_ = kFileHeader;
  map_swapped_ = swapped;
  map_max_caplen_ = max_caplen;
  ts_scale_ = magic == kMagicNano ? 1 : 1000;
  if (direct) {
    // Direct reads start at offset 0, aligned: the first one brings the file header too,
    // which refill() skips. A file system without O_DIRECT refuses the open (or the first
    // read, and refill() goes on buffered). Nothing is read here: opening a file costs no
    // buffer and no I/O until it is read.
    direct_fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (direct_fd_ >= 0) {
      file_off_ = 0;
      head_left_ = kFileHeader;
    }
  }
  return true;
}

// Makes at least `need` unparsed bytes available in buf_, if the file has them: the unparsed
// tail moves to the front (for direct reads, to just below an aligned address, where the next
// read lands) and the rest of the buffer is read. False with err set on a read error; true
// otherwise (fewer than `need` bytes at the end of the file).
bool PacketSource::refill(std::size_t need, Status& err) {
  need += head_left_;
  if (buf_.size() == 0) {
    const std::size_t record = kRecordHeader + map_max_caplen_;
    buf_ = ZeroedArray<std::uint8_t>(std::max<std::size_t>(
        kReadBuffer, (2 * record + kDirectAlign - 1) / kDirectAlign * kDirectAlign));
  }
  const std::size_t left = buf_end_ - buf_pos_;
  const std::size_t start =
      direct_fd_ >= 0 ? (kDirectAlign - left % kDirectAlign) % kDirectAlign : 0;
  if (buf_pos_ != start) {
    std::memmove(buf_.data() + start, buf_.data() + buf_pos_, left);
    buf_pos_ = start;
    buf_end_ = start + left;
  }
  while (buf_end_ - buf_pos_ < need && file_off_ < file_size_) {
    const std::size_t free = buf_.size() - buf_end_;
    // A short direct read happens only at the end of the file; should one leave the offset
    // unaligned anyway, the rest is read buffered.
    const bool direct =
        direct_fd_ >= 0 && file_off_ % kDirectAlign == 0 && buf_end_ % kDirectAlign == 0;
    const std::size_t want = need - (buf_end_ - buf_pos_);
    // Buffered: chunks of kReadChunk, so what was just read is still in the CPU's cache when
    // parsed. Direct: up to kReadBuffer, whole blocks (the free space is whole blocks, as the
    // buffer's size is): a file whose header claims a huge snaplen gets a buffer twice that,
    // which is filled only as far as its records need.
    const std::size_t room =
        direct ? std::min(free, std::max(kReadBuffer,
                                         (want + kDirectAlign - 1) / kDirectAlign * kDirectAlign))
               : std::min(free, std::max(kReadChunk, want));
    const ssize_t n = ::pread(direct ? direct_fd_ : file_fd_, buf_.data() + buf_end_, room,
                              static_cast<off_t>(file_off_));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (direct && errno == EINVAL) {  // alignment refused after all: buffered from here on
        ::close(direct_fd_);
        direct_fd_ = -1;
        continue;
      }
      err = Status::error("cannot read capture file '" + name_ + "': " + std::strerror(errno));
      return false;
    }
    if (n == 0) {  // the file shrank under us: what is there is all there is
      file_size_ = file_off_;
      break;
    }
    buf_end_ += static_cast<std::size_t>(n);
    file_off_ += static_cast<std::uint64_t>(n);
  }
  if (head_left_ != 0) {  // the file header, read by the first direct read
    const std::size_t skip = std::min(head_left_, buf_end_ - buf_pos_);
    buf_pos_ += skip;
    head_left_ -= skip;
  }
  return true;
}

PacketSource::Next PacketSource::next_record_slow(std::uint32_t& caplen, Status& err) {
  if (buf_end_ - buf_pos_ < kRecordHeader && !refill(kRecordHeader, err)) return Next::kError;
  const std::size_t avail = buf_end_ - buf_pos_;
  if (avail == 0) return Next::kEnd;
  if (avail < kRecordHeader) {
    err = Status::error("capture file '" + name_ + "' is truncated in a record header");
    return Next::kError;
  }
  caplen = load32(buf_.data() + buf_pos_ + 8, map_swapped_);
  if (caplen > map_max_caplen_) {
    err = Status::error("capture file '" + name_ + "' has a record of " + std::to_string(caplen) +
                        " bytes, more than the maximum of " + std::to_string(map_max_caplen_));
    return Next::kError;
  }
  if (avail - kRecordHeader < caplen) {
    if (!refill(kRecordHeader + caplen, err)) return Next::kError;
    if (buf_end_ - buf_pos_ - kRecordHeader < caplen) {
      err = Status::error("capture file '" + name_ + "' is truncated in a packet");
      return Next::kError;
    }
  }
  return Next::kRecord;
}

std::unique_ptr<PacketSource> PacketSource::open(const CaptureOptions& options, Status& err) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  std::unique_ptr<PacketSource> src;

  if (!options.file.empty()) {
    // Without a filter a classic pcap file is read by the fast path; libpcap is not even
    // loaded when the header is one the fast path knows.
    int dlt = -1;
    if (options.bpf_filter.empty()) {
      src.reset(new PacketSource(nullptr, nullptr, options.file, true));
      if (!src->try_map(options.file, options.file_direct_io, dlt)) src.reset();
      if (src && dlt >= 0) {
        src->linktype_ = dlt;
        err = Status::ok();
        return src;
      }
    }
    std::string why;
    const Libpcap* lib = libpcap(why);
    if (lib == nullptr) {
      err = Status::error("cannot read capture file '" + options.file + "': " + why);
      return nullptr;
    }
    // libpcap reads pcapng too; ask for nanoseconds so either precision scales exactly.
    pcap_t* p = lib->open_offline_with_tstamp_precision(options.file.c_str(),
                                                        PCAP_TSTAMP_PRECISION_NANO, errbuf);
    if (p == nullptr) {
      err = Status::error(describe("cannot open capture file", options.file, errbuf));
      return nullptr;
    }
    if (src) {
      // The fast path reads the packets of a header only libpcap could judge.
      src->lib_ = lib;
      src->handle_ = p;
      src->linktype_ = lib->datalink(p);
      err = Status::ok();
      return src;
    }
    src.reset(new PacketSource(lib, p, options.file, true));
  } else {
    if (options.interface.empty()) {
      err = Status::error("capture needs an interface or a file; neither was given");
      return nullptr;
    }
    std::string why;
    const Libpcap* lib = libpcap(why);
    if (lib == nullptr) {
      err = Status::error("cannot capture on interface '" + options.interface + "': " + why);
      return nullptr;
    }
    pcap_t* p = lib->create(options.interface.c_str(), errbuf);
    if (p == nullptr) {
      err = Status::error(describe("cannot open interface", options.interface, errbuf));
      return nullptr;
    }
    src.reset(new PacketSource(lib, p, options.interface, false));
    lib->set_snaplen(p, options.snaplen);
    lib->set_promisc(p, options.promiscuous ? 1 : 0);
    lib->set_timeout(p, options.timeout_ms);
    lib->set_buffer_size(p, options.buffer_bytes);
    lib->set_immediate_mode(p, options.immediate ? 1 : 0);
    // Not every driver offers nanoseconds: fall back to microseconds silently.
    lib->set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
    const int rc = lib->activate(p);
    if (rc < 0) {
      const char* detail = rc == PCAP_ERROR ? lib->geterr(p) : lib->statustostr(rc);
      std::string msg = describe("cannot capture on interface", options.interface, detail);
      if (rc == PCAP_ERROR_PERM_DENIED) msg += " (needs root or CAP_NET_RAW)";
      err = Status::error(std::move(msg));
      return nullptr;
    }
    if (lib->setnonblock(p, 1, errbuf) != 0) {
      err = Status::error(describe("cannot make non-blocking", options.interface, errbuf));
      return nullptr;
    }
    src->fd_ = lib->get_selectable_fd(p);
  }

  const Libpcap& lib = *src->lib_;
  if (Status s = src->is_file_ ? src->set_file_filter(options.bpf_filter)
                               : apply_filter(lib, src->handle_, options.bpf_filter, src->name_);
      !s) {
    err = std::move(s);
    return nullptr;
  }
  src->linktype_ = lib.datalink(src->handle_);
  src->ts_scale_ = lib.get_tstamp_precision(src->handle_) == PCAP_TSTAMP_PRECISION_NANO ? 1 : 1000;
  err = Status::ok();
  return src;
}

bool PacketSource::passes_filter(const PcapCallBase& call, const pcap_pkthdr* h,
                                 const unsigned char* bytes) {
  return call.self->lib_->offline_filter(call.filter, h, bytes) != 0;
}

PacketSource::Frame PacketSource::frame_of(const pcap_pkthdr* h, const unsigned char* bytes) const {
  // A pcapng file can carry any 64-bit timestamp; nanoseconds since 1970 hold until 2262.
  // Beyond that (a corrupt or hostile file) the time is pinned, not overflowed.
  constexpr std::int64_t kMaxSec = std::numeric_limits<std::int64_t>::max() / 1'000'000'000 - 1;
  const std::int64_t sec = std::clamp<std::int64_t>(h->ts.tv_sec, -kMaxSec, kMaxSec);
  const std::int64_t frac =
      std::clamp<std::int64_t>(h->ts.tv_usec, 0, 1'000'000'000 / ts_scale_ - 1);
  return {sec * 1'000'000'000 + frac * ts_scale_,
          std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes), h->caplen), h->len};
}

PacketSource::ReadResult PacketSource::dispatch_pcap(int max_packets, PcapHandler handler,
                                                     PcapCallBase& call, Status& err) {
  const int n = lib_->dispatch(handle_, max_packets <= 0 ? -1 : max_packets, handler,
                               reinterpret_cast<unsigned char*>(&call));
  if (n > 0) {
    if (is_file_) file_packets_ += call.delivered;
    return ReadResult::kPackets;
  }
  if (n == 0) return is_file_ ? ReadResult::kEnd : ReadResult::kNone;
  if (n == PCAP_ERROR_BREAK) return ReadResult::kNone;
  err = Status::error(describe("capture failed on", name_, lib_->geterr(handle_)));
  return ReadResult::kError;
}

bool PacketSource::stats(Stats& out) const {
  if (is_file_) {
    out = Stats{};
    out.received = file_packets_;
    return true;
  }
  pcap_stat st{};
  if (lib_->stats(handle_, &st) != 0) return false;
  recv_.update(st.ps_recv);
  drop_.update(st.ps_drop);
  ifdrop_.update(st.ps_ifdrop);
  out.received = recv_.total;
  out.kernel_dropped = drop_.total;
  out.interface_dropped = ifdrop_.total;
  return true;
}

}  // namespace citywatch::agent

namespace citywatch::agent {

Status PacketSource::join_fanout(std::uint16_t& group) {
  if (is_file_ || fd_ < 0) return Status::error("'" + name_ + "' is not a live capture");
  int mode = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG;
  if (group == 0) mode |= PACKET_FANOUT_FLAG_UNIQUEID;
  const int arg = group | mode << 16;
  if (setsockopt(fd_, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0)
    return Status::error("cannot join the capture threads of '" + name_ +
                         "' (PACKET_FANOUT): " + std::strerror(errno));
  if (group == 0) {
    int got = 0;
    socklen_t len = sizeof got;
    if (getsockopt(fd_, SOL_PACKET, PACKET_FANOUT, &got, &len) != 0)
      return Status::error("cannot read the PACKET_FANOUT group of '" + name_ +
                           "': " + std::strerror(errno));
    group = static_cast<std::uint16_t>(got & 0xffff);
  }
  return Status::ok();
}

Status PacketSource::check_filter(int linktype, int snaplen, const std::string& name,
                                  const std::string& filter) {
  if (filter.empty()) return Status::ok();
  std::string why;
  const Libpcap* lib = libpcap(why);
  if (lib == nullptr) return Status::error("cannot check a BPF filter for '" + name + "': " + why);
  pcap_t* dead = lib->open_dead(linktype, snaplen);
  if (dead == nullptr) return Status::error("cannot check a BPF filter for '" + name + "'");
  bpf_program prog{};
  Status st;
  if (lib->compile(dead, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    st =
        Status::error("bad BPF filter \"" + filter + "\" for '" + name + "': " + lib->geterr(dead));
  else
    lib->freecode(&prog);
  lib->close(dead);
  return st;
}

Status PacketSource::check_filter(const std::string& filter) {
  if (file_fd_ >= 0) return fixed_filter();
  if (filter.empty()) return Status::ok();
  bpf_program prog{};
  if (lib_->compile(handle_, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    return Status::error("bad BPF filter \"" + filter + "\" for '" + name_ +
                         "': " + lib_->geterr(handle_));
  lib_->freecode(&prog);
  return Status::ok();
}

void PacketSource::FilterFree::operator()(bpf_program* p) const {
  lib->freecode(p);
  delete p;
}

Status PacketSource::set_file_filter(const std::string& filter) {
  if (filter.empty()) {
    file_filter_.reset();
    return Status::ok();
  }
  std::unique_ptr<bpf_program, FilterFree> prog(new bpf_program{}, FilterFree{lib_});
  if (lib_->compile(handle_, prog.get(), filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    delete prog.release();  // nothing compiled, nothing to free
    return Status::error("bad BPF filter \"" + filter + "\" for '" + name_ +
                         "': " + lib_->geterr(handle_));
  }
  file_filter_ = std::move(prog);
  return Status::ok();
}

Status PacketSource::set_filter(const std::string& filter) {
  if (file_fd_ >= 0) return fixed_filter();
  if (is_file_) return set_file_filter(filter);
  // An empty expression compiles to "accept every packet": that is how a filter is removed.
  bpf_program prog{};
  if (lib_->compile(handle_, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    return Status::error("bad BPF filter \"" + filter + "\" for '" + name_ +
                         "': " + lib_->geterr(handle_));
  const int rc = lib_->setfilter(handle_, &prog);
  lib_->freecode(&prog);
  if (rc != 0)
    return Status::error("cannot set BPF filter on '" + name_ + "': " + lib_->geterr(handle_));
  return Status::ok();
}

Status PacketSource::fixed_filter() const {
  return Status::error("capture file '" + name_ +
                       "' is read without a filter (the fast path): a filter cannot be added "
                       "while it is read; restart the agent to read it with one");
}

}  // namespace citywatch::agent
