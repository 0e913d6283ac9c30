#include "agent/capture/packet_source.h"

#include <pcap/pcap.h>

#include <utility>

namespace citywatch::agent {
namespace {

std::string describe(const std::string& what, const std::string& name, const char* detail) {
  return what + " '" + name + "': " + (detail != nullptr ? detail : "unknown error");
}

// Compiles and installs the BPF filter; the program is freed once the kernel/libpcap has it.
Status apply_filter(pcap_t* p, const std::string& filter, const std::string& name) {
  if (filter.empty()) return Status::ok();
  bpf_program prog{};
  if (pcap_compile(p, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    return Status::error("bad BPF filter \"" + filter + "\" for '" + name + "': " + pcap_geterr(p));
  }
  const int rc = pcap_setfilter(p, &prog);
  pcap_freecode(&prog);
  if (rc != 0) return Status::error(describe("cannot set BPF filter on", name, pcap_geterr(p)));
  return Status::ok();
}

}  // namespace

PacketSource::PacketSource(pcap* handle, std::string name, bool is_file)
    : handle_(handle), name_(std::move(name)), is_file_(is_file) {}

PacketSource::~PacketSource() {
  if (handle_ != nullptr) pcap_close(handle_);
}

std::unique_ptr<PacketSource> PacketSource::open(const CaptureOptions& options, Status& err) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  std::unique_ptr<PacketSource> src;

  if (!options.file.empty()) {
    // pcap_open_offline reads pcapng too; ask for nanoseconds so either precision scales
    // exactly.
    pcap_t* p = pcap_open_offline_with_tstamp_precision(options.file.c_str(),
                                                        PCAP_TSTAMP_PRECISION_NANO, errbuf);
    if (p == nullptr) {
      err = Status::error(describe("cannot open capture file", options.file, errbuf));
      return nullptr;
    }
    src.reset(new PacketSource(p, options.file, true));
  } else {
    if (options.interface.empty()) {
      err = Status::error("capture needs an interface or a file; neither was given");
      return nullptr;
    }
    pcap_t* p = pcap_create(options.interface.c_str(), errbuf);
    if (p == nullptr) {
      err = Status::error(describe("cannot open interface", options.interface, errbuf));
      return nullptr;
    }
    src.reset(new PacketSource(p, options.interface, false));
    pcap_set_snaplen(p, options.snaplen);
    pcap_set_promisc(p, options.promiscuous ? 1 : 0);
    pcap_set_timeout(p, options.timeout_ms);
    pcap_set_buffer_size(p, options.buffer_bytes);
    pcap_set_immediate_mode(p, options.immediate ? 1 : 0);
    // Not every driver offers nanoseconds: fall back to microseconds silently.
    pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
    const int rc = pcap_activate(p);
    if (rc < 0) {
      const char* detail = rc == PCAP_ERROR ? pcap_geterr(p) : pcap_statustostr(rc);
      std::string msg = describe("cannot capture on interface", options.interface, detail);
      if (rc == PCAP_ERROR_PERM_DENIED) msg += " (needs root or CAP_NET_RAW)";
      err = Status::error(std::move(msg));
      return nullptr;
    }
    if (pcap_setnonblock(p, 1, errbuf) != 0) {
      err = Status::error(describe("cannot make non-blocking", options.interface, errbuf));
      return nullptr;
    }
    src->fd_ = pcap_get_selectable_fd(p);
  }

  if (Status s = apply_filter(src->handle_, options.bpf_filter, src->name_); !s) {
    err = std::move(s);
    return nullptr;
  }
  src->linktype_ = pcap_datalink(src->handle_);
  src->ts_scale_ = pcap_get_tstamp_precision(src->handle_) == PCAP_TSTAMP_PRECISION_NANO ? 1 : 1000;
  err = Status::ok();
  return src;
}

void PacketSource::on_packet(unsigned char* user, const pcap_pkthdr* h,
                             const unsigned char* bytes) {
  auto* self = reinterpret_cast<PacketSource*>(user);
  const std::int64_t ts_ns = static_cast<std::int64_t>(h->ts.tv_sec) * 1'000'000'000 +
                             static_cast<std::int64_t>(h->ts.tv_usec) * self->ts_scale_;
  (*self->fn_)(ts_ns,
               std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes), h->caplen),
               h->len);
}

PacketSource::ReadResult PacketSource::dispatch(int max_packets, const FrameFn& fn, Status& err) {
  fn_ = &fn;
  const int n = pcap_dispatch(handle_, max_packets <= 0 ? -1 : max_packets,
                              &PacketSource::on_packet, reinterpret_cast<unsigned char*>(this));
  fn_ = nullptr;
  if (n > 0) return ReadResult::kPackets;
  if (n == 0) return is_file_ ? ReadResult::kEnd : ReadResult::kNone;
  if (n == PCAP_ERROR_BREAK) return ReadResult::kNone;
  err = Status::error(describe("capture failed on", name_, pcap_geterr(handle_)));
  return ReadResult::kError;
}

bool PacketSource::stats(Stats& out) const {
  if (is_file_) return false;
  pcap_stat st{};
  if (pcap_stats(handle_, &st) != 0) return false;
  out.received = st.ps_recv;
  out.kernel_dropped = st.ps_drop;
  out.interface_dropped = st.ps_ifdrop;
  return true;
}

}  // namespace citywatch::agent
