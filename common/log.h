// Minimal logging to stderr, one line per event, with a syslog priority prefix ("<4>") that
// journald turns into the entry's priority (systemd's SyslogLevelPrefix), so a NOC engineer
// can filter warnings with `journalctl -p warning` and no logging library is needed.
//
// Thread-safety: each call writes one line with one fprintf, which stdio serialises.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace citywatch::log {

enum class Level { kError = 3, kWarning = 4, kInfo = 6, kDebug = 7 };

inline void write(Level level, std::string_view msg) {
  static constexpr const char* kNames[] = {"", "", "", "error", "warning", "", "info", "debug"};
  // Under systemd (JOURNAL_STREAM set) the "<N>" prefix carries the priority; on a terminal
  // it would only be noise.
  static const bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  const int n = static_cast<int>(level);
  if (journal)
    std::fprintf(stderr, "<%d>%s: %.*s\n", n, kNames[n], static_cast<int>(msg.size()), msg.data());
  else
    std::fprintf(stderr, "%s: %.*s\n", kNames[n], static_cast<int>(msg.size()), msg.data());
}
inline void error(std::string_view m) { write(Level::kError, m); }
inline void warning(std::string_view m) { write(Level::kWarning, m); }
inline void info(std::string_view m) { write(Level::kInfo, m); }

}  // namespace citywatch::log
