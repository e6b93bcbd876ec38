#include "lucidnode/cluster.hpp"

#include <signal.h>

#include "auth/key_file.hpp"
#include "core/cluster_core.hpp"
#include "lucidnode/error.hpp"
#include "lucidnode/version.hpp"

namespace lucid {

const char* version() noexcept { return LUCIDNODE_VERSION_STRING; }

const char* errc_name(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::not_found: return "not_found";
    case Errc::conflict: return "conflict";
    case Errc::unauthenticated: return "unauthenticated";
    case Errc::permission_denied: return "permission_denied";
    case Errc::resource_exhausted: return "resource_exhausted";
    case Errc::unavailable: return "unavailable";
    case Errc::storage: return "storage";
    case Errc::internal: return "internal";
  }
  return "internal";
}

namespace detail {

namespace {
Options validated(Options o) {
  if (o.database_path.empty()) throw Error(Errc::invalid_argument, "database_path is empty", "database_path");
  if (o.key_file.empty()) o.key_file = o.database_path + ".key";
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
  if (o.max_payout_batch < 1 || o.max_payout_batch > 1000000)
    throw Error(Errc::invalid_argument, "max_payout_batch must be 1..1000000", "max_payout_batch");
  if (o.data_dir.empty()) {
    const auto slash = o.database_path.rfind('/');
    o.data_dir = (slash == std::string::npos ? std::string(".") : o.database_path.substr(0, slash)) + "/data";
  }
  if (o.challenge_ttl.count() < 1 || o.challenge_ttl.count() > 3600)
    throw Error(Errc::invalid_argument, "challenge_ttl must be 1 second..1 hour", "challenge_ttl");
  if (o.max_challenges < 1 || o.max_challenges > 10000000)
    throw Error(Errc::invalid_argument, "max_challenges must be 1..10000000", "max_challenges");
  if (o.workflow_max_parallel < 1 || o.workflow_max_parallel > 1024)
    throw Error(Errc::invalid_argument, "workflow_max_parallel must be 1..1024", "workflow_max_parallel");
  if (o.workflow_max_output_bytes < 1024 || o.workflow_max_output_bytes > 64 * 1024 * 1024)
    throw Error(Errc::invalid_argument, "workflow_max_output_bytes must be 1 KiB..64 MiB", "workflow_max_output_bytes");
  if (!(o.relay_price_per_gb >= 0 && o.relay_price_per_gb <= 1e6))
    throw Error(Errc::invalid_argument, "relay_price_per_gb must be 0..1e6", "relay_price_per_gb");
  return o;
}
}  // namespace

ClusterCore::ClusterCore(Options o) : opts(validated(std::move(o))), clock(opts.clock) {
  store = std::make_unique<Store>(StoreConfig{opts.database_path, opts.read_only, opts.busy_timeout, 8});
  std::string sk = load_or_create_signing_key(opts.key_file, !opts.read_only);
  // The registration-code key is derived from the signing key so that one
  // 0600 file holds every server secret.
  code_key = hmac_sha256(sha256(std::string_view(sk).substr(0, 32)), "lucidnode registration codes v1");
  auth = std::make_unique<Auth>(clock, std::move(sk));
  load_nodes_state(*this);
  network.reset();
  every(std::chrono::seconds(1), [this] { network.sweep(); });
  if (!opts.read_only) {
    every(opts.stats_flush_interval, [this] { nodes.flush_stats(); });
    every(opts.lifecycle_sweep_interval, [this] { nodes.sweep_lifecycle(); });
    every(opts.poot_score_refresh, [this] { poot.refresh_scores(); });
    ledger.ensure_genesis();
    every(opts.payout_interval, [this] { payouts.process(); });
    every(opts.block_time, [this] { ledger.seal(); });
    workflows.recover();  // executions a previous process left RUNNING fail with the reason
  }
}

ClusterCore::~ClusterCore() { stop(); }

void ClusterCore::every(std::chrono::milliseconds interval, std::function<void()> task) {
  std::lock_guard<std::mutex> lock(run_mu_);
  periodic_.push_back(std::make_unique<Periodic>(Periodic{interval, std::move(task), nullptr}));
}

void ClusterCore::start() {
  std::lock_guard<std::mutex> lock(run_mu_);
  if (running_) return;
  running_ = true;
  stopping_.store(false);
  io_.restart();
  work_.emplace(io_.get_executor());
  for (auto& p : periodic_) {
    p->timer = std::make_unique<asio::steady_timer>(io_);
    arm(*p);
  }
  for (int i = 0; i < opts.executor_threads; ++i)
    threads_.emplace_back([this] {
      // A job's child may exit before reading its stdin: the write must fail
      // with EPIPE on this thread rather than raise SIGPIPE in the process.
      sigset_t pipe_set;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
      io_.run();
    });
}

void ClusterCore::arm(Periodic& p) {
  p.timer->expires_after(p.interval);
  p.timer->async_wait([this, &p](const asio::error_code& ec) {
    // A tick that completed before stop() cancelled the timer must not re-arm,
    // or the executor never runs out of work and stop() never returns.
    if (ec || stopping_.load()) return;
    try {
      p.task();
    } catch (const std::exception&) {
      // Background work retries on its next tick; the state it works on is
      // in the database, so nothing is lost by a failed round.
    }
    arm(p);
  });
}

void ClusterCore::stop() {
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    if (running_) {
      running_ = false;
      stopping_.store(true);
      asio::post(io_, [this] {
        for (auto& p : periodic_) p->timer->cancel();
      });
      // Running workflow jobs are killed; their executions fail ("server stopping").
      workflows.shutdown();
      work_.reset();
      for (auto& t : threads_) t.join();
      threads_.clear();
      for (auto& p : periodic_) p->timer.reset();
    }
  }
  if (!opts.read_only) {
    try {
      nodes.flush_stats();
    } catch (const Error&) {
      // Nothing more can be done at shutdown; the loss is bounded by the queue.
    }
  }
}

}  // namespace detail

Cluster::Cluster(Options options) : core_(std::make_unique<detail::ClusterCore>(std::move(options))) {}
Cluster::~Cluster() { stop(); }
void Cluster::start() { core_->start(); }
void Cluster::stop() { core_->stop(); }
Nodes& Cluster::nodes() { return core_->nodes; }
Pools& Cluster::pools() { return core_->pools; }
Poot& Cluster::poot() { return core_->poot; }
Payouts& Cluster::payouts() { return core_->payouts; }
Ledger& Cluster::ledger() { return core_->ledger; }
Network& Cluster::network() { return core_->network; }
Workflows& Cluster::workflows() { return core_->workflows; }
void Cluster::restart() {
  core_->stop();
  core_->network.reset();
  core_->start();
}
RateLimiter& Cluster::rate_limiter() { return core_->rate_limiter; }
Auth& Cluster::auth() { return *core_->auth; }
EventBus& Cluster::events() { return core_->bus; }
const Clock& Cluster::clock() const { return *core_->clock; }
const Options& Cluster::options() const { return core_->opts; }
int Cluster::schema_version() const { return core_->store->schema_version(); }

}  // namespace lucid
