// What routes share besides the Cluster: server-level settings and caches.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lucidnode/lucidnode.hpp"

namespace lucid::server {

namespace ws { class Hub; }

// The all-nodes stats snapshot, encoded once and shared by every stream
// subscriber: rebuilt only when the event bus reports a change or liveness may
// have moved (at most once per second).
class SnapshotCache {
 public:
  using Builder = std::string (*)(Cluster&);
  SnapshotCache(Cluster& cluster, Builder build);
  std::shared_ptr<const std::string> get();

 private:
  Cluster& cluster_;
  Builder build_;
  Subscription sub_;
  std::mutex mu_;
  std::atomic<bool> dirty_{true};
  std::chrono::steady_clock::time_point built_{};
  std::shared_ptr<const std::string> cached_;
};

class Router;

struct ServerEnv {
  ServerEnv(Cluster& c, SnapshotCache::Builder b) : snapshot(c, b) {}
  OffsetClock* test_clock = nullptr;  // set only with --test-clock
  // Where and since when the server listens (cluster status, config).
  std::string host;
  std::uint16_t port = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::shared_ptr<ws::Hub> ws_hub;     // GET /api/ws clients
  SnapshotCache snapshot;
  const Router* router = nullptr;  // for /meta/metrics and /meta/health
  std::string environment = "production";  // /meta/info (--environment)
  std::vector<std::string> features;       // /meta/info: what this server offers
  // POST /api/v1/chain/transactions: largest canonical payload, in bytes
  // (--max-transaction-bytes).
  std::size_t max_transaction_bytes = 16 * 1024;
  // Open client connections (the HTTP server's count), for the metrics;
  // unset before the server listens.
  std::function<std::size_t()> active_connections;
  // GET /metrics: the scrape token (--metrics-token-file); empty: admin
  // credentials only.
  std::string metrics_token;
};

}  // namespace lucid::server
