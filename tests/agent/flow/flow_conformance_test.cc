// Conformance against independent decoders, on real exporters' output:
// - ../shared/testdata/flows: softflowd and pmacctd exports of segment-a.pcap; our totals
//   (records, packets, bytes, per IP protocol; for sFlow the sampling-scaled estimates) must
//   equal the *.truth.json that tshark produced (../shared/tools/flow-truth.py).
// - ../shared/testdata/vendor/akvorado: captures of real routers and probes; every one must
//   decode with zero decode errors, templates fed first, and the per-record sampling rates
//   of the multiple-sampling-rate and options-template captures must equal what tshark
//   decodes (sampler ID per record, rate per sampler ID from the options data).
// Skips when the shared test data is absent.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "agent/flow/export_pcap.h"
#include "agent/flow/flow_decoder.h"
#include "tests/agent/flow/test_sink.h"

namespace citywatch::agent::flow {
namespace {

const std::string kShared = CITYWATCH_SHARED_DIR "/testdata";

struct Totals : RecordSink {
  void add(const Record& r) override {
    if (const auto* f = std::get_if<FlowRecord>(&r.body)) {
      ++flows;
      packets += f->packets;
      bytes += f->bytes;
      proto_packets[f->protocol] += f->packets;
      proto_bytes[f->protocol] += f->bytes;
      rates.push_back(f->sampling_rate);
    }
  }
  std::uint64_t flows = 0, packets = 0, bytes = 0;
  std::map<int, std::uint64_t> proto_packets, proto_bytes;
  std::vector<std::uint32_t> rates;
};

ExporterStats decode_files(const std::vector<std::string>& files, Totals& t) {
  FlowDecoder d({}, t);
  ExportPcapStats ps;
  for (const auto& f : files) {
    const Status s = decode_export_pcap(f, 0, d, ps);
    EXPECT_TRUE(s.is_ok()) << f << ": " << s.message();
  }
  return d.totals();
}

std::uint64_t error_total(const ExporterStats& s) {
  std::uint64_t n = 0;
  for (std::size_t i = 1; i < kFlowErrorCount; ++i) n += s.errors[i];
  return n;
}

void need_shared() {
  if (!std::filesystem::exists(kShared + "/flows"))
    GTEST_SKIP() << "shared test data not found at " << kShared
                 << " (it lives beside the repository)";
}

class TruthFile : public ::testing::TestWithParam<const char*> {};

TEST_P(TruthFile, TotalsEqualTshark) {
  need_shared();
  const std::string base = kShared + "/flows/" + GetParam();
  std::ifstream in(base + ".truth.json");
  ASSERT_TRUE(in) << base << ".truth.json";
  const auto truth = nlohmann::json::parse(in);
  Totals t;
  const ExporterStats s = decode_files({base + ".pcap"}, t);
  EXPECT_EQ(error_total(s), 0u);
  EXPECT_EQ(s.datagrams, truth["datagrams"].get<std::uint64_t>());
  if (truth.contains("flows")) {
    EXPECT_EQ(t.flows, truth["flows"].get<std::uint64_t>());
    EXPECT_EQ(t.packets, truth["packets"].get<std::uint64_t>());
    EXPECT_EQ(t.bytes, truth["octets"].get<std::uint64_t>());
    for (const auto& [key, value] : truth.items()) {
      int proto = 0;
      char what[16] = "";
      if (std::sscanf(key.c_str(), "proto_%d_%15s", &proto, what) != 2) continue;
      const auto& ours = std::string(what) == "packets" ? t.proto_packets : t.proto_bytes;
      EXPECT_EQ(ours.count(proto) ? ours.at(proto) : 0, value.get<std::uint64_t>()) << key;
    }
  } else {  // sFlow: one record per flow sample, scaled by its rate
    EXPECT_EQ(t.flows, truth["flow_samples"].get<std::uint64_t>());
    EXPECT_EQ(t.packets, truth["estimated_packets"].get<std::uint64_t>());
    EXPECT_EQ(t.bytes, truth["estimated_bytes"].get<std::uint64_t>());
  }
}

INSTANTIATE_TEST_SUITE_P(SharedFlows, TruthFile,
                         ::testing::Values("softflowd-v5", "softflowd-v9", "softflowd-v10",
                                           "pmacct-v9", "pmacct-v10", "pmacct-sflow"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

const std::vector<std::vector<std::string>> kAkvorado = {
    {"netflow/nfv5.pcap"},
    {"netflow/template.pcap", "netflow/data.pcap"},
    {"netflow/data+templates.pcap"},
    {"netflow/datalink-template.pcap", "netflow/datalink-data.pcap"},
    {"netflow/ethernet-over-mpls-with-control-word-template.pcap",
     "netflow/ethernet-over-mpls-with-control-word-data.pcap"},
    {"netflow/icmp-template.pcap", "netflow/icmp-data.pcap"},
    {"netflow/ipfix-srv6-template.pcap", "netflow/ipfix-srv6-data.pcap"},
    {"netflow/ipfixprobe-templates.pcap", "netflow/ipfixprobe-data.pcap"},
    {"netflow/juniper-cpid-template.pcap", "netflow/juniper-cpid-data.pcap"},
    {"netflow/mpls.pcap"},
    {"netflow/multiplesamplingrates-options-template.pcap",
     "netflow/multiplesamplingrates-options-data.pcap",
     "netflow/multiplesamplingrates-template.pcap", "netflow/multiplesamplingrates-data.pcap"},
    {"netflow/nat.pcap"},
    {"netflow/options-template.pcap", "netflow/options-data.pcap", "netflow/template.pcap",
     "netflow/data.pcap"},
    {"netflow/physicalinterfaces.pcap"},
    {"netflow/samplingrate-template.pcap", "netflow/samplingrate-data.pcap"},
};

TEST(Akvorado, EveryCaptureDecodesWithoutErrors) {
  need_shared();
  const std::string dir = kShared + "/vendor/akvorado/";
  std::vector<std::vector<std::string>> groups = kAkvorado;
  for (const auto& e : std::filesystem::directory_iterator(dir + "sflow"))
    groups.push_back({"sflow/" + e.path().filename().string()});
  std::size_t files = 0;
  for (const auto& g : groups) {
    std::vector<std::string> paths;
    for (const auto& f : g) paths.push_back(dir + f);
    files += paths.size();
    Totals t;
    const ExporterStats s = decode_files(paths, t);
    EXPECT_EQ(error_total(s), 0u) << g.back();
    EXPECT_GT(t.flows, 0u) << g.back();
  }
  // Every capture in netflow/ and sflow/ is in some group.
  std::size_t on_disk = 0;
  for (const char* sub : {"netflow", "sflow"})
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir + sub)) ++on_disk;
  EXPECT_EQ(files - 2, on_disk);  // template.pcap and data.pcap are used twice
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

// tshark on the concatenated files: per frame, the sampler IDs and (options data) their
// random intervals. Expected rate of each data record = its sampler's interval.
void check_rates_against_tshark(const std::vector<std::string>& group) {
  if (run("command -v tshark mergecap").empty()) GTEST_SKIP() << "tshark/mergecap not found";
  const std::string dir = kShared + "/vendor/akvorado/";
  const std::string merged =
      ::testing::TempDir() + "cw-rates-" + std::to_string(::getpid()) + ".pcap";
  std::string cmd = "mergecap -a -w " + merged;
  for (const auto& f : group) cmd += " " + dir + f;
  run(cmd + " 2>/dev/null");
  const std::string text =
      run("tshark -r " + merged +
          " -d udp.port==2055,cflow -T fields -E occurrence=a -e cflow.sampler_id "
          "-e cflow.sampler_random_interval 2>/dev/null");
  std::map<std::string, std::uint32_t> rate_of;
  std::vector<std::string> record_samplers;
  for (const auto& line : split(text, '\n')) {
    const auto cols = split(line, '\t');
    if (cols.empty() || cols[0].empty()) continue;
    const auto ids = split(cols[0], ',');
    if (cols.size() > 1 && !cols[1].empty()) {
      const auto rates = split(cols[1], ',');
      for (std::size_t i = 0; i < ids.size() && i < rates.size(); ++i)
        rate_of[ids[i]] = static_cast<std::uint32_t>(std::stoul(rates[i]));
    } else {
      record_samplers.insert(record_samplers.end(), ids.begin(), ids.end());
    }
  }
  std::vector<std::uint32_t> expected;
  for (const auto& id : record_samplers) expected.push_back(rate_of.at(id));
  ASSERT_FALSE(expected.empty()) << "tshark decoded no sampled records";
  Totals t;
  decode_files({merged}, t);
  EXPECT_EQ(t.rates, expected);
  std::filesystem::remove(merged);
}

TEST(Akvorado, MultipleSamplingRatesMatchTshark) {
  need_shared();
  check_rates_against_tshark(kAkvorado[10]);
}

TEST(Akvorado, OptionsTemplateSamplingMatchesTshark) {
  need_shared();
  check_rates_against_tshark(kAkvorado[12]);
}

}  // namespace
}  // namespace citywatch::agent::flow
