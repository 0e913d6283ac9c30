// NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) decoder: the two share one template engine.
//
// A datagram is walked set by set (RFC 3954 §5, RFC 7011 §3.3): template and options
// template sets go into the TemplateCache, data sets are decoded record by record through
// their template. Fields are read at whatever length the template gives (reduced-size
// encoding, RFC 7011 §6.2); IPFIX variable-length fields (§7) and enterprise-specific
// fields (§3.2, E bit) are skipped correctly. Options data (sampler ID → rate, several
// samplers per exporter; an exporter-wide rate; systemInitTimeMilliseconds) feeds the
// SamplingTable. Times: IPFIX absolute seconds/ms/µs/ns (§6.1.7-6.1.10, NTP format for
// µs and ns), µs deltas from export time, and sysUptime-relative FIRST/LAST_SWITCHED (v9:
// against the header's sysUptime in 32-bit modular arithmetic, so a wrap is harmless;
// IPFIX: against systemInitTimeMilliseconds).
//
// Data that arrives before its template is held in a fixed pool (bounded in sets, bytes per
// set and time) and decoded when the template comes; what expires or is evicted unheard is
// counted as template_missing, never silently lost.
//
// Ownership: one per FlowDecoder. Thread-safety: none (the agent's io thread).
#pragma once

#include <deque>
#include <functional>
#include <span>
#include <unordered_map>
#include <vector>

#include "agent/flow/flow_types.h"
#include "agent/flow/sampling.h"
#include "agent/flow/template_cache.h"

namespace citywatch::agent::flow {

inline constexpr std::size_t kV9HeaderSize = 20;     // RFC 3954 §5.1
inline constexpr std::size_t kIpfixHeaderSize = 16;  // RFC 7011 §3.1

struct HoldOptions {
  std::size_t max_sets = 128;             // data sets held at once (oldest evicted beyond)
  std::size_t max_set_bytes = 9216;       // larger sets are dropped (pending_too_large)
  std::int64_t hold_ns = 60'000'000'000;  // how long a set waits for its template
};

class NetflowV9Decoder {
 public:
  // on_lost(exporter, reason): a held set expired or was evicted; the owner counts it.
  using LostFn = std::function<void(const IpAddr&, FlowError)>;
  NetflowV9Decoder(TemplateCache& templates, HoldOptions hold, LostFn on_lost);

  // Decodes one datagram whose version field is 9 or 10. Returns kOk or a header-level
  // error (nothing decoded); errors inside sets are counted in out.stats and the rest of
  // the datagram is still decoded.
  FlowError decode(std::span<const std::byte> d, const IpAddr& exporter, std::int64_t receive_ns,
                   FlowOutput& out);

  // Drops held sets older than hold_ns at now_ns (each counted through on_lost).
  void expire(std::int64_t now_ns);
  std::size_t held() const { return held_count_; }

  // systemInitTimeMilliseconds per exporter/domain (persisted with the templates).
  void save(std::ostream& out) const;
  bool load_line(std::istream& fields);

 private:
  struct Context {
    IpAddr exporter;
    std::uint32_t domain = 0;
    TemplateCache::Kind kind = TemplateCache::Kind::kV9;
    std::uint32_t uptime_ms = 0;  // v9 header sysUptime
    std::int64_t export_ns = 0;   // header wall time
    std::int64_t receive_ns = 0;
  };
  struct Held {
    Context ctx;
    std::uint16_t template_id = 0;
    std::uint32_t length = 0;
    bool used = false;
  };

  void parse_templates(const Context& c, std::span<const std::byte> body, bool options,
                       FlowOutput& out);
  void decode_data(const Context& c, std::uint16_t id, std::span<const std::byte> body,
                   FlowOutput& out);
  bool decode_flow(const Context& c, const Template& t, const std::byte*& p, const std::byte* end,
                   FlowOutput& out);
  bool decode_options(const Context& c, const Template& t, const std::byte*& p,
                      const std::byte* end, FlowOutput& out);
  void hold(const Context& c, std::uint16_t id, std::span<const std::byte> body, FlowOutput& out);
  void release(const Context& c, std::uint16_t id, FlowOutput& out);
  std::int64_t sys_init_ms(const Context& c) const;
  void store_sys_init(const ExporterDomainKey& k, std::int64_t ms);

  TemplateCache& templates_;
  HoldOptions hold_;
  LostFn on_lost_;
  std::vector<Held> held_;
  std::vector<std::byte> pool_;
  std::size_t held_count_ = 0;
  // systemInitTimeMilliseconds by exporter and domain: at most kMaxSysInit. When full, the
  // oldest one no data record has used makes way (in stored order; one entry per stored key),
  // so that a flood of options records from spoofed addresses cannot leave an exporter's
  // flows without their times.
  struct SysInit {
    std::int64_t ms = 0;
    mutable bool used = false;
  };
  static constexpr std::size_t kMaxSysInit = 4096;
  std::unordered_map<ExporterDomainKey, SysInit, ExporterDomainKeyHash> sys_init_;
  std::deque<ExporterDomainKey> sys_init_order_;
};

}  // namespace citywatch::agent::flow
