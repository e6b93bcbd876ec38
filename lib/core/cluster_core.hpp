// The inside of lucid::Cluster: what every capability shares. Internal.
#pragma once

#include <asio.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

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

namespace lucid::detail {

// In-memory state of nodes that the hot paths (stats ingest, streams) read
// without touching the database. The database stays the source of truth; this
// is loaded from it at open and updated in the same call that commits a change.
struct NodesState {
  struct Card {  // the few record fields streams show
    std::string hostname;
    NodeStatus status = NodeStatus::pending;
    bool is_master = false;
    Lifecycle lifecycle = Lifecycle::inactive;
  };
  struct Live {
    std::optional<StatsSample> latest;
    std::optional<Timestamp> last_seen;
    std::int64_t seq = 0;  // samples received so far; slot = seq % history
  };
  struct QueuedSample {
    std::int64_t node_id;
    std::int64_t seq;
    StatsSample sample;
  };

  std::shared_mutex mu;  // guards cards, live, keys
  std::map<std::int64_t, Card> cards;
  std::unordered_map<std::int64_t, Live> live;
  std::unordered_map<std::string, std::int64_t> keys;  // sha256(api key) -> node id

  std::mutex queue_mu;  // guards queue
  std::vector<QueuedSample> queue;
  std::mutex flush_mu;  // one flush at a time, in order
};

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
  NodesState nodes_state;
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

  // Runs `task` every `interval` on the executor while started (an exception
  // it throws goes to opts.info_log; it runs again next time). Register before
  // start(). Capabilities use this for their background work.
  void every(std::chrono::milliseconds interval, std::function<void()> task);
  // Runs `task` once on the executor (when started; queued until then); an
  // exception it throws goes to opts.info_log.
  void post(std::function<void()> task);
  // The executor's io_context, for capabilities that drive timers and
  // asynchronous I/O on it (task leases, workflow child-process pipes).
  asio::io_context& io() { return io_; }
  // Runs `task` once on the executor soon (errors to opts.info_log); when the
  // executor is not running, runs it on the calling thread (mail delivery:
  // an embedder that never starts the executor still gets its mail). Thread-safe.
  void post_or_run(std::function<void()> task);
  bool running() const;

 private:
  struct Periodic {
    std::chrono::milliseconds interval;
    std::function<void()> task;
    std::unique_ptr<asio::steady_timer> timer;
  };
  void arm(Periodic& p);
  // Gives a background job's exception to opts.info_log (if set); never throws.
  void report_failure(const char* what, const std::exception& e) const noexcept;

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::vector<std::unique_ptr<Periodic>> periodic_;
  mutable std::mutex run_mu_;
  std::mutex timers_mu_;  // arm() vs stop()'s cancel; see arm()
  bool running_ = false;
  std::atomic<bool> stopping_{false};
};

// Loads the node caches from the database (at open, and after a failed commit).
void load_nodes_state(ClusterCore& core);

}  // namespace lucid::detail
