// Reading Alertmanager's answer to a POST of alerts: the bounds the response parser works
// within, and what the answer means for the batch. Kept apart from the sink's coroutines so
// the HTTP fuzzer (fuzz/http_fuzz.cc) runs exactly this on any bytes.
//
// Thread-safety: pure functions.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <string>

namespace citywatch::collector {

// Bounded, not only the body: Beast's parser looks for the end of a chunk-size line (its
// extensions) and of the trailer without a limit of its own, so an Alertmanager (or what
// answers in its place) sending "1;" and then bytes without a CRLF would grow an unbounded
// buffer until the deadline. Past this the read fails (buffer_overflow), counted as read.
inline constexpr std::size_t kAlertmanagerResponseBuffer = 80 * 1024;

using AlertmanagerResponseParser =
    boost::beast::http::response_parser<boost::beast::http::string_body>;

// Header and body limits of the answer (8 KiB, 64 KiB).
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
bool judge_response(const boost::beast::http::response<boost::beast::http::string_body>& res,
                    PostError& error);

// What the other side wrote, fit for one log line: control bytes become '?'.
std::string printable(std::string s);

}  // namespace citywatch::collector
