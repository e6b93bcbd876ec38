// The core every capability shares (core/cluster_core.hpp): option
// validation, the store, the signing-key derived secrets and the executor.
#include "core/cluster_core.hpp"

#include <asio.hpp>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lucidnode/database.hpp"
#include "lucidnode/error.hpp"

namespace lucid {
namespace detail {

namespace {
// Fills the defaults that depend on other fields and checks every bound
// documented in options.hpp; an Error names the field by its path.
Options validated(Options o) {
  const auto bad = [](const char* field, const char* bound) {
    throw Error(Errc::invalid_argument, std::string(field) + " must be " + bound, field);
  };
  if (o.database_path.empty()) throw Error(Errc::invalid_argument, "database_path is empty", "database_path");
  // A PostgreSQL database has no directory to put files beside: they go to
  // the working directory unless set (docs/decisions.md, issue 14).
  const DatabaseSpec db = parse_database(o.database_path);  // refuses unsupported ones
  const bool postgres = db.kind == DatabaseKind::postgres;
  if (!postgres && !o.database_password_file.empty())
    throw Error(Errc::invalid_argument, "database_password_file is for a PostgreSQL database", "database_password_file");
  if (o.key_file.empty()) o.key_file = postgres ? "lucid.key" : db.target + ".key";
  if (postgres && o.data_dir.empty()) o.data_dir = "data";
  if (o.login.outbox_dir.empty()) {
    const auto dir = std::filesystem::path(db.target).parent_path();
    o.login.outbox_dir = postgres ? std::string("outbox") : ((dir.empty() ? std::filesystem::path(".") : dir) / "outbox").string();
  }
  if (!o.clock) o.clock = std::make_shared<SystemClock>();
  if (o.executor_threads < 1 || o.executor_threads > 64) bad("executor_threads", "1..64");
  if (o.data_dir.empty()) {
    const auto slash = db.target.rfind('/');
    o.data_dir = (slash == std::string::npos ? std::string(".") : db.target.substr(0, slash)) + "/data";
  }

  const auto& n = o.nodes;
  if (n.stats_history < 1 || n.stats_history > 100000) bad("nodes.stats_history", "1..100000");
  if (n.stats_flush_interval.count() < 1) bad("nodes.stats_flush_interval", "positive");
  if (n.start_timeout.count() < 1) bad("nodes.start_timeout", "positive");
  if (n.lifecycle_sweep_interval.count() < 1) bad("nodes.lifecycle_sweep_interval", "positive");
  if (n.pending_join_ttl.count() < 1 || n.pending_join_ttl.count() > 30 * 86400)
    bad("nodes.pending_join_ttl", "1 second..30 days");
  if (n.stats_queue_limit < 1 || n.stats_queue_limit > 100000000) bad("nodes.stats_queue_limit", "1..100000000");
  if (n.max_pending_joins < 1 || n.max_pending_joins > 10000000) bad("nodes.max_pending_joins", "1..10000000");
  if (n.stale_after.count() < 1) bad("nodes.stale_after", "positive");
  if (!(n.default_quota_gb > 0)) bad("nodes.default_quota_gb", "positive");

  const auto& p = o.poot;
  if (p.freshness.count() < 1 || p.freshness.count() > 86400) bad("poot.freshness", "1..86400 seconds");
  if (p.window.count() < 60 || p.window.count() > 30 * 86400) bad("poot.window", "60 seconds..30 days");
  if (p.expected_interval.count() < 1 || p.expected_interval > p.window)
    bad("poot.expected_interval", "1 second..poot.window");
  if (p.max_output_bytes < 1 || p.max_output_bytes > 16 * 1024 * 1024) bad("poot.max_output_bytes", "1..16777216");
  if (p.score_refresh.count() < 1) bad("poot.score_refresh", "positive");

  if (o.ledger.block_time.count() < 10 || o.ledger.block_time.count() > 3600000)
    bad("ledger.block_time", "10 ms..1 hour");
  if (o.payouts.interval.count() < 1 || o.payouts.interval.count() > 60000) bad("payouts.interval", "1 ms..1 minute");
  if (o.payouts.chunk < 1 || o.payouts.chunk > 100000) bad("payouts.chunk", "1..100000");
  if (o.payouts.max_batch < 1 || o.payouts.max_batch > 1000000) bad("payouts.max_batch", "1..1000000");

  if (o.tasks.max_connections < 1 || o.tasks.max_connections > 1000000) bad("tasks.max_connections", "1..1000000");
  if (o.tasks.sweep_interval.count() < 1) bad("tasks.sweep_interval", "positive");

  auto& l = o.login;
  if (l.code_ttl.count() < 1 || l.code_ttl.count() > 3600) bad("login.code_ttl", "1 second..1 hour");
  if (l.access_token_ttl.count() < 1 || l.access_token_ttl.count() > 86400)
    bad("login.access_token_ttl", "1 second..1 day");
  if (l.refresh_token_ttl.count() < 60 || l.refresh_token_ttl > std::chrono::hours(24 * 366))
    bad("login.refresh_token_ttl", "1 minute..366 days");
  if (l.public_url.empty() || l.public_url.size() > 512) bad("login.public_url", "1..512 characters");
  while (l.public_url.size() > 1 && l.public_url.back() == '/') l.public_url.pop_back();

  const auto& g = o.gateway;
  if (g.max_chunk_bytes < 1 || g.max_chunk_bytes > 16 * 1024 * 1024) bad("gateway.max_chunk_bytes", "1..16777216");
  if (g.max_session_bytes < 1 || g.max_session_bytes > (1LL << 40)) bad("gateway.max_session_bytes", "1 byte..1 TiB");
  if (!g.wallet_key.empty() && g.wallet_key.size() != 32) bad("gateway.wallet_key", "32 bytes");

  const auto& w = o.network;
  if (w.challenge_ttl.count() < 1 || w.challenge_ttl.count() > 3600) bad("network.challenge_ttl", "1 second..1 hour");
  if (w.max_challenges < 1 || w.max_challenges > 10000000) bad("network.max_challenges", "1..10000000");
  if (w.max_challenges_per_client < 1 || w.max_challenges_per_client > 10000000)
    bad("network.max_challenges_per_client", "1..10000000");
  if (!(w.relay_price_per_gb >= 0 && w.relay_price_per_gb <= 1e6)) bad("network.relay_price_per_gb", "0..1e6");

  if (o.workflows.max_parallel < 1 || o.workflows.max_parallel > 1024) bad("workflows.max_parallel", "1..1024");
  if (o.workflows.max_output_bytes < 1024 || o.workflows.max_output_bytes > 64 * 1024 * 1024)
    bad("workflows.max_output_bytes", "1 KiB..64 MiB");
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
  init_replicas();
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
  // Leadership and cross-server messages (PostgreSQL only; replicas.cpp).
  start_replicas();
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
  // First: a stopping server leads no more (closing its session frees the
  // lock for another at once) and relays nothing more.
  stop_replicas();
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
