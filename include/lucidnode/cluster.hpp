// lucid::Cluster — the whole control plane in one object.
//
// A Cluster owns the database, the clock, the event bus, the signing key and
// the background executor, and hands out each capability. Embedding lucidnode
// is constructing one Cluster from Options.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lucidnode/api_keys.hpp"
#include "lucidnode/auth.hpp"
#include "lucidnode/clock.hpp"
#include "lucidnode/events.hpp"
#include "lucidnode/export.hpp"
#include "lucidnode/ledger.hpp"
#include "lucidnode/network.hpp"
#include "lucidnode/nodes.hpp"
#include "lucidnode/options.hpp"
#include "lucidnode/payouts.hpp"
#include "lucidnode/pools.hpp"
#include "lucidnode/poot.hpp"
#include "lucidnode/rate_limit.hpp"
#include "lucidnode/tasks.hpp"
#include "lucidnode/users.hpp"
#include "lucidnode/sessions.hpp"
#include "lucidnode/wallets.hpp"
#include "lucidnode/workflows.hpp"

namespace lucid {

namespace detail { class ClusterImpl; }
LUCID_PUBLIC_BEGIN

// Point-in-time counts for monitoring (GET /api/v1/meta/metrics).
struct Gauges {
  std::vector<std::pair<std::string, std::int64_t>> nodes_by_status;     // registration status
  std::vector<std::pair<std::string, std::int64_t>> nodes_by_lifecycle;  // lifecycle state
  std::vector<std::pair<std::string, std::int64_t>> payouts_by_status;
  std::int64_t stats_queue = 0;           // stats samples waiting to be written
  std::int64_t pending_transactions = 0;  // ledger transactions not yet in a block
  std::int64_t block_height = 0;
  std::int64_t live_sessions = 0;         // login sessions not logged out or expired
  std::vector<std::pair<std::string, std::int64_t>> nodes_by_health;    // liveness: online, stale, offline
  std::vector<std::pair<std::string, std::int64_t>> devices_by_state;   // "registered", "removed"
  std::vector<std::pair<std::string, std::int64_t>> tasks_by_status;    // every status that has tasks
  std::int64_t task_queue = 0;            // tasks waiting for a node (pending or queued)
  // Replicas (several servers on one PostgreSQL database): whether this
  // server coordinates with others, and whether it is the leader that runs
  // the cluster-wide background work (always true on SQLite).
  bool replicated = false;
  bool leader = false;
};

// What Cluster::health() found.
struct Health {
  bool database = false;  // a read transaction succeeded
  bool executor = false;  // the background executor ran a task in time
  std::string database_error;
  std::string executor_error;
};

// Thread-safety: after construction, every method may be called from many
// threads at once (start/stop included); the capability objects it hands out
// are thread-safe themselves. The destructor must not race with other calls.
class Cluster {
 public:
  // Opens (creating and migrating when needed) the database and the key.
  // With Options::read_only nothing is written: no migration, no key
  // creation, and the key file may be absent (then auth() and
  // approve_by_code fail with unavailable; reads and ledger verification work).
  // Errors: Error(storage) when the database cannot be opened, is from a newer
  // version of lucidnode, or is missing on a read-only open;
  // Error(invalid_argument) (field named) for bad options; Error(storage)
  // when the key file is unreadable or not 0600.
  explicit Cluster(Options options);
  // Calls stop().
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Starts the background executor (liveness sweeps, stats flushing, PoOT
  // score refresh, payout processing, block sealing; on a read-only cluster
  // none of these is scheduled). Idempotent; thread-safe; does not throw
  // except std::system_error when a thread cannot be created. Without
  // start(), everything works synchronously except that buffered stats are
  // written only on flush or stop.
  void start();
  // Flushes buffered writes and joins the executor. Idempotent; thread-safe;
  // never throws (a failed final flush is dropped: the loss is bounded by
  // Options::nodes.stats_queue_limit).
  void stop();
  // A graceful in-process restart of the executor-driven subsystems: stop()
  // (flush buffered stats, join the executor), then drop outstanding login
  // challenges and cached tokens and reload the blacklist from the database,
  // then start() again. The database and the signing key stay open. Must not
  // be called from a task running on the executor. Thread-safe.
  void restart();

  // The capabilities. Each reference lives as long as the Cluster; none of
  // these accessors throws, except auth().
  Nodes& nodes();
  Pools& pools();
  Poot& poot();
  Payouts& payouts();
  Ledger& ledger();
  // Network node: Ed25519 login keys, challenges, peers, blacklist, relay.
  Network& network();
  // Services, workflows and their executor.
  Workflows& workflows();
  // Token issuing and verification with the cluster's signing key.
  // Errors: Error(unavailable) on a read-only cluster opened without its key file.
  Auth& auth();
  // Devices, tasks and their scheduler; runtime settings.
  Tasks& tasks();
  Settings& settings();
  // Gateway: upload sessions with manifests, wallets, trust policies, users.
  Sessions& sessions();
  Wallets& wallets();
  TrustPolicies& trust_policies();
  Users& users();
  // Admin API keys for the cluster API.
  ApiKeys& api_keys();
  // The shared limiter every API surface configures and uses.
  RateLimiter& rate_limiter();
  EventBus& events();
  const Clock& clock() const;
  // The options in effect (defaults filled in: key_file, clock).
  const Options& options() const;
  // Checks the database (a read) and the executor (runs a task on it, waiting
  // at most `timeout`). Never throws for what it checks; thread-safe.
  Health health(std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
  // Counts for monitoring, from one read transaction. Errors: storage.
  Gauges gauges();
  // The directory login mail goes to when no SMTP server is configured.
  std::string outbox_dir() const;
  // Schema version of the open database. Errors: storage.
  int schema_version() const;

 private:
  std::unique_ptr<detail::ClusterImpl> impl_;  // lib/cluster/cluster_impl.hpp
};

LUCID_PUBLIC_END
}  // namespace lucid
