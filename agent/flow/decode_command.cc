#include "agent/flow/decode_command.h"

#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

#include "agent/capture/meter_frame.h"
#include "agent/capture/packet_source.h"
#include "agent/flow/export_pcap.h"
#include "agent/flow/flow_decoder.h"

namespace citywatch::agent::flow {

namespace {

const char* source_name(FlowSource s) {
  switch (s) {
    case FlowSource::kPacketMeter:
      return "packet_meter";
    case FlowSource::kNetflowV5:
      return "netflow_v5";
    case FlowSource::kNetflowV9:
      return "netflow_v9";
    case FlowSource::kIpfix:
      return "ipfix";
    case FlowSource::kSflow:
      return "sflow";
  }
  return "unknown";
}

const char* direction_name(FlowDirection d) {
  switch (d) {
    case FlowDirection::kIngress:
      return "ingress";
    case FlowDirection::kEgress:
      return "egress";
    default:
      return "unknown";
  }
}

// Prints each record as a JSON line and keeps the totals for the summary.
class JsonSink : public RecordSink {
 public:
  JsonSink(std::ostream& out, bool print) : out_(out), print_(print) {}
  // Where each flow's rate came from: the decoder's decision for the flow being emitted.
  void watch(const SamplingDecision* d) { decision_ = d; }
  void add(const Record& r) override {
    if (const auto* f = std::get_if<FlowRecord>(&r.body)) {
      ++flows;
      packets += f->packets;
      bytes += f->bytes;
      auto& p = by_protocol[f->protocol];
      p.first += f->packets;
      p.second += f->bytes;
      if (!print_) return;
      nlohmann::ordered_json j;
      j["kind"] = "flow";
      j["format"] = source_name(f->source);
      j["exporter"] = to_string(f->exporter);
      j["observation_domain"] = f->observation_domain;
      j["start_ns"] = f->start_ns;
      j["end_ns"] = f->end_ns;
      j["src"] = to_string(f->src);
      j["dst"] = to_string(f->dst);
      j["src_port"] = f->src_port;
      j["dst_port"] = f->dst_port;
      j["protocol"] = f->protocol;
      j["tcp_flags"] = f->tcp_flags;
      j["packets"] = f->packets;
      j["bytes"] = f->bytes;
      j["sampling_rate"] = f->sampling_rate;
      if (decision_) j["sampling_source"] = to_string(*decision_);
      j["input_if"] = f->input_if;
      j["output_if"] = f->output_if;
      j["direction"] = direction_name(f->direction);
      j["vlan"] = f->vlan;
      out_ << j.dump() << '\n';
    } else if (const auto* s = std::get_if<InterfaceSample>(&r.body)) {
      ++interface_samples;
      if (!print_) return;
      nlohmann::ordered_json j;
      j["kind"] = "interface_sample";
      j["time_ns"] = r.event_time_ns;
      j["device"] = to_string(s->device);
      j["if_index"] = s->if_index;
      j["in_octets"] = s->in_octets;
      j["out_octets"] = s->out_octets;
      j["in_packets"] = s->in_packets;
      j["out_packets"] = s->out_packets;
      j["in_errors"] = s->in_errors;
      j["out_errors"] = s->out_errors;
      j["in_discards"] = s->in_discards;
      j["out_discards"] = s->out_discards;
      j["speed_bps"] = s->speed_bps;
      j["admin_up"] = s->admin_up() ? 1 : 0;
      j["oper_up"] = s->oper_up() ? 1 : 0;
      out_ << j.dump() << '\n';
    } else if (const auto* e = std::get_if<PacketEvent>(&r.body)) {
      ++packet_events;
      ++events_by_kind[to_string(e->kind)];
      if (!print_) return;
      nlohmann::ordered_json j;
      j["kind"] = "packet_event";
      j["event"] = to_string(e->kind);
      j["time_ns"] = r.event_time_ns;
      if (e->src.family != IpAddr::Family::kNone) j["src"] = to_string(e->src);
      if (e->dst.family != IpAddr::Family::kNone) j["dst"] = to_string(e->dst);
      j["src_port"] = e->src_port;
      j["dst_port"] = e->dst_port;
      j["protocol"] = e->protocol;
      j["vlan"] = e->vlan;
      j["mac"] = mac_text(e->mac);
      if (e->kind == PacketEventKind::kArpBinding) {
        j["flags"] = e->flags;
        if (e->prev_mac != std::array<std::uint8_t, 6>{}) j["prev_mac"] = mac_text(e->prev_mac);
      }
      if (!e->name.view().empty()) {
        j["name"] = std::string(e->name.view());
        j["dns_qtype"] = e->dns_qtype;
        j["dns_rcode"] = e->dns_rcode;
      }
      if (e->kind == PacketEventKind::kIcmpUnreachable) j["icmp_code"] = e->icmp_code;
      if (e->kind == PacketEventKind::kArpReplyFlood) j["count"] = e->count;
      if (e->kind == PacketEventKind::kTcpProbeFailed)
        j["failure"] = (e->flags & packet_event_flags::kTcpRejected)   ? "rejected"
                       : (e->flags & packet_event_flags::kTcpHalfOpen) ? "half_open"
                                                                       : "unanswered";
      out_ << j.dump() << '\n';
    }
  }
  static std::string mac_text(const std::array<std::uint8_t, 6>& m) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                  m[5]);
    return buf;
  }
  std::uint64_t packet_events = 0;
  std::map<std::string, std::uint64_t> events_by_kind;
  std::uint64_t flows = 0, packets = 0, bytes = 0, interface_samples = 0;
  std::map<int, std::pair<std::uint64_t, std::uint64_t>> by_protocol;

 private:
  std::ostream& out_;
  bool print_;
  const SamplingDecision* decision_ = nullptr;
};

// A raw packet capture, metered as `citywatch-agent -r` meters it (default flow meter and
// packet-event settings, the capture's clock expiring flows): flows and packet events go
// to the sink.
Status meter_capture(const std::string& file, RecordSink& sink, DecodeCounters& counters,
                     std::uint64_t& frames) {
  CaptureOptions opts;
  opts.file = file;
  Status err;
  auto src = PacketSource::open(opts, err);
  if (!src) return err;
  Record rec;
  FlowMeter meter(FlowMeterConfig{}, [&](const FlowRecord& f) {
    rec.event_time_ns = f.end_ns;
    rec.body = f;
    sink.add(rec);
  });
  PacketEventExtractor events(PacketEventConfig{}, [&](const PacketEvent& ev, std::int64_t ts) {
    rec.event_time_ns = ts;
    rec.body = ev;
    sink.add(rec);
  });
  MeterPipeline pipeline(meter, events, /*packet_clock=*/true);
  const int linktype = src->linktype();
  for (;;) {
    const auto res = src->dispatch(
        4096,
        [&](std::int64_t ts, std::span<const std::byte> frame, std::uint32_t) {
          ++frames;
          pipeline.frame(linktype, ts, frame, counters);
        },
        err);
    pipeline.drain();
    if (res == PacketSource::ReadResult::kError) return err;
    if (res == PacketSource::ReadResult::kEnd) break;
  }
  meter.flush();
  events.flush();
  return Status::ok();
}

}  // namespace

int run_decode_command(const DecodeCommandOptions& o, std::ostream& out, std::ostream& err) {
  JsonSink sink(out, o.records);
  FlowDecoder decoder({}, sink);
  sink.watch(&decoder.last_sampling_decision());
  if (!o.state_file.empty()) {
    std::size_t loaded = 0, skipped = 0;
    if (auto s = decoder.load(o.state_file, loaded, skipped); !s) {
      err << s.message() << '\n';
      return 1;
    }
  }
  ExportPcapStats ps;
  DecodeCounters metered;
  std::uint64_t metered_frames = 0, metered_files = 0;
  int rc = 0;
  for (const std::string& f : o.files) {
    const std::uint64_t datagrams_before = ps.datagrams;
    if (o.mode != DecodeMode::kPackets) {
      if (auto s = decode_export_pcap(f, o.port, decoder, ps); !s) {
        err << f << ": " << s.message() << '\n';
        rc = 1;
        continue;
      }
    }
    // A capture without flow exports is traffic: meter it as the agent would.
    if (o.mode == DecodeMode::kPackets ||
        (o.mode == DecodeMode::kAuto && ps.datagrams == datagrams_before)) {
      ++metered_files;
      if (auto s = meter_capture(f, sink, metered, metered_frames); !s) {
        err << f << ": " << s.message() << '\n';
        rc = 1;
      }
    }
  }
  if (!o.state_file.empty())
    if (auto s = decoder.save(o.state_file); !s) err << s.message() << '\n';
  // Held data whose template never came is reported, not silently dropped.
  decoder.expire(INT64_MAX);
  const ExporterStats t = decoder.totals();
  nlohmann::ordered_json j;
  j["frames"] = ps.frames;
  j["packet_captures"] = metered_files;
  j["frames_metered"] = metered_frames;
  nlohmann::ordered_json not_decoded = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < kDecodeResultCount; ++i)
    if (metered.by_result[i] && static_cast<DecodeResult>(i) != DecodeResult::kOk)
      not_decoded[to_string(static_cast<DecodeResult>(i))] = metered.by_result[i];
  j["frames_not_decoded"] = not_decoded;
  j["datagrams"] = ps.datagrams;
  j["skipped_not_export"] = ps.not_export;
  j["skipped_not_udp"] = ps.not_udp;
  j["skipped_fragments"] = ps.fragments;
  j["flows"] = sink.flows;
  j["packets"] = sink.packets;
  j["bytes"] = sink.bytes;
  j["interface_samples"] = sink.interface_samples;
  j["packet_events"] = sink.packet_events;
  nlohmann::ordered_json kinds = nlohmann::ordered_json::object();
  for (const auto& [k, n] : sink.events_by_kind) kinds[k] = n;
  j["packet_events_by_kind"] = kinds;
  j["templates"] = decoder.templates().size();
  j["held_released"] = t.released;
  j["sflow_headers_not_ip"] = t.header_not_ip;
  j["sampling_rate_changes"] = t.sampling_rate_changes;
  j["sampling_above_ceiling"] = t.sampling_above_ceiling;
  std::uint64_t errors = 0;
  nlohmann::ordered_json reasons = nlohmann::ordered_json::object();
  for (std::size_t i = 1; i < kFlowErrorCount; ++i)
    if (t.errors[i]) {
      reasons[to_string(static_cast<FlowError>(i))] = t.errors[i];
      errors += t.errors[i];
    }
  j["decode_errors"] = errors;
  j["errors_by_reason"] = reasons;
  nlohmann::ordered_json protos = nlohmann::ordered_json::object();
  for (const auto& [p, v] : sink.by_protocol)
    protos[std::to_string(p)] = {{"packets", v.first}, {"bytes", v.second}};
  j["by_protocol"] = protos;
  err << j.dump() << '\n';
  return rc;
}

}  // namespace citywatch::agent::flow
