// TimeZone: conversion between UTC instants and local civil time in an IANA zone, read from
// the system tz database (/usr/share/zoneinfo, TZif format, RFC 8536).
//
// Why not std::chrono::zoned_time: g++ 12's libstdc++ does not ship the tzdb part of C++20
// chrono. Why not localtime_r with TZ=: that mutates the process environment (a global) and
// is not thread-safe. This is a small, immutable TZif reader instead. Debian ships "fat"
// TZif files, whose explicit transitions run to 2037; beyond the last transition the last
// offset is used (the POSIX footer rule is not evaluated), which is documented in
// docs/uptime.md.
//
// DST edges are explicit: to_utc() of a local time that does not exist (the hour skipped in
// spring) moves forward by the gap (02:30 on a spring-forward day is 03:30 daylight time);
// a local time that exists twice (the hour repeated in autumn) takes the earlier instant.
//
// Thread-safety: immutable after load(); share freely.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace citywatch::collector::uptime {

struct CivilTime {
  int year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..31
  int hour = 0;
  int minute = 0;
  int second = 0;
  friend bool operator==(const CivilTime&, const CivilTime&) = default;
};

// Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's algorithms).
std::int64_t days_from_civil(int year, int month, int day);
CivilTime civil_from_days(std::int64_t days);
// 0 = Monday .. 6 = Sunday.
int weekday_from_days(std::int64_t days);
int days_in_month(int year, int month);
// Parses "YYYY-MM-DD" or "YYYY-MM-DD HH:MM[:SS]" (also with 'T'); false if malformed.
bool parse_civil(const std::string& text, CivilTime& out);

class TimeZone {
 public:
  // UTC.
  TimeZone();
  // "UTC", or a zone name such as "Europe/Berlin" under `dir`.
  static Status load(const std::string& name, TimeZone& out,
                     const std::string& dir = "/usr/share/zoneinfo");

  const std::string& name() const { return name_; }
  // Offset from UTC, in seconds, in effect at the UTC instant.
  std::int32_t offset_at(std::int64_t utc_s) const;
  CivilTime to_local(std::int64_t utc_s) const;
  // The UTC instant of a local civil time (gap: moved forward; overlap: the earlier one).
  std::int64_t to_utc(const CivilTime& local) const;

 private:
  std::string name_ = "UTC";
  std::vector<std::int64_t> transitions_;  // UTC seconds, ascending
  std::vector<std::int32_t> offsets_;      // offset from transitions_[i] on
  std::int32_t initial_offset_ = 0;        // before the first transition
};

}  // namespace citywatch::collector::uptime
