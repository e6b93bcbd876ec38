// Time in lucidnode: an injectable Clock, UTC timestamps, RFC 3339 text.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "lucidnode/export.hpp"

namespace lucid {
LUCID_PUBLIC_BEGIN

using Timestamp = std::chrono::system_clock::time_point;

// Source of "now" for every time-dependent rule (liveness, token expiry, ...).
// Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp now() const = 0;
};

// The wall clock.
class SystemClock final : public Clock {
 public:
  Timestamp now() const override { return std::chrono::system_clock::now(); }
};

// The wall clock plus an adjustable offset: tests (and lucid-server's
// --test-clock mode) move time forward without sleeping. Thread-safe.
class OffsetClock final : public Clock {
 public:
  Timestamp now() const override {
    return std::chrono::system_clock::now() + std::chrono::microseconds(offset_us_.load());
  }
  void advance(std::chrono::microseconds by) { offset_us_.fetch_add(by.count()); }
  std::chrono::microseconds offset() const { return std::chrono::microseconds(offset_us_.load()); }

 private:
  std::atomic<long long> offset_us_{0};
};

// "2025-12-29T07:00:00Z" (whole seconds) or with microseconds when `fraction`.
std::string format_rfc3339(Timestamp t, bool fraction = false);
// Parses RFC 3339 ("...Z" or a "+hh:mm"/"-hh:mm" offset, optional fraction),
// converting to UTC. nullopt if malformed.
std::optional<Timestamp> parse_rfc3339(std::string_view text);

LUCID_PUBLIC_END
}  // namespace lucid
