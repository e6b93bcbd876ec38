#include "lucidnode/cluster.hpp"

#include <asio.hpp>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <future>
#include <signal.h>

#include "auth/key_file.hpp"
#include "core/cluster_core.hpp"
#include "nodes/node_cache.hpp"
#include "tasks/engine.hpp"
#include "util/enum_names.hpp"
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
Auth& ClusterCore::require_auth() const {
  if (!auth)
    throw Error(Errc::unavailable, "no signing key: the cluster was opened read-only without its key file");
  return *auth;
}
}  // namespace detail

namespace {
constexpr detail::EnumNames<Errc, 9> kErrcNames{{{Errc::invalid_argument, "invalid_argument"},
                                                 {Errc::not_found, "not_found"},
                                                 {Errc::conflict, "conflict"},
                                                 {Errc::unauthenticated, "unauthenticated"},
                                                 {Errc::permission_denied, "permission_denied"},
                                                 {Errc::resource_exhausted, "resource_exhausted"},
                                                 {Errc::unavailable, "unavailable"},
                                                 {Errc::storage, "storage"},
                                                 {Errc::internal, "internal"}}};
}  // namespace

const char* errc_name(Errc code) noexcept { return detail::enum_name(kErrcNames, code, "internal"); }

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
    const auto slash = o.database_path.rfind('/');
    o.data_dir = (slash == std::string::npos ? std::string(".") : o.database_path.substr(0, slash)) + "/data";
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
  node_cache().load(*store);
  users.load();
  if (auth) {
    auth->set_session_check([this](std::string_view sid) { return users.session_active(sid); });
    // Revocation (docs/decisions.md "Issue 12 item 4"): every verification of
    // every surface (router, SSE ticks, WebSocket ticks) asks whether the
    // token's principal still stands; in-memory, invalidated by the changes.
    auth->set_principal_check([this](const Claims& c) -> const char* {
      if (!c.session_id.empty()) {
        // A gateway login: the token's role must be the user's current one
        // (a role change also revokes the sessions; this holds regardless).
        auto role = users.session_role(c.session_id);
        if (!role || *role != c.role) return "Role changed; log in again";
      }
      return network.principal_refusal(c);
    });
  }
  network.reset();
  every(std::chrono::seconds(1), [this] { network.sweep(); });
  if (!opts.read_only) {
    every(opts.stats_flush_interval, [this] { nodes.flush_stats(); });
    every(opts.lifecycle_sweep_interval, [this] { nodes.sweep_lifecycle(); });
    every(opts.poot_score_refresh, [this] { poot.refresh_scores(); });
    ledger.ensure_genesis();
    every(opts.payout_interval, [this] { payouts.process(); });
    every(opts.block_time, [this] { ledger.seal(); });
    every(std::chrono::minutes(1), [this] { users.prune(); });
    workflows.recover();  // executions a previous process left RUNNING fail with the reason
  }
  settings.load();
  tasks.engine_->load();
  if (!opts.read_only) every(opts.task_sweep_interval, [this] { tasks.sweep(); });
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
  tasks.engine_->stopped = false;
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
      tasks.engine_->shutdown();  // answers waiting agents and pings, cancels their timers
      {
        std::lock_guard<std::mutex> timers(x.timers_mu);
        x.stopping.store(true);
        for (auto& p : x.periodic) p->timer->cancel();
      }
      // Running workflow jobs are killed; their executions fail ("server stopping").
      workflows.shutdown();
      x.work.reset();
      for (auto& t : x.threads) t.join();
      x.threads.clear();
      for (auto& p : x.periodic) p->timer.reset();
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
Sessions& Cluster::sessions() { return core_->sessions; }
Wallets& Cluster::wallets() { return core_->wallets; }
TrustPolicies& Cluster::trust_policies() { return core_->trust_policies; }
Network& Cluster::network() { return core_->network; }
Workflows& Cluster::workflows() { return core_->workflows; }
void Cluster::restart() {
  core_->stop();
  core_->network.reset();
  core_->start();
}
RateLimiter& Cluster::rate_limiter() { return core_->rate_limiter; }
Auth& Cluster::auth() { return core_->require_auth(); }
Tasks& Cluster::tasks() { return core_->tasks; }
Settings& Cluster::settings() { return core_->settings; }
Users& Cluster::users() { return core_->users; }
ApiKeys& Cluster::api_keys() { return core_->api_keys; }

Health Cluster::health(std::chrono::milliseconds timeout) {
  Health h;
  try {
    core_->store->read([](detail::Conn& c) {
      auto& q = c.stmt("SELECT COUNT(*) FROM schema_migrations");
      q.step();
    });
    h.database = true;
  } catch (const std::exception& e) {
    h.database_error = e.what();
  }
  if (!core_->running()) {
    h.executor_error = "executor not started";
    return h;
  }
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  core_->post([done] { done->set_value(); });
  if (fut.wait_for(timeout) == std::future_status::ready) h.executor = true;
  else h.executor_error = "executor did not run a task within " + std::to_string(timeout.count()) + " ms";
  return h;
}

Gauges Cluster::gauges() {
  Gauges g;
  core_->store->read([&](detail::Conn& c) {
    auto group = [&](detail::Statement& q, std::vector<std::pair<std::string, std::int64_t>>& out) {
      while (q.step()) out.emplace_back(q.column(0).as_text(), q.column(1).as_int64());
    };
    group(c.stmt("SELECT status, COUNT(*) FROM nodes GROUP BY status ORDER BY status"), g.nodes_by_status);
    group(c.stmt("SELECT lifecycle, COUNT(*) FROM nodes GROUP BY lifecycle ORDER BY lifecycle"), g.nodes_by_lifecycle);
    group(c.stmt("SELECT status, COUNT(*) FROM payouts GROUP BY status ORDER BY status"), g.payouts_by_status);
    auto& p = c.stmt("SELECT COUNT(*) FROM ledger_transactions WHERE block_height IS NULL");
    if (p.step()) g.pending_transactions = p.column(0).as_int64();
    auto& h = c.stmt("SELECT COALESCE(MAX(height), 0) FROM ledger_blocks");
    if (h.step()) g.block_height = h.column(0).as_int64();
  });
  g.stats_queue = static_cast<std::int64_t>(core_->node_cache().queued_samples());
  g.live_sessions = core_->users.live_sessions();
  return g;
}

std::string Cluster::outbox_dir() const { return core_->users.outbox_dir(); }
EventBus& Cluster::events() { return core_->bus; }
const Clock& Cluster::clock() const { return *core_->clock; }
const Options& Cluster::options() const { return core_->opts; }
int Cluster::schema_version() const { return core_->store->schema_version(); }

}  // namespace lucid
