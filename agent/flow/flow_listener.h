// FlowListener: one UDP socket (IPv4 or IPv6) receiving flow exports for the agent.
//
// The socket lives on the agent's Boost.Asio io_context: when it is readable, the listener
// drains it with recvmmsg() in batches of kBatch datagrams (one system call per batch, into
// buffers allocated once), hands each datagram to the shared FlowDecoder, and waits again.
// The receive buffer is enlarged (SO_RCVBUFFORCE when privileged, else SO_RCVBUF up to the
// system's rmem_max), and SO_RXQ_OVFL makes the kernel report on each datagram how many it
// has dropped on this socket because the buffer was full: kernel drops are measured and
// exported, never hidden. Datagrams longer than the buffer (MSG_TRUNC) are counted too.
//
// Ownership: built and owned by the AgentRuntime, one per configured listen address.
// Thread-safety: none; everything runs on the io_context's one thread.
#pragma once

#include <sys/socket.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/flow/flow_decoder.h"
#include "common/status.h"

namespace citywatch::agent::flow {

struct FlowListenerOptions {
  std::string host = "0.0.0.0";
  std::uint16_t port = 0;  // 0: any free port (tests)
  std::uint8_t formats = kAllFormats;
  int receive_buffer_bytes = 32 << 20;

  bool operator==(const FlowListenerOptions&) const = default;
};

struct FlowListenerStats {
  std::uint64_t datagrams = 0;
  std::uint64_t bytes = 0;
  std::uint64_t kernel_dropped = 0;  // SO_RXQ_OVFL: dropped by the kernel, buffer full
  std::uint64_t truncated = 0;       // longer than kMaxDatagram
  std::uint64_t batches = 0;         // recvmmsg calls that returned datagrams
  int receive_buffer_bytes = 0;      // what the kernel granted
};

class FlowListener {
 public:
  static constexpr std::size_t kBatch = 32;
  static constexpr std::size_t kMaxDatagram = 65535;

  FlowListener(boost::asio::io_context& io, FlowListenerOptions options, FlowDecoder& decoder);
  FlowListener(const FlowListener&) = delete;
  FlowListener& operator=(const FlowListener&) = delete;

  // Opens and binds the socket. Control path: fails with a message naming the address.
  Status open();
  void start();
  void stop();

  std::uint16_t port() const { return bound_port_; }
  // "udp:HOST:PORT", the `listener` label of the agent's flow metrics.
  const std::string& name() const { return name_; }
  const FlowListenerStats& stats() const { return stats_; }

 private:
  void wait();
  void drain();

  boost::asio::ip::udp::socket socket_;
  FlowListenerOptions options_;
  FlowDecoder& decoder_;
  std::string name_;
  std::uint16_t bound_port_ = 0;
  FlowListenerStats stats_;
  std::uint32_t last_ovfl_ = 0;
  bool stopped_ = false;
  std::vector<std::byte> buffers_;
  std::array<mmsghdr, kBatch> msgs_{};
  std::array<iovec, kBatch> iov_{};
  std::array<sockaddr_storage, kBatch> addrs_{};
  std::array<std::array<char, CMSG_SPACE(sizeof(std::uint32_t))>, kBatch> control_{};
};

}  // namespace citywatch::agent::flow
