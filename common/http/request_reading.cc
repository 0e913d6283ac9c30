#include "common/http/request_reading.h"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <cstdint>

namespace citywatch::http {

namespace bhttp = boost::beast::http;

void limit_request_parser(RequestParser& parser, std::size_t max_header_bytes) {
  parser.header_limit(static_cast<std::uint32_t>(max_header_bytes));
  parser.body_limit(kRequestBodyLimit);
}

unsigned status_for_read_error(const boost::beast::error_code& ec) {
  namespace asio = boost::asio;
  if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::ssl::error::stream_truncated ||
      ec == boost::beast::error::timeout)
    return 0;
  if (ec == bhttp::error::header_limit) return 431;
  if (ec == bhttp::error::body_limit || ec == bhttp::error::buffer_overflow) return 413;
  return 400;
}

}  // namespace citywatch::http
