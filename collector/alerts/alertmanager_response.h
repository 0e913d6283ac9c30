// Reading Alertmanager's answer to a POST of alerts: the bounds the response parser works
// within, and what the answer means for the batch. Kept apart from the sink's coroutines so
// the HTTP fuzzer (fuzz/http_fuzz.cc) runs exactly this on any bytes.
//
// Thread-safety: pure functions.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/optional.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

namespace citywatch::collector {

// Bounded, not only the body: Beast's parser looks for the end of a chunk-size line (its
// extensions) and of the trailer without a limit of its own, so an Alertmanager (or what
// answers in its place) sending "1;" and then bytes without a CRLF would grow an unbounded
// buffer until the deadline. Past this the read fails (buffer_overflow), counted as read.
inline constexpr std::size_t kAlertmanagerResponseBuffer = 80 * 1024;

inline constexpr std::size_t kAlertmanagerResponseBodyLimit = 64 * 1024;

// Beast's string_body, with the body limit kept by the body itself. Beast 1.74's response
// parser can reach the body of an answer whose Content-Length is past its body_limit (found
// by http_fuzz: the header split across reads, a length of 9e16), and string_body's reader
// then reserves whatever the length claims and appends whatever comes. This reader refuses
// such a length, and any byte past the limit, with body_limit.
struct AlertmanagerResponseBody {
  using value_type = std::string;
  static std::uint64_t size(const value_type& body) { return body.size(); }

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(boost::beast::http::header<isRequest, Fields>&, value_type& body) : body_(body) {}
    void init(const boost::optional<std::uint64_t>& length, boost::system::error_code& ec) {
      if (length && *length > kAlertmanagerResponseBodyLimit) {
        ec = boost::beast::http::error::body_limit;
        return;
      }
      if (length) body_.reserve(static_cast<std::size_t>(*length));
      ec = {};
    }
    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
      const std::size_t n = boost::asio::buffer_size(buffers);
      if (n > kAlertmanagerResponseBodyLimit - body_.size()) {
        ec = boost::beast::http::error::body_limit;
        return 0;
      }
      const std::size_t old = body_.size();
      body_.resize(old + n);
      boost::asio::buffer_copy(boost::asio::buffer(body_.data() + old, n), buffers);
      ec = {};
      return n;
    }
    void finish(boost::system::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

using AlertmanagerResponse = boost::beast::http::response<AlertmanagerResponseBody>;
using AlertmanagerResponseParser = boost::beast::http::response_parser<AlertmanagerResponseBody>;

// Header and body limits of the answer (8 KiB, kAlertmanagerResponseBodyLimit).
void limit_response_parser(AlertmanagerResponseParser& parser);

// Why an attempt failed, as a bounded label value.
struct PostError {
  std::string reason;  // resolve, connect, tls, write, read, timeout, unauthorized, rejected,
                       // http_status
  std::string detail;  // for the log; never holds a credential
};

// What a complete answer means: true for 2xx; otherwise false and `error` says why.
// 400 and 422: Alertmanager refused alerts of the batch as invalid (it keeps the valid ones),
// so the same batch would be refused again ("rejected"); 401 and 403 are "unauthorized";
// anything else ("http_status") may pass on a retry.
bool judge_response(const AlertmanagerResponse& res, PostError& error);

// What the other side wrote, fit for one log line: control bytes become '?'.
std::string printable(std::string s);

}  // namespace citywatch::collector
