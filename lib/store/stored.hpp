// Values as the database stores them: timestamps as RFC 3339 text, digests as
// blobs, nullable columns, public uids, microsecond times, rounded figures.
// Header-only; thread-safe (pure functions, or reads of the statement given).
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "lucidnode/clock.hpp"
#include "store/store.hpp"
#include "util/encoding.hpp"

namespace lucid::detail {

// A stored timestamp; the epoch for text that is not RFC 3339 (never written).
inline Timestamp parse_stored(const std::string& s) {
  auto t = parse_rfc3339(s);
  return t ? *t : Timestamp{};
}

inline std::optional<Timestamp> parse_stored_opt(const detail::Column& c) {
  if (c.is_null()) return std::nullopt;
  return parse_stored(c.as_text());
}

inline std::string blob(const Digest& d) { return std::string(reinterpret_cast<const char*>(d.data()), d.size()); }

inline double round_to(double v, int decimals) {
  const double f = std::pow(10.0, decimals);
  return std::round(v * f) / f;
}

// Column `i` of the current row, nullopt when NULL.
template <class T>
std::optional<T> opt_col(detail::Statement& q, int i);
template <>
inline std::optional<std::int64_t> opt_col(detail::Statement& q, int i) {
  if (q.column(i).is_null()) return std::nullopt;
  return q.column(i).as_int64();
}
template <>
inline std::optional<double> opt_col(detail::Statement& q, int i) {
  if (q.column(i).is_null()) return std::nullopt;
  return q.column(i).as_double();
}
template <>
inline std::optional<std::string> opt_col(detail::Statement& q, int i) {
  if (q.column(i).is_null()) return std::nullopt;
  return q.column(i).as_text();
}

// A new public uid: `prefix` and 16 random hex digits ("node_", "pool_", ...).
inline std::string new_uid(const char* prefix) { return prefix + to_hex(random_bytes(8)); }

inline std::int64_t unix_us(Timestamp t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

}  // namespace lucid::detail
