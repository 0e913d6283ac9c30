// FlowDecoder: one datagram in, normalised records out. Detects the export format by its
// version field (NetFlow v5/v9, IPFIX, sFlow v5), keeps the state the formats need (the
// template cache, learned sampling rates, data held for a missing template), counts
// everything per exporter, and saves/reloads its state so templates survive a restart.
//
// Detection: NetFlow and IPFIX start with a 16-bit version (5, 9, 10); sFlow starts with a
// 32-bit version 5, i.e. the bytes 00 00 00 05, which no NetFlow header can begin with.
// Exporter accounting is bounded: beyond max_exporters, new exporters share one "other"
// entry (label value "other"), so a spoofing sender cannot grow the metrics without bound.
//
// Ownership: one per agent (the listeners share it), built by the runtime; also used by
// `citywatch-agent decode`. Thread-safety: none; everything runs on the agent's io thread.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <unordered_map>

#include "agent/flow/flow_types.h"
#include "agent/flow/netflow_v9.h"
#include "agent/flow/sampling.h"
#include "agent/flow/template_cache.h"
#include "common/record_sink.h"
#include "common/status.h"

namespace citywatch::agent::flow {

struct FlowDecoderOptions {
  TemplateLimits templates;
  std::size_t max_samplers = 4096;
  std::size_t max_exporters = 256;
  std::uint32_t max_sampling_rate = 65536;  // flow.max_sampling_rate: a ceiling on stated rates
  HoldOptions hold;
};

class FlowDecoder {
 public:
  FlowDecoder(FlowDecoderOptions options, RecordSink& sink);
  FlowDecoder(const FlowDecoder&) = delete;
  FlowDecoder& operator=(const FlowDecoder&) = delete;

  // Decodes one export datagram received from `source` at receive_ns (wall time live,
  // capture time offline). `formats` is the listener's FlowFormat bit set. Returns kOk or
  // why the datagram was dropped (already counted against the exporter).
  FlowError decode(std::span<const std::byte> datagram, const IpAddr& source,
                   std::int64_t receive_ns, std::uint8_t formats = kAllFormats);

  // Expires data held for templates that did not come.
  void expire(std::int64_t now_ns) { v9_.expire(now_ns); }

  SamplingTable& sampling() { return sampling_; }
  const SamplingTable& sampling() const { return sampling_; }
  // The sampling decision of the flow record being emitted (valid inside RecordSink::add).
  const SamplingDecision& last_sampling_decision() const { return out_.sampling_decision; }
  const TemplateCache& templates() const { return templates_; }
  std::size_t held() const { return v9_.held(); }

  // Per exporter, in first-seen order of the bounded table; "other" has family kNone.
  void for_each_exporter(const std::function<void(const IpAddr&, const ExporterStats&)>& fn) const;
  // Totals over every exporter.
  ExporterStats totals() const;

  // State file: templates, sampler rates, system init times. save() writes FILE.tmp and
  // renames it over FILE, so a crash leaves the old file or the new, never half of one.
  Status save(const std::filesystem::path& file);
  // Saves only when something changed since the last save.
  Status save_if_dirty(const std::filesystem::path& file);
  // A missing file is not an error (first start); a malformed line is skipped and counted.
  Status load(const std::filesystem::path& file, std::size_t& loaded, std::size_t& skipped);

 private:
  ExporterStats& stats_for(const IpAddr& exporter);

  FlowDecoderOptions options_;
  TemplateCache templates_;
  SamplingTable sampling_;
  NetflowV9Decoder v9_;
  FlowOutput out_;
  std::unordered_map<ExporterDomainKey, std::unique_ptr<ExporterStats>, ExporterDomainKeyHash>
      exporters_;
  std::vector<std::pair<IpAddr, ExporterStats*>> order_;
  ExporterStats other_;
};

}  // namespace citywatch::agent::flow
