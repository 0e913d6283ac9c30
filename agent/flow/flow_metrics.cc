#include "agent/flow/flow_metrics.h"

namespace citywatch::agent::flow {

namespace {
prometheus::Family<prometheus::Counter>& counter(prometheus::Registry& r, const char* name,
                                                 const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
prometheus::Family<prometheus::Gauge>& gauge(prometheus::Registry& r, const char* name,
                                             const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}
}  // namespace

FlowMetrics::FlowMetrics(prometheus::Registry& r)
    : datagrams_(counter(r, "citywatch_agent_flow_datagrams_total",
                         "Export datagrams received on each flow listener")),
      bytes_(counter(r, "citywatch_agent_flow_received_bytes_total",
                     "UDP payload bytes received on each flow listener")),
      drops_(counter(r, "citywatch_agent_flow_datagrams_dropped_total",
                     "Datagrams lost before decoding, by where: kernel (receive buffer full, "
                     "SO_RXQ_OVFL) or truncated (larger than 64 KiB)")),
      buffer_(gauge(r, "citywatch_agent_flow_receive_buffer_bytes",
                    "Socket receive buffer the kernel granted each flow listener")),
      exporter_datagrams_(counter(r, "citywatch_agent_flow_exporter_datagrams_total",
                                  "Export datagrams by exporter (bounded; then \"other\")")),
      records_(counter(r, "citywatch_agent_flow_records_total",
                       "Records decoded from flow exports, by exporter and kind")),
      errors_(counter(r, "citywatch_agent_flow_decode_errors_total",
                      "Malformed or undecodable export data dropped, by exporter and reason")),
      held_(counter(r, "citywatch_agent_flow_held_sets_total",
                    "v9/IPFIX data sets that arrived before their template, by exporter and "
                    "outcome (held, released once the template came)")),
      not_ip_(counter(r, "citywatch_agent_flow_headers_not_ip_total",
                      "Sampled packet headers (sFlow, IPFIX dataLinkFrameSection) the packet "
                      "decoder could not read to IP; counted as traffic without addresses")),
      last_seen_(gauge(r, "citywatch_agent_flow_exporter_last_seen_timestamp_seconds",
                       "When each exporter last sent a datagram, Unix time")),
      sampling_events_(counter(r, "citywatch_agent_flow_sampling_events_total",
                               "Sampling anomalies by exporter: above_ceiling (a stated rate "
                               "above flow.max_sampling_rate, not applied), rate_changed, "
                               "not_learned (a stated rate the bounded table could not keep)")),
      sampling_rate_(gauge(r, "citywatch_agent_flow_sampling_rate",
                           "Sampling rate (1 in N) each exporter's options data announced, by "
                           "domain and sampler (\"default\": the domain's); time-based: 1 and "
                           "mode=\"time\"")),
      templates_(
          gauge(r, "citywatch_agent_flow_templates", "NetFlow v9/IPFIX templates in the cache")
              .Add({})),
      template_fields_(gauge(r, "citywatch_agent_flow_template_fields",
                             "Fields of all cached templates (what the cache's memory is "
                             "bounded by)")
                           .Add({})),
      held_now_(
          gauge(r, "citywatch_agent_flow_held_sets", "Data sets waiting for their template now")
              .Add({})) {
  auto& evictions = counter(r, "citywatch_agent_flow_template_evictions_total",
                            "Templates evicted (least recently used) to make room: "
                            "exporter_share or cache_full");
  evicted_share_.counter = &evictions.Add({{"reason", "exporter_share"}});
  evicted_full_.counter = &evictions.Add({{"reason", "cache_full"}});
  sampling_evicted_.counter =
      &counter(r, "citywatch_agent_flow_sampling_rates_evicted_total",
               "Learned sampling rates no data record had used, dropped to make room in the full "
               "table for a new one")
           .Add({});
}

void FlowMetrics::update(const std::vector<std::unique_ptr<FlowListener>>& listeners,
                         const FlowDecoder& decoder) {
  for (const auto& l : listeners) {
    auto [it, fresh] = listeners_.try_emplace(l->name());
    ListenerMetrics& m = it->second;
    if (fresh) {
      const prometheus::Labels lb{{"listener", l->name()}};
      m.datagrams.counter = &datagrams_.Add(lb);
      m.bytes.counter = &bytes_.Add(lb);
      m.kernel_dropped.counter = &drops_.Add({{"listener", l->name()}, {"where", "kernel"}});
      m.truncated.counter = &drops_.Add({{"listener", l->name()}, {"where", "truncated"}});
      m.buffer = &buffer_.Add(lb);
    }
    const FlowListenerStats& s = l->stats();
    m.datagrams.set(s.datagrams);
    m.bytes.set(s.bytes);
    m.kernel_dropped.set(s.kernel_dropped);
    m.truncated.set(s.truncated);
    m.buffer->Set(s.receive_buffer_bytes);
  }
  decoder.for_each_exporter([this](const IpAddr& addr, const ExporterStats& s) {
    const std::string name = addr.family == IpAddr::Family::kNone ? "other" : to_string(addr);
    auto [it, fresh] = exporters_.try_emplace(name);
    ExporterMetrics& m = it->second;
    if (fresh) {
      const prometheus::Labels lb{{"exporter", name}};
      m.datagrams.counter = &exporter_datagrams_.Add(lb);
      m.flows.counter = &records_.Add({{"exporter", name}, {"kind", "flow"}});
      m.interface_samples.counter =
          &records_.Add({{"exporter", name}, {"kind", "interface_sample"}});
      m.held.counter = &held_.Add({{"exporter", name}, {"outcome", "held"}});
      m.released.counter = &held_.Add({{"exporter", name}, {"outcome", "released"}});
      m.header_not_ip.counter = &not_ip_.Add(lb);
      for (std::size_t i = 1; i < kFlowErrorCount; ++i)
        m.errors[i].counter =
            &errors_.Add({{"exporter", name}, {"reason", to_string(static_cast<FlowError>(i))}});
      m.last_seen = &last_seen_.Add(lb);
      m.above_ceiling.counter =
          &sampling_events_.Add({{"exporter", name}, {"event", "above_ceiling"}});
      m.rate_changes.counter =
          &sampling_events_.Add({{"exporter", name}, {"event", "rate_changed"}});
      m.not_learned.counter = &sampling_events_.Add({{"exporter", name}, {"event", "not_learned"}});
    }
    m.not_learned.set(s.sampling_not_learned);
    m.above_ceiling.set(s.sampling_above_ceiling);
    m.rate_changes.set(s.sampling_rate_changes);
    m.datagrams.set(s.datagrams);
    m.flows.set(s.flows);
    m.interface_samples.set(s.interface_samples);
    m.held.set(s.held);
    m.released.set(s.released);
    m.header_not_ip.set(s.header_not_ip);
    for (std::size_t i = 1; i < kFlowErrorCount; ++i) m.errors[i].set(s.errors[i]);
    m.last_seen->Set(static_cast<double>(s.last_seen_ns) / 1e9);
  });
  templates_.Set(static_cast<double>(decoder.templates().size()));
  template_fields_.Set(static_cast<double>(decoder.templates().fields()));
  evicted_share_.set(decoder.templates().stats().evicted_exporter_share);
  evicted_full_.set(decoder.templates().stats().evicted_cache_full);
  held_now_.Set(static_cast<double>(decoder.held()));
  sampling_evicted_.set(decoder.sampling().evicted());
  // Bounded like the table it mirrors (4096 samplers); the first 1024 are exported.
  decoder.sampling().for_each_learned([this](const IpAddr& exporter, std::uint32_t domain,
                                             const std::string& sampler, std::uint32_t rate,
                                             bool time_based) {
    const std::string e = to_string(exporter), d = std::to_string(domain);
    const std::string key = e + '|' + d + '|' + sampler;
    auto it = rates_.find(key);
    if (it == rates_.end()) {
      if (rates_.size() >= 1024) return;
      it = rates_
               .emplace(key, &sampling_rate_.Add({{"exporter", e},
                                                  {"domain", d},
                                                  {"sampler", sampler},
                                                  {"mode", time_based ? "time" : "packets"}}))
               .first;
    }
    it->second->Set(rate);
  });
}

}  // namespace citywatch::agent::flow
