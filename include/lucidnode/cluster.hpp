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

namespace lucid {

namespace detail { class ClusterCore; }

// Severity of a line given to Options::info_log.
enum class LogLevel { info, warning, error };

// Receives what the library has to say outside any call: today the failures
// of background work (periodic sweeps, write-behind flushing, posted jobs),
// which no caller is there to receive. See Options::info_log.
using InfoLog = std::function<void(LogLevel level, std::string_view message)>;

struct Options {
  // Where background failures go (LevelDB's info_log). Called on the
  // background executor's threads, possibly from several at once, and while
  // the failed job's thread waits: it must be thread-safe, quick, and must
  // not call back into the Cluster. An exception it throws is swallowed.
  // Empty (the default): such failures are dropped, as before; the work
  // they belong to retries on its next trigger either way.
  InfoLog info_log;
  // SQLite database file; created and migrated when absent.
  std::string database_path = "lucid.db";
  // Ed25519 signing key (0600). Empty: database_path + ".key". Created when absent
  // (unless read_only; a read-only open works without it).
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
  // A join request not approved within this (1 s..30 days) is removed: its
  // hostname is free again and its registration code unknown.
  std::chrono::seconds pending_join_ttl{7200};
  // Default storage quota of a new node, in GB.
  double default_quota_gb = 100;
  // Open without writing anything (no migration, no key creation, no
  // background writers); every state change then fails with Error(storage).
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
  // Cluster API (tasks.hpp): the default of the runtime setting
  // server.max_connections (1..1000000), and how often the executor checks
  // device liveness, running-task timeouts and delivery leases.
  std::int64_t max_connections = 10000;
  std::chrono::milliseconds task_sweep_interval{1000};
  // Gateway sessions, chunks and wallets (include/lucidnode/sessions.hpp,
  // wallets.hpp). Chunk files live under data_dir/sessions/ (data_dir is
  // below, with the network node's options). A chunk holds 1..max_chunk_bytes (1..16 MiB),
  // a session at most max_session_bytes (1 B..1 TiB) in at most 100,000
  // chunks. wallet_key: 32 bytes that encrypt generated wallets' private keys
  // at rest (crypto_secretbox); empty: wallets are never generated, only
  // registered by address.
  std::size_t max_chunk_bytes = 512 * 1024;
  std::int64_t max_session_bytes = 4LL * 1024 * 1024 * 1024;
  std::string wallet_key;
  // Gateway users and passwordless login (include/lucidnode/users.hpp).
  // Mail: SMTP through libcurl when smtp_url is set ("smtp://host:port",
  // "smtps://user:pass@host"; smtp_from then required), else files in
  // outbox_dir (empty: "outbox" beside the database). Magic links start with
  // public_url. Lifetimes: login code/link 1 s..1 h, access token 1 s..1 day,
  // refresh token (and session) 1 min..366 days.
  std::string smtp_url;
  std::string smtp_from;
  std::string outbox_dir;
  std::string public_url = "http://localhost:8080";
  std::chrono::seconds login_ttl{300};
  std::chrono::seconds access_token_ttl{900};
  std::chrono::seconds refresh_token_ttl{std::chrono::hours(24 * 30)};
  // Network node (network-node.md): where the server keeps files (uploads,
  // services); empty means "<database directory>/data". An Ed25519 login
  // challenge lives challenge_ttl (1 s..1 h); at most max_challenges
  // (1..10000000) are outstanding, at most max_challenges_per_client
  // (1..10000000; above max_challenges it is max_challenges) per client
  // (Network::issue_challenge). relay_mode / nat_mode: the modes of the
  // document's relay endpoints (403 outside them); relay_price_per_gb prices
  // relay sessions' earnings.
  std::string data_dir;
  std::chrono::seconds challenge_ttl{300};
  std::size_t max_challenges = 100000;
  std::size_t max_challenges_per_client = 16;
  bool relay_mode = false;
  bool nat_mode = false;
  double relay_price_per_gb = 0.01;
  // Workflow executor (docs/workflows.md): jobs of one execution running at
  // once (1..1024); the most STDOUT (and, separately, STDERR) one job may
  // write (1 KiB..64 MiB) before it is killed and fails.
  std::size_t workflow_max_parallel = 16;
  std::size_t workflow_max_output_bytes = 1024 * 1024;
};

// Point-in-time counts for monitoring (GET /api/v1/meta/metrics).
struct Gauges {
  std::vector<std::pair<std::string, std::int64_t>> nodes_by_status;     // registration status
  std::vector<std::pair<std::string, std::int64_t>> nodes_by_lifecycle;  // lifecycle state
  std::vector<std::pair<std::string, std::int64_t>> payouts_by_status;
  std::int64_t stats_queue = 0;           // stats samples waiting to be written
  std::int64_t pending_transactions = 0;  // ledger transactions not yet in a block
  std::int64_t block_height = 0;
  std::int64_t live_sessions = 0;         // login sessions not logged out or expired
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
  // Options::stats_queue_limit).
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
  std::unique_ptr<detail::ClusterCore> core_;
};

}  // namespace lucid
