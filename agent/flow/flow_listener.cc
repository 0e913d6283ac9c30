#include "agent/flow/flow_listener.h"

#include <netinet/in.h>
#include <time.h>

#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <cstring>

namespace citywatch::agent::flow {

namespace asio = boost::asio;

namespace {

// Drain at most this many batches per readable event, so a flood on one socket cannot
// starve the io thread's other work (timers, the forwarder, other listeners).
constexpr int kMaxBatchesPerWakeup = 64;

std::int64_t wall_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

IpAddr from_sockaddr(const sockaddr_storage& s) {
  if (s.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(s);
    return IpAddr::v4(reinterpret_cast<const std::uint8_t*>(&a.sin_addr));
  }
  if (s.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(s);
    // A v4-mapped source on a dual-stack socket is the IPv4 exporter it stands for.
    if (IN6_IS_ADDR_V4MAPPED(&a.sin6_addr))
      return IpAddr::v4(reinterpret_cast<const std::uint8_t*>(&a.sin6_addr) + 12);
    return IpAddr::v6(reinterpret_cast<const std::uint8_t*>(&a.sin6_addr));
  }
  return IpAddr{};
}

}  // namespace

FlowListener::FlowListener(asio::io_context& io, FlowListenerOptions options, FlowDecoder& decoder)
    : socket_(io), options_(std::move(options)), decoder_(decoder) {}

Status FlowListener::open() {
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(options_.host, ec);
  if (ec) return Status::error("flow listener " + where + ": bad address: " + ec.message());
  const asio::ip::udp::endpoint ep(addr, options_.port);
  socket_.open(ep.protocol(), ec);
  if (!ec) socket_.bind(ep, ec);
  if (ec) return Status::error("flow listener " + where + ": cannot bind: " + ec.message());
  const int fd = socket_.native_handle();
  // SO_RCVBUFFORCE passes rmem_max when the agent has CAP_NET_ADMIN; otherwise SO_RCVBUF
  // gets what the system allows.
  int want = options_.receive_buffer_bytes;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
  int got = 0;
  socklen_t len = sizeof got;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len);
  stats_.receive_buffer_bytes = got;
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  socket_.non_blocking(true, ec);
  bound_port_ = socket_.local_endpoint(ec).port();
  name_ = "udp:" + options_.host + ":" + std::to_string(bound_port_);

  buffers_.resize(kBatch * kMaxDatagram);
  for (std::size_t i = 0; i < kBatch; ++i) {
    iov_[i] = {buffers_.data() + i * kMaxDatagram, kMaxDatagram};
  }
  return Status::ok();
}

void FlowListener::start() {
  stopped_ = false;
  wait();
}

void FlowListener::stop() {
  stopped_ = true;
  boost::system::error_code ec;
  socket_.cancel(ec);
}

void FlowListener::wait() {
  socket_.async_wait(asio::ip::udp::socket::wait_read, [this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    drain();
    wait();
  });
}

void FlowListener::drain() {
  const int fd = socket_.native_handle();
  for (int b = 0; b < kMaxBatchesPerWakeup; ++b) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      msghdr& h = msgs_[i].msg_hdr;
      h.msg_name = &addrs_[i];
      h.msg_namelen = sizeof(sockaddr_storage);
      h.msg_iov = &iov_[i];
      h.msg_iovlen = 1;
      h.msg_control = control_[i].data();
      h.msg_controllen = control_[i].size();
      h.msg_flags = 0;
    }
    const int n = recvmmsg(fd, msgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;  // EAGAIN: drained (other errors: the next wait reports them)
    ++stats_.batches;
    const std::int64_t now = wall_ns();
    for (int i = 0; i < n; ++i) {
      const msghdr& h = msgs_[static_cast<std::size_t>(i)].msg_hdr;
      for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
          std::uint32_t drops;
          std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
          // A cumulative 32-bit count per socket: add the difference (wraps are harmless).
          stats_.kernel_dropped += drops - last_ovfl_;
          last_ovfl_ = drops;
        }
      }
      if (h.msg_flags & MSG_TRUNC) {
        ++stats_.truncated;
        continue;
      }
      const std::size_t len = msgs_[static_cast<std::size_t>(i)].msg_len;
      ++stats_.datagrams;
      stats_.bytes += len;
      decoder_.decode({buffers_.data() + static_cast<std::size_t>(i) * kMaxDatagram, len},
                      from_sockaddr(addrs_[static_cast<std::size_t>(i)]), now, options_.formats);
    }
    if (static_cast<std::size_t>(n) < kBatch) return;
  }
}

}  // namespace citywatch::agent::flow
