#include "server_env.hpp"

namespace lucid::server {

SnapshotCache::SnapshotCache(Cluster& cluster, Builder build)
    : cluster_(cluster), build_(build), sub_(cluster.events().subscribe([this](const Event&) {
        dirty_.store(true, std::memory_order_relaxed);
      })) {}

std::shared_ptr<const std::string> SnapshotCache::get() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  // Rebuilt when something changed (at most 4 times a second, however many
  // subscribers ask), and at least every second since liveness and the
  // timestamp move with time.
  const auto age = now - built_;
  if (!cached_ || age >= std::chrono::seconds(1) ||
      (dirty_.load(std::memory_order_relaxed) && age >= std::chrono::milliseconds(250))) {
    dirty_.store(false, std::memory_order_relaxed);
    cached_ = std::make_shared<const std::string>(build_(cluster_));
    built_ = now;
  }
  return cached_;
}

}  // namespace lucid::server
