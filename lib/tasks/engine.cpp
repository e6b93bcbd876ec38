// Tasks: the TaskEngine (tasks/engine.hpp): waking agents, handing out work,
// releasing and requeueing tasks, loading the state at open.
#include "lucidnode/tasks.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/cluster_core.hpp"
#include "nodes/node_cache.hpp"
#include "tasks/engine.hpp"
#include "tasks/tasks_internal.hpp"

namespace lucid {

using detail::Conn;
using detail::TaskEngine;
using namespace detail::task_impl;

namespace detail {

// ---- engine helpers (mu held) ----------------------------------------------------

int TaskEngine::intern(const TaskRequirements& r, const std::string& type, std::int64_t device) {
  sched::Requirements q;
  q.device = device;
  q.type_bit = sched::task_type_bit(type);
  q.min_cpu = r.min_cpu_cores.value_or(0);
  // Rounded up to the class buckets (0.25 GB, 1 GB): the same placements,
  // and far fewer distinct requirement sets to cache.
  q.min_memory_gb = std::ceil(r.min_memory_gb.value_or(0) * 4 - 1e-9) / 4;
  q.min_storage_gb = std::ceil(r.min_storage_gb.value_or(0) - 1e-9);
  q.platform = r.required_platform;
  q.role = r.required_role;
  q.tags = r.required_tags;
  q.gpu = r.gpu_required;
  q.internet = r.internet_required;
  return placer.intern(q);
}

sched::ClassAttrs TaskEngine::attrs_of(const Device& d) const {
  std::uint32_t types = 0;
  for (const auto& t : d.allowed_task_types) types |= sched::task_type_bit(t);
  return sched::ClassAttrs::make(d.platform, d.role, d.tags, d.capabilities.has_gpu, d.capabilities.internet, types,
                                 d.capabilities.cpu_count, d.capabilities.memory_total_gb,
                                 d.capabilities.storage_total_gb);
}

TaskEngine::Dev& TaskEngine::dev(std::int64_t node) { return devs[node]; }

void TaskEngine::set_online(Dev& d, std::int64_t node, bool online, Timestamp now) {
  if (d.online == online) return;
  d.online = online;
  d.online_since = online ? std::optional<Timestamp>(now) : std::nullopt;
  placer.set_online(node, online);
}

void TaskEngine::wake_locked(std::int64_t node, std::vector<std::pair<std::shared_ptr<Waiter>, AgentWork>>& out) {
  auto it = devs.find(node);
  if (it == devs.end() || it->second.waiters.empty()) return;
  Dev& d = it->second;
  AgentWork w = take_locked(node, d);
  if (w.empty()) return;
  auto waiter = d.waiters.front();
  d.waiters.erase(d.waiters.begin());
  waiter->finished = true;
  if (waiter->timer) waiter->timer->cancel();
  out.emplace_back(std::move(waiter), std::move(w));
}

void TaskEngine::fire(std::vector<std::pair<std::shared_ptr<Waiter>, AgentWork>>& woken) {
  for (auto& [w, work] : woken) {
    try {
      w->done(std::move(work));
    } catch (...) {
    }
  }
}

AgentWork TaskEngine::take_locked(std::int64_t node, Dev& d) {
  AgentWork w;
  const Timestamp now = core.clock->now();
  std::vector<Active*> todo;
  for (const auto& id : d.tasks) {
    auto it = active.find(id);
    if (it == active.end()) continue;
    Active& a = *it->second;
    if (a.node == node && a.status == TaskStatus::assigned && !a.delivered) todo.push_back(&a);
  }
  if (!todo.empty()) {
    // In queue order: priority, then submission.
    std::sort(todo.begin(), todo.end(), [](const Active* x, const Active* y) {
      return x->priority != y->priority ? x->priority > y->priority : x->rowid < y->rowid;
    });
    core.store->read([&](Conn& c) {
      for (Active* a : todo) {
        auto& q = c.stmt("SELECT payload FROM tasks WHERE id = ?");
        q.bind(1, a->rowid);
        if (!q.step()) continue;
        w.tasks.push_back({a->task_id, a->task_type, q.column(0).as_text(), a->timeout_seconds, a->attempt});
        a->delivered = true;
        a->delivered_at = now;
      }
    });
  }
  w.cancel = std::move(d.cancel_out);
  d.cancel_out.clear();
  w.pings = std::move(d.pings_out);
  d.pings_out.clear();
  return w;
}

void TaskEngine::release_locked(Active& a) {
  if (a.node) {
    placer.add_load(a.node, -1);
    auto it = devs.find(a.node);
    if (it != devs.end()) it->second.tasks.erase(a.task_id);
  }
  if (a.status == TaskStatus::queued) queue[a.priority].erase(a.rowid);
  active.erase(a.task_id);  // destroys a
}

void TaskEngine::lose_tasks_locked(Conn& c, std::int64_t node, Dev& d, const std::string& why,
                                   std::vector<Active*>& requeued, std::vector<std::string>& dropped,
                                   bool count_retry) {
  const std::string at = now_text(core);
  for (const auto& id : d.tasks) {
    auto it = active.find(id);
    if (it == active.end() || it->second->node != node) continue;
    Active& a = *it->second;
    dropped.push_back(id);
    if (a.status == TaskStatus::cancelled) continue;  // already cancelled: only the slot was held
    end_attempt(c, a.rowid, a.attempt, "requeued", at, why);
    if (!count_retry || a.retries < a.max_retries) {
      auto& q = c.stmt(
          "UPDATE tasks SET status = 'queued', retries = retries + ?3, progress = 0, progress_message = '',"
          " started_at = NULL, status_reason = ?1 WHERE id = ?2");
      q.bind(1, "requeued: " + why);
      q.bind(2, a.rowid);
      q.bind(3, static_cast<std::int64_t>(count_retry ? 1 : 0));
      q.run();
      requeued.push_back(&a);
    } else {
      const std::string reason = why + "; retries exhausted (" + std::to_string(a.max_retries) + ")";
      auto& q = c.stmt(
          "UPDATE tasks SET status = 'failed', error = ?, status_reason = ?, completed_at = ? WHERE id = ?");
      q.bind(1, reason);
      q.bind(2, reason);
      q.bind(3, at);
      q.bind(4, a.rowid);
      q.run();
    }
  }
}

// After the transaction of lose_tasks_locked committed.
void TaskEngine::apply_lost(std::int64_t node, std::vector<Active*>& requeued, std::vector<std::string>& dropped,
                            bool count_retry) {
  std::unordered_set<Active*> again(requeued.begin(), requeued.end());
  for (const auto& id : dropped) {
    auto it = active.find(id);
    if (it == active.end()) continue;
    Active& a = *it->second;
    placer.add_load(node, -1);
    if (again.count(&a)) {
      a.node = 0;
      a.status = TaskStatus::queued;
      a.delivered = false;
      if (count_retry) ++a.retries;
      queue[a.priority][a.rowid] = &a;
    } else {
      active.erase(it);
    }
  }
  auto d = devs.find(node);
  if (d != devs.end()) d->second.tasks.clear();
}

void TaskEngine::trigger() {
  if (schedule_posted.exchange(true)) return;
  core.post([this] {
    schedule_posted.store(false);
    tasks.schedule();
  });
}

TaskEngine::~TaskEngine() {
  try {
    core.node_cache().on_schedulable_change(nullptr);
  } catch (...) {
    // No nodes cache: nothing was registered.
  }
}

void TaskEngine::sync_eligible_locked() {
  auto& cache = core.node_cache();
  // The version is read before the states: a change in between bumps it
  // again, and the next sync sees that.
  const auto v = cache.schedulable_version();
  if (v == eligible_version.load()) return;
  eligible_version.store(v);
  for (auto& [node, d] : devs)
    if (placer.has(node)) placer.set_eligible(node, cache.schedulable(node));
}

void TaskEngine::load() {
  // A cordon ended, maintenance over, a node approved: a pass places what
  // waits. The cache calls this outside its lock; trigger() only posts.
  core.node_cache().on_schedulable_change([this] { trigger(); });
  std::lock_guard<std::mutex> lock(mu);
  const Timestamp now = core.clock->now();
  const auto offline_after = settings.heartbeat().offline_after();
  core.store->read([&](Conn& c) {
    auto& q = c.stmt(kDevicesAll);
    while (q.step()) {
      Device d = read_device(q);
      if (!d.reported) continue;
      Dev& m = devs[d.node_id];
      m.heartbeat = d.last_heartbeat;
      m.online = d.last_heartbeat && now - *d.last_heartbeat <= offline_after;
      if (m.online) m.online_since = now;
      m.info = d;
      placer.upsert(d.node_id, attrs_of(d), d.max_concurrent, m.online);
    }
    eligible_version.store(~0ULL);  // the first pass syncs every device
  });
  // Workflow jobs left by a previous process: their executions failed at
  // this open (Workflows::recover), and their pin to a node is not stored.
  // They end cancelled rather than run for nobody. (A read-only open leaves
  // them; it schedules nothing.)
  // Replicas: another live server may be running such a job; the leader's
  // Workflows::fail_abandoned cancels the tasks of executions whose server
  // is gone instead.
  if (!core.opts.read_only && !core.replicated()) core.store->write([&](Conn& c) {
    const std::string at = now_text(core);
    const std::string why = "server restarted: the workflow execution that dispatched this job failed";
    auto& a = c.stmt(
        "UPDATE task_attempts SET ended_at = ?1, outcome = 'cancelled', reason = ?2 WHERE ended_at IS NULL AND"
        " task_rowid IN (SELECT id FROM tasks WHERE task_type IN ('workflow_job', 'workflow_docker')"
        " AND status IN ('queued', 'assigned', 'running'))");
    a.bind(1, at);
    a.bind(2, why);
    a.run();
    auto& q = c.stmt(
        "UPDATE tasks SET status = 'cancelled', completed_at = ?1, status_reason = ?2, error = ?2"
        " WHERE task_type IN ('workflow_job', 'workflow_docker') AND status IN ('queued', 'assigned', 'running')");
    q.bind(1, at);
    q.bind(2, why);
    q.run();
  });
  core.store->read([&](Conn& c) {
    auto& t = c.stmt(
        "SELECT t.id, t.task_id, t.task_type, t.priority, t.status, t.min_cpu_cores, t.min_memory_gb,"
        " t.min_storage_gb, t.required_platform, t.required_role, t.required_tags, t.gpu_required,"
        " t.internet_required, t.timeout_seconds, t.max_retries, t.retries, t.attempt, t.node_id, t.started_at"
        " FROM tasks t WHERE t.status IN ('queued', 'assigned', 'running') ORDER BY t.id");
    while (t.step()) {
      auto a = std::make_unique<Active>();
      a->rowid = t.column(0).as_int64();
      a->task_id = t.column(1).as_text();
      a->task_type = t.column(2).as_text();
      a->priority = std::clamp(t.column(3).as_int(), 0, 3);
      a->status = parse_task_status(t.column(4).as_text()).value_or(TaskStatus::queued);
      TaskRequirements r;
      if (!t.column(5).is_null()) r.min_cpu_cores = t.column(5).as_int64();
      if (!t.column(6).is_null()) r.min_memory_gb = t.column(6).as_double();
      if (!t.column(7).is_null()) r.min_storage_gb = t.column(7).as_double();
      r.required_platform = t.column(8).as_text();
      r.required_role = t.column(9).as_text();
      r.required_tags = parse_string_array(t.column(10).as_text());
      r.gpu_required = t.column(11).as_int() != 0;
      r.internet_required = t.column(12).as_int() != 0;
      a->timeout_seconds = t.column(13).as_int64();
      a->max_retries = t.column(14).as_int64();
      a->retries = t.column(15).as_int64();
      a->attempt = t.column(16).as_int64();
      a->sig = intern(r, a->task_type);
      if (a->status == TaskStatus::queued) {
        queue[a->priority][a->rowid] = a.get();
      } else {
        a->node = t.column(17).is_null() ? 0 : t.column(17).as_int64();
        a->started_at = parse_stored_opt(t.column(18)).value_or(now);
        // Undelivered as far as we know: the agent gets it again and ignores a duplicate.
        Dev& d = devs[a->node];
        d.tasks.insert(a->task_id);
        placer.add_load(a->node, 1);
      }
      std::string id = a->task_id;
      active.emplace(std::move(id), std::move(a));
    }
  });
}

void TaskEngine::shutdown() {
  std::vector<std::shared_ptr<Waiter>> waiters;
  std::vector<std::shared_ptr<PingState>> ps;
  {
    std::lock_guard<std::mutex> lock(mu);
    stopped = true;
    for (auto& [id, d] : devs) {
      for (auto& w : d.waiters) waiters.push_back(w);
      d.waiters.clear();
    }
    for (auto& [id, p] : pings) ps.push_back(p);
    pings.clear();
    for (auto& w : waiters) {
      w->finished = true;
      if (w->timer) w->timer->cancel();
    }
    for (auto& p : ps) {
      p->finished = true;
      if (p->timer) p->timer->cancel();
    }
  }
  for (auto& w : waiters) {
    try { w->done(AgentWork{}); } catch (...) {}
  }
  for (auto& p : ps) {
    try { p->done(false); } catch (...) {}
  }
}


Device TaskEngine::overlay(Device d) const {
  auto it = devs.find(d.node_id);
  if (it == devs.end()) return d;
  const Dev& m = it->second;
  d.online = m.online;
  if (m.heartbeat) d.last_heartbeat = m.heartbeat;
  d.online_since = m.online_since;
  d.active_tasks = placer.running(d.node_id);
  return d;
}

std::string TaskEngine::queued_reason(const Active& a) {
  sync_eligible_locked();
  std::string why;
  if (!placer.explain(a.sig, &why)) return why;
  return "waiting for the scheduler";
}

}  // namespace detail

}  // namespace lucid
