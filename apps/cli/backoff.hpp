// Retry delays for the agent: exponential, with jitter, honouring the
// server's Retry-After. Not thread-safe (one per retrying loop).
#pragma once

#include <algorithm>
#include <random>

#include "client.hpp"

namespace lucidctl {

class Backoff {
 public:
  // `max_seconds`: the longest delay the agent picks itself.
  explicit Backoff(int max_seconds) : max_(std::max(1, max_seconds)), rng_(std::random_device{}()) {}

  // The next delay in seconds after a failed request `r`: the exponential
  // step (1, 2, 4 ... max) with "equal jitter" (half of it fixed, half
  // random) so that many agents cut off at once do not come back in step;
  // never less than the answer's Retry-After (a server that is overloaded
  // says when), which is capped at an hour against a hostile value.
  double next(const HttpResult& r = {}) {
    const double step = delay_;
    delay_ = std::min<double>(delay_ * 2, max_);
    std::uniform_real_distribution<double> half(0, step / 2);
    double d = step / 2 + half(rng_);
    if (r.retry_after >= 0) d = std::max(d, static_cast<double>(std::min(r.retry_after, 3600)));
    return d;
  }
  // After a success: start from one second again.
  void reset() { delay_ = 1; }

 private:
  int max_;
  double delay_ = 1;
  std::mt19937 rng_;
};

}  // namespace lucidctl
