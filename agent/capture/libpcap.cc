#include "agent/capture/libpcap.h"

#include <dlfcn.h>

namespace citywatch::agent {
namespace {

// Debian's soname first (libpcap0.8), then upstream's.
constexpr const char* kSonames[] = {"libpcap.so.0.8", "libpcap.so.1"};

struct Loaded {
  Libpcap fns{};
  std::string error;  // empty when loaded
};

template <class F>
bool bind(void* lib, const char* name, F& fn, std::string& err) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (fn == nullptr) err = std::string("libpcap has no ") + name + " (too old?)";
  return fn != nullptr;
}

Loaded load() {
  Loaded out;
  void* lib = nullptr;
  std::string tried;
  for (const char* soname : kSonames) {
    // Never unloaded: handles and compiled filters point into it until the process exits.
    lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (lib != nullptr) break;
    const char* why = dlerror();
    tried += std::string(tried.empty() ? "" : "; ") + (why != nullptr ? why : soname);
  }
  if (lib == nullptr) {
    // The package is the likely fix only when the library was not found: a process out of
    // descriptors or memory fails the same dlopen() for another reason, which dlerror() names.
    const bool missing = tried.find("No such file") != std::string::npos &&
                         tried.find("Too many open files") == std::string::npos;
    out.error = std::string("cannot load libpcap") + (missing ? " (install libpcap0.8)" : "") +
                ": " + tried;
    return out;
  }
  Libpcap& f = out.fns;
  std::string& e = out.error;
  const bool ok =
      bind(lib, "pcap_activate", f.activate, e) && bind(lib, "pcap_close", f.close, e) &&
      bind(lib, "pcap_compile", f.compile, e) && bind(lib, "pcap_create", f.create, e) &&
      bind(lib, "pcap_datalink", f.datalink, e) && bind(lib, "pcap_dispatch", f.dispatch, e) &&
      bind(lib, "pcap_freecode", f.freecode, e) &&
      bind(lib, "pcap_get_selectable_fd", f.get_selectable_fd, e) &&
      bind(lib, "pcap_get_tstamp_precision", f.get_tstamp_precision, e) &&
      bind(lib, "pcap_geterr", f.geterr, e) &&
      bind(lib, "pcap_offline_filter", f.offline_filter, e) &&
      bind(lib, "pcap_open_dead", f.open_dead, e) &&
      bind(lib, "pcap_open_offline_with_tstamp_precision", f.open_offline_with_tstamp_precision,
           e) &&
      bind(lib, "pcap_set_buffer_size", f.set_buffer_size, e) &&
      bind(lib, "pcap_set_immediate_mode", f.set_immediate_mode, e) &&
      bind(lib, "pcap_set_promisc", f.set_promisc, e) &&
      bind(lib, "pcap_set_snaplen", f.set_snaplen, e) &&
      bind(lib, "pcap_set_timeout", f.set_timeout, e) &&
      bind(lib, "pcap_set_tstamp_precision", f.set_tstamp_precision, e) &&
      bind(lib, "pcap_setfilter", f.setfilter, e) &&
      bind(lib, "pcap_setnonblock", f.setnonblock, e) && bind(lib, "pcap_stats", f.stats, e) &&
      bind(lib, "pcap_statustostr", f.statustostr, e);
  if (!ok) out.fns = {};
  return out;
}

}  // namespace

const Libpcap* libpcap(std::string& err) {
  static const Loaded loaded = load();  // thread-safe once
  if (!loaded.error.empty()) {
    err = loaded.error;
    return nullptr;
  }
  return &loaded.fns;
}

}  // namespace citywatch::agent
