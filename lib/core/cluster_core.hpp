// The inside of lucid::Cluster that every capability shares: the options,
// clock, store, signing key, event bus and executor, plus the few hooks
// through which one area reaches another without including it. Internal.
//
// The capabilities themselves are not here: lib/cluster assembles them
// around a ClusterCore (cluster/cluster_impl.hpp) and wires the hooks.
#pragma once

#include <chrono>
#include <functional>
#include <atomic>
#include <memory>
#include <string_view>
#include <vector>

#include "lucidnode/events.hpp"
#include "lucidnode/options.hpp"
#include "store/store.hpp"
#include "util/encoding.hpp"

namespace asio { class io_context; }

namespace lucid {
class Auth;
}

namespace lucid::detail {

class NodeCache;

class ClusterCore {
 public:
  // Validates `o` (Error(invalid_argument), field named) and opens the store
  // (Error(storage)). The signing key comes later, from whoever loads it
  // (set_signing_key): the key file belongs to auth.
  explicit ClusterCore(Options o);
  // Calls stop().
  ~ClusterCore();
  ClusterCore(const ClusterCore&) = delete;
  ClusterCore& operator=(const ClusterCore&) = delete;

  // Starts the executor: runs the start hooks, arms every periodic task and
  // starts Options::executor_threads threads. Idempotent; thread-safe.
  void start();
  // Stops the executor: runs the stop hooks (in registration order), cancels
  // the periodic tasks, lets posted work drain and joins the threads.
  // Idempotent; thread-safe; never throws except what a stop hook throws.
  void stop();

  Options opts;
  std::shared_ptr<const Clock> clock;
  std::unique_ptr<Store> store;
  // The signing key's Auth, owned by lib/cluster; null on a read-only open
  // without the key file. Set once at open, before any capability uses it.
  Auth* auth = nullptr;
  EventBus bus;
  Digest code_key{};  // keys registration-code derivation and lookup hashes
  bool has_key = false;  // false only for a read-only open without the key file
  // Derives code_key from the signing key (one 0600 file holds every server
  // secret) and sets has_key. Called once at open, before start().
  void set_signing_key(std::string_view secret_key);
  // code_key, or Error(unavailable) when there is no key.
  const Digest& require_code_key() const;
  // *auth; Error(unavailable) when opened read-only without the key file.
  Auth& require_auth() const;

  // ---- hooks between areas (set at open, before start(); read concurrently after) ----
  // The nodes cache, owned by lib/nodes, which registers it from Nodes'
  // constructor (nodes/node_cache.hpp says what other areas may ask of it).
  // node_cache() throws Error(internal) when no Nodes was built on this core.
  void set_node_cache(NodeCache* cache) { node_cache_ = cache; }
  NodeCache& node_cache() const;
  // "Which keys and nodes may log in changed" (a node removed, a PoOT
  // blacklist change): the areas that change principals call
  // principals_changed(); the one that caches them (network) registers what
  // to do with on_principals_changed. Without a registration it does nothing.
  void on_principals_changed(std::function<void()> fn) { principals_changed_ = std::move(fn); }
  // Also tells the other servers on the database (broadcast_change
  // "principals"), whose hooks run the same registration.
  void principals_changed() {
    if (principals_changed_) principals_changed_();
    broadcast_change("principals");
  }
  // Work that start() runs before the executor's threads start, and that
  // stop() runs before it cancels the periodic tasks and joins the threads
  // (answering waiters, aborting running jobs). Register before start().
  void on_start(std::function<void()> fn) { start_hooks_.push_back(std::move(fn)); }
  void on_stop(std::function<void()> fn) { stop_hooks_.push_back(std::move(fn)); }

  // Runs `task` every `interval` on the executor while started (an exception
  // it throws goes to opts.info_log; it runs again next time). Register before
  // start(). Capabilities use this for their background work.
  void every(std::chrono::milliseconds interval, std::function<void()> task);
  // Runs `task` once on the executor (when started; queued until then); an
  // exception it throws goes to opts.info_log.
  void post(std::function<void()> task);
  // The executor's io_context, for capabilities that drive timers and
  // asynchronous I/O on it (task leases, workflow child-process pipes); they
  // include <asio.hpp> themselves.
  asio::io_context& io();
  // Runs `task` once on the executor soon (errors to opts.info_log); when the
  // executor is not running, runs it on the calling thread (mail delivery:
  // an embedder that never starts the executor still gets its mail). Thread-safe.
  void post_or_run(std::function<void()> task);
  bool running() const;

  // ---- replicas: several servers on one database (docs/architecture.md "Replicas") ----
  // Whether this server runs the cluster-wide background work: always on
  // SQLite (one process); on PostgreSQL while this process holds the
  // leadership lock (replicas.cpp). Thread-safe.
  bool leader() const;
  // Whether this server coordinates with others (started on PostgreSQL).
  bool replicated() const { return replicated_; }
  // This server process's instance id: random, 1..2^31-1, fixed at open.
  // Rows that only a live process may finish (a RUNNING workflow execution)
  // carry it.
  std::int64_t instance_id() const { return instance_id_; }
  // Whether the server process `id` is alive, asked inside the caller's
  // transaction `c`. This process: yes. One process on the database (SQLite,
  // or a read-only open): no other is, so every other id names a previous
  // process. Replicas (PostgreSQL): while that process's coordination session
  // holds its instance lock (Coordinator::hold_instance); a process killed or
  // cut off from the database loses it with its session. Throws what the
  // store throws.
  bool instance_alive(Conn& c, std::int64_t id) const;
  // Like every(), but the task runs only while leader(). Register before start().
  void every_leader(std::chrono::milliseconds interval, std::function<void()> task);
  // Tells the other servers on the database that `topic` changed: each runs
  // its on_remote_change hooks for it. Nothing on SQLite. Does not block;
  // thread-safe.
  void broadcast_change(std::string_view topic);
  // What to do when another server says `topic` changed; every hook also
  // runs when this server's coordination session was lost or when a sender
  // dropped messages (one may have been missed: drop the cache). Register
  // before start(); runs on the coordination thread. Topic "leader" runs
  // when this server becomes the leader.
  void on_remote_change(std::string topic, std::function<void()> fn);

 private:
  struct Replicas;
  void init_replicas();  // at open: a Replicas on PostgreSQL (read-write)
  void start_replicas();
  void stop_replicas();
  void replica_loop(std::unique_ptr<Coordinator> session);
  void send_remote(std::string message);
  void receive_remote(const std::string& message);
  void run_remote_hooks(std::string_view topic) noexcept;
  std::vector<std::pair<std::string, std::function<void()>>> remote_hooks_;
  struct ReplicasDeleter {
    void operator()(Replicas* r) const noexcept;  // replicas.cpp, where Replicas is complete
  };
  std::unique_ptr<Replicas, ReplicasDeleter> replicas_;
  bool replicated_ = false;
  std::int64_t instance_id_ = 0;
  std::atomic<bool> leader_{false};

  // Gives a background job's exception to opts.info_log (if set); never throws.
  void report_failure(const char* what, const std::exception& e) const noexcept;

  NodeCache* node_cache_ = nullptr;
  std::function<void()> principals_changed_;
  std::vector<std::function<void()>> start_hooks_, stop_hooks_;

  // The io_context, its threads and the periodic timers (cluster_core.cpp):
  // asio stays out of this header, which every area includes.
  struct Executor;
  std::unique_ptr<Executor> exec_;
};

}  // namespace lucid::detail
