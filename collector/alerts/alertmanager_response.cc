#include "collector/alerts/alertmanager_response.h"

namespace citywatch::collector {

void limit_response_parser(AlertmanagerResponseParser& parser) {
  parser.header_limit(8 * 1024);
  parser.body_limit(kAlertmanagerResponseBodyLimit);
}

bool judge_response(const AlertmanagerResponse& res, PostError& error) {
  const unsigned code = res.result_int();
  if (code / 100 == 2) return true;
  error = {code == 401 || code == 403   ? "unauthorized"
           : code == 400 || code == 422 ? "rejected"
                                        : "http_status",
           "HTTP " + std::to_string(code) + ": " + printable(res.body().substr(0, 200))};
  return false;
}

std::string printable(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return s;
}

}  // namespace citywatch::collector
