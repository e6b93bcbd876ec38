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

// Each capability's settings are one nested struct of Options (options.nodes,
// options.poot, ...). Every field's default is safe to run with; Cluster's
// constructor checks each bound given below and throws Error(invalid_argument)
// naming the field by its path ("poot.window") when one is out of range.

// Node registry and lifecycle (include/lucidnode/nodes.hpp).
struct NodeOptions {
  // Stats samples kept per node; older ones are overwritten. 1..100000;
  // default 720.
  int stats_history = 720;
  // How long a stats sample may wait in memory before it is written
  // (write-behind). At least 1 ms; default 200 ms.
  std::chrono::milliseconds stats_flush_interval{200};
  // Samples the write-behind queue holds; beyond it report_stats fails with
  // unavailable. 1..100000000; default 200000.
  std::size_t stats_queue_limit = 200000;
  // A node with no stats for longer than this is stale. At least 1 s;
  // default 300 s.
  std::chrono::seconds stale_after{300};
  // A started node that reports no stats within this goes to lifecycle
  // error. At least 1 s; default 90 s.
  std::chrono::seconds start_timeout{90};
  // How often the executor completes due lifecycle transitions. At least
  // 1 ms; default 1 s.
  std::chrono::milliseconds lifecycle_sweep_interval{1000};
  // Outstanding join requests; beyond it join fails with resource_exhausted.
  // 1..10000000; default 10000.
  std::int64_t max_pending_joins = 10000;
  // A join request not approved within this is removed: its hostname is free
  // again and its registration code unknown. 1 s..30 days; default 2 h.
  std::chrono::seconds pending_join_ttl{7200};
  // Storage quota of a new node, in GB. Positive; default 100.
  double default_quota_gb = 100;
};

// Proof of Online Time (docs/poot.md, include/lucidnode/poot.hpp).
struct PootOptions {
  // A proof's timestamp may differ from the clock by at most this.
  // 1 s..1 day; default 300 s.
  std::chrono::seconds freshness{300};
  // The score's trailing window. 1 min..30 days; default 1 h.
  std::chrono::seconds window{3600};
  // The proof cadence a node is expected to keep. 1 s..window; default 60 s.
  std::chrono::seconds expected_interval{60};
  // The largest decoded output_data of a proof, in bytes. 1..16 MiB;
  // default 64 KiB.
  std::size_t max_output_bytes = 65536;
  // How often the executor refreshes stored scores. At least 1 ms;
  // default 60 s.
  std::chrono::milliseconds score_refresh{60000};
};

// Ledger (docs/ledger.md, include/lucidnode/ledger.hpp).
struct LedgerOptions {
  // Pending ledger transactions are sealed into a block this often.
  // 10 ms..1 h; default 5 s.
  std::chrono::milliseconds block_time{5000};
};

// Payout processing (docs/ledger.md, include/lucidnode/payouts.hpp).
struct PayoutOptions {
  // How often the payout processor runs. 1 ms..1 min; default 10 ms.
  std::chrono::milliseconds interval{10};
  // Payouts settled per processor round at most. 1..100000; default 1000.
  std::size_t chunk = 1000;
  // Payouts one batch request may hold. 1..1000000; default 10000.
  std::size_t max_batch = 10000;
};

// Cluster API: devices and tasks (include/lucidnode/tasks.hpp).
struct TaskOptions {
  // The default of the runtime setting server.max_connections.
  // 1..1000000; default 10000.
  std::int64_t max_connections = 10000;
  // How often the executor checks device liveness, running-task timeouts
  // and delivery leases. At least 1 ms; default 1 s.
  std::chrono::milliseconds sweep_interval{1000};
};

// Gateway sessions, chunks and wallets (include/lucidnode/sessions.hpp,
// wallets.hpp). Chunk files live under Options::data_dir/sessions/.
struct GatewayOptions {
  // Bytes one chunk may hold. 1..16 MiB; default 512 KiB.
  std::size_t max_chunk_bytes = 512 * 1024;
  // Bytes one session may hold (in at most 100,000 chunks). 1 B..1 TiB;
  // default 4 GiB.
  std::int64_t max_session_bytes = 4LL * 1024 * 1024 * 1024;
  // 32 bytes that encrypt generated wallets' private keys at rest
  // (crypto_secretbox). Empty (the default): wallets are never generated,
  // only registered by address. Any other length is rejected.
  std::string wallet_key;
};

// Gateway users and passwordless login (include/lucidnode/users.hpp).
struct LoginOptions {
  // Where login mail goes (include/lucidnode/mail.hpp; lucid-server plugs in
  // SMTP here). Empty (the default): an OutboxMailer writing files to
  // outbox_dir.
  std::shared_ptr<Mailer> mailer;
  // The OutboxMailer's directory. Empty (the default): "outbox" beside the
  // database ("outbox" in the working directory for PostgreSQL).
  std::string outbox_dir;
  // The start of magic links (trailing slashes are dropped). 1..512
  // characters; default "http://localhost:8080".
  std::string public_url = "http://localhost:8080";
  // Lifetime of a login code and its magic link. 1 s..1 h; default 300 s.
  std::chrono::seconds code_ttl{300};
  // Lifetime of an access token. 1 s..1 day; default 15 min.
  std::chrono::seconds access_token_ttl{900};
  // Lifetime of a refresh token (and its session). 1 min..366 days;
  // default 30 days.
  std::chrono::seconds refresh_token_ttl{std::chrono::hours(24 * 30)};
};

// Network node (network-node.md, include/lucidnode/network.hpp).
struct NetworkOptions {
  // Lifetime of an Ed25519 login challenge. 1 s..1 h; default 300 s.
  std::chrono::seconds challenge_ttl{300};
  // Outstanding challenges at most (Network::issue_challenge).
  // 1..10000000; default 100000.
  std::size_t max_challenges = 100000;
  // Outstanding challenges per client at most. 1..10000000 (above
  // max_challenges it is max_challenges); default 16.
  std::size_t max_challenges_per_client = 16;
  // The modes of the document's relay endpoints (403 outside them).
  // Default off (both).
  bool relay_mode = false;
  bool nat_mode = false;
  // The price of relayed traffic per GB, which relay sessions' earnings are
  // computed from. 0..1e6; default 0.01.
  double relay_price_per_gb = 0.01;
};

// Workflow executor (docs/workflows.md, include/lucidnode/workflows.hpp).
struct WorkflowOptions {
  // Jobs of one execution running at once. 1..1024; default 16.
  std::size_t max_parallel = 16;
  // The most STDOUT (and, separately, STDERR) one job may write before it is
  // killed and fails, in bytes. 1 KiB..64 MiB; default 1 MiB.
  std::size_t max_output_bytes = 1024 * 1024;
  // The Docker daemon's unix socket (docs/workflows.md "Docker services").
  // Empty (the default): DOCKER_HOST as Docker's own tools read it (unix://
  // only), else /var/run/docker.sock.
  std::string docker_socket;
};

struct Options {
  // Where background failures go (LevelDB's info_log). Called on the
  // background executor's threads, possibly from several at once, and while
  // the failed job's thread waits: it must be thread-safe, quick, and must
  // not call back into the Cluster. An exception it throws is swallowed.
  // Empty (the default): such failures are dropped; the work they belong to
  // retries on its next trigger either way.
  InfoLog info_log;
  // The database (lucidnode/database.hpp): a SQLite file (created when
  // absent), sqlite:PATH, or a PostgreSQL URI "postgresql://[user@]host[:port]/dbname"
  // (the database must exist). Migrated on open. Anything else is refused.
  // Default "lucid.db".
  std::string database_path = "lucid.db";
  // PostgreSQL: a file whose first line is the password (0600 or stricter;
  // empty: none, libpq then uses the URI, PGPASSWORD or PGPASSFILE). Unused for SQLite.
  std::string database_password_file;
  // Ed25519 signing key (mode 0600). Created when absent (unless read_only;
  // a read-only open works without it). Empty (the default):
  // database_path + ".key" for SQLite, "lucid.key" in the working directory
  // for PostgreSQL (every server of one database must use the same key file).
  std::string key_file;
  // Time source. Empty (the default): the system clock.
  std::shared_ptr<const Clock> clock;
  // Threads of the background executor (liveness, write-behind flushing,
  // sweeps, ...). 1..64; default 1.
  int executor_threads = 1;
  // Open without writing anything (no migration, no key creation, no
  // background writers); every state change then fails with Error(storage).
  // Default false.
  bool read_only = false;
  // How long a statement waits for another connection's lock (SQLite busy
  // timeout). Zero or less: no waiting (SQLite's busy handler stays off).
  // Default 5 s.
  std::chrono::milliseconds busy_timeout{5000};
  // Where files are kept: workflow uploads and services, gateway session
  // chunks. Empty (the default): "data" beside the database ("data" in the
  // working directory for PostgreSQL).
  std::string data_dir;

  NodeOptions nodes;
  PootOptions poot;
  LedgerOptions ledger;
  PayoutOptions payouts;
  TaskOptions tasks;
  GatewayOptions gateway;
  LoginOptions login;
  NetworkOptions network;
  WorkflowOptions workflows;
};

LUCID_PUBLIC_END
}  // namespace lucid
