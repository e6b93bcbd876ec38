// The state behind lucid::Tasks. Internal.
//
// The database is the source of truth; the engine keeps in memory what the
// hot paths need: devices known to the scheduler (the Placer), the queue of
// queued tasks by priority and FIFO, the tasks that hold a device
// (assigned/running/cancelling), agent waiters and pings. One mutex guards
// it all; a state change takes the mutex, then the store's write transaction,
// and updates memory only after the commit (lock order: mu, then store).
#pragma once

#include <asio.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/cluster_core.hpp"
#include "lucidnode/tasks.hpp"
#include "tasks/scheduler.hpp"

namespace lucid::detail {

class ClusterCore;
class Conn;

class TaskEngine {
 public:
  // `tasks` (its owner) and `settings` must outlive it.
  TaskEngine(ClusterCore& core, Tasks& tasks, Settings& settings) : core(core), tasks(tasks), settings(settings) {}
  // Unregisters from the nodes cache (load() registered).
  ~TaskEngine();
  void load();        // at open; asks the nodes cache to trigger a pass when eligibility may have changed
  void shutdown();    // at stop: answers every waiter and ping now
  void trigger();     // posts one scheduling pass to the executor (coalesced)

  struct Waiter {
    std::int64_t node = 0;
    std::function<void(AgentWork)> done;
    std::unique_ptr<asio::steady_timer> timer;
    bool finished = false;
  };
  struct PingState {
    std::int64_t node = 0;
    std::function<void(bool)> done;
    std::unique_ptr<asio::steady_timer> timer;
    bool finished = false;
  };
  struct Dev {
    Device info;  // reported attributes (online/heartbeat kept below)
    bool online = false;
    std::optional<Timestamp> heartbeat, online_since;
    bool heartbeat_dirty = false;
    std::set<std::string> tasks;  // active task ids held here
    std::vector<std::string> cancel_out, pings_out;
    std::vector<std::shared_ptr<Waiter>> waiters;
  };
  struct Active {
    std::int64_t rowid = 0;
    std::string task_id, task_type;
    int priority = 1;
    int sig = -1;
    std::int64_t timeout_seconds = 300, max_retries = 3, retries = 0, attempt = 0;
    TaskStatus status = TaskStatus::queued;  // queued, assigned, running; cancelled = draining
    std::int64_t node = 0;
    bool delivered = false;
    Timestamp delivered_at{}, started_at{};
  };

  ClusterCore& core;
  Tasks& tasks;          // runs the scheduling passes trigger() posts
  Settings& settings;    // heartbeat: when a silent device is offline
  std::mutex mu;
  sched::Placer placer;
  std::unordered_map<std::int64_t, Dev> devs;
  std::unordered_map<std::string, std::unique_ptr<Active>> active;
  std::map<std::int64_t, Active*> queue[4];  // by priority, keyed by row id (FIFO)
  std::unordered_map<std::string, std::shared_ptr<PingState>> pings;
  std::atomic<bool> schedule_posted{false};
  std::atomic<bool> stopped{false};
  // The nodes cache's schedulable_version() the placer's eligibility was
  // last synced at (sync_eligible_locked).
  std::atomic<std::uint64_t> eligible_version{~0ULL};

  // ---- helpers (mu held) ----
  int intern(const TaskRequirements& r, const std::string& type);
  // A stored device with its live fields (online, heartbeat, active tasks).
  Device overlay(Device d) const;
  // Why a queued task is not placed.
  std::string queued_reason(const Active& a);
  sched::ClassAttrs attrs_of(const Device& d) const;
  void set_online(Dev& d, std::int64_t node, bool online, Timestamp now);
  Dev& dev(std::int64_t node);
  // Takes undelivered work of a device (reads payloads from the store).
  AgentWork take_locked(std::int64_t node, Dev& d);
  // Collects waiters of `node` to wake when it has work; call `fire` after unlocking.
  void wake_locked(std::int64_t node, std::vector<std::pair<std::shared_ptr<Waiter>, AgentWork>>& out);
  // Frees the device slot of an active task and forgets it.
  void release_locked(Active& a);
  // A device lost its tasks (stale or removed): requeue or fail each, in `c`.
  // `count_retry`: the loss counts against max_retries (a device that went
  // silent); an operator's removal or drain does not (the task is requeued
  // whatever its retries).
  void lose_tasks_locked(Conn& c, std::int64_t node, Dev& d, const std::string& why,
                         std::vector<Active*>& requeued, std::vector<std::string>& dropped, bool count_retry = true);
  void apply_lost(std::int64_t node, std::vector<Active*>& requeued, std::vector<std::string>& dropped,
                  bool count_retry = true);
  // Makes the placer's eligibility stage follow the nodes cache (cordon,
  // drain, maintenance) when it changed since the last sync.
  void sync_eligible_locked();
  static void fire(std::vector<std::pair<std::shared_ptr<Waiter>, AgentWork>>& woken);
};

}  // namespace lucid::detail
