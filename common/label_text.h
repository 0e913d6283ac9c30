// Text from outside the project (a device's sysName or ifAlias, carried by an agent) made fit
// for a Prometheus label value, a report cell or a log line.
//
// Prometheus refuses a whole scrape whose text holds one label value that is not UTF-8, so a
// single switch with a Latin-1 port description ("B\xFCro"), or an ifAlias cut to its 63
// bytes in the middle of a character, would take every series of the collector away.
// label_text() keeps valid UTF-8 as it is and turns each byte that does not begin or continue
// a well-formed sequence (RFC 3629: no overlong forms, surrogates or code points above
// U+10FFFF) into U+FFFD, and removes control characters (C0 and DEL: NULs some agents pad
// ifAlias with, CR and LF that would start a new row in a CSV report).
#pragma once

#include <string>
#include <string_view>

namespace citywatch {

std::string label_text(std::string_view v);

}  // namespace citywatch
