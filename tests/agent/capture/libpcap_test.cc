// libpcap loaded on first use (agent/capture/libpcap.h), in a binary that does not link it:
// a classic pcap file read without a filter leaves it unloaded; a filter, a pcapng file or
// a link type the fast path does not know loads it; the link types the fast path maps
// itself are the ones libpcap reports for the same file.
#include "agent/capture/libpcap.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "agent/capture/packet_source.h"

namespace citywatch::agent {
namespace {

namespace fs = std::filesystem;

bool libpcap_mapped() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find("/libpcap.so") != std::string::npos) return true;
  return false;
}

class LibpcapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/citywatch-libpcap-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A classic pcap file: the 24-byte header (little-endian, microseconds) and no packets.
  std::string write(const std::string& name, std::uint16_t major, std::uint16_t minor,
                    std::uint32_t linktype) {
    std::vector<std::uint8_t> f;
    auto u16 = [&](std::uint16_t v) { f.insert(f.end(), {std::uint8_t(v), std::uint8_t(v >> 8)}); };
    auto u32 = [&](std::uint32_t v) {
      u16(static_cast<std::uint16_t>(v));
      u16(static_cast<std::uint16_t>(v >> 16));
    };
    u32(0xa1b2c3d4), u16(major), u16(minor), u32(0), u32(0), u32(65535), u32(linktype);
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(f.size()));
    return path;
  }

  fs::path dir_;
};

TEST_F(LibpcapTest, AClassicFileWithoutAFilterDoesNotLoadIt) {
  ASSERT_FALSE(libpcap_mapped()) << "this test binary must not link libpcap";
  CaptureOptions o;
  o.file = write("ether.pcap", 2, 4, 1);
  Status err;
  auto src = PacketSource::open(o, err);
  ASSERT_TRUE(src) << err.message();
  EXPECT_TRUE(src->mapped());
  EXPECT_EQ(src->linktype(), DLT_EN10MB);
  EXPECT_FALSE(libpcap_mapped());

  // Such a file keeps the filter it was opened with: a reload cannot add one.
  const Status add = src->check_filter("tcp");
  EXPECT_FALSE(add.is_ok());
  EXPECT_NE(add.message().find("restart"), std::string::npos) << add.message();
  EXPECT_FALSE(libpcap_mapped());
}

TEST_F(LibpcapTest, AFilterLoadsIt) {
  CaptureOptions o;
  o.file = write("ether.pcap", 2, 4, 1);
  o.bpf_filter = "tcp port 22";
  Status err;
  auto src = PacketSource::open(o, err);
  ASSERT_TRUE(src) << err.message();
  EXPECT_FALSE(src->mapped());
  EXPECT_TRUE(libpcap_mapped());
  EXPECT_TRUE(src->check_filter("udp").is_ok());
  EXPECT_FALSE(src->check_filter("tcp and and").is_ok());
}

TEST_F(LibpcapTest, TheFastPathsLinkTypesAreLibpcaps) {
  // LINKTYPE_ values the fast path maps itself, and one it leaves to libpcap (LINKTYPE_PPP).
  for (const std::uint32_t linktype : {0u, 1u, 101u, 108u, 113u, 228u, 229u, 276u, 9u}) {
    SCOPED_TRACE("LINKTYPE " + std::to_string(linktype));
    const std::string path = write("lt" + std::to_string(linktype) + ".pcap", 2, 4, linktype);
    CaptureOptions fast;
    fast.file = path;
    Status err;
    auto a = PacketSource::open(fast, err);
    ASSERT_TRUE(a) << err.message();
    EXPECT_TRUE(a->mapped());
    // The same file through libpcap (a filter that passes everything keeps it off the fast
    // path), which maps the header's link type itself.
    CaptureOptions lib = fast;
    lib.bpf_filter = "len >= 0";
    auto b = PacketSource::open(lib, err);
    ASSERT_TRUE(b) << err.message();
    EXPECT_FALSE(b->mapped());
    EXPECT_EQ(a->linktype(), b->linktype());
  }
}

TEST_F(LibpcapTest, HeadersOnlyLibpcapJudgesAreStillJudged) {
  // Version 2.3 (read by libpcap, packets still by the fast path) and version 3.0, which
  // libpcap refuses with its own message.
  CaptureOptions o;
  o.file = write("old.pcap", 2, 3, 1);
  Status err;
  auto src = PacketSource::open(o, err);
  ASSERT_TRUE(src) << err.message();
  EXPECT_TRUE(src->mapped());
  EXPECT_EQ(src->linktype(), DLT_EN10MB);
  EXPECT_TRUE(libpcap_mapped());

  o.file = write("new.pcap", 3, 0, 1);
  EXPECT_FALSE(PacketSource::open(o, err));
  EXPECT_NE(err.message().find("new.pcap"), std::string::npos) << err.message();
}

TEST_F(LibpcapTest, TheTableIsComplete) {
  std::string err;
  const Libpcap* lib = libpcap(err);
  ASSERT_NE(lib, nullptr) << err;
  pcap_t* dead = lib->open_dead(DLT_EN10MB, 65535);
  ASSERT_NE(dead, nullptr);
  EXPECT_EQ(lib->datalink(dead), DLT_EN10MB);
  lib->close(dead);
}

}  // namespace
}  // namespace citywatch::agent
