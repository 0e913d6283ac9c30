#include "common/ip_text.h"

#include <arpa/inet.h>

namespace citywatch {

std::string to_string(const IpAddr& a) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (a.family == IpAddr::Family::kV4)
    inet_ntop(AF_INET, a.bytes.data(), buf, sizeof buf);
  else if (a.family == IpAddr::Family::kV6)
    inet_ntop(AF_INET6, a.bytes.data(), buf, sizeof buf);
  else
    return "-";
  return buf;
}

}  // namespace citywatch
