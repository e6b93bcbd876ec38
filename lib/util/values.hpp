// Checks and conversions of input and stored values that every capability
// uses (they lived in nodes/node_common.hpp, which made every area depend on
// nodes). Internal.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "lucidnode/clock.hpp"
#include "lucidnode/error.hpp"
#include "util/encoding.hpp"
#include "util/utf8.hpp"

namespace lucid::detail {

// Throws Error(invalid_argument, msg, field). Never returns.
[[noreturn]] inline void invalid(const std::string& field, const std::string& msg) {
  throw Error(Errc::invalid_argument, msg, field);
}

inline bool has_control_chars(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

// Throws invalid(field, ...) when `v` is empty but required, longer than
// `max` characters (UTF-8 code points), or holds control characters.
inline void check_text(const std::string& field, std::string_view v, std::size_t max, bool required) {
  if (required && v.empty()) invalid(field, field + " is required");
  if (utf8_length(v) > max) invalid(field, field + " must be at most " + std::to_string(max) + " characters");
  if (has_control_chars(v)) invalid(field, field + " must not contain control characters");
}

// Throws invalid(field, ...) unless lo <= v <= hi (and v is finite).
inline void check_range(const std::string& field, double v, double lo, double hi) {
  if (!std::isfinite(v) || v < lo || v > hi)
    invalid(field, field + " must be between " + std::to_string(static_cast<std::int64_t>(lo)) + " and " +
                       std::to_string(static_cast<std::int64_t>(hi)));
}

inline double round_to(double v, int decimals) {
  const double f = std::pow(10.0, decimals);
  return std::round(v * f) / f;
}

// A stored RFC 3339 time; the epoch when it does not parse.
inline Timestamp parse_stored(const std::string& s) {
  auto t = parse_rfc3339(s);
  return t ? *t : Timestamp{};
}

inline std::int64_t unix_us(Timestamp t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

// `prefix` followed by 16 random hex digits ("node_…", "pool_…").
inline std::string new_uid(const char* prefix) { return prefix + to_hex(random_bytes(8)); }

}  // namespace lucid::detail
