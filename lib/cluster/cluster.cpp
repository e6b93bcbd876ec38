// lucid::Cluster (cluster.hpp): the capabilities assembled around one
// ClusterCore (cluster/cluster_impl.hpp says how).
#include "cluster/cluster_impl.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <future>

#include "auth/key_file.hpp"
#include "nodes/node_cache.hpp"
#include "tasks/engine.hpp"
#include "util/enum_names.hpp"
#include "lucidnode/error.hpp"
#include "lucidnode/version.hpp"

namespace lucid {

const char* version() noexcept { return LUCIDNODE_VERSION_STRING; }

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
// The signing key's Auth for `core` (and its derived secrets set on it), or
// null on a read-only open without the key file: such an open (reports,
// `lucidctl ledger verify`) reads no secret, so it works without it; what
// needs the key then fails with unavailable (Cluster::auth(), registration
// codes). A key file that is present is still checked. Errors: storage.
std::unique_ptr<Auth> open_signing_key(ClusterCore& core) {
  const Options& opts = core.opts;
  struct stat st{};
  const bool keyless = opts.read_only && ::stat(opts.key_file.c_str(), &st) != 0 && errno == ENOENT;
  if (keyless) return nullptr;
  std::string sk = load_or_create_signing_key(opts.key_file, !opts.read_only);
  core.set_signing_key(sk);
  auto auth = std::make_unique<Auth>(core.clock, std::move(sk));
  core.auth = auth.get();
  return auth;
}
}  // namespace

// Workflow jobs on fleet nodes (docs/workflows.md "Jobs on fleet nodes"): a
// workflow node's peer id names a fleet node through Network (its key's
// peer id); the job is a task of Tasks pinned to that node, which its agent
// runs only when it opted in (the task type is among its allowed types).
FleetDispatch ClusterImpl::fleet_dispatch() {
  FleetDispatch d;
  d.check = [this](std::string_view peer_id, const std::string& type) -> std::int64_t {
    const bool docker = type == "workflow_docker";
    const std::string peer(peer_id.substr(0, 128));
    if (network.is_blacklisted(peer_id)) throw Error(Errc::invalid_argument, "peer " + peer + " is blacklisted");
    Peer p;
    try {
      p = network.peer(peer_id);
    } catch (const Error& e) {
      if (e.code() != Errc::not_found) throw;
      throw Error(Errc::invalid_argument, "peer " + peer + " is neither this server nor an active fleet node");
    }
    Device dev;
    try {
      dev = tasks.device(p.dht_node_id);
    } catch (const Error& e) {
      if (e.code() != Errc::not_found) throw;
      throw Error(Errc::invalid_argument, "fleet node " + p.dht_node_id + " (peer " + peer + ") has no agent");
    }
    const auto& types = dev.allowed_task_types;
    if (!dev.reported || std::find(types.begin(), types.end(), type) == types.end())
      throw Error(Errc::invalid_argument,
                  "fleet node " + dev.hostname + " (peer " + peer + ") has not opted in to " +
                      (docker ? "Docker workflow jobs (lucidctl agent --allow-docker)"
                              : "workflow jobs (lucidctl agent --allow-workflow-jobs)"));
    return p.node_id;
  };
  d.submit = [this](std::int64_t node_id, const std::string& type, const std::string& payload, std::int64_t timeout,
                    std::int64_t retries, const std::string& metadata) {
    TaskSubmit t;
    t.task_type = type;
    t.payload_json = payload;
    t.metadata_json = metadata;
    t.requirements.timeout_seconds = timeout;
    t.requirements.max_retries = retries;
    const auto task = tasks.submit_pinned(t, node_id);
    // Each attempt ends within its timeout (the agent's kill, else the
    // sweep's) or when its silent node goes offline; the first also waits
    // for placement and delivery. Past all of that, nothing will come.
    const auto attempt = std::chrono::seconds(timeout) + settings.heartbeat().offline_after() + std::chrono::seconds(90);
    return FleetSubmitted{task.task_id, attempt * (retries + 1) + std::chrono::seconds(60)};
  };
  d.poll = [this](const std::string& task_id) -> std::optional<FleetTaskEnd> {
    const Task t = tasks.get(task_id);
    if (!task_status_final(t.status)) return std::nullopt;
    return FleetTaskEnd{task_status_name(t.status), t.result_json, t.error};
  };
  d.cancel = [this](const std::string& task_id) {
    try {
      tasks.cancel(task_id);
    } catch (const Error& e) {
      if (e.code() != Errc::conflict) throw;  // ended meanwhile
    }
  };
  return d;
}

ClusterImpl::ClusterImpl(Options o) : core(std::move(o)), auth(open_signing_key(core)) {
  const Options& opts = core.opts;
  core.node_cache().load(*core.store);
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
  // Nodes and PoOT change who may log in; network caches the answer.
  core.on_principals_changed([this] { network.forget_principals(); });
  // Replicas (PostgreSQL; docs/architecture.md "Replicas"): what another
  // server changed, this one re-reads. Each hook also runs when the
  // coordination session was lost (a message may have been missed).
  core.on_remote_change("principals", [this] {
    core.node_cache().reload_cards(*core.store);
    network.forget_principals();
  });
  core.on_remote_change("nodes", [this] { core.node_cache().reload_cards(*core.store); });
  core.on_remote_change("settings", [this] { settings.reload(); });
  core.on_remote_change("users", [this] { users.reload_sessions(); });
  // Payouts submitted on another replica, or leadership just gained (the old
  // leader may have left payouts processing): the next round looks.
  core.on_remote_change("payouts", [this] { payouts.wake(); });
  core.on_remote_change("leader", [this] { payouts.wake(); });
  network.reset();
  core.every(std::chrono::seconds(1), [this] { network.sweep(); });
  // A workflow node names this server by its peer id or an operator's login key's.
  workflows.set_local_peer_rule([this](std::string_view peer_id) { return network.is_local_peer(peer_id); });
  workflows.set_fleet_dispatch(fleet_dispatch());
  if (!opts.read_only) {
    core.every(opts.nodes.stats_flush_interval, [this] { nodes.flush_stats(); });
    // Cluster-wide background work runs on one server of the database: the
    // leader (always this one on SQLite). Stats flushing stays on every
    // server: each writes the samples it acknowledged.
    core.every_leader(opts.nodes.lifecycle_sweep_interval, [this] { nodes.sweep_lifecycle(); });
    core.every_leader(opts.poot.score_refresh, [this] { poot.refresh_scores(); });
    ledger.ensure_genesis();
    core.every_leader(opts.payouts.interval, [this] { payouts.process(); });
    core.every_leader(opts.ledger.block_time, [this] { ledger.seal(); });
    core.every_leader(std::chrono::minutes(1), [this] { users.prune(); });
    workflows.recover();  // executions a previous process left RUNNING fail with the reason
    // Replicas: a replica that dies leaves its executions RUNNING; the
    // leader fails them (and cancels their fleet tasks) within seconds.
    if (core.replicated()) core.every_leader(std::chrono::seconds(2), [this] { workflows.fail_abandoned(); });
  }
  settings.load();
  tasks.engine_->load();
  if (!opts.read_only) core.every(opts.tasks.sweep_interval, [this] { tasks.sweep(); });
  core.on_start([this] { tasks.engine_->stopped = false; });
  // Stopping answers waiting agents and pings and cancels their timers, then
  // kills running workflow jobs (their executions fail: "server stopping").
  core.on_stop([this] { tasks.engine_->shutdown(); });
  core.on_stop([this] { workflows.shutdown(); });
}

ClusterImpl::~ClusterImpl() { stop(); }

void ClusterImpl::start() { core.start(); }

void ClusterImpl::stop() {
  core.stop();
  if (!core.opts.read_only) {
    try {
      nodes.flush_stats();
    } catch (const Error&) {
      // Nothing more can be done at shutdown; the loss is bounded by the queue.
    }
  }
}

void ClusterImpl::restart() {
  stop();
  network.reset();
  core.start();
}

}  // namespace detail

Cluster::Cluster(Options options) : impl_(std::make_unique<detail::ClusterImpl>(std::move(options))) {}
Cluster::~Cluster() { stop(); }
void Cluster::start() { impl_->start(); }
void Cluster::stop() { impl_->stop(); }
Nodes& Cluster::nodes() { return impl_->nodes; }
Pools& Cluster::pools() { return impl_->pools; }
Poot& Cluster::poot() { return impl_->poot; }
Payouts& Cluster::payouts() { return impl_->payouts; }
Ledger& Cluster::ledger() { return impl_->ledger; }
Sessions& Cluster::sessions() { return impl_->sessions; }
Wallets& Cluster::wallets() { return impl_->wallets; }
TrustPolicies& Cluster::trust_policies() { return impl_->trust_policies; }
Network& Cluster::network() { return impl_->network; }
Workflows& Cluster::workflows() { return impl_->workflows; }
void Cluster::restart() { impl_->restart(); }
RateLimiter& Cluster::rate_limiter() { return impl_->rate_limiter; }
Auth& Cluster::auth() { return impl_->core.require_auth(); }
Tasks& Cluster::tasks() { return impl_->tasks; }
Settings& Cluster::settings() { return impl_->settings; }
Users& Cluster::users() { return impl_->users; }
ApiKeys& Cluster::api_keys() { return impl_->api_keys; }

Health Cluster::health(std::chrono::milliseconds timeout) {
  Health h;
  try {
    impl_->core.store->read([](detail::Conn& c) {
      auto& q = c.stmt("SELECT COUNT(*) FROM schema_migrations");
      q.step();
    });
    h.database = true;
  } catch (const std::exception& e) {
    h.database_error = e.what();
  }
  if (!impl_->core.running()) {
    h.executor_error = "executor not started";
    return h;
  }
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  impl_->core.post([done] { done->set_value(); });
  if (fut.wait_for(timeout) == std::future_status::ready) h.executor = true;
  else h.executor_error = "executor did not run a task within " + std::to_string(timeout.count()) + " ms";
  return h;
}

Gauges Cluster::gauges() {
  Gauges g;
  g.replicated = impl_->core.replicated();
  g.leader = impl_->core.leader();
  impl_->core.store->read([&](detail::Conn& c) {
    auto group = [&](detail::Statement& q, std::vector<std::pair<std::string, std::int64_t>>& out) {
      while (q.step()) out.emplace_back(q.column(0).as_text(), q.column(1).as_int64());
    };
    group(c.stmt("SELECT status, COUNT(*) FROM nodes GROUP BY status ORDER BY status"), g.nodes_by_status);
    group(c.stmt("SELECT lifecycle, COUNT(*) FROM nodes GROUP BY lifecycle ORDER BY lifecycle"), g.nodes_by_lifecycle);
    group(c.stmt("SELECT status, COUNT(*) FROM payouts GROUP BY status ORDER BY status"), g.payouts_by_status);
    group(c.stmt("SELECT CASE WHEN removed <> 0 THEN 'removed' ELSE 'registered' END AS state, COUNT(*) FROM devices "
                 "GROUP BY state ORDER BY state"),
          g.devices_by_state);
    group(c.stmt("SELECT status, COUNT(*) FROM tasks GROUP BY status ORDER BY status"), g.tasks_by_status);
    auto& p = c.stmt("SELECT COUNT(*) FROM ledger_transactions WHERE block_height IS NULL");
    if (p.step()) g.pending_transactions = p.column(0).as_int64();
    auto& h = c.stmt("SELECT COALESCE(MAX(height), 0) FROM ledger_blocks");
    if (h.step()) g.block_height = h.column(0).as_int64();
  });
  g.stats_queue = static_cast<std::int64_t>(impl_->core.node_cache().queued_samples());
  g.live_sessions = impl_->users.live_sessions();
  for (const auto& [status, n] : g.tasks_by_status)
    if (status == "pending" || status == "queued") g.task_queue += n;
  std::int64_t by_liveness[3] = {0, 0, 0};
  for (const auto& n : impl_->nodes.live_view()) ++by_liveness[static_cast<int>(n.liveness)];
  for (Liveness l : {Liveness::online, Liveness::stale, Liveness::offline})
    g.nodes_by_health.emplace_back(liveness_name(l), by_liveness[static_cast<int>(l)]);
  return g;
}

std::string Cluster::outbox_dir() const { return impl_->users.outbox_dir(); }
EventBus& Cluster::events() { return impl_->core.bus; }
const Clock& Cluster::clock() const { return *impl_->core.clock; }
const Options& Cluster::options() const { return impl_->core.opts; }
int Cluster::schema_version() const { return impl_->core.store->schema_version(); }

}  // namespace lucid
