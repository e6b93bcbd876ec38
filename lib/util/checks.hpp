// Input checks every capability uses: each throws Error(invalid_argument) with
// the offending field named. Header-only; thread-safe (pure functions).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "lucidnode/error.hpp"
#include "util/utf8.hpp"

namespace lucid::detail {

[[noreturn]] inline void invalid(const std::string& field, const std::string& msg) {
  throw Error(Errc::invalid_argument, msg, field);
}

inline bool has_control_chars(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

inline void check_text(const std::string& field, std::string_view v, std::size_t max, bool required) {
  if (required && v.empty()) invalid(field, field + " is required");
  if (utf8_length(v) > max) invalid(field, field + " must be at most " + std::to_string(max) + " characters");
  if (has_control_chars(v)) invalid(field, field + " must not contain control characters");
}

inline void check_range(const std::string& field, double v, double lo, double hi) {
  if (!std::isfinite(v) || v < lo || v > hi)
    invalid(field, field + " must be between " + std::to_string(static_cast<std::int64_t>(lo)) + " and " +
                       std::to_string(static_cast<std::int64_t>(hi)));
}

}  // namespace lucid::detail
