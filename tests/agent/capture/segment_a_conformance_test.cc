// Acceptance tests for packet telemetry on the shared capture segment-a.pcap, each checked
// against tshark's own decode, run here by the test (no numbers copied from elsewhere):
//   1. Flows: the meter, with softflowd's timeouts, against softflowd's NetFlow v9 export of
//      the same file (flows/softflowd-v9.pcap) decoded by tshark: equal packets, bytes and
//      per-protocol totals; flow count within 1 %.
//   2. Events: every nmap-probed port, the SSH connection attempts, every DNS query name,
//      the NXDOMAIN answers and the ARP bindings, against tshark's view of the capture.
// Skips when the shared test data or tshark is absent.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "agent/capture/flow_meter.h"
#include "agent/capture/packet_decoder.h"
#include "agent/capture/packet_events.h"
#include "agent/capture/packet_source.h"

namespace citywatch::agent {
namespace {

constexpr std::int64_t kSec = 1'000'000'000;
const std::string kShared = CITYWATCH_SHARED_DIR;
const std::string kCapture = kShared + "/testdata/captures/segment-a.pcap";
const std::string kSoftflowd = kShared + "/testdata/flows/softflowd-v9.pcap";

std::vector<std::string> run_lines(const std::string& cmd) {
  std::vector<std::string> out;
  FILE* p = popen((cmd + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  std::string cur;
  while (fgets(buf, sizeof buf, p) != nullptr) {
    cur += buf;
    if (!cur.empty() && cur.back() == '\n') {
      cur.pop_back();
      out.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(cur);
  pclose(p);
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) v.push_back(item);
  return v;
}

std::string tshark(const std::string& file, const std::string& args) {
  return "tshark -n -r '" + file + "' " + args;
}

std::string ip_string(const IpAddr& a) {
  return std::to_string(a.bytes[0]) + "." + std::to_string(a.bytes[1]) + "." +
         std::to_string(a.bytes[2]) + "." + std::to_string(a.bytes[3]);
}
std::string mac_string(const std::array<std::uint8_t, 6>& m) {
  char b[18];
  std::snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

class SegmentA : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kCapture))
      GTEST_SKIP() << "shared test capture not found at " << kCapture
                   << " (the shared test data lives beside the repository)";
    if (run_lines("command -v tshark").empty()) GTEST_SKIP() << "tshark is not installed";
  }

  // Reads the capture through the agent's own path: source, decoder, meter, extractor.
  void replay(const FlowMeterConfig& mcfg, const PacketEventConfig& ecfg) {
    FlowMeter meter(mcfg, [&](const FlowRecord& r) { flows.push_back(r); });
    PacketEventExtractor extractor(
        ecfg, [&](const PacketEvent& e, std::int64_t) { this->events.push_back(e); });
    CaptureOptions opts;
    opts.file = kCapture;
    Status err;
    auto src = PacketSource::open(opts, err);
    ASSERT_TRUE(src) << err.message();
    DecodedPacket pkt;
    std::int64_t next_advance = 0;
    const int linktype = src->linktype();
    const auto fn = [&](std::int64_t ts, std::span<const std::byte> frame, std::uint32_t) {
      const DecodeResult r = decode_packet(linktype, frame, pkt);
      extractor.add(r, pkt, frame, ts);
      if (r == DecodeResult::kOk) meter.add(pkt, ts);
      if (ts >= next_advance) {
        meter.advance(ts);
        next_advance = ts + kSec;
      }
    };
    for (;;) {
      const auto r = src->dispatch(1024, fn, err);
      if (r == PacketSource::ReadResult::kEnd) break;
      ASSERT_NE(r, PacketSource::ReadResult::kError) << err.message();
    }
    meter.flush();
    event_stats = extractor.stats();
  }

  std::vector<FlowRecord> flows;
  std::vector<PacketEvent> events;
  PacketEventStats event_stats;
};

// Acceptance 1.
TEST_F(SegmentA, FlowsMatchSoftflowdV9ExportDecodedByTshark) {
  if (!std::filesystem::exists(kSoftflowd)) GTEST_SKIP() << "missing " << kSoftflowd;
  // softflowd as shared/tools/gen-flows.sh ran it (-t maxlife=60; idle 3600 s): the same
  // timeouts here. Its export went to UDP port 29955.
  FlowMeterConfig cfg;
  cfg.idle_timeout_ns = 3600 * kSec;
  cfg.active_timeout_ns = 60 * kSec;
  replay(cfg, PacketEventConfig{});

  struct Totals {
    std::uint64_t flows = 0, packets = 0, bytes = 0;
  };
  std::map<int, Totals> want, got;
  Totals want_all, got_all;
  for (const std::string& line :
       run_lines(tshark(kSoftflowd,
                        "-d udp.port==29955,cflow -Y cflow -T fields -E "
                        "occurrence=a -E aggregator=, -e cflow.protocol -e "
                        "cflow.packets -e cflow.octets"))) {
    const auto cols = split(line, '\t');
    if (cols.size() != 3) continue;
    const auto pr = split(cols[0], ','), pk = split(cols[1], ','), ob = split(cols[2], ',');
    ASSERT_EQ(pr.size(), pk.size());
    ASSERT_EQ(pr.size(), ob.size());
    for (std::size_t i = 0; i < pr.size(); ++i) {
      Totals& t = want[std::stoi(pr[i])];
      ++t.flows;
      t.packets += std::stoull(pk[i]);
      t.bytes += std::stoull(ob[i]);
      ++want_all.flows;
      want_all.packets += std::stoull(pk[i]);
      want_all.bytes += std::stoull(ob[i]);
    }
  }
  ASSERT_GT(want_all.flows, 0u) << "tshark decoded no flows from " << kSoftflowd;
  for (const FlowRecord& f : flows) {
    Totals& t = got[f.protocol];
    ++t.flows;
    t.packets += f.packets;
    t.bytes += f.bytes;
    ++got_all.flows;
    got_all.packets += f.packets;
    got_all.bytes += f.bytes;
  }
  EXPECT_EQ(got_all.packets, want_all.packets);
  EXPECT_EQ(got_all.bytes, want_all.bytes);
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [proto, w] : want) {
    EXPECT_EQ(got[proto].packets, w.packets) << "protocol " << proto;
    EXPECT_EQ(got[proto].bytes, w.bytes) << "protocol " << proto;
  }
  const double diff =
      std::abs(static_cast<double>(got_all.flows) - static_cast<double>(want_all.flows));
  EXPECT_LE(diff, 0.01 * static_cast<double>(want_all.flows))
      << "citywatch " << got_all.flows << " flows, softflowd " << want_all.flows;
  RecordProperty("citywatch_flows", static_cast<int>(got_all.flows));
  RecordProperty("softflowd_flows", static_cast<int>(want_all.flows));
  std::printf("flows: citywatch %llu, softflowd %llu; packets %llu; bytes %llu\n",
              static_cast<unsigned long long>(got_all.flows),
              static_cast<unsigned long long>(want_all.flows),
              static_cast<unsigned long long>(got_all.packets),
              static_cast<unsigned long long>(got_all.bytes));
}

// Acceptance 2.
TEST_F(SegmentA, EventsMatchTsharksView) {
  replay(FlowMeterConfig{}, PacketEventConfig{});  // the agent's default budgets

  // nmap's SYN scan of ports 1-1024: every probed port is reported.
  std::set<int> want_ports;
  for (const auto& l : run_lines(tshark(kCapture,
                                        "-Y 'tcp.flags.syn==1 && tcp.flags.ack==0 && "
                                        "tcp.dstport<=1024' -T fields -e tcp.dstport")))
    want_ports.insert(std::stoi(l));
  std::set<int> got_ports;
  std::set<std::pair<std::string, int>> got_ssh;
  std::size_t ssh_events = 0;
  std::multiset<std::string> got_queries;
  std::size_t got_nxdomain = 0;
  std::set<std::pair<std::string, std::string>> got_arp;
  for (const PacketEvent& e : events) {
    switch (e.kind) {
      case PacketEventKind::kTcpSyn:
        if (e.dst_port <= 1024) got_ports.insert(e.dst_port);
        if (e.dst_port == 22) {
          ++ssh_events;
          got_ssh.insert({ip_string(e.src), e.src_port});
        }
        break;
      case PacketEventKind::kDnsQuery:
        got_queries.insert(std::string(e.name.view()));
        break;
      case PacketEventKind::kDnsResponse:
        got_nxdomain += e.dns_rcode == 3;
        break;
      case PacketEventKind::kArpBinding:
        got_arp.insert({ip_string(e.src), mac_string(e.mac)});
        break;
      default:
        break;
    }
  }
  EXPECT_EQ(want_ports.size(), 1024u) << "tshark's view of the nmap scan";
  EXPECT_EQ(got_ports, want_ports);

  // Connection attempts to port 22: twelve SSH logins and nmap's probe.
  std::set<std::pair<std::string, int>> want_ssh;
  for (const auto& l : run_lines(tshark(kCapture,
                                        "-Y 'tcp.flags.syn==1 && tcp.flags.ack==0 && "
                                        "tcp.dstport==22' -T fields -e ip.src -e tcp.srcport"))) {
    const auto c = split(l, '\t');
    if (c.size() == 2) want_ssh.insert({c[0], std::stoi(c[1])});
  }
  EXPECT_EQ(want_ssh.size(), 13u);
  EXPECT_EQ(got_ssh, want_ssh);
  EXPECT_EQ(ssh_events, want_ssh.size());

  // Every DNS query, by name.
  std::multiset<std::string> want_queries;
  for (const auto& l :
       run_lines(tshark(kCapture,
                        "-Y 'dns && dns.flags.response==0 && udp.port==53' -T fields -e "
                        "dns.qry.name")))
    want_queries.insert(l);
  EXPECT_EQ(want_queries.size(), 19u);
  EXPECT_EQ(got_queries, want_queries);

  const auto nx = run_lines(
      tshark(kCapture, "-Y 'dns.flags.response==1 && dns.flags.rcode==3 && udp.port==53'"));
  EXPECT_EQ(got_nxdomain, nx.size());

  // ARP: both hosts' bindings (sender IP -> sender MAC).
  std::set<std::pair<std::string, std::string>> want_arp;
  for (const auto& l :
       run_lines(tshark(kCapture, "-Y arp -T fields -e arp.src.proto_ipv4 -e arp.src.hw_mac"))) {
    const auto c = split(l, '\t');
    if (c.size() == 2 && c[0] != "0.0.0.0") want_arp.insert({c[0], c[1]});
  }
  EXPECT_EQ(want_arp.size(), 2u);
  EXPECT_EQ(got_arp, want_arp);

  std::printf(
      "events: %zu syn ports, %zu ssh attempts, %zu dns queries, %zu nxdomain, %zu "
      "arp bindings\n",
      got_ports.size(), ssh_events, got_queries.size(), got_nxdomain, got_arp.size());
}

}  // namespace
}  // namespace citywatch::agent
