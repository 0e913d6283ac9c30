// libFuzzer target: HTTP from outside, on both sides of the daemons.
//   - First byte 'A': the bytes are an answer from Alertmanager (or whatever answers in its
//     place) to the collector's POST of alerts: read with the sink's own bounds
//     (collector/alerts/alertmanager_response.h), then judged (2xx, rejected, unauthorized,
//     another status) as the sink does; a failed attempt must name its reason, and the log
//     detail must hold no control bytes.
//   - Anything else: requests to a daemon's /metrics endpoint, read as the metrics server
//     reads them (common/http/request_reading.h), up to eight on one kept-alive connection;
//     each read error must map to an answer (400, 413, 431) or a close, a body must stay
//     within its limit, and the Authorization header goes through the basic-auth parser.
// The second byte sets how many bytes each read from the "socket" returns (1 to 256), so a
// request split across packets at any point is covered. Seeds: real requests (curl) and
// real Alertmanager answers (fuzz/http_seeds.sh).
#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "collector/alerts/alertmanager_response.h"
#include "common/http/basic_auth.h"
#include "common/http/request_reading.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

// A socket that returns the input a few bytes at a time, then end of stream.
class MemoryStream {
 public:
  MemoryStream(const std::uint8_t* data, std::size_t size, std::size_t chunk)
      : data_(data), size_(size), chunk_(chunk) {}
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    if (pos_ == size_) {
      ec = asio::error::eof;
      return 0;
    }
    ec = {};
    std::size_t want = std::min(chunk_, size_ - pos_);
    const std::size_t n = asio::buffer_copy(buffers, asio::buffer(data_ + pos_, want));
    pos_ += n;
    return n;
  }
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    boost::system::error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t chunk_;
  std::size_t pos_ = 0;
};

void alertmanager_answer(MemoryStream& stream) {
  using namespace citywatch::collector;
  beast::flat_buffer buffer(kAlertmanagerResponseBuffer);
  AlertmanagerResponseParser parser;
  limit_response_parser(parser);
  boost::system::error_code ec;
  bhttp::read(stream, buffer, parser, ec);
  if (buffer.size() > kAlertmanagerResponseBuffer) __builtin_trap();
  if (ec) return;  // counted "read" by the sink
  if (parser.get().body().size() > kAlertmanagerResponseBodyLimit) __builtin_trap();
  PostError error;
  if (judge_response(parser.get(), error)) return;
  if (error.reason != "unauthorized" && error.reason != "rejected" && error.reason != "http_status")
    __builtin_trap();
  for (const char c : error.detail)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) __builtin_trap();
}

void metrics_requests(MemoryStream& stream) {
  using namespace citywatch::http;
  beast::flat_buffer buffer(kRequestBufferBytes);
  for (int i = 0; i < 8; ++i) {
    RequestParser parser;
    limit_request_parser(parser, 8192);
    boost::system::error_code ec;
    bhttp::read(stream, buffer, parser, ec);
    if (ec) {
      const unsigned status = status_for_read_error(ec);
      if (status != 0 && status != 400 && status != 413 && status != 431) __builtin_trap();
      return;  // answered (or closed): the server ends the connection
    }
    const auto& req = parser.get();
    if (req.body().size() > kRequestBodyLimit) __builtin_trap();
    std::string user, password;
    const auto authorization = req[bhttp::field::authorization];
    (void)parse_basic_authorization({authorization.data(), authorization.size()}, user, password);
    const std::string target(req.target());
    (void)target.substr(0, target.find('?'));
    if (!req.keep_alive()) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const bool answer = data[0] == 'A';
  const std::size_t chunk = std::size_t{data[1]} + 1;
  MemoryStream stream(data + 2, size - 2, chunk);
  if (answer)
    alertmanager_answer(stream);
  else
    metrics_requests(stream);
  return 0;
}
