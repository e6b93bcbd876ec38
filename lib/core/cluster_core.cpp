// The core every capability shares (core/cluster_core.hpp): option
// validation, the store, the signing-key derived secrets and the executor.
#include "core/cluster_core.hpp"

#include <asio.hpp>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "lucidnode/database.hpp"
#include "lucidnode/error.hpp"

namespace lucid {
namespace detail {

namespace {
Options validated(Options o) {
  if (o.database_path.empty()) throw Error(Errc::invalid_argument, "database_path is empty", "database_path");
  // A PostgreSQL database has no directory to put files beside: they go to
  // the working directory unless set (docs/decisions.md, issue 14).
  const DatabaseSpec db = parse_database(o.database_path);  // refuses unsupported ones
  const bool postgres = db.kind == DatabaseKind::postgres;
  if (!postgres && !o.database_password_file.empty())
    throw Error(Errc::invalid_argument, "database_password_file is for a PostgreSQL database", "database_password_file");
  if (o.key_file.empty()) o.key_file = postgres ? "lucid.key" : db.target + ".key";
  if (postgres && o.data_dir.empty()) o.data_dir = "data";
  if (o.outbox_dir.empty()) {
    const auto dir = std::filesystem::path(db.target).parent_path();
    o.outbox_dir = postgres ? std::string("outbox") : ((dir.empty() ? std::filesystem::path(".") : dir) / "outbox").string();
  }
  if (!o.clock) o.clock = std::make_shared<SystemClock>();
  if (o.executor_threads < 1 || o.executor_threads > 64)
    throw Error(Errc::invalid_argument, "executor_threads must be 1..64", "executor_threads");
  if (o.stats_history < 1 || o.stats_history > 100000)
    throw Error(Errc::invalid_argument, "stats_history must be 1..100000", "stats_history");
  if (o.stats_flush_interval.count() < 1)
    throw Error(Errc::invalid_argument, "stats_flush_interval must be positive", "stats_flush_interval");
  if (o.start_timeout.count() < 1) throw Error(Errc::invalid_argument, "start_timeout must be positive", "start_timeout");
  if (o.lifecycle_sweep_interval.count() < 1)
    throw Error(Errc::invalid_argument, "lifecycle_sweep_interval must be positive", "lifecycle_sweep_interval");
  if (o.pending_join_ttl.count() < 1 || o.pending_join_ttl.count() > 30 * 86400)
    throw Error(Errc::invalid_argument, "pending_join_ttl must be 1 second..30 days", "pending_join_ttl");
  if (o.stale_after.count() < 1) throw Error(Errc::invalid_argument, "stale_after must be positive", "stale_after");
  if (o.default_quota_gb <= 0) throw Error(Errc::invalid_argument, "default_quota_gb must be positive", "default_quota_gb");
  if (o.poot_freshness.count() < 1 || o.poot_freshness.count() > 86400)
    throw Error(Errc::invalid_argument, "poot_freshness must be 1..86400 seconds", "poot_freshness");
  if (o.poot_window.count() < 60 || o.poot_window.count() > 30 * 86400)
    throw Error(Errc::invalid_argument, "poot_window must be 60 seconds..30 days", "poot_window");
  if (o.poot_expected_interval.count() < 1 || o.poot_expected_interval > o.poot_window)
    throw Error(Errc::invalid_argument, "poot_expected_interval must be 1 second..poot_window", "poot_expected_interval");
  if (o.poot_max_output_bytes < 1 || o.poot_max_output_bytes > 16 * 1024 * 1024)
    throw Error(Errc::invalid_argument, "poot_max_output_bytes must be 1..16777216", "poot_max_output_bytes");
  if (o.poot_score_refresh.count() < 1)
    throw Error(Errc::invalid_argument, "poot_score_refresh must be positive", "poot_score_refresh");
  if (o.block_time.count() < 10 || o.block_time.count() > 3600000)
    throw Error(Errc::invalid_argument, "block_time must be 10 ms..1 hour", "block_time");
  if (o.payout_interval.count() < 1 || o.payout_interval.count() > 60000)
    throw Error(Errc::invalid_argument, "payout_interval must be 1 ms..1 minute", "payout_interval");
  if (o.payout_chunk < 1 || o.payout_chunk > 100000)
    throw Error(Errc::invalid_argument, "payout_chunk must be 1..100000", "payout_chunk");
  if (o.max_connections < 1 || o.max_connections > 1000000)
    throw Error(Errc::invalid_argument, "max_connections must be 1..1000000", "max_connections");
  if (o.task_sweep_interval.count() < 1)
    throw Error(Errc::invalid_argument, "task_sweep_interval must be positive", "task_sweep_interval");
  if (o.max_payout_batch < 1 || o.max_payout_batch > 1000000)
    throw Error(Errc::invalid_argument, "max_payout_batch must be 1..1000000", "max_payout_batch");
  if (o.login_ttl.count() < 1 || o.login_ttl.count() > 3600)
    throw Error(Errc::invalid_argument, "login_ttl must be 1 second..1 hour", "login_ttl");
  if (o.access_token_ttl.count() < 1 || o.access_token_ttl.count() > 86400)
    throw Error(Errc::invalid_argument, "access_token_ttl must be 1 second..1 day", "access_token_ttl");
  if (o.refresh_token_ttl.count() < 60 || o.refresh_token_ttl > std::chrono::hours(24 * 366))
    throw Error(Errc::invalid_argument, "refresh_token_ttl must be 1 minute..366 days", "refresh_token_ttl");
  if (o.public_url.empty() || o.public_url.size() > 512)
    throw Error(Errc::invalid_argument, "public_url must be 1..512 characters", "public_url");
  while (o.public_url.size() > 1 && o.public_url.back() == '/') o.public_url.pop_back();
  if (o.max_chunk_bytes < 1 || o.max_chunk_bytes > 16 * 1024 * 1024)
    throw Error(Errc::invalid_argument, "max_chunk_bytes must be 1..16777216", "max_chunk_bytes");
  if (o.max_session_bytes < 1 || o.max_session_bytes > (1LL << 40))
    throw Error(Errc::invalid_argument, "max_session_bytes must be 1 byte..1 TiB", "max_session_bytes");
  if (!o.wallet_key.empty() && o.wallet_key.size() != 32)
    throw Error(Errc::invalid_argument, "wallet_key must be 32 bytes", "wallet_key");
  if (o.data_dir.empty()) {
    const auto slash = db.target.rfind('/');
    o.data_dir = (slash == std::string::npos ? std::string(".") : db.target.substr(0, slash)) + "/data";
  }
  if (o.challenge_ttl.count() < 1 || o.challenge_ttl.count() > 3600)
    throw Error(Errc::invalid_argument, "challenge_ttl must be 1 second..1 hour", "challenge_ttl");
  if (o.max_challenges < 1 || o.max_challenges > 10000000)
    throw Error(Errc::invalid_argument, "max_challenges must be 1..10000000", "max_challenges");
  if (o.max_challenges_per_client < 1 || o.max_challenges_per_client > 10000000)
    throw Error(Errc::invalid_argument, "max_challenges_per_client must be 1..10000000", "max_challenges_per_client");
  if (o.workflow_max_parallel < 1 || o.workflow_max_parallel > 1024)
    throw Error(Errc::invalid_argument, "workflow_max_parallel must be 1..1024", "workflow_max_parallel");
  if (o.workflow_max_output_bytes < 1024 || o.workflow_max_output_bytes > 64 * 1024 * 1024)
    throw Error(Errc::invalid_argument, "workflow_max_output_bytes must be 1 KiB..64 MiB", "workflow_max_output_bytes");
  if (!(o.relay_price_per_gb >= 0 && o.relay_price_per_gb <= 1e6))
    throw Error(Errc::invalid_argument, "relay_price_per_gb must be 0..1e6", "relay_price_per_gb");
  return o;
}
}  // namespace

// The executor: one io_context run by Options::executor_threads threads
// while started, and the periodic work registered with every().
struct ClusterCore::Executor {
  explicit Executor(const ClusterCore& c) : core(c) {}
  struct Periodic {
    std::chrono::milliseconds interval;
    std::function<void()> task;
    std::unique_ptr<asio::steady_timer> timer;
  };
  // Schedules p's next run (unless stopping).
  void arm(Periodic& p);

  const ClusterCore& core;  // for report_failure
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<Periodic>> periodic;
  mutable std::mutex run_mu;
  std::mutex timers_mu;  // arm() vs stop()'s cancel; see arm()
  bool running = false;
  std::atomic<bool> stopping{false};
};

ClusterCore::ClusterCore(Options o)
    : opts(validated(std::move(o))), clock(opts.clock), exec_(std::make_unique<Executor>(*this)) {
  StoreConfig cfg{opts.database_path, opts.read_only, opts.busy_timeout, 8, {}};
  if (!opts.database_password_file.empty()) cfg.password = read_password_file(opts.database_password_file);
  store = std::make_unique<Store>(std::move(cfg));
}

void ClusterCore::set_signing_key(std::string_view secret_key) {
  // The registration-code key is derived from the signing key so that one
  // 0600 file holds every server secret.
  code_key = hmac_sha256(sha256(secret_key.substr(0, 32)), "lucidnode registration codes v1");
  has_key = true;
}

const Digest& ClusterCore::require_code_key() const {
  if (!has_key)
    throw Error(Errc::unavailable, "registration codes need the signing key: the cluster was opened read-only without it");
  return code_key;
}

Auth& ClusterCore::require_auth() const {
  if (!auth)
    throw Error(Errc::unavailable, "no signing key: the cluster was opened read-only without its key file");
  return *auth;
}

NodeCache& ClusterCore::node_cache() const {
  if (!node_cache_) throw Error(Errc::internal, "no nodes cache: no Nodes was built on this cluster core");
  return *node_cache_;
}

ClusterCore::~ClusterCore() { stop(); }

asio::io_context& ClusterCore::io() { return exec_->io; }

void ClusterCore::every(std::chrono::milliseconds interval, std::function<void()> task) {
  std::lock_guard<std::mutex> lock(exec_->run_mu);
  exec_->periodic.push_back(std::make_unique<Executor::Periodic>(Executor::Periodic{interval, std::move(task), nullptr}));
}

void ClusterCore::post(std::function<void()> task) {
  asio::post(exec_->io, [this, task = std::move(task)] {
    try {
      task();
    } catch (const std::exception& e) {
      // As for periodic work: the state is in the database; the next trigger retries.
      report_failure("background job", e);
    }
  });
}

void ClusterCore::post_or_run(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(exec_->run_mu);
    if (exec_->running) {
      post(std::move(task));
      return;
    }
  }
  try {
    task();
  } catch (const std::exception& e) {
    // One-off background work reports its own failures (e.g. mail to the
    // outbox); what escapes it is still worth a line.
    report_failure("background job", e);
  }
}

void ClusterCore::report_failure(const char* what, const std::exception& e) const noexcept {
  if (!opts.info_log) return;
  try {
    opts.info_log(LogLevel::error, std::string(what) + " failed: " + e.what());
  } catch (...) {
    // The hook's own failure has nowhere left to go (Options::info_log says so).
  }
}

bool ClusterCore::running() const {
  std::lock_guard<std::mutex> lock(exec_->run_mu);
  return exec_->running;
}

void ClusterCore::start() {
  auto& x = *exec_;
  std::lock_guard<std::mutex> lock(x.run_mu);
  if (x.running) return;
  x.running = true;
  for (auto& hook : start_hooks_) hook();
  x.stopping.store(false);
  x.io.restart();
  x.work.emplace(x.io.get_executor());
  for (auto& p : x.periodic) {
    p->timer = std::make_unique<asio::steady_timer>(x.io);
    x.arm(*p);
  }
  for (int i = 0; i < opts.executor_threads; ++i)
    x.threads.emplace_back([&x] {
      // A job's child may exit before reading its stdin: the write must fail
      // with EPIPE on this thread rather than raise SIGPIPE in the process.
      sigset_t pipe_set;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
      x.io.run();
    });
}

void ClusterCore::Executor::arm(Periodic& p) {
  // Arming and stop()'s cancel are serialized by timers_mu, and arming
  // checks stopping under it: with several executor threads a tick may still
  // be running its task when stop() cancels, and re-arming after that would
  // keep stop() waiting a whole interval (a minute for some tasks).
  std::lock_guard<std::mutex> lock(timers_mu);
  if (stopping.load()) return;
  p.timer->expires_after(p.interval);
  p.timer->async_wait([this, &p](const asio::error_code& ec) {
    if (ec || stopping.load()) return;
    try {
      p.task();
    } catch (const std::exception& e) {
      // Background work retries on its next tick; the state it works on is
      // in the database, so nothing is lost by a failed round.
      core.report_failure("periodic job", e);
    }
    arm(p);
  });
}

void ClusterCore::stop() {
  auto& x = *exec_;
  {
    std::lock_guard<std::mutex> lock(x.run_mu);
    if (x.running) {
      x.running = false;
      // Answering waiting agents and pings, aborting running workflow jobs:
      // what they post still runs, as the threads drain the io_context below.
      for (auto& hook : stop_hooks_) hook();
      {
        std::lock_guard<std::mutex> timers(x.timers_mu);
        x.stopping.store(true);
        for (auto& p : x.periodic) p->timer->cancel();
      }
      x.work.reset();
      for (auto& t : x.threads) t.join();
      x.threads.clear();
      for (auto& p : x.periodic) p->timer.reset();
    }
  }
}

}  // namespace detail

}  // namespace lucid
