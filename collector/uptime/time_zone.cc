#include "collector/uptime/time_zone.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace citywatch::collector::uptime {

std::int64_t days_from_civil(int year, int month, int day) {
  const std::int64_t y = static_cast<std::int64_t>(year) - (month <= 2 ? 1 : 0);
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

CivilTime civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  CivilTime c;
  c.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  c.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  c.year = static_cast<int>(yoe + era * 400 + (c.month <= 2 ? 1 : 0));
  return c;
}

int weekday_from_days(std::int64_t days) {
  // 1970-01-01 was a Thursday (3 when Monday is 0).
  return static_cast<int>(((days % 7) + 7 + 3) % 7);
}

int days_in_month(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[(month - 1) % 12];
}

bool parse_civil(const std::string& text, CivilTime& out) {
  CivilTime c;
  char sep = 0;
  int n = 0;
  const int got = std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &c.year, &c.month, &c.day, &n);
  if (got != 3) return false;
  std::size_t pos = static_cast<std::size_t>(n);
  if (pos < text.size()) {
    sep = text[pos];
    if (sep != ' ' && sep != 'T') return false;
    int m = 0;
    const std::string rest = text.substr(pos + 1);
    if (std::sscanf(rest.c_str(), "%2d:%2d:%2d%n", &c.hour, &c.minute, &c.second, &m) == 3) {
      if (static_cast<std::size_t>(m) != rest.size()) return false;
    } else if (c.second = 0; std::sscanf(rest.c_str(), "%2d:%2d%n", &c.hour, &c.minute, &m) == 2) {
      if (static_cast<std::size_t>(m) != rest.size()) return false;
    } else {
      return false;
    }
  }
  if (c.month < 1 || c.month > 12 || c.day < 1 || c.day > days_in_month(c.year, c.month) ||
      c.hour < 0 || c.hour > 23 || c.minute < 0 || c.minute > 59 || c.second < 0 || c.second > 59)
    return false;
  out = c;
  return true;
}

TimeZone::TimeZone() = default;

namespace {

std::int64_t be(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  if (n == 4) return static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
  return static_cast<std::int64_t>(v);
}

}  // namespace

Status TimeZone::load(const std::string& name, TimeZone& out, const std::string& dir) {
  if (name == "UTC" || name == "Etc/UTC" || name == "Z") {
    out = TimeZone();
    out.name_ = name;
    return Status::ok();
  }
  if (name.empty() || name.front() == '/' || name.find("..") != std::string::npos)
    return Status::error("time zone '" + name + "': expected an IANA name like Europe/Berlin");
  const std::string file = dir + "/" + name;
  // A zone name that is a directory (Europe, America/Indiana) made the read below throw and
  // end the process (found by config_fuzz). TZif files are a few KiB: cap what is read.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    return Status::error("time zone '" + name + "': no such zone (" + file +
                         (std::filesystem::is_directory(file, ec) ? " is a directory)" : ")"));
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::error("time zone '" + name + "': no such zone (" + file + ")");
  constexpr std::size_t kMaxZoneFile = 1 << 20;
  std::vector<unsigned char> b(kMaxZoneFile + 1);
  in.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(b.size()));
  b.resize(static_cast<std::size_t>(in.gcount()));
  if (b.size() > kMaxZoneFile)
    return Status::error("time zone '" + name + "': " + file + ": larger than 1 MiB");
  const auto bad = [&](const char* what) {
    return Status::error("time zone '" + name + "': " + file + ": " + what);
  };
  // RFC 8536 section 3.1: a 44-byte header, then the version-1 data block (32-bit times);
  // version 2+ repeats header and data with 64-bit times, which are the ones read here.
  constexpr std::size_t kHeader = 44;
  struct Counts {
    std::int64_t isut, isstd, leap, time, type, chars;
  };
  const auto counts_at = [&](std::size_t off, Counts& c) {
    if (off + kHeader > b.size() || std::string(b.begin() + off, b.begin() + off + 4) != "TZif")
      return false;
    const unsigned char* p = b.data() + off + 20;
    c = {be(p, 4), be(p + 4, 4), be(p + 8, 4), be(p + 12, 4), be(p + 16, 4), be(p + 20, 4)};
    return c.isut >= 0 && c.isstd >= 0 && c.leap >= 0 && c.time >= 0 && c.type > 0 &&
           c.chars >= 0 && c.time < 100000 && c.type < 256;
  };
  Counts c1{};
  if (!counts_at(0, c1)) return bad("not a TZif file");
  if (b[4] < '2') return bad("TZif version 1 is not supported (no 64-bit data)");
  const std::size_t v1_len = static_cast<std::size_t>(c1.time * 5 + c1.type * 6 + c1.chars +
                                                      c1.leap * 8 + c1.isstd + c1.isut);
  const std::size_t h2 = kHeader + v1_len;
  Counts c{};
  if (!counts_at(h2, c)) return bad("truncated or malformed version-2 header");
  const std::size_t data = h2 + kHeader;
  const std::size_t need = data + static_cast<std::size_t>(c.time * 9 + c.type * 6);
  if (need > b.size()) return bad("truncated data block");
  TimeZone z;
  z.name_ = name;
  const unsigned char* times = b.data() + data;
  const unsigned char* idx = times + c.time * 8;
  const unsigned char* types = idx + c.time;
  std::vector<std::int32_t> type_off(static_cast<std::size_t>(c.type));
  for (std::int64_t i = 0; i < c.type; ++i)
    type_off[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(be(types + i * 6, 4));
  z.initial_offset_ = type_off[0];
  for (std::int64_t i = 0; i < c.time; ++i) {
    const unsigned t = idx[i];
    if (t >= type_off.size()) return bad("transition names a type that does not exist");
    z.transitions_.push_back(be(times + i * 8, 8));
    z.offsets_.push_back(type_off[t]);
  }
  if (!std::is_sorted(z.transitions_.begin(), z.transitions_.end()))
    return bad("transitions out of order");
  out = std::move(z);
  return Status::ok();
}

std::int32_t TimeZone::offset_at(std::int64_t utc_s) const {
  const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc_s);
  if (it == transitions_.begin()) return initial_offset_;
  return offsets_[static_cast<std::size_t>(it - transitions_.begin() - 1)];
}

CivilTime TimeZone::to_local(std::int64_t utc_s) const {
  const std::int64_t local = utc_s + offset_at(utc_s);
  std::int64_t days = local / 86400;
  std::int64_t secs = local % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  CivilTime c = civil_from_days(days);
  c.hour = static_cast<int>(secs / 3600);
  c.minute = static_cast<int>(secs / 60 % 60);
  c.second = static_cast<int>(secs % 60);
  return c;
}

std::int64_t TimeZone::to_utc(const CivilTime& l) const {
  const std::int64_t local =
      days_from_civil(l.year, l.month, l.day) * 86400 + l.hour * 3600 + l.minute * 60 + l.second;
  // Offsets change at most once within a day here, so the offsets a day either side are the
  // only candidates. A candidate is right when the offset at its UTC instant is itself.
  const std::int32_t before = offset_at(local - 86400);
  const std::int32_t after = offset_at(local + 86400);
  std::int64_t best = 0;
  bool found = false;
  for (const std::int32_t o : {before, after}) {
    const std::int64_t u = local - o;
    if (offset_at(u) == o && (!found || u < best)) {
      best = u;
      found = true;
    }
  }
  // None fits: the local time falls in a gap (spring forward). Read it with the offset in
  // force before the gap, which lands as far after the gap's end as it was after its start.
  return found ? best : local - before;
}

}  // namespace citywatch::collector::uptime
