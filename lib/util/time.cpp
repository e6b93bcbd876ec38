#include <cstdio>
#include <ctime>

#include "lucidnode/clock.hpp"

namespace lucid {

std::string format_rfc3339(Timestamp t, bool fraction) {
  using namespace std::chrono;
  const auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
  long long secs = us / 1000000;
  long long frac = us % 1000000;
  if (frac < 0) { frac += 1000000; --secs; }
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[96];
  if (fraction)
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  else
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

namespace {
bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}
}  // namespace

std::optional<Timestamp> parse_rfc3339(std::string_view s) {
  int Y, M, D, h, m, sec;
  if (!digits(s, 0, 4, Y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, M) || s[7] != '-' ||
      !digits(s, 8, 2, D) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, h) || s[13] != ':' ||
      !digits(s, 14, 2, m) || s[16] != ':' || !digits(s, 17, 2, sec))
    return std::nullopt;
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return std::nullopt;
  size_t pos = 19;
  long long micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t start = pos;
    int scale = 100000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (scale > 0) { micros += (s[pos] - '0') * scale; scale /= 10; }
      ++pos;
    }
    if (pos == start || pos - start > 9) return std::nullopt;
  }
  std::string_view zone = s.substr(pos);
  long long offset_seconds = 0;
  if (zone != "Z" && zone != "z") {
    int oh, om;
    if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || !digits(zone, 1, 2, oh) || zone[3] != ':' ||
        !digits(zone, 4, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset_seconds = (zone[0] == '+' ? 1 : -1) * (oh * 3600LL + om * 60LL);
  }
  std::tm tm{};
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  std::time_t tt = timegm(&tm);
  std::tm back{};
  gmtime_r(&tt, &back);
  if (back.tm_mday != D && sec != 60) return std::nullopt;  // e.g. Feb 30
  return Timestamp(std::chrono::seconds(tt - offset_seconds)) + std::chrono::microseconds(micros);
}

}  // namespace lucid
