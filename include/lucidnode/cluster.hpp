// lucid::Cluster — the whole control plane in one object.
//
// A Cluster owns the database, the clock, the event bus, the signing key and
// the background executor, and hands out each capability. Embedding lucidnode
// is constructing one Cluster from Options.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "lucidnode/auth.hpp"
#include "lucidnode/clock.hpp"
#include "lucidnode/events.hpp"
#include "lucidnode/ledger.hpp"
#include "lucidnode/network.hpp"
#include "lucidnode/nodes.hpp"
#include "lucidnode/payouts.hpp"
#include "lucidnode/pools.hpp"
#include "lucidnode/poot.hpp"
#include "lucidnode/rate_limit.hpp"
#include "lucidnode/workflows.hpp"

namespace lucid {

namespace detail { class ClusterCore; }

struct Options {
  // SQLite database file; created and migrated when absent.
  std::string database_path = "lucid.db";
  // Ed25519 signing key (0600). Empty: database_path + ".key". Created when absent
  // (unless read_only).
  std::string key_file;
  // Time source; default the system clock.
  std::shared_ptr<const Clock> clock;
  // Threads of the background executor (liveness, write-behind flushing, ...).
  int executor_threads = 1;
  // Stats samples kept per node (older ones are overwritten).
  int stats_history = 720;
  // How long a stats sample may wait in memory before it is written.
  std::chrono::milliseconds stats_flush_interval{200};
  // Bound of the write-behind queue; beyond it report_stats fails with unavailable.
  std::size_t stats_queue_limit = 200000;
  // A node with no stats for longer than this is stale.
  std::chrono::seconds stale_after{300};
  // A started node that reports no stats within this goes to lifecycle error.
  std::chrono::seconds start_timeout{90};
  // How often the executor completes due lifecycle transitions.
  std::chrono::milliseconds lifecycle_sweep_interval{1000};
  // Bound on outstanding join requests.
  std::int64_t max_pending_joins = 10000;
  // Default storage quota of a new node, in GB.
  double default_quota_gb = 100;
  // Open without writing anything (no migration, no key creation).
  bool read_only = false;
  // SQLite busy timeout.
  std::chrono::milliseconds busy_timeout{5000};
  // PoOT (docs/poot.md): a proof's timestamp may differ from the clock by at
  // most this (1 s..1 day); the score's trailing window (1 min..30 days) and
  // expected proof cadence (1 s..window); the largest decoded output_data
  // (1 B..16 MiB); how often the executor refreshes stored scores.
  std::chrono::seconds poot_freshness{300};
  std::chrono::seconds poot_window{3600};
  std::chrono::seconds poot_expected_interval{60};
  std::size_t poot_max_output_bytes = 65536;
  std::chrono::milliseconds poot_score_refresh{60000};
  // Payouts and ledger (docs/ledger.md): pending ledger transactions are
  // sealed into a block this often (10 ms..1 h); the payout processor runs
  // this often (1 ms..1 min), settling at most payout_chunk payouts per round
  // (1..100000); a batch holds at most max_payout_batch payouts (1..1000000).
  std::chrono::milliseconds block_time{5000};
  std::chrono::milliseconds payout_interval{10};
  std::size_t payout_chunk = 1000;
  std::size_t max_payout_batch = 10000;
  // Network node (network-node.md): where the server keeps files (uploads,
  // services); empty means "<database directory>/data". An Ed25519 login
  // challenge lives challenge_ttl (1 s..1 h); at most max_challenges
  // (1..10000000) are outstanding. relay_mode / nat_mode: the modes of the
  // document's relay endpoints (403 outside them); relay_price_per_gb prices
  // relay sessions' earnings.
  std::string data_dir;
  std::chrono::seconds challenge_ttl{300};
  std::size_t max_challenges = 100000;
  bool relay_mode = false;
  bool nat_mode = false;
  double relay_price_per_gb = 0.01;
  // Workflow executor (docs/workflows.md): jobs of one execution running at
  // once (1..1024); the most STDOUT (and, separately, STDERR) one job may
  // write (1 KiB..64 MiB) before it is killed and fails.
  std::size_t workflow_max_parallel = 16;
  std::size_t workflow_max_output_bytes = 1024 * 1024;
};

class Cluster {
 public:
  // Opens (creating and migrating when needed) the database and the key.
  // Errors: Error(storage) when the database cannot be opened, is from a newer
  // version of lucidnode, or is read-only-missing; Error(invalid_argument) for
  // bad options; Error(storage) when the key file is unreadable or not 0600.
  explicit Cluster(Options options);
  // Calls stop().
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Starts the background executor (liveness sweeps, stats flushing).
  // Idempotent. Without start(), everything works synchronously except that
  // buffered stats are written only on flush or stop.
  void start();
  // Flushes buffered writes and joins the executor. Idempotent; thread-safe.
  void stop();
  // A graceful in-process restart of the executor-driven subsystems: stop()
  // (flush buffered stats, join the executor), then drop outstanding login
  // challenges and cached tokens and reload the blacklist from the database,
  // then start() again. The database and the signing key stay open. Must not
  // be called from a task running on the executor. Thread-safe.
  void restart();

  Nodes& nodes();
  Pools& pools();
  Poot& poot();
  Payouts& payouts();
  Ledger& ledger();
  Network& network();
  // Services, workflows and their executor.
  Workflows& workflows();
  Auth& auth();
  // The shared limiter every API surface configures and uses.
  RateLimiter& rate_limiter();
  EventBus& events();
  const Clock& clock() const;
  const Options& options() const;
  // Schema version of the open database.
  int schema_version() const;

 private:
  std::unique_ptr<detail::ClusterCore> core_;
};

}  // namespace lucid
