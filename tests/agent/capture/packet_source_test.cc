#include "agent/capture/packet_source.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace citywatch::agent {
namespace {

namespace fs = std::filesystem;

struct Written {
  std::int64_t ts_ns;
  std::vector<std::uint8_t> bytes;
  std::uint32_t wire_len;
};

// Minimal Ethernet/IPv4 frame with the given IP protocol (6 or 17) and 8 bytes of L4 header.
std::vector<std::uint8_t> frame(std::uint8_t proto, std::uint8_t tag) {
  std::vector<std::uint8_t> f = {2,    0, 0,  0,  0, 2, 2, 0, 0,  0,     0, 1, 0x08, 0x00,
                                 0x45, 0, 0,  28, 0, 0, 0, 0, 64, proto, 0, 0, 10,   0,
                                 0,    1, 10, 0,  0, 2, 0, 1, 0,  2,     0, 8, 0,    tag};
  return f;
}

class PacketSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/citywatch-packet-source-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes packets with pcap_dump at the given timestamp precision.
  std::string write(const std::vector<Written>& pkts, int precision, int snaplen = 65535) {
    const std::string path = (dir_ / ("p" + std::to_string(precision) + ".pcap")).string();
    pcap_t* dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, snaplen, precision);
    pcap_dumper_t* d = pcap_dump_open(dead, path.c_str());
    EXPECT_NE(d, nullptr) << pcap_geterr(dead);
    const std::int64_t div = precision == PCAP_TSTAMP_PRECISION_NANO ? 1 : 1000;
    for (const auto& w : pkts) {
      pcap_pkthdr h{};
      h.ts.tv_sec = w.ts_ns / 1'000'000'000;
      h.ts.tv_usec = (w.ts_ns % 1'000'000'000) / div;
      h.caplen = static_cast<bpf_u_int32>(w.bytes.size());
      h.len = w.wire_len;
      pcap_dump(reinterpret_cast<u_char*>(d), &h, w.bytes.data());
    }
    pcap_dump_close(d);
    pcap_close(dead);
    return path;
  }

  fs::path dir_;
};

const std::vector<Written> kPackets = {
    {1'700'000'000'123'456'789, frame(17, 1), 42},
    {1'700'000'001'000'000'001, frame(6, 2), 1514},  // snapped: wire length beyond caplen
    {1'700'000'002'999'999'999, frame(17, 3), 42},
};

struct Seen {
  std::int64_t ts_ns;
  std::vector<std::uint8_t> bytes;
  std::uint32_t wire_len;
};

std::vector<Seen> read_all(PacketSource& src, int batch) {
  std::vector<Seen> seen;
  Status err;
  const auto fn = [&](std::int64_t ts, std::span<const std::byte> f, std::uint32_t wire) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(f.data());
    seen.push_back({ts, std::vector<std::uint8_t>(p, p + f.size()), wire});
  };
  for (int guard = 0; guard < 1000; ++guard) {
    const auto r = src.dispatch(batch, fn, err);
    if (r == PacketSource::ReadResult::kEnd) return seen;
    EXPECT_EQ(r, PacketSource::ReadResult::kPackets) << err.message();
  }
  ADD_FAILURE() << "no end of file";
  return seen;
}

TEST_F(PacketSourceTest, ReadsNanosecondFile) {
  CaptureOptions o;
  o.file = write(kPackets, PCAP_TSTAMP_PRECISION_NANO);
  Status err;
  auto src = PacketSource::open(o, err);
  ASSERT_TRUE(src) << err.message();
  EXPECT_TRUE(err.is_ok());
  EXPECT_EQ(src->linktype(), DLT_EN10MB);
  EXPECT_EQ(src->selectable_fd(), -1);
  EXPECT_EQ(src->name(), o.file);
  PacketSource::Stats st;
  ASSERT_TRUE(src->stats(st));
  EXPECT_EQ(st.received, 0u);
  const auto seen = read_all(*src, 2);
  ASSERT_EQ(seen.size(), kPackets.size());
  ASSERT_TRUE(src->stats(st));
  EXPECT_EQ(st.received, kPackets.size()) << "a file's packets are the packets read";
  EXPECT_EQ(st.kernel_dropped + st.interface_dropped, 0u);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].ts_ns, kPackets[i].ts_ns) << i;
    EXPECT_EQ(seen[i].bytes, kPackets[i].bytes) << i;
    EXPECT_EQ(seen[i].wire_len, kPackets[i].wire_len) << i;
  }
}

TEST_F(PacketSourceTest, ReadsMicrosecondFileAsNanoseconds) {
  CaptureOptions o;
  o.file = write(kPackets, PCAP_TSTAMP_PRECISION_MICRO);
  Status err;
  auto src = PacketSource::open(o, err);
  ASSERT_TRUE(src) << err.message();
  const auto seen = read_all(*src, 0);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].ts_ns, 1'700'000'000'123'456'000);
  EXPECT_EQ(seen[2].ts_ns, 1'700'000'002'999'999'000);
}

TEST_F(PacketSourceTest, AppliesBpfFilterToFiles) {
  CaptureOptions o;
  o.file = write(kPackets, PCAP_TSTAMP_PRECISION_NANO);
  o.bpf_filter = "tcp";
  Status err;
  auto src = PacketSource::open(o, err);
  ASSERT_TRUE(src) << err.message();
  const auto seen = read_all(*src, 1);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].wire_len, 1514u);
  PacketSource::Stats st;
  ASSERT_TRUE(src->stats(st));
  EXPECT_EQ(st.received, 1u) << "as on a live source: the packets that passed the filter";
}

// libpcap's own file filter does not count the records it skips towards pcap_dispatch's
// limit: a filter that passes nothing read the whole file in one call, holding the agent's
// event loop (metrics, forwarding, the systemd watchdog) for as long as the file took. The
// file's filter is applied per record instead, and each call reads at most its limit.
TEST_F(PacketSourceTest, AFileFilterPassingNothingStillReadsInSlices) {
  std::vector<Written> pkts;
  for (int i = 0; i < 20000; ++i)
    pkts.push_back({1'700'000'000'000'000'000 + i * 1000LL, frame(17, 1), 60});
  pkts.push_back({1'700'000'001'000'000'000, frame(6, 2), 60});  // the one TCP packet, last
  CaptureOptions o;
  o.file = write(pkts, PCAP_TSTAMP_PRECISION_NANO);
  o.bpf_filter = "tcp";
  Status err;
  auto src = PacketSource::open(o, err);
  ASSERT_TRUE(src) << err.message();
  std::size_t delivered = 0;
  auto fn = [&](std::int64_t, std::span<const std::byte>, std::uint32_t) { ++delivered; };
  EXPECT_EQ(src->dispatch(100, fn, err), PacketSource::ReadResult::kPackets);
  EXPECT_EQ(delivered, 0u) << "the first 100 records are UDP";
  int calls = 1;
  PacketSource::ReadResult r;
  while ((r = src->dispatch(100, fn, err)) == PacketSource::ReadResult::kPackets && calls < 1000)
    ++calls;
  EXPECT_EQ(r, PacketSource::ReadResult::kEnd) << err.message();
  EXPECT_EQ(calls, 201) << "20,001 records, at most 100 a call";
  EXPECT_EQ(delivered, 1u);
  PacketSource::Stats st;
  ASSERT_TRUE(src->stats(st));
  EXPECT_EQ(st.received, 1u) << "as on a live source: the packets that passed the filter";
  // A reload may replace the filter of a file read by libpcap ("" removes it).
  EXPECT_TRUE(src->set_filter("udp"));
  EXPECT_FALSE(src->set_filter("udp and and"));
}

// Whether this file system opens `path` with O_DIRECT (ext4, xfs, tmpfs since Linux 6.6 do).
bool opens_direct(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// The fast path reads the file into a 2 MiB buffer, buffered in 512 KiB chunks or with O_DIRECT
// in aligned reads of the buffer's free space: records straddling a read, records larger than
// a chunk and a file several buffers long must come out exactly as libpcap reads them (a
// filter that accepts everything sends the file through libpcap), either way.
TEST_F(PacketSourceTest, FastPathReadsRecordsAcrossChunksAsLibpcapDoes) {
  std::vector<Written> pkts;
  std::uint32_t x = 12345;
  for (int i = 0; i < 20000; ++i) {
    x = x * 1103515245u + 12345u;
    std::size_t size = 42 + (x >> 16) % 3000;
    if (i % 4000 == 7) size = 200000;  // bigger than a read chunk
    std::vector<std::uint8_t> b(size);
    for (std::size_t k = 0; k < size; ++k) b[k] = static_cast<std::uint8_t>(k * 7 + i);
    pkts.push_back({1'700'000'000'000'000'000 + i * 1'000'003LL, std::move(b),
                    static_cast<std::uint32_t>(size + i % 3)});
  }
  const std::string path = write(pkts, PCAP_TSTAMP_PRECISION_NANO, 262144);
  ASSERT_GT(fs::file_size(path), 8u << 20);
  ASSERT_NE(fs::file_size(path) % 4096, 0u) << "the last direct read must be a short one";

  CaptureOptions lib;
  lib.file = path;
  lib.bpf_filter = "len >= 0";
  Status err;
  auto b = PacketSource::open(lib, err);
  ASSERT_TRUE(b) << err.message();
  ASSERT_FALSE(b->mapped());
  const auto want = read_all(*b, 1000);
  ASSERT_EQ(want.size(), pkts.size());
  for (const bool direct : {false, true}) {
    SCOPED_TRACE(direct ? "O_DIRECT" : "buffered");
    CaptureOptions fast;
    fast.file = path;
    fast.file_direct_io = direct;
    auto a = PacketSource::open(fast, err);
    ASSERT_TRUE(a) << err.message();
    ASSERT_TRUE(a->mapped());
    EXPECT_EQ(a->direct(), direct && opens_direct(path));
    const auto got = read_all(*a, 1000);
    EXPECT_EQ(a->direct(), direct && opens_direct(path)) << "no read was refused";
    ASSERT_EQ(got.size(), pkts.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].ts_ns, want[i].ts_ns) << i;
      ASSERT_EQ(got[i].wire_len, want[i].wire_len) << i;
      ASSERT_EQ(got[i].bytes, want[i].bytes) << i;
    }
  }
}

// Bytes this process has read so far (/proc/self/io), O_DIRECT reads included.
std::uint64_t bytes_read() {
  std::FILE* f = std::fopen("/proc/self/io", "r");
  if (f == nullptr) return 0;
  unsigned long long rchar = 0;
  const int n = std::fscanf(f, "rchar: %llu", &rchar);
  std::fclose(f);
  return n == 1 ? rchar : 0;
}

// citywatch-agent -r opens every file it is given to check it before reading any: opening
// reads the 24-byte file header and nothing more (it used to fill the 4 MiB read buffer with
// the first direct read, for each file). The header is skipped when the file is read, and a
// file of a header alone ends cleanly either way.
TEST_F(PacketSourceTest, OpeningAFileReadsOnlyItsHeader) {
  std::vector<Written> pkts;
  for (int i = 0; i < 2000; ++i)
    pkts.push_back({1'700'000'000'000'000'000 + i * 1'000LL,
                    std::vector<std::uint8_t>(1000, static_cast<std::uint8_t>(i)), 1000});
  const std::string path = write(pkts, PCAP_TSTAMP_PRECISION_NANO);
  ASSERT_GT(fs::file_size(path), 1u << 20);
  const std::string empty = (dir_ / "header-only.pcap").string();
  fs::copy_file(path, empty);
  fs::resize_file(empty, 24);
  ASSERT_GT(bytes_read(), 0u) << "/proc/self/io is not readable";
  for (const bool direct : {false, true}) {
    SCOPED_TRACE(direct ? "O_DIRECT" : "buffered");
    CaptureOptions o;
    o.file = path;
    o.file_direct_io = direct;
    Status err;
    const std::uint64_t before = bytes_read();
    auto src = PacketSource::open(o, err);
    const std::uint64_t opened = bytes_read() - before;
    ASSERT_TRUE(src) << err.message();
    ASSERT_TRUE(src->mapped());
    EXPECT_EQ(src->direct(), direct && opens_direct(path));
    EXPECT_LT(opened, 4096u) << "opening read more than the header";
    const auto got = read_all(*src, 500);
    ASSERT_EQ(got.size(), pkts.size());
    EXPECT_EQ(got.front().ts_ns, pkts.front().ts_ns);
    EXPECT_EQ(got.front().bytes, pkts.front().bytes);
    EXPECT_EQ(got.back().bytes, pkts.back().bytes);

    o.file = empty;
    auto none = PacketSource::open(o, err);
    ASSERT_TRUE(none) << err.message();
    EXPECT_TRUE(read_all(*none, 500).empty());
  }
}

TEST_F(PacketSourceTest, FastPathReportsATruncatedFile) {
  const std::string path = write(kPackets, PCAP_TSTAMP_PRECISION_NANO);
  const auto full = fs::file_size(path);
  const std::uintmax_t last_record = 16 + kPackets.back().bytes.size();
  struct Cut {
    std::uintmax_t size;
    const char* message;
  };
  for (const Cut& cut : {Cut{full - 5, "truncated in a packet"},
                         Cut{full - last_record + 7, "truncated in a record header"}}) {
    fs::copy_file(path, path + ".cut", fs::copy_options::overwrite_existing);
    fs::resize_file(path + ".cut", cut.size);
    for (const bool direct : {false, true}) {
      SCOPED_TRACE(direct ? "O_DIRECT" : "buffered");
      CaptureOptions o;
      o.file = path + ".cut";
      o.file_direct_io = direct;
      Status err;
      auto src = PacketSource::open(o, err);
      ASSERT_TRUE(src) << err.message();
      ASSERT_TRUE(src->mapped());
      EXPECT_EQ(src->direct(), direct && opens_direct(o.file));
      int frames = 0;
      const auto fn = [&](std::int64_t, std::span<const std::byte>, std::uint32_t) { ++frames; };
      PacketSource::ReadResult r = PacketSource::ReadResult::kPackets;
      for (int guard = 0; guard < 10 && r == PacketSource::ReadResult::kPackets; ++guard)
        r = src->dispatch(1, fn, err);
      EXPECT_EQ(r, PacketSource::ReadResult::kError);
      EXPECT_EQ(frames, 2) << "the records before the cut are delivered";
      PacketSource::Stats st;
      ASSERT_TRUE(src->stats(st));
      EXPECT_EQ(st.received, 2u) << "and counted";

      // In one slice: the packets delivered before the error in that slice count too.
      auto again = PacketSource::open(o, err);
      ASSERT_TRUE(again) << err.message();
      frames = 0;
      EXPECT_EQ(again->dispatch(4096, fn, err), PacketSource::ReadResult::kError);
      EXPECT_EQ(frames, 2);
      ASSERT_TRUE(again->stats(st));
      EXPECT_EQ(st.received, 2u) << "a slice that ends in an error still counts its packets";
      EXPECT_NE(err.message().find(cut.message), std::string::npos) << err.message();
    }
  }
}

// A pcapng file (read by libpcap) may carry any 64-bit timestamp: one beyond 2262 does not
// fit in int64 nanoseconds and is pinned, not overflowed (pcap_file_fuzz found the overflow;
// under UBSan this test fails without the pin).
TEST_F(PacketSourceTest, AFarFutureTimestampIsPinnedNotOverflowed) {
  std::vector<std::uint8_t> f;
  auto u16 = [&](std::uint16_t v) { f.insert(f.end(), {std::uint8_t(v), std::uint8_t(v >> 8)}); };
  auto u32 = [&](std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v));
    u16(static_cast<std::uint16_t>(v >> 16));
  };
  u32(0x0A0D0D0A), u32(28), u32(0x1A2B3C4D), u16(1), u16(0), u32(0xffffffff), u32(0xffffffff),
      u32(28);                                                     // section header
  u32(1), u32(20), u16(DLT_EN10MB), u16(0), u32(65535), u32(20);   // interface, microseconds
  const std::vector<std::uint8_t> frame_bytes = frame(17, 9);      // 42 bytes: 2 of padding
  u32(6), u32(32 + 44), u32(0), u32(0xffffffff), u32(0xfffffff0);  // packet, ~5.8e5 years
  u32(42), u32(42);
  f.insert(f.end(), frame_bytes.begin(), frame_bytes.end());
  u16(0), u32(32 + 44);
  const std::string path = (dir_ / "future.pcapng").string();
  FILE* out = std::fopen(path.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  std::fwrite(f.data(), 1, f.size(), out);
  std::fclose(out);
  CaptureOptions o;
  o.file = path;
  Status err;
  auto src = PacketSource::open(o, err);
  ASSERT_TRUE(src) << err.message();
  ASSERT_FALSE(src->mapped());  // pcapng: libpcap reads it
  const auto seen = read_all(*src, 10);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_GE(seen[0].ts_ns, std::int64_t{9'223'372'034'000'000'000});
  EXPECT_EQ(seen[0].bytes, frame_bytes);
}

TEST_F(PacketSourceTest, ReportsErrorsAPersonCanActOn) {
  CaptureOptions o;
  o.file = (dir_ / "missing.pcap").string();
  Status err;
  EXPECT_FALSE(PacketSource::open(o, err));
  EXPECT_FALSE(err.is_ok());
  EXPECT_NE(err.message().find("missing.pcap"), std::string::npos) << err.message();

  o.file = write(kPackets, PCAP_TSTAMP_PRECISION_NANO);
  o.bpf_filter = "tcp and and";
  EXPECT_FALSE(PacketSource::open(o, err));
  EXPECT_NE(err.message().find("bad BPF filter"), std::string::npos) << err.message();

  CaptureOptions none;
  EXPECT_FALSE(PacketSource::open(none, err));
  EXPECT_FALSE(err.is_ok());

  CaptureOptions bogus;
  bogus.interface = "citywatch-no-such-if0";
  EXPECT_FALSE(PacketSource::open(bogus, err));
  EXPECT_NE(err.message().find("citywatch-no-such-if0"), std::string::npos) << err.message();
}

TEST_F(PacketSourceTest, LiveLoopbackIsNonBlocking) {
  CaptureOptions o;
  o.interface = "lo";
  o.bpf_filter = "udp port 9";  // nothing to see: dispatch must return at once
  Status err;
  auto src = PacketSource::open(o, err);
  if (!src) GTEST_SKIP() << "cannot capture on lo here (needs CAP_NET_RAW): " << err.message();
  EXPECT_GE(src->selectable_fd(), 0);
  EXPECT_FALSE(src->is_file());
  const auto r = src->dispatch(
      16, [](std::int64_t, std::span<const std::byte>, std::uint32_t) {}, err);
  EXPECT_TRUE(r == PacketSource::ReadResult::kNone || r == PacketSource::ReadResult::kPackets)
      << err.message();
  PacketSource::Stats st;
  EXPECT_TRUE(src->stats(st));
}

}  // namespace
}  // namespace citywatch::agent
