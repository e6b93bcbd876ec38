// Tasks: the agent side: heartbeats, long-polled work, start, progress, results.
#include "lucidnode/tasks.hpp"

#include <algorithm>

#include "core/cluster_core.hpp"
#include "tasks/engine.hpp"
#include "tasks/tasks_internal.hpp"

namespace lucid {

using detail::Conn;
using detail::TaskEngine;
using namespace detail::task_impl;

// ---- agent side ----

void Tasks::heartbeat(std::int64_t node_id) {
  auto& e = *engine_;
  bool back = false;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    auto& d = e.devs[node_id];
    const Timestamp now = e.core.clock->now();
    d.heartbeat = now;
    d.heartbeat_dirty = true;
    if (!d.online && d.info.reported && e.placer.has(node_id)) {
      e.set_online(d, node_id, true, now);
      back = true;
    } else if (!d.info.reported) {
      d.online = true;
      if (!d.online_since) d.online_since = now;
    }
  }
  if (back) e.trigger();
}

AgentWork Tasks::take_work(std::int64_t node_id) {
  auto& e = *engine_;
  std::lock_guard<std::mutex> lock(e.mu);
  return e.take_locked(node_id, e.devs[node_id]);
}

void Tasks::wait_work(std::int64_t node_id, std::chrono::milliseconds wait, std::function<void(AgentWork)> done) {
  auto& e = *engine_;
  AgentWork now_work;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    auto& d = e.devs[node_id];
    now_work = e.take_locked(node_id, d);
    if (now_work.empty() && wait.count() > 0 && !e.stopped) {
      auto w = std::make_shared<TaskEngine::Waiter>();
      w->node = node_id;
      w->done = std::move(done);
      w->timer = std::make_unique<asio::steady_timer>(e.core.io());
      w->timer->expires_after(wait);
      std::weak_ptr<TaskEngine::Waiter> weak = w;
      w->timer->async_wait([&e, weak, node_id](const asio::error_code&) {
        auto me = weak.lock();
        if (!me) return;
        AgentWork work;
        {
          std::lock_guard<std::mutex> lock(e.mu);
          if (me->finished) return;
          me->finished = true;
          auto it = e.devs.find(node_id);
          if (it != e.devs.end()) {
            auto& ws = it->second.waiters;
            ws.erase(std::remove(ws.begin(), ws.end(), me), ws.end());
            work = e.take_locked(node_id, it->second);
          }
        }
        me->done(std::move(work));
      });
      d.waiters.push_back(std::move(w));
      return;
    }
  }
  done(std::move(now_work));
}

Task Tasks::start_task(std::int64_t node_id, std::string_view task_id) {
  auto& e = *engine_;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    TaskEngine::Active* a = find_active(e, task_id);
    if (!a || a->node != node_id || (a->status != TaskStatus::assigned && a->status != TaskStatus::running)) {
      load_task(e, task_id);
      throw Error(Errc::conflict, "Task is not assigned to this device", "task_id");
    }
    if (a->status == TaskStatus::assigned) {
      const Timestamp now = e.core.clock->now();
      e.core.store->write([&](Conn& c) {
        auto& q = c.stmt("UPDATE tasks SET status = 'running', started_at = ? WHERE id = ?");
        q.bind(1, time_text(now));
        q.bind(2, a->rowid);
        q.run();
      });
      a->status = TaskStatus::running;
      a->started_at = now;
    }
  }
  return get(task_id);
}

bool Tasks::report_progress(std::int64_t node_id, std::string_view task_id, double progress,
                            const std::optional<std::string>& message) {
  detail::check_range("progress", progress, 0, 100);
  if (message) detail::check_text("message", *message, 1024, false);
  auto& e = *engine_;
  std::lock_guard<std::mutex> lock(e.mu);
  TaskEngine::Active* a = find_active(e, task_id);
  if (!a || a->node != node_id) {
    load_task(e, task_id);
    throw Error(Errc::conflict, "Task is not running on this device", "task_id");
  }
  if (a->status == TaskStatus::cancelled) return true;
  if (a->status != TaskStatus::running) throw Error(Errc::conflict, "Task has not been started", "task_id");
  e.core.store->write([&](Conn& c) {
    auto& q = c.stmt("UPDATE tasks SET progress = ?, progress_message = COALESCE(?, progress_message) WHERE id = ?");
    q.bind(1, progress);
    if (message) q.bind(2, *message); else q.bind(2, nullptr);
    q.bind(3, a->rowid);
    q.run();
  });
  return false;
}

Task Tasks::report_result(std::int64_t node_id, std::string_view task_id, const TaskResultReport& r) {
  return report_result(node_id, task_id, r, nullptr);
}

Task Tasks::report_result(std::int64_t node_id, std::string_view task_id, const TaskResultReport& r,
                          AgentWork* next) {
  const char* final_status = nullptr;
  if (r.status == "completed") final_status = "success";
  else if (r.status == "failed") final_status = "failed";
  else if (r.status == "timeout") final_status = "timeout";
  else if (r.status == "cancelled") final_status = "cancelled";
  else invalid("status", "status must be completed, failed, timeout or cancelled");
  if (r.result_json.size() > kMaxResult) invalid("result", "result must be at most 262144 bytes of JSON");
  if (!valid_json(r.result_json, false)) invalid("result", "result must be JSON");
  if (r.error) detail::check_text("error", *r.error, 4096, false);
  if (r.duration_ms < 0 || r.duration_ms > 86400000LL * 30) invalid("duration_ms", "duration_ms must be >= 0");
  auto& e = *engine_;
  std::vector<std::pair<std::shared_ptr<TaskEngine::Waiter>, AgentWork>> woken;
  bool more = false;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    TaskEngine::Active* a = find_active(e, task_id);
    if (!a || a->node != node_id) {
      TaskRow row = load_task(e, task_id);
      if (row.node_id == node_id && task_status_final(row.task.status)) {  // repeat
        if (next) *next = e.take_locked(node_id, e.devs[node_id]);
        return std::move(row.task);
      }
      throw Error(Errc::conflict, "Task is not assigned to this device", "task_id");
    }
    const bool was_cancelled = a->status == TaskStatus::cancelled;
    const std::string at = now_text(e.core);
    e.core.store->write([&](Conn& c) {
      auto& q = c.stmt(
          "UPDATE tasks SET status = CASE WHEN status IN ('cancelled', 'timeout') THEN status ELSE ? END,"
          " result = ?, error = ?, exit_code = ?, duration_ms = ?,"
          " completed_at = COALESCE(completed_at, ?), progress = CASE WHEN ? = 'success' THEN 100 ELSE progress END,"
          " started_at = COALESCE(started_at, ?) WHERE id = ? AND result IS NULL");
      q.bind(1, final_status);
      q.bind(2, r.result_json);
      if (r.error) q.bind(3, *r.error); else q.bind(3, nullptr);
      if (r.exit_code) q.bind(4, *r.exit_code); else q.bind(4, nullptr);
      q.bind(5, r.duration_ms);
      q.bind(6, at);
      q.bind(7, final_status);
      q.bind(8, at);
      q.bind(9, a->rowid);
      q.run();
      if (!was_cancelled) end_attempt(c, a->rowid, a->attempt, final_status, at, r.error.value_or(""));
    });
    e.release_locked(*a);
    if (next && !e.stopped) {
      // The freed slot is filled now and this device's share is answered
      // here, not through its long-poll: one round trip for result and
      // next task. The result is stored whatever the pass does; a pass
      // that fails leaves the queue to the posted one.
      try {
        more = e.schedule_locked(woken, node_id);
      } catch (const Error&) {
        more = true;
      }
      *next = e.take_locked(node_id, e.devs[node_id]);
    } else {
      more = true;
    }
  }
  TaskEngine::fire(woken);
  if (more) e.trigger();
  return get(task_id);
}


}  // namespace lucid
