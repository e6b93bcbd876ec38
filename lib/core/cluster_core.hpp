// The inside of lucid::Cluster: what every capability shares. Internal.
#pragma once

#include <chrono>
#include <functional>
#include <memory>


#include "lucidnode/api_keys.hpp"
#include "lucidnode/auth.hpp"
#include "lucidnode/cluster.hpp"
#include "lucidnode/events.hpp"
#include "lucidnode/ledger.hpp"
#include "lucidnode/network.hpp"
#include "lucidnode/nodes.hpp"
#include "lucidnode/payouts.hpp"
#include "lucidnode/pools.hpp"
#include "lucidnode/poot.hpp"
#include "lucidnode/rate_limit.hpp"
#include "lucidnode/tasks.hpp"
#include "lucidnode/users.hpp"
#include "lucidnode/sessions.hpp"
#include "lucidnode/wallets.hpp"
#include "lucidnode/workflows.hpp"
#include "store/store.hpp"
#include "util/encoding.hpp"

namespace asio { class io_context; }

namespace lucid::detail {

class NodeCache;

class ClusterCore {
 public:
  explicit ClusterCore(Options o);
  ~ClusterCore();

  void start();
  void stop();

  Options opts;
  std::shared_ptr<const Clock> clock;
  std::unique_ptr<Store> store;
  std::unique_ptr<Auth> auth;
  EventBus bus;
  Digest code_key{};  // keys registration-code derivation and lookup hashes
  bool has_key = false;  // false only for a read-only open without the key file
  // code_key, or Error(unavailable) when there is no key.
  const Digest& require_code_key() const;
  // The signing key's Auth; Error(unavailable) when opened read-only without it.
  Auth& require_auth() const;
  Nodes nodes{*this};
  Pools pools{*this};
  Ledger ledger{*this};
  Payouts payouts{*this};
  Poot poot{*this};
  Sessions sessions{*this};
  Wallets wallets{*this};
  TrustPolicies trust_policies{*this};
  Network network{*this};
  Workflows workflows{*this};
  RateLimiter rate_limiter{clock};
  Settings settings{*this};
  Tasks tasks{*this};
  Users users{*this};
  ApiKeys api_keys{*this};

  // The nodes cache, owned by lib/nodes (nodes/node_cache.hpp says what other
  // areas may ask of it).
  NodeCache& node_cache() { return *nodes.cache_; }

  // Runs `task` every `interval` on the executor while started (an exception
  // it throws goes to opts.info_log; it runs again next time). Register before
  // start(). Capabilities use this for their background work.
  void every(std::chrono::milliseconds interval, std::function<void()> task);
  // Runs `task` once on the executor (when started; queued until then); an
  // exception it throws goes to opts.info_log.
  void post(std::function<void()> task);
  // The executor's io_context, for capabilities that drive timers and
  // asynchronous I/O on it (task leases, workflow child-process pipes); they
  // include <asio.hpp> themselves.
  asio::io_context& io();
  // Runs `task` once on the executor soon (errors to opts.info_log); when the
  // executor is not running, runs it on the calling thread (mail delivery:
  // an embedder that never starts the executor still gets its mail). Thread-safe.
  void post_or_run(std::function<void()> task);
  bool running() const;

 private:
  // Gives a background job's exception to opts.info_log (if set); never throws.
  void report_failure(const char* what, const std::exception& e) const noexcept;

  // The io_context, its threads and the periodic timers (cluster.cpp): asio
  // stays out of this header, which every area includes.
  struct Executor;
  std::unique_ptr<Executor> exec_;
};

}  // namespace lucid::detail
