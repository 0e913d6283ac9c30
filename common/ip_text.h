// IpAddr as text: "192.0.2.1", "2001:db8::1" (inet_ntop), "-" for no address. For the
// control path, logs, labels and JSON output: it allocates.
#pragma once

#include <string>

#include "common/record.h"

namespace citywatch {

std::string to_string(const IpAddr& a);

}  // namespace citywatch
