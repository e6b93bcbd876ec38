// Tasks: the periodic sweep: heartbeats to the database, offline devices
// lose their tasks, running tasks past their timeout.
#include "lucidnode/tasks.hpp"

#include <algorithm>

#include "core/cluster_core.hpp"
#include "nodes/node_cache.hpp"
#include "tasks/engine.hpp"
#include "tasks/tasks_internal.hpp"

namespace lucid {

using detail::Conn;
using detail::TaskEngine;
using namespace detail::task_impl;

void Tasks::sweep() {
  auto& e = *engine_;
  std::vector<std::pair<std::shared_ptr<TaskEngine::Waiter>, AgentWork>> woken;
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    if (e.stopped) return;
    const Timestamp now = e.core.clock->now();
    const auto offline_after = e.settings.heartbeat().offline_after();
    std::vector<std::int64_t> stale;
    std::vector<std::pair<std::int64_t, Timestamp>> beats;
    for (auto& [node, d] : e.devs) {
      if (d.heartbeat_dirty && d.heartbeat && d.info.reported) beats.emplace_back(node, *d.heartbeat);
      d.heartbeat_dirty = false;
      const bool silent = !d.heartbeat || now - *d.heartbeat > offline_after;
      if (silent && d.online) {
        d.online = false;
        d.online_since.reset();
        e.placer.set_online(node, false);
      }
      if (silent && !d.tasks.empty()) stale.push_back(node);
    }
    // Drains past their deadline (issue 15): what still holds the node goes
    // back to the queue. A silent node's tasks are requeued as stale above.
    std::vector<std::int64_t> drained;
    auto& cache = e.core.node_cache();
    for (auto& [node, d] : e.devs) {
      if (d.tasks.empty() || std::find(stale.begin(), stale.end(), node) != stale.end()) continue;
      const auto deadline = cache.drain_deadline(node);
      if (deadline && now >= *deadline) drained.push_back(node);
    }
    // Running tasks past their timeout (the agent should have reported), and
    // delivered tasks never started.
    std::vector<TaskEngine::Active*> timed_out;
    std::set<std::int64_t> redeliver;
    for (auto& [id, ap] : e.active) {
      TaskEngine::Active& a = *ap;
      if (a.status == TaskStatus::running && now - a.started_at > std::chrono::seconds(a.timeout_seconds) + kRunningGrace)
        timed_out.push_back(&a);
      else if (a.status == TaskStatus::assigned && a.delivered && now - a.delivered_at > kDeliveryLease) {
        a.delivered = false;
        redeliver.insert(a.node);
      }
    }
    std::vector<TaskEngine::Active*> requeued;
    std::vector<std::string> dropped;
    std::map<std::int64_t, std::pair<std::vector<TaskEngine::Active*>, std::vector<std::string>>> lost;
    std::map<std::int64_t, std::pair<std::vector<TaskEngine::Active*>, std::vector<std::string>>> drain_lost;
    if (!beats.empty() || !stale.empty() || !timed_out.empty() || !drained.empty()) {
      const std::string at = now_text(e.core);
      e.core.store->write([&](Conn& c) {
        for (auto& [node, t] : beats) {
          auto& q = c.stmt("UPDATE devices SET last_heartbeat = ? WHERE node_id = ?");
          q.bind(1, time_text(t));
          q.bind(2, node);
          q.run();
        }
        for (auto node : stale) {
          auto& l = lost[node];
          e.lose_tasks_locked(c, node, e.devs[node], "device went offline (no heartbeat)", l.first, l.second);
        }
        for (auto node : drained) {
          auto& l = drain_lost[node];
          e.lose_tasks_locked(c, node, e.devs[node], "node drain deadline passed", l.first, l.second,
                              /*count_retry=*/false);
        }
        for (auto* a : timed_out) {
          auto& q = c.stmt(
              "UPDATE tasks SET status = 'timeout', error = 'no result within timeout_seconds', completed_at = ?,"
              " status_reason = 'timed out on the device' WHERE id = ?");
          q.bind(1, at);
          q.bind(2, a->rowid);
          q.run();
          end_attempt(c, a->rowid, a->attempt, "timeout", at, "no result within timeout_seconds");
        }
      });
    }
    for (auto& [node, l] : lost) {
      if (!l.first.empty() || !l.second.empty()) changed = true;
      e.apply_lost(node, l.first, l.second);
    }
    for (auto& [node, l] : drain_lost) {
      if (!l.first.empty() || !l.second.empty()) changed = true;
      // The agent is alive: it is told to stop what went back to the queue
      // (a late result is refused: the task is no longer this node's).
      auto& out = e.devs[node].cancel_out;
      for (const auto* a : l.first) out.push_back(a->task_id);
      e.apply_lost(node, l.first, l.second, /*count_retry=*/false);
      redeliver.insert(node);
    }
    for (auto* a : timed_out) {
      // The agent is told to kill it; the slot stays held until it reports.
      a->status = TaskStatus::cancelled;
      e.devs[a->node].cancel_out.push_back(a->task_id);
      redeliver.insert(a->node);
    }
    for (auto n : redeliver) e.wake_locked(n, woken);
  }
  TaskEngine::fire(woken);
  if (changed) e.trigger();
}


}  // namespace lucid
