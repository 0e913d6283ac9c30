#include "common/transport/byte_stream.h"

#include <algorithm>

namespace citywatch {

boost::asio::awaitable<bool> read_exactly(ByteStream& s, std::span<std::byte> buf,
                                          boost::system::error_code& ec) {
  std::size_t done = 0;
  while (done < buf.size()) {
    const std::size_t n = co_await s.read_some(buf.subspan(done), ec);
    if (ec) co_return false;
    done += n;
  }
  co_return true;
}

boost::asio::awaitable<bool> write_all(ByteStream& s, std::span<const std::byte> buf,
                                       boost::system::error_code& ec) {
  const std::span<const std::byte> none;
  co_return co_await write_all(s, none, buf, ec);
}

boost::asio::awaitable<std::size_t> ByteStream::write_some_joined(std::span<const std::byte> head,
                                                                  std::span<const std::byte> tail,
                                                                  boost::system::error_code& ec) {
  co_return co_await write_some(head.empty() ? tail : head, ec);
}

boost::asio::awaitable<bool> write_all(ByteStream& s, std::span<const std::byte> head,
                                       std::span<const std::byte> tail,
                                       boost::system::error_code& ec) {
  const std::size_t total = head.size() + tail.size();
  std::size_t done = 0;
  while (done < total) {
    const std::size_t in_head = std::min(done, head.size());
    const std::size_t n =
        co_await s.write_some_joined(head.subspan(in_head), tail.subspan(done - in_head), ec);
    if (ec) co_return false;
    done += n;
  }
  co_return true;
}

}  // namespace citywatch
