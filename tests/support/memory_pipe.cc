#include "tests/support/memory_pipe.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>

namespace citywatch::testing {

namespace asio = boost::asio;
using asio::awaitable;

namespace {

// A timer used as a signal: waits until cancelled.
awaitable<void> wait_signal(asio::steady_timer& t) {
  boost::system::error_code ignored;
  t.expires_at(asio::steady_timer::time_point::max());
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

}  // namespace

struct MemoryStream::State {
  State(asio::io_context& io, PipeOptions o)
      : options(std::move(o)), wake{asio::steady_timer(io), asio::steady_timer(io)} {}

  PipeOptions options;
  std::deque<std::byte> data[2];         // data[i]: written by end i, read by end 1 - i
  bool write_ended[2] = {false, false};  // end i will write no more (closed or cut)
  bool closed[2] = {false, false};       // end i was closed by its owner
  bool cut = false;
  std::uint64_t moved = 0;     // bytes written, both directions
  asio::steady_timer wake[2];  // wake[i]: end i's pending read or connect

  void signal_all() {
    wake[0].cancel();
    wake[1].cancel();
  }
};

MemoryStream::MemoryStream(std::shared_ptr<State> state, int end)
    : state_(std::move(state)), end_(end) {}

MemoryStream::~MemoryStream() { close(); }

awaitable<std::size_t> MemoryStream::read_some(std::span<std::byte> buf,
                                               boost::system::error_code& ec) {
  State& s = *state_;
  std::deque<std::byte>& in = s.data[1 - end_];
  for (;;) {
    if (s.closed[end_]) {
      ec = asio::error::operation_aborted;
      co_return 0;
    }
    if (!in.empty() && !buf.empty()) {
      const std::size_t n = std::min({buf.size(), in.size(), s.options.max_read});
      std::copy_n(in.begin(), n, buf.begin());
      in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
      ec = {};
      co_return n;
    }
    if (s.write_ended[1 - end_]) {
      if (s.cut)
        ec = asio::error::connection_reset;
      else
        ec = asio::error::eof;
      co_return 0;
    }
    co_await wait_signal(s.wake[end_]);
  }
}

awaitable<std::size_t> MemoryStream::write_some(std::span<const std::byte> buf,
                                                boost::system::error_code& ec) {
  // Every write yields first, as a real socket's completion would: the two ends interleave.
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  State& s = *state_;
  if (s.closed[end_] || s.write_ended[end_]) {
    if (s.cut)
      ec = asio::error::connection_reset;
    else
      ec = asio::error::operation_aborted;
    co_return 0;
  }
  if (s.closed[1 - end_]) {
    ec = asio::error::broken_pipe;
    co_return 0;
  }
  std::size_t n = std::min(buf.size(), s.options.max_write);
  bool cut_now = false;
  if (s.options.cut_after && s.moved + n >= s.options.cut_after) {
    n = static_cast<std::size_t>(s.options.cut_after - s.moved);
    cut_now = true;
  }
  s.data[end_].insert(s.data[end_].end(), buf.begin(),
                      buf.begin() + static_cast<std::ptrdiff_t>(n));
  s.moved += n;
  s.wake[1 - end_].cancel();
  if (cut_now) {
    s.cut = true;
    s.write_ended[0] = s.write_ended[1] = true;
    s.signal_all();
    if (n == 0) {
      ec = asio::error::connection_reset;
      co_return 0;
    }
  }
  ec = {};
  co_return n;
}

void MemoryStream::close() {
  State& s = *state_;
  if (s.closed[end_]) return;
  s.closed[end_] = true;
  s.write_ended[end_] = true;
  s.signal_all();
}

std::string MemoryStream::peer() const { return end_ == 0 ? "memory:server" : "memory:client"; }

awaitable<void> MemoryStream::connect(const ConnectTarget& target, boost::system::error_code& ec,
                                      const char*& stage) {
  State& s = *state_;
  stage = "connect";
  if (s.options.on_connect) s.options.on_connect(target);
  if (s.options.refuse) {
    ec = asio::error::connection_refused;
    co_return;
  }
  while (s.options.black_hole && !s.closed[end_]) co_await wait_signal(s.wake[end_]);
  ec = s.closed[end_] ? boost::system::error_code(asio::error::operation_aborted)
                      : boost::system::error_code();
}

std::pair<std::unique_ptr<MemoryStream>, std::unique_ptr<MemoryStream>> make_pipe(
    asio::io_context& io, PipeOptions options) {
  auto state = std::make_shared<MemoryStream::State>(io, std::move(options));
  return {std::make_unique<MemoryStream>(state, 0), std::make_unique<MemoryStream>(state, 1)};
}

}  // namespace citywatch::testing
