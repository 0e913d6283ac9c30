// MemoryPipe: two connected in-memory ByteStreams, for unit tests of what speaks the wire
// protocol (the agent's forwarder, the collector's ingest session).
//
// What one end writes the other reads, in order, on the test's io_context. The options
// make the pipe behave like a bad network: writes and reads that move a byte at a time,
// a connection cut after any byte (what was written before the cut is still read, then the
// stream ends; writes fail), a connect that never completes or is refused. Nothing is
// dropped silently: a cut is seen as the end of the stream, as TCP would show it.
//
// Thread-safety: none; everything on one io_context thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <utility>

#include "common/transport/byte_stream.h"

namespace citywatch::testing {

struct PipeOptions {
  std::size_t max_write = std::numeric_limits<std::size_t>::max();  // bytes per write_some
  std::size_t max_read = std::numeric_limits<std::size_t>::max();   // bytes per read_some
  std::uint64_t cut_after = 0;  // bytes (both directions) before the connection is cut; 0: never
  bool black_hole = false;      // connect() waits until the stream is closed
  bool refuse = false;          // connect() fails at once (connection refused)
  std::function<void(const ConnectTarget&)> on_connect;  // told of every connect() call
};

class MemoryStream final : public ClientStream {
 public:
  struct State;
  MemoryStream(std::shared_ptr<State> state, int end);
  ~MemoryStream() override;

  boost::asio::awaitable<std::size_t> read_some(std::span<std::byte> buf,
                                                boost::system::error_code& ec) override;
  boost::asio::awaitable<std::size_t> write_some(std::span<const std::byte> buf,
                                                 boost::system::error_code& ec) override;
  void close() override;
  std::string peer() const override;
  boost::asio::awaitable<void> connect(const ConnectTarget& target, boost::system::error_code& ec,
                                       const char*& stage) override;

 private:
  std::shared_ptr<State> state_;
  int end_;
};

// {client end, server end}.
std::pair<std::unique_ptr<MemoryStream>, std::unique_ptr<MemoryStream>> make_pipe(
    boost::asio::io_context& io, PipeOptions options = {});

}  // namespace citywatch::testing
