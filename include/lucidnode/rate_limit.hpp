// A token-bucket rate limiter keyed by (category, caller): one instance serves
// every API surface, each configuring its own categories.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "lucidnode/clock.hpp"
#include "lucidnode/export.hpp"

namespace lucid {
LUCID_PUBLIC_BEGIN

struct RateRule {
  std::int64_t limit = 60;              // requests allowed per window (bucket capacity)
  std::chrono::seconds window{60};      // the bucket refills `limit` tokens per window
  std::int64_t burst = 0;               // capacity if > 0 (else `limit`)
};

struct RateDecision {
  bool allowed = true;
  std::int64_t limit = 0;      // for X-RateLimit-Limit
  std::int64_t remaining = 0;  // whole tokens left after this request
  std::int64_t reset_seconds = 0;        // until the bucket is full again
  std::int64_t retry_after_seconds = 0;  // when refused: until one token is back
};

// Thread-safe. Buckets are sharded by key; idle full buckets are evicted so
// memory stays bounded by max_buckets however many callers appear.
class RateLimiter {
 public:
  explicit RateLimiter(std::shared_ptr<const Clock> clock, std::size_t max_buckets = 100000);
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Sets (or replaces) a category's rule. Throws Error(invalid_argument) for a
  // limit < 1 or a window < 1 s.
  void configure(const std::string& category, RateRule rule);
  // Takes `cost` tokens (default one request; bytes for a bandwidth
  // category) for `caller` in `category`. An unconfigured category is always
  // allowed (limit 0). A cost above the bucket's capacity is never allowed.
  RateDecision take(std::string_view category, std::string_view caller, std::int64_t cost = 1);

 private:
  struct LUCID_HIDDEN_FWD Impl;
  std::unique_ptr<Impl> impl_;
};

LUCID_PUBLIC_END
}  // namespace lucid
