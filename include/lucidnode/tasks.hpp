// Devices, tasks and their scheduling; runtime settings.
//
// A device is an approved node seen as a worker: its agent reports platform,
// capabilities and the task types it allows (report_device), and pulls work
// (wait_work / take_work). Tasks are queued by priority (urgent > high >
// normal > low, FIFO within one), placed by the scheduler on the executor
// (feasibility over computed device classes, ranking by load, selection),
// executed by agents, and retried when their device goes stale.
#pragma once

#include <chrono>
#include <cstdint>
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lucidnode/auth.hpp"
#include "lucidnode/clock.hpp"
#include "lucidnode/export.hpp"

namespace lucid {

class ApiKeys;
class Settings;
namespace detail { class ClusterCore; class ClusterImpl; class TaskEngine; }
LUCID_PUBLIC_BEGIN

enum class TaskPriority { low = 0, normal = 1, high = 2, urgent = 3 };
const char* task_priority_name(TaskPriority p) noexcept;
std::optional<TaskPriority> parse_task_priority(std::string_view s);

enum class TaskStatus { pending, queued, assigned, running, success, failed, cancelled, timeout };
const char* task_status_name(TaskStatus s) noexcept;
std::optional<TaskStatus> parse_task_status(std::string_view s);
bool task_status_final(TaskStatus s) noexcept;

// The task types agents know ("echo", "sleep", "system_info", "http_request",
// "command", "python_eval", and the workflow job types "workflow_job" and
// "workflow_docker", which only workflow executions create: submit_pinned).
const std::vector<std::string>& known_task_types();

struct DeviceCapabilities {
  std::int64_t cpu_count = 0;      // 1..4096
  double memory_total_gb = 0;      // 0..1e6
  double storage_total_gb = 0;     // 0..1e9
  bool has_gpu = false;
  bool internet = false;
};

// What an agent reports about its device.
struct DeviceReport {
  std::string platform;                            // [a-z0-9_-]{1,32}
  std::optional<std::string> role;                 // [a-z0-9_-]{1,32}; absent: keep
  std::optional<std::vector<std::string>> tags;    // <= 32 of [A-Za-z0-9._:-]{1,64}; absent: keep
  DeviceCapabilities capabilities;
  std::vector<std::string> allowed_task_types;     // 1..6 known types
  std::int64_t max_concurrent = 1;                 // 1..256
  std::string agent_version;                       // <= 64 chars
};

struct Device {
  std::string device_id;  // the node's uid ("node_...")
  std::int64_t node_id = 0;
  std::string hostname;
  std::string ip_address;
  std::string role = "worker";
  std::string platform = "unknown";  // until the agent reports
  bool reported = false;             // the agent reported at least once
  bool online = false;
  std::optional<Timestamp> last_heartbeat;
  std::optional<Timestamp> online_since;  // for uptime
  DeviceCapabilities capabilities;
  std::vector<std::string> tags;
  std::vector<std::string> allowed_task_types;
  std::int64_t max_concurrent = 0;
  std::string agent_version;
  std::int64_t active_tasks = 0;  // assigned or running on it now
};

struct DeviceQuery {
  std::int64_t page = 1;        // >= 1
  std::int64_t page_size = 20;  // 1..100
  std::optional<bool> online;   // nullopt: all
  std::string role;             // empty: any
  std::string platform;         // empty: any
  std::vector<std::string> tags;  // device must have all
};

struct ClusterStats {
  std::int64_t total_devices = 0, online_devices = 0, offline_devices = 0;
  double health_percentage = 0;  // online / total x 100 (0 when no device)
  std::int64_t cpu_cores = 0;    // totals over online devices
  double memory_gb = 0, storage_gb = 0;
  std::int64_t gpu_devices = 0;
  std::map<std::string, std::int64_t> by_role, by_platform, by_status;
  std::map<std::string, std::int64_t> tasks_by_status;
  std::int64_t active_tasks = 0, capacity = 0;  // over online devices
};

struct TaskRequirements {
  std::optional<std::int64_t> min_cpu_cores;  // 1..4096
  std::optional<double> min_memory_gb;        // 0..1e6
  std::optional<double> min_storage_gb;       // 0..1e9
  std::string required_platform;              // empty: any
  std::string required_role;                  // empty: any
  std::vector<std::string> required_tags;     // <= 32
  bool gpu_required = false;
  bool internet_required = false;
  std::int64_t timeout_seconds = 300;         // 1..86400
  std::int64_t max_retries = 3;               // 0..100
};

struct TaskSubmit {
  std::string task_type;            // a known type
  std::string payload_json = "{}";  // JSON text, <= 256 KiB
  TaskPriority priority = TaskPriority::normal;
  TaskRequirements requirements;
  std::string metadata_json = "{}";  // JSON object text, <= 16 KiB
  // Who submits it (an access token's subject, <= 128 characters; empty for
  // the library's own callers). Its payload and result are shown to this
  // subject and to operators (docs/decisions.md "Roles and principals").
  std::string submitter;
};

struct Task {
  std::string task_id;  // UUID
  std::string task_type;
  std::string submitter;  // TaskSubmit::submitter; empty when unknown
  std::string payload_json;
  TaskPriority priority = TaskPriority::normal;
  TaskStatus status = TaskStatus::queued;
  TaskRequirements requirements;
  std::string metadata_json;
  std::string device_id;  // assigned/last device, empty if none
  std::int64_t attempt = 0;   // times placed on a device
  std::int64_t retries = 0;   // times requeued after a device loss
  double progress = 0;
  std::string progress_message;
  std::string status_reason;  // why queued (not placed) or why failed
  bool cancel_requested = false;
  std::optional<std::string> result_json;
  std::optional<std::string> error;
  std::optional<std::int64_t> exit_code;
  std::optional<std::int64_t> duration_ms;
  Timestamp created_at;
  std::optional<Timestamp> assigned_at, started_at, completed_at;
};

struct TaskQuery {
  std::int64_t page = 1;
  std::int64_t page_size = 20;  // 1..100
  std::optional<TaskStatus> status;
  std::string task_type;
  std::optional<TaskPriority> priority;
  std::string device_id;
};

struct TaskStatistics {
  std::int64_t total = 0;
  std::map<std::string, std::int64_t> by_status, by_type, by_priority;
  double success_rate = 0;               // success / finished x 100
  double average_execution_seconds = 0;  // over finished tasks with a duration
  std::int64_t queued_now = 0, running_now = 0;
};

struct TaskTypeInfo {
  std::string name;
  std::int64_t devices = 0;         // reported devices that allow it
  std::int64_t online_devices = 0;  // of which online
};

// What an agent receives from a poll.
struct AgentTask {
  std::string task_id, task_type, payload_json;
  std::int64_t timeout_seconds = 0;
  std::int64_t attempt = 0;
};
struct AgentWork {
  std::vector<AgentTask> tasks;
  std::vector<std::string> cancel;
  std::vector<std::string> pings;
  bool empty() const { return tasks.empty() && cancel.empty() && pings.empty(); }
};

struct TaskResultReport {
  std::string status;             // "completed" | "failed" | "timeout" | "cancelled"
  std::string result_json = "null";
  std::optional<std::string> error;  // <= 4096
  std::optional<std::int64_t> exit_code;
  std::int64_t duration_ms = 0;   // >= 0
};

// ---- scheduler extension point: an extra ranking stage ----
// Placement runs feasibility (requirements), then ranking, then selection.
// Built-in ranking prefers the least loaded device (running/max_concurrent,
// then fewer running tasks, then lower node id). A RankingStage, when set,
// ranks BEFORE that: among the feasible devices with free capacity, the one
// whose stage returns the lowest penalty wins; equal penalties fall back to
// the built-in order. Devices are grouped into classes of equal attributes,
// and the stage is asked once per feasible class per placement, about that
// class's least loaded free device.
struct RankCandidate {
  std::int64_t node_id = 0;        // the device (its node's id)
  std::string platform, role;
  std::vector<std::string> tags;   // sorted
  bool has_gpu = false, internet = false;
  std::int64_t cpu_count = 0;
  double memory_gb = 0;            // bucketed down to 0.25 GB
  double storage_gb = 0;           // bucketed down to 1 GB
  std::int64_t running = 0;        // tasks assigned or running on it now
  std::int64_t max_concurrent = 1;
};
// Called on the scheduling thread with the scheduler's lock held: it must be
// quick, must not call back into Tasks (that deadlocks), and should not
// throw (a throw ranks that candidate last).
using RankingStage = std::function<std::int64_t(std::string_view task_type, const RankCandidate& device)>;

// Obtained from Cluster::tasks(); lives as long as the Cluster. Thread-safe:
// every method may be called concurrently. Each state change is one database
// transaction; the scheduler's in-memory view changes only after it commits.
// Failures throw lucid::Error; ids that name nothing are not_found.
class Tasks {
 public:
  // ---- devices ----
  // The agent of `node_id` reports its device. Errors: invalid_argument
  // (field named), not_found (node unknown or not approved / removed).
  Device report_device(std::int64_t node_id, const DeviceReport& report);
  // Approved, not removed nodes as devices, ordered by node id; filtered.
  std::vector<Device> devices(const DeviceQuery& q, std::int64_t* total);
  // Errors: not_found.
  Device device(std::string_view device_id);
  // Admin: sets role and/or tags (same bounds as report_device). Errors:
  // invalid_argument, not_found.
  Device set_device_labels(std::string_view device_id, const std::optional<std::string>& role,
                           const std::optional<std::vector<std::string>>& tags);
  // Removes the device: revokes its node's API key, requeues its tasks.
  // Errors: not_found.
  void remove_device(std::string_view device_id);
  // Removes node `node_uid` ("node_...") altogether (issue 15), in one
  // transaction: its queued and running tasks go back to the queue for other
  // devices (not counted as retries; its agent's waits are answered empty),
  // its API key stops authenticating, and its row goes with its stats,
  // sites, backups and device, so its hostname may join again. Finished
  // tasks keep their history without the node. Announced as node_updated.
  // Here rather than on Nodes because the requeue and the removal are one
  // transaction, and tasks depends on nodes, not the reverse. Errors:
  // not_found (node_not_found); conflict when payouts name the node.
  void remove_node(std::string_view node_uid);
  // How many tasks hold a slot on node `node_id` now (assigned, running, or
  // cancelled and not yet reported); 0 for an unknown node. For drain
  // progress: a drain is complete when this is 0.
  std::int64_t tasks_on(std::int64_t node_id);
  ClusterStats cluster_stats();
  // Asks the device's agent to acknowledge; `done(true)` when it does (on
  // the acknowledging thread), `done(false)` after `timeout` (on the
  // executor; needs start()). Errors: not_found.
  void ping(std::string_view device_id, std::chrono::milliseconds timeout, std::function<void(bool)> done);
  // The agent acknowledges. Errors: not_found (unknown, expired or another device's).
  void ack_ping(std::int64_t node_id, std::string_view ping_id);

  // ---- tasks ----
  // Validates, stores as queued and triggers scheduling. Errors:
  // invalid_argument (also for the workflow job types: see submit_pinned).
  Task submit(const TaskSubmit& t);
  // A workflow job (task type "workflow_job" or "workflow_docker") for the
  // agent of node `node_id` only: validated and stored like submit(), then
  // placed on that device and no other (it waits while the device is
  // offline, busy, cordoned or does not allow the type; a lost device
  // requeues it on the same one within max_retries). For the workflow
  // executor (docs/workflows.md "Jobs on fleet nodes"): such tasks do not
  // survive a restart (open cancels them: their executions failed) and
  // retry() refuses them. Errors: invalid_argument (another type, or as
  // submit), not_found (node_id names no device).
  Task submit_pinned(const TaskSubmit& t, std::int64_t node_id);
  std::vector<Task> list(const TaskQuery& q, std::int64_t* total);
  Task get(std::string_view task_id);
  // queued/assigned: cancelled at once; running: cancelled, and the agent is
  // told to kill it. Errors: not_found, conflict (already finished).
  Task cancel(std::string_view task_id);
  // failed/timeout/cancelled -> queued (attempt history kept). Errors:
  // not_found, conflict (not in such a state).
  Task retry(std::string_view task_id);
  TaskStatistics statistics();
  std::vector<TaskTypeInfo> types();

  // ---- agent side (node_id from the node API key) ----
  // Any agent request: the device is alive.
  void heartbeat(std::int64_t node_id);
  // Takes what is waiting for the device now (may be empty).
  AgentWork take_work(std::int64_t node_id);
  // Calls `done` once: at once (on this thread) if work is waiting, else
  // when work arrives or after `wait` (on the executor; needs start()).
  void wait_work(std::int64_t node_id, std::chrono::milliseconds wait, std::function<void(AgentWork)> done);
  // assigned -> running. Errors: not_found, conflict (not assigned to this node).
  Task start_task(std::int64_t node_id, std::string_view task_id);
  // Returns whether cancel was requested. Errors: invalid_argument, not_found, conflict.
  bool report_progress(std::int64_t node_id, std::string_view task_id, double progress,
                       const std::optional<std::string>& message);
  // Stores the result once; a repeat returns the stored task unchanged.
  // Errors: invalid_argument, not_found, conflict (never this node's).
  Task report_result(std::int64_t node_id, std::string_view task_id, const TaskResultReport& r);
  // As above, and fills `*next` (when not null) with what waits for the
  // device afterwards, as take_work: the freed slot is filled by a
  // scheduling pass run at once, and the tasks placed on this device are
  // handed out here rather than to its long-poll. A failed pass does not
  // fail the report (the queue is scheduled again later; `*next` may then
  // be empty). Errors: as above.
  Task report_result(std::int64_t node_id, std::string_view task_id, const TaskResultReport& r, AgentWork* next);

  // Answers every waiting agent (empty work) and ping (not acknowledged) now;
  // from then on wait_work answers at once. For a server that is shutting
  // down (Cluster::stop() does it too).
  void release_waiters();

  // Installs (or, with an empty function, removes) the extra ranking stage
  // described at RankingStage; later placements use it. Thread-safe (waits
  // for a scheduling pass in progress).
  void set_ranking_stage(RankingStage stage);

  // ---- background (run by the executor; callable directly) ----
  // One scheduling pass over the queue.
  void schedule();
  // Liveness (stale devices -> tasks requeued), running timeouts, delivery
  // leases, and drains past their deadline (the node's tasks are requeued,
  // not counted as retries, and its agent is told to cancel them).
  void sweep();

  // Reads the runtime settings (heartbeat) through `settings`, which must
  // outlive it.
  Tasks(detail::ClusterCore& core, Settings& settings);
  ~Tasks();
  Tasks(const Tasks&) = delete;
  Tasks& operator=(const Tasks&) = delete;

 private:
  friend class detail::ClusterImpl;  // loads the engine, starts and stops it
  // submit() and submit_pinned() after their type check; `pinned`: 0 or a node id.
  Task enqueue(const TaskSubmit& t, std::int64_t pinned);
  std::unique_ptr<detail::TaskEngine> engine_;
};

// Runtime settings, persisted; the running server and the scheduler obey them.
struct HeartbeatSettings {
  std::int64_t interval = 60;   // seconds an agent should wait at most between requests, 1..3600
  std::int64_t timeout = 300;   // seconds of silence after which a device is offline, 1..86400
  std::int64_t max_missed = 3;  // missed intervals after which a device is offline, 1..100
  // Offline after min(timeout, interval x max_missed) seconds.
  std::chrono::seconds offline_after() const {
    return std::chrono::seconds(std::min(timeout, interval * max_missed));
  }
};
struct ServerSettings {
  std::int64_t max_connections = 10000;  // 1..1000000
};

// Obtained from Cluster::settings(). Thread-safe.
class Settings {
 public:
  HeartbeatSettings heartbeat() const;
  ServerSettings server() const;
  // Partial updates; absent fields stay. Validated (invalid_argument with the
  // field named), persisted, then announced to subscribers.
  HeartbeatSettings update_heartbeat(std::optional<std::int64_t> interval, std::optional<std::int64_t> timeout,
                                     std::optional<std::int64_t> max_missed);
  ServerSettings update_server(std::optional<std::int64_t> max_connections);
  // Restores the defaults (Options) and forgets the stored values.
  void reset();
  // Kept for source compatibility: admin API keys belong to auth now; these
  // forward to Cluster::api_keys() (lucidnode/api_keys.hpp), which documents
  // them: ApiKeys::create and ApiKeys::authenticate.
  std::string create_api_key(const std::string& name, Role role);
  Claims authenticate_api_key(std::string_view key);
  // Called (on the changing thread) after every change, with the new server settings.
  void on_server_change(std::function<void(const ServerSettings&)> fn);

  // The API key forwards go to `api_keys`, which must outlive it.
  Settings(detail::ClusterCore& core, ApiKeys& api_keys);
  ~Settings();
  Settings(const Settings&) = delete;
  Settings& operator=(const Settings&) = delete;

 private:
  friend class detail::ClusterImpl;  // load() at open, reload() when another server changed them
  void load();
  // load(), then tells on_server_change's subscribers.
  void reload();
  struct LUCID_HIDDEN_FWD Impl;
  std::unique_ptr<Impl> impl_;
  detail::ClusterCore& core_;
  ApiKeys& api_keys_;
};

LUCID_PUBLIC_END
}  // namespace lucid
