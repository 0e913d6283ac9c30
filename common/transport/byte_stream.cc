#include "common/transport/byte_stream.h"

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
  std::size_t done = 0;
  while (done < buf.size()) {
    const std::size_t n = co_await s.write_some(buf.subspan(done), ec);
    if (ec) co_return false;
    done += n;
  }
  co_return true;
}

}  // namespace citywatch
