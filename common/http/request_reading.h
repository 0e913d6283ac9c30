// How the metrics server reads a request: the bounds its parser works within and the answer
// a request that could not be read gets. Kept apart from the server's sessions so the HTTP
// fuzzer (fuzz/http_fuzz.cc) runs exactly this on any bytes.
//
// Thread-safety: pure functions.
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>

namespace citywatch::http {

// The connection's read buffer: a request's headers (max_header_bytes) and small body fit.
inline constexpr std::size_t kRequestBufferBytes = 16384;
// A small body is read (and ignored) so a POST is answered 405, not cut off; 413 beyond.
inline constexpr std::size_t kRequestBodyLimit = 4096;

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

void limit_request_parser(RequestParser& parser, std::size_t max_header_bytes);

// The answer to a request that could not be read: 431 (headers too large), 413 (body), 400
// (anything else malformed), or 0: the client went away (or timed out), so the connection
// closes without one.
unsigned status_for_read_error(const boost::beast::error_code& ec);

}  // namespace citywatch::http
