#include "lucidnode/cluster.hpp"

#include <sys/stat.h>

#include <cerrno>

#include "auth/key_file.hpp"
#include "core/cluster_core.hpp"
#include "tasks/engine.hpp"
#include "lucidnode/error.hpp"
#include "lucidnode/version.hpp"

namespace lucid {

const char* version() noexcept { return LUCIDNODE_VERSION_STRING; }

namespace detail {
const Digest& ClusterCore::require_code_key() const {
  if (!has_key)
    throw Error(Errc::unavailable, "registration codes need the signing key: the cluster was opened read-only without it");
  return code_key;
}
}  // namespace detail

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
  if (o.max_connections < 1 || o.max_connections > 1000000)
    throw Error(Errc::invalid_argument, "max_connections must be 1..1000000", "max_connections");
  if (o.task_sweep_interval.count() < 1)
    throw Error(Errc::invalid_argument, "task_sweep_interval must be positive", "task_sweep_interval");
  if (o.max_payout_batch < 1 || o.max_payout_batch > 1000000)
    throw Error(Errc::invalid_argument, "max_payout_batch must be 1..1000000", "max_payout_batch");
  return o;
}
}  // namespace

ClusterCore::ClusterCore(Options o) : opts(validated(std::move(o))), clock(opts.clock) {
  store = std::make_unique<Store>(StoreConfig{opts.database_path, opts.read_only, opts.busy_timeout, 8});
  // A read-only open (reports, `lucidctl ledger verify`) reads no secret, so
  // it works without the key file; what needs the key then fails with
  // unavailable (Cluster::auth(), registration codes). A key file that is
  // present is still checked.
  struct stat st{};
  const bool keyless = opts.read_only && ::stat(opts.key_file.c_str(), &st) != 0 && errno == ENOENT;
  if (!keyless) {
    std::string sk = load_or_create_signing_key(opts.key_file, !opts.read_only);
    // The registration-code key is derived from the signing key so that one
    // 0600 file holds every server secret.
    code_key = hmac_sha256(sha256(std::string_view(sk).substr(0, 32)), "lucidnode registration codes v1");
    has_key = true;
    auth = std::make_unique<Auth>(clock, std::move(sk));
  }
  load_nodes_state(*this);
  if (!opts.read_only) {
    every(opts.stats_flush_interval, [this] { nodes.flush_stats(); });
    every(opts.lifecycle_sweep_interval, [this] { nodes.sweep_lifecycle(); });
    every(opts.poot_score_refresh, [this] { poot.refresh_scores(); });
    ledger.ensure_genesis();
    every(opts.payout_interval, [this] { payouts.process(); });
    every(opts.block_time, [this] { ledger.seal(); });
  }
  settings.load();
  tasks.engine_->load();
  if (!opts.read_only) every(opts.task_sweep_interval, [this] { tasks.sweep(); });
}

ClusterCore::~ClusterCore() { stop(); }

void ClusterCore::every(std::chrono::milliseconds interval, std::function<void()> task) {
  std::lock_guard<std::mutex> lock(run_mu_);
  periodic_.push_back(std::make_unique<Periodic>(Periodic{interval, std::move(task), nullptr}));
}

void ClusterCore::post(std::function<void()> task) {
  asio::post(io_, [task = std::move(task)] {
    try {
      task();
    } catch (const std::exception&) {
      // As for periodic work: the state is in the database; the next trigger retries.
    }
  });
}

void ClusterCore::start() {
  std::lock_guard<std::mutex> lock(run_mu_);
  if (running_) return;
  running_ = true;
  tasks.engine_->stopped = false;
  stopping_.store(false);
  io_.restart();
  work_.emplace(io_.get_executor());
  for (auto& p : periodic_) {
    p->timer = std::make_unique<asio::steady_timer>(io_);
    arm(*p);
  }
  for (int i = 0; i < opts.executor_threads; ++i) threads_.emplace_back([this] { io_.run(); });
}

void ClusterCore::arm(Periodic& p) {
  // Arming and stop()'s cancel are serialized by timers_mu_, and arming
  // checks stopping_ under it: with several executor threads a tick may still
  // be running its task when stop() cancels, and re-arming after that would
  // keep stop() waiting a whole interval (a minute for some tasks).
  std::lock_guard<std::mutex> lock(timers_mu_);
  if (stopping_.load()) return;
  p.timer->expires_after(p.interval);
  p.timer->async_wait([this, &p](const asio::error_code& ec) {
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
      tasks.engine_->shutdown();  // answers waiting agents and pings, cancels their timers
      {
        std::lock_guard<std::mutex> timers(timers_mu_);
        stopping_.store(true);
        for (auto& p : periodic_) p->timer->cancel();
      }
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
RateLimiter& Cluster::rate_limiter() { return core_->rate_limiter; }
Auth& Cluster::auth() {
  if (!core_->auth)
    throw Error(Errc::unavailable, "no signing key: the cluster was opened read-only without its key file");
  return *core_->auth;
}
Tasks& Cluster::tasks() { return core_->tasks; }
Settings& Cluster::settings() { return core_->settings; }
EventBus& Cluster::events() { return core_->bus; }
const Clock& Cluster::clock() const { return *core_->clock; }
const Options& Cluster::options() const { return core_->opts; }
int Cluster::schema_version() const { return core_->store->schema_version(); }

}  // namespace lucid
