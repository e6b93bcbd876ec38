// lucid::Options — what a Cluster is opened with.
//
// Split from cluster.hpp so that the library's core (store, clock, event bus,
// executor: lib/core) can read the options without seeing the capabilities
// lucid::Cluster assembles. Embedders include <lucidnode/cluster.hpp> (or
// <lucidnode/lucidnode.hpp>), which includes this header.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "lucidnode/clock.hpp"
#include "lucidnode/export.hpp"

namespace lucid {
LUCID_PUBLIC_BEGIN

class Mailer;  // lucidnode/mail.hpp

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
  // The database (lucidnode/database.hpp): a SQLite file (created when
  // absent), sqlite:PATH, or a PostgreSQL URI "postgresql://[user@]host[:port]/dbname"
  // (the database must exist). Migrated on open. Anything else is refused.
  std::string database_path = "lucid.db";
  // PostgreSQL: a file whose first line is the password (0600 or stricter;
  // empty: none, libpq then uses the URI, PGPASSWORD or PGPASSFILE). Unused for SQLite.
  std::string database_password_file;
  // Ed25519 signing key (0600). Empty: database_path + ".key" for SQLite,
  // "lucid.key" in the working directory for PostgreSQL (every server of one
  // database must use the same key file). Created when absent (unless
  // read_only; a read-only open works without it).
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
  // Login mail goes to `mailer` (include/lucidnode/mail.hpp; lucid-server
  // plugs in SMTP there); empty: an OutboxMailer writing files to outbox_dir
  // (empty: "outbox" beside the database; "outbox" in the working directory
  // for PostgreSQL). Magic links start with
  // public_url. Lifetimes: login code/link 1 s..1 h, access token 1 s..1 day,
  // refresh token (and session) 1 min..366 days.
  std::shared_ptr<Mailer> mailer;
  std::string outbox_dir;
  std::string public_url = "http://localhost:8080";
  std::chrono::seconds login_ttl{300};
  std::chrono::seconds access_token_ttl{900};
  std::chrono::seconds refresh_token_ttl{std::chrono::hours(24 * 30)};
  // Network node (network-node.md): where the server keeps files (uploads,
  // services); empty means "<database directory>/data" ("data" in the working
  // directory for PostgreSQL). An Ed25519 login
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
  // The Docker daemon's unix socket (docs/workflows.md "Docker services").
  // Empty: DOCKER_HOST as Docker's own tools read it (unix:// only), else
  // /var/run/docker.sock.
  std::string docker_socket;
};

LUCID_PUBLIC_END
}  // namespace lucid
