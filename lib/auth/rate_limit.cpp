#include "lucidnode/rate_limit.hpp"

#include <array>
#include <cmath>
#include <mutex>
#include <unordered_map>

#include "lucidnode/error.hpp"

namespace lucid {

namespace {
constexpr std::size_t kShards = 16;
}

struct LUCID_HIDDEN RateLimiter::Impl {
  struct Bucket {
    double tokens;
    double last;  // seconds since epoch of the last refill
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Bucket> buckets;
  };
  std::shared_ptr<const Clock> clock;
  std::size_t max_per_shard;
  std::mutex rules_mu;
  std::unordered_map<std::string, RateRule> rules;
  std::array<Shard, kShards> shards;
};

RateLimiter::RateLimiter(std::shared_ptr<const Clock> clock, std::size_t max_buckets) : impl_(std::make_unique<Impl>()) {
  impl_->clock = clock ? std::move(clock) : std::make_shared<SystemClock>();
  impl_->max_per_shard = std::max<std::size_t>(1, max_buckets / kShards);
}

RateLimiter::~RateLimiter() = default;

void RateLimiter::configure(const std::string& category, RateRule rule) {
  if (rule.limit < 1) throw Error(Errc::invalid_argument, "rate limit must be at least 1", "limit");
  if (rule.window.count() < 1) throw Error(Errc::invalid_argument, "rate window must be at least 1 second", "window");
  if (rule.burst < 0) throw Error(Errc::invalid_argument, "burst must not be negative", "burst");
  std::lock_guard<std::mutex> lock(impl_->rules_mu);
  impl_->rules[category] = rule;
}

RateDecision RateLimiter::take(std::string_view category, std::string_view caller, std::int64_t cost) {
  RateRule rule;
  {
    std::lock_guard<std::mutex> lock(impl_->rules_mu);
    auto it = impl_->rules.find(std::string(category));
    if (it == impl_->rules.end()) return {};
    rule = it->second;
  }
  const double capacity = static_cast<double>(rule.burst > 0 ? rule.burst : rule.limit);
  const double rate = static_cast<double>(rule.limit) / static_cast<double>(rule.window.count());  // tokens/s
  const double now =
      std::chrono::duration<double>(impl_->clock->now().time_since_epoch()).count();

  std::string key;
  key.reserve(category.size() + caller.size() + 1);
  key.append(category).push_back('\0');
  key.append(caller);
  auto& shard = impl_->shards[std::hash<std::string>{}(key) % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.buckets.find(key);
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= impl_->max_per_shard) {
      // Evict buckets that have refilled completely: they carry no state.
      for (auto b = shard.buckets.begin(); b != shard.buckets.end();) {
        if (b->second.tokens + (now - b->second.last) * rate >= capacity) b = shard.buckets.erase(b); else ++b;
      }
      // Still full: drop an arbitrary one (a caller gains a fresh bucket,
      // which errs towards allowing, never towards unbounded memory).
      if (shard.buckets.size() >= impl_->max_per_shard) shard.buckets.erase(shard.buckets.begin());
    }
    it = shard.buckets.emplace(std::move(key), Impl::Bucket{capacity, now}).first;
  }
  auto& b = it->second;
  b.tokens = std::min(capacity, b.tokens + std::max(0.0, now - b.last) * rate);
  b.last = now;
  RateDecision d;
  d.limit = rule.limit;
  const double want = static_cast<double>(std::max<std::int64_t>(cost, 0));
  if (b.tokens >= want) {
    b.tokens -= want;
    d.allowed = true;
  } else {
    d.allowed = false;
    d.retry_after_seconds = static_cast<std::int64_t>(std::ceil((want - b.tokens) / rate));
  }
  d.remaining = static_cast<std::int64_t>(std::floor(b.tokens));
  d.reset_seconds = static_cast<std::int64_t>(std::ceil((capacity - b.tokens) / rate));
  return d;
}

}  // namespace lucid
