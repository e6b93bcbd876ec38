// RateLimiter (include/lucidnode/rate_limit.hpp): token buckets per
// (category, caller), driven by a test clock.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "lucidnode/error.hpp"
#include "lucidnode/rate_limit.hpp"
#include "support.hpp"

using namespace lucid;
using namespace std::chrono_literals;
using testsupport::code_of;
using testsupport::field_of;

namespace {

struct Limiter {
  std::shared_ptr<OffsetClock> clock = std::make_shared<OffsetClock>();
  RateLimiter rl;
  explicit Limiter(std::size_t max_buckets = 100000) : rl(clock, max_buckets) {}
};

RateRule rule(std::int64_t limit, std::int64_t window_s, std::int64_t burst = 0) {
  RateRule r;
  r.limit = limit;
  r.window = std::chrono::seconds(window_s);
  r.burst = burst;
  return r;
}

}  // namespace

TEST_CASE("rate_limit: configure rejects a limit < 1 - a window < 1 s and a negative burst") {
  Limiter l;
  CHECK(code_of([&] { l.rl.configure("c", rule(0, 60)); }) == Errc::invalid_argument);
  CHECK(field_of([&] { l.rl.configure("c", rule(0, 60)); }) == "limit");
  CHECK(code_of([&] { l.rl.configure("c", rule(-5, 60)); }) == Errc::invalid_argument);
  CHECK(code_of([&] { l.rl.configure("c", rule(1, 0)); }) == Errc::invalid_argument);
  CHECK(field_of([&] { l.rl.configure("c", rule(1, 0)); }) == "window");
  CHECK(field_of([&] { l.rl.configure("c", rule(1, -1)); }) == "window");
  CHECK(field_of([&] { l.rl.configure("c", rule(1, 60, -1)); }) == "burst");
  // A rejected rule configures nothing: the category stays unlimited.
  auto d = l.rl.take("c", "a");
  CHECK(d.allowed);
  CHECK(d.limit == 0);
  // The boundaries themselves are accepted.
  CHECK_NOTHROW(l.rl.configure("c", rule(1, 1)));
  CHECK(l.rl.take("c", "a").allowed);
  CHECK_FALSE(l.rl.take("c", "a").allowed);
}

TEST_CASE("rate_limit: an unconfigured category is always allowed with limit 0") {
  Limiter l;
  l.rl.configure("other", rule(1, 60));
  for (int i = 0; i < 1000; ++i) {
    auto d = l.rl.take("none", "caller", 1000000);
    REQUIRE(d.allowed);
    CHECK(d.limit == 0);
    CHECK(d.remaining == 0);
    CHECK(d.retry_after_seconds == 0);
  }
}

TEST_CASE("rate_limit: a full bucket admits exactly `limit` requests - then refuses with headers' values") {
  Limiter l;
  l.rl.configure("api", rule(5, 60));  // one token per 12 s
  for (int i = 0; i < 5; ++i) {
    auto d = l.rl.take("api", "alice");
    REQUIRE(d.allowed);
    CHECK(d.limit == 5);
    CHECK(d.remaining == 4 - i);
    CHECK(d.retry_after_seconds == 0);
    CHECK(d.reset_seconds == 12 * (i + 1));
  }
  auto d = l.rl.take("api", "alice");
  CHECK_FALSE(d.allowed);
  CHECK(d.limit == 5);
  CHECK(d.remaining == 0);
  CHECK(d.retry_after_seconds == 12);
  CHECK(d.reset_seconds == 60);
  // A refusal takes nothing: after 12 s exactly one token is back.
  l.clock->advance(12s);
  d = l.rl.take("api", "alice");
  CHECK(d.allowed);
  CHECK(d.remaining == 0);
  d = l.rl.take("api", "alice");
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after_seconds == 12);
  // Partial refill: 6 s is half a token, still refused, retry in 6 s.
  l.clock->advance(6s);
  d = l.rl.take("api", "alice");
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after_seconds == 6);
  // A long idle refills only up to capacity, never beyond.
  l.clock->advance(std::chrono::hours(10));
  for (int i = 0; i < 5; ++i) REQUIRE(l.rl.take("api", "alice").allowed);
  CHECK_FALSE(l.rl.take("api", "alice").allowed);
}

TEST_CASE("rate_limit: callers and categories have separate buckets") {
  Limiter l;
  l.rl.configure("a", rule(2, 60));
  l.rl.configure("b", rule(1, 60));
  CHECK(l.rl.take("a", "x").allowed);
  CHECK(l.rl.take("a", "x").allowed);
  CHECK_FALSE(l.rl.take("a", "x").allowed);
  CHECK(l.rl.take("a", "y").allowed);  // another caller
  CHECK(l.rl.take("b", "x").allowed);  // another category
  CHECK_FALSE(l.rl.take("b", "x").allowed);
  // The key is not a plain concatenation: ("ab","c") and ("a","bc") differ.
  l.rl.configure("ab", rule(1, 60));
  l.rl.configure("a", rule(1, 60));
  CHECK(l.rl.take("ab", "c").allowed);
  CHECK_FALSE(l.rl.take("ab", "c").allowed);
  CHECK(l.rl.take("a", "bc").allowed);
}

TEST_CASE("rate_limit: burst sets capacity - limit/window set the refill rate") {
  Limiter l;
  l.rl.configure("burst", rule(60, 60, 10));  // 1 token/s, capacity 10
  for (int i = 0; i < 10; ++i) {
    auto d = l.rl.take("burst", "c");
    REQUIRE(d.allowed);
    CHECK(d.limit == 60);
    CHECK(d.remaining == 9 - i);
  }
  auto d = l.rl.take("burst", "c");
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after_seconds == 1);
  CHECK(d.reset_seconds == 10);
  l.clock->advance(3s);
  for (int i = 0; i < 3; ++i) CHECK(l.rl.take("burst", "c").allowed);
  CHECK_FALSE(l.rl.take("burst", "c").allowed);
}

TEST_CASE("rate_limit: cost takes several tokens - a cost above capacity is never allowed") {
  Limiter l;
  l.rl.configure("bytes", rule(1000, 10));  // 100 bytes/s, capacity 1000
  auto d = l.rl.take("bytes", "c", 600);
  CHECK(d.allowed);
  CHECK(d.remaining == 400);
  CHECK(d.reset_seconds == 6);
  d = l.rl.take("bytes", "c", 401);
  CHECK_FALSE(d.allowed);
  CHECK(d.remaining == 400);
  CHECK(d.retry_after_seconds == 1);
  d = l.rl.take("bytes", "c", 400);
  CHECK(d.allowed);
  CHECK(d.remaining == 0);
  // Exactly the capacity is allowed on a full bucket; one more never is.
  l.clock->advance(std::chrono::hours(1));
  CHECK_FALSE(l.rl.take("bytes", "c", 1001).allowed);
  l.clock->advance(std::chrono::hours(1000));
  CHECK_FALSE(l.rl.take("bytes", "c", 1001).allowed);
  CHECK(l.rl.take("bytes", "c", 1000).allowed);
}

TEST_CASE("rate_limit: reconfiguring a category changes its rule for later takes") {
  Limiter l;
  l.rl.configure("c", rule(1, 60));
  CHECK(l.rl.take("c", "x").allowed);
  CHECK_FALSE(l.rl.take("c", "x").allowed);
  l.rl.configure("c", rule(100, 1));  // 100 tokens/s
  l.clock->advance(1s);
  auto d = l.rl.take("c", "x");
  CHECK(d.allowed);
  CHECK(d.limit == 100);
}

TEST_CASE("rate_limit: bounded buckets - eviction errs towards allowing - never over-refusing") {
  Limiter l(16);  // one bucket per shard
  l.rl.configure("c", rule(1, 3600));
  // Many distinct callers each get their first request through, however many.
  for (int i = 0; i < 5000; ++i) REQUIRE(l.rl.take("c", "caller-" + std::to_string(i)).allowed);
  // A caller whose bucket is the only one in play is still limited.
  Limiter one(100000);
  one.rl.configure("c", rule(1, 3600));
  CHECK(one.rl.take("c", "z").allowed);
  CHECK_FALSE(one.rl.take("c", "z").allowed);
}

TEST_CASE("rate_limit: several threads on one bucket never over-admit") {
  Limiter l;
  l.rl.configure("c", rule(200, 86400));  // refill: one token per 432 s of wall time
  constexpr int kThreads = 8, kEach = 100, kRounds = 30;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> allowed{0};
    std::atomic<int> ready{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t)
      ts.emplace_back([&] {
        ready.fetch_add(1);
        while (ready.load() < kThreads) std::this_thread::yield();
        for (int i = 0; i < kEach; ++i)
          if (l.rl.take("c", "shared").allowed) allowed.fetch_add(1);
      });
    for (auto& t : ts) t.join();
    // 800 attempts against a full bucket of 200 tokens.
    REQUIRE(allowed.load() == 200);
    l.clock->advance(std::chrono::hours(24));  // full again for the next round
  }
}

TEST_CASE("rate_limit: threads on distinct callers each get exactly their own limit") {
  Limiter l;
  l.rl.configure("c", rule(10, 86400));
  constexpr int kThreads = 6;
  std::vector<int> got(kThreads, 0);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i)
        if (l.rl.take("c", "caller-" + std::to_string(t)).allowed) ++got[t];
    });
  for (auto& t : ts) t.join();
  for (int t = 0; t < kThreads; ++t) CHECK(got[t] == 10);
}
