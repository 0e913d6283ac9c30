// CaptureWorker (agent/app/capture_worker.h) on a real interface: the test moves itself into
// a network namespace of its own (unshare, as root; nothing outside it is touched), brings
// its loopback up, and sends UDP datagrams from many source ports to a socket it listens on.
//   - Two workers in one PACKET_FANOUT group: every datagram is metered exactly once, by one
//     of the two, and the flows are spread over both (the kernel's flow hash).
//   - A worker whose hand-off is full drops whole batches and counts their records as lost;
//     it never queues more than its bound.
// Runs as its own executable: the namespace is the process's for the rest of its life.
#include "agent/app/capture_worker.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "common/wire_codec.h"

namespace citywatch::agent {
namespace {

constexpr std::uint16_t kPort = 9999;

class CaptureWorkerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(geteuid(), 0u) << "needs root: the test captures in a network namespace it creates";
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << std::strerror(errno);
    const int fd = socket(AF_INET, SOCK_DGRAM, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    ASSERT_EQ(ioctl(fd, SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    ASSERT_EQ(ioctl(fd, SIOCSIFFLAGS, &ifr), 0) << "cannot bring lo up";
    close(fd);
  }

  static std::unique_ptr<PacketSource> open_lo(std::uint16_t& group) {
    CaptureOptions o;
    o.interface = "lo";
    o.bpf_filter = "udp port " + std::to_string(kPort);
    o.buffer_bytes = 4 << 20;
    o.timeout_ms = 10;
    Status err;
    auto src = PacketSource::open(o, err);
    EXPECT_NE(src, nullptr) << err.message();
    if (src) {
      const Status joined = src->join_fanout(group);
      EXPECT_TRUE(joined.is_ok()) << joined.message();
    }
    return src;
  }

  // `n` datagrams, each from a socket of its own (a new source port: a new flow).
  static void send_datagrams(int n) {
    const int rx = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(kPort);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(rx, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);  // no ICMP replies
    for (int i = 0; i < n; ++i) {
      const int tx = socket(AF_INET, SOCK_DGRAM, 0);
      const char msg[] = "citywatch";
      ASSERT_EQ(sendto(tx, msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
                static_cast<ssize_t>(sizeof msg));
      close(tx);
    }
    close(rx);
  }

  // Flow packets to kPort in a worker's batches.
  static std::uint64_t packets_in(const std::vector<CaptureWorker::Batch>& batches) {
    std::uint64_t packets = 0;
    for (const auto& b : batches) {
      std::vector<Record> records;
      std::uint64_t seq = 0;
      std::uint32_t unknown = 0;
      EXPECT_EQ(
          wire::decode_batch(b.payload, ShortName("a"), ShortName("s"), seq, records, unknown),
          wire::DecodeError::kOk);
      EXPECT_EQ(seq, 0u);  // numbered by the main thread, not the worker
      for (const Record& r : records)
        if (const auto* f = std::get_if<FlowRecord>(&r.body); f && f->dst_port == kPort)
          packets += f->packets;
    }
    return packets;
  }

  static CaptureWorkerOptions options(const std::string& name) {
    CaptureWorkerOptions o;
    o.name = name;
    o.batch_records = 16;
    return o;
  }
};

TEST_F(CaptureWorkerTest, TwoThreadsMeterEveryPacketOnceAndShareTheFlows) {
  std::uint16_t group = 0;
  CaptureWorker a(open_lo(group), options("lo@1"), {});
  CaptureWorker b(open_lo(group), options("lo@2"), {});
  ASSERT_NE(group, 0);
  a.start();
  b.start();
  constexpr int kDatagrams = 400;
  send_datagrams(kDatagrams);
  // Until both threads have metered every datagram (their snapshots come once a tick), at most
  // 10 s; stop() then flushes every flow into the last batches.
  for (int i = 0; i < 500; ++i) {
    if (a.snapshot().meter.packets + b.snapshot().meter.packets >= kDatagrams) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  a.stop();
  b.stop();
  const std::uint64_t pa = packets_in(a.take_batches());
  const std::uint64_t pb = packets_in(b.take_batches());
  EXPECT_EQ(pa + pb, static_cast<std::uint64_t>(kDatagrams));
  EXPECT_GT(pa, kDatagrams / 10u) << "thread 1 metered " << pa << ", thread 2 " << pb;
  EXPECT_GT(pb, kDatagrams / 10u) << "thread 1 metered " << pa << ", thread 2 " << pb;
  const auto sa = a.snapshot(), sb = b.snapshot();
  EXPECT_TRUE(sa.pcap_ok);
  EXPECT_EQ(sa.pcap.kernel_dropped + sb.pcap.kernel_dropped, 0u);
  EXPECT_EQ(sa.meter.packets + sb.meter.packets, static_cast<std::uint64_t>(kDatagrams));
  EXPECT_EQ(sa.records_lost + sb.records_lost, 0u);
  EXPECT_FALSE(a.failure().has_value());
}

TEST_F(CaptureWorkerTest, AFullHandOffDropsWholeBatchesAndCountsThem) {
  std::uint16_t group = 0;
  CaptureWorkerOptions o = options("lo@1");
  o.max_pending_bytes = 4096;  // a few batches of 16 flows, then nothing more is queued
  int ready = 0;
  CaptureWorker w(open_lo(group), o, [&ready] { ++ready; });
  w.start();
  constexpr int kDatagrams = 300;
  send_datagrams(kDatagrams);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  w.stop();
  const auto batches = w.take_batches();  // nobody took any until now
  std::size_t bytes = 0;
  std::uint64_t kept = 0;
  for (const auto& b : batches) {
    bytes += b.payload.size();
    kept += b.records;
  }
  const auto s = w.snapshot();
  EXPECT_LE(bytes, o.max_pending_bytes);
  EXPECT_GT(s.records_lost, 0u);
  EXPECT_EQ(kept + s.records_lost, s.records) << "every record either handed over or counted";
  EXPECT_EQ(static_cast<std::size_t>(ready), batches.size());
  EXPECT_EQ(s.meter.packets, static_cast<std::uint64_t>(kDatagrams));
}

}  // namespace
}  // namespace citywatch::agent
