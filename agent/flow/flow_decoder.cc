#include "agent/flow/flow_decoder.h"

#include <fstream>
#include <sstream>

#include "agent/flow/netflow_v5.h"
#include "agent/flow/sflow.h"

namespace citywatch::agent::flow {

namespace {
constexpr std::uintmax_t kMaxStateBytes = 64ull << 20;
}  // namespace

FlowDecoder::FlowDecoder(FlowDecoderOptions options, RecordSink& sink)
    : options_(options),
      templates_(options.templates),
      sampling_(options.max_samplers),
      v9_(templates_, options.hold,
          [this](const IpAddr& exporter, FlowError e) { stats_for(exporter).count(e); }),
      out_{sink, sampling_, nullptr, {}, {}} {
  sampling_.set_ceiling(options.max_sampling_rate);
}

ExporterStats& FlowDecoder::stats_for(const IpAddr& exporter) {
  auto it = exporters_.find({exporter, 0, 0, 0});
  if (it != exporters_.end()) return *it->second;
  if (exporters_.size() >= options_.max_exporters) return other_;
  auto s = std::make_unique<ExporterStats>();
  ExporterStats* p = s.get();
  exporters_.emplace(ExporterDomainKey{exporter, 0, 0, 0}, std::move(s));
  order_.emplace_back(exporter, p);
  return *p;
}

FlowError FlowDecoder::decode(std::span<const std::byte> d, const IpAddr& source,
                              std::int64_t receive_ns, std::uint8_t formats) {
  FlowError e = FlowError::kOk;
  FlowFormat format;
  IpAddr exporter = source;
  if (d.size() < 4) {
    e = FlowError::kTruncatedHeader;
  } else if (rd32(d.data()) == 5) {
    format = FlowFormat::kSflow;
    IpAddr agent;
    if (sflow_agent_address(d, agent)) exporter = agent;
  } else {
    switch (rd16(d.data())) {
      case 5:
        format = FlowFormat::kNetflowV5;
        break;
      case 9:
        format = FlowFormat::kNetflowV9;
        break;
      case 10:
        format = FlowFormat::kIpfix;
        break;
      default:
        e = FlowError::kUnknownVersion;
    }
  }
  ExporterStats& st = stats_for(exporter);
  ++st.datagrams;
  st.last_seen_ns = receive_ns;
  if (e == FlowError::kOk && !(formats & static_cast<std::uint8_t>(format)))
    e = FlowError::kFormatNotEnabled;
  if (e != FlowError::kOk) {
    st.count(e);
    return e;
  }
  out_.stats = &st;
  switch (format) {
    case FlowFormat::kNetflowV5:
      st.last_format = FlowSource::kNetflowV5;
      e = decode_netflow_v5(d, exporter, out_);
      break;
    case FlowFormat::kNetflowV9:
    case FlowFormat::kIpfix:
      st.last_format = format == FlowFormat::kIpfix ? FlowSource::kIpfix : FlowSource::kNetflowV9;
      e = v9_.decode(d, exporter, receive_ns, out_);
      break;
    case FlowFormat::kSflow:
      st.last_format = FlowSource::kSflow;
      e = decode_sflow(d, receive_ns, out_);
      break;
  }
  if (e != FlowError::kOk) st.count(e);
  return e;
}

void FlowDecoder::for_each_exporter(
    const std::function<void(const IpAddr&, const ExporterStats&)>& fn) const {
  for (const auto& [addr, s] : order_) fn(addr, *s);
  if (other_.datagrams) fn(IpAddr{}, other_);
}

ExporterStats FlowDecoder::totals() const {
  ExporterStats t;
  for_each_exporter([&t](const IpAddr&, const ExporterStats& s) {
    for (std::size_t i = 0; i < kFlowErrorCount; ++i) t.errors[i] += s.errors[i];
    t.datagrams += s.datagrams;
    t.flows += s.flows;
    t.interface_samples += s.interface_samples;
    t.held += s.held;
    t.released += s.released;
    t.header_not_ip += s.header_not_ip;
    t.sampling_above_ceiling += s.sampling_above_ceiling;
    t.sampling_rate_changes += s.sampling_rate_changes;
  });
  return t;
}

namespace {
constexpr const char* kStateMagic = "citywatch-flow-state 1";
}

Status FlowDecoder::save(const std::filesystem::path& file) {
  std::ostringstream text;
  text << kStateMagic << '\n';
  templates_.save(text);
  sampling_.save(text);
  v9_.save(text);
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  const std::filesystem::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text.str();
    out.flush();
    if (!out) return Status::error(tmp.string() + ": cannot write the flow state file");
  }
  std::filesystem::rename(tmp, file, ec);
  if (ec) return Status::error(file.string() + ": " + ec.message());
  templates_.clear_dirty();
  sampling_.clear_dirty();
  return Status::ok();
}

Status FlowDecoder::save_if_dirty(const std::filesystem::path& file) {
  if (!templates_.dirty() && !sampling_.dirty()) return Status::ok();
  return save(file);
}

Status FlowDecoder::load(const std::filesystem::path& file, std::size_t& loaded,
                         std::size_t& skipped) {
  loaded = skipped = 0;
  std::ifstream in(file);
  if (!in) return Status::ok();  // first start: nothing saved yet
  // The cache is bounded, so a file this agent wrote is too (a few MiB at most); anything
  // far larger was not written by it, and is not read into memory line by line.
  std::error_code size_ec;
  const auto bytes = std::filesystem::file_size(file, size_ec);
  if (!size_ec && bytes > kMaxStateBytes)
    return Status::error(file.string() + ": " + std::to_string(bytes) +
                         " bytes, more than a flow state file can hold (" +
                         std::to_string(kMaxStateBytes) + "); move it aside");
  std::string line;
  if (!std::getline(in, line) || line != kStateMagic)
    return Status::error(file.string() + ": not a CityWatch flow state file (expected '" +
                         kStateMagic + "' on line 1); move it aside");
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    char kind = 0;
    fields >> kind;
    bool ok = false;
    if (kind == 'T')
      ok = templates_.load_line(fields);
    else if (kind == 'S' || kind == 'D')
      ok = sampling_.load_line(kind, fields);
    else if (kind == 'I')
      ok = v9_.load_line(fields);
    ++(ok ? loaded : skipped);
  }
  templates_.clear_dirty();
  sampling_.clear_dirty();
  return Status::ok();
}

}  // namespace citywatch::agent::flow
