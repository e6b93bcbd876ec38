// Tasks: names, the task queue (submit, list, cancel, retry, statistics) and
// placement of queued tasks on devices.
#include "lucidnode/tasks.hpp"

#include <algorithm>
#include <unordered_set>

#include "core/cluster_core.hpp"
#include "tasks/engine.hpp"
#include "tasks/tasks_internal.hpp"
#include "util/enum_names.hpp"

namespace lucid {

using detail::Conn;
using detail::TaskEngine;
using namespace detail::task_impl;

// ---- names -------------------------------------------------------------------

constexpr detail::EnumNames<TaskPriority, 4> kTaskPriorityNames{{{TaskPriority::low, "low"},
                                                                   {TaskPriority::normal, "normal"},
                                                                   {TaskPriority::high, "high"},
                                                                   {TaskPriority::urgent, "urgent"}}};
constexpr detail::EnumNames<TaskStatus, 8> kTaskStatusNames{{{TaskStatus::pending, "pending"},
                                                             {TaskStatus::queued, "queued"},
                                                             {TaskStatus::assigned, "assigned"},
                                                             {TaskStatus::running, "running"},
                                                             {TaskStatus::success, "success"},
                                                             {TaskStatus::failed, "failed"},
                                                             {TaskStatus::cancelled, "cancelled"},
                                                             {TaskStatus::timeout, "timeout"}}};

const char* task_priority_name(TaskPriority p) noexcept { return detail::enum_name(kTaskPriorityNames, p, "normal"); }

std::optional<TaskPriority> parse_task_priority(std::string_view s) { return detail::parse_enum(kTaskPriorityNames, s); }

const char* task_status_name(TaskStatus s) noexcept { return detail::enum_name(kTaskStatusNames, s, "pending"); }

std::optional<TaskStatus> parse_task_status(std::string_view s) { return detail::parse_enum(kTaskStatusNames, s); }

bool task_status_final(TaskStatus s) noexcept {
  return s == TaskStatus::success || s == TaskStatus::failed || s == TaskStatus::cancelled ||
         s == TaskStatus::timeout;
}

const std::vector<std::string>& known_task_types() {
  static const std::vector<std::string> all(std::begin(detail::sched::kTaskTypes),
                                            std::end(detail::sched::kTaskTypes));
  return all;
}

// ---- Tasks -----------------------------------------------------------------------

Tasks::Tasks(detail::ClusterCore& core, Settings& settings)
    : engine_(std::make_unique<TaskEngine>(core, *this, settings)) {}
Tasks::~Tasks() = default;

// ---- tasks ----

Task Tasks::submit(const TaskSubmit& t) {
  if (t.task_type.empty()) invalid("task_type", "task_type is required");
  if (!detail::sched::task_type_bit(t.task_type) || detail::sched::is_workflow_job_type(t.task_type))
    invalid("task_type", "task_type must be one of echo, sleep, system_info, http_request, command, python_eval"
                         " (workflow_job and workflow_docker tasks are created by workflow executions)");
  return enqueue(t, 0);
}

Task Tasks::submit_pinned(const TaskSubmit& t, std::int64_t node_id) {
  if (!detail::sched::is_workflow_job_type(t.task_type))
    invalid("task_type", "only workflow_job and workflow_docker tasks are pinned to a node");
  {
    auto& e = *engine_;
    std::lock_guard<std::mutex> lock(e.mu);
    if (!e.placer.has(node_id)) device_not_found();
  }
  return enqueue(t, node_id);
}

Task Tasks::enqueue(const TaskSubmit& t, std::int64_t pinned) {
  if (t.payload_json.size() > kMaxPayload) invalid("payload", "payload must be at most 262144 bytes of JSON");
  if (!valid_json(t.payload_json, false)) invalid("payload", "payload must be JSON");
  if (t.metadata_json.size() > kMaxMetadata) invalid("metadata", "metadata must be at most 16384 bytes of JSON");
  if (!valid_json(t.metadata_json, true)) invalid("metadata", "metadata must be a JSON object");
  if (t.submitter.size() > 128) invalid("submitter", "submitter must be at most 128 characters");
  TaskRequirements r = t.requirements;
  if (r.min_cpu_cores && (*r.min_cpu_cores < 1 || *r.min_cpu_cores > 4096))
    invalid("requirements.min_cpu_cores", "min_cpu_cores must be 1..4096");
  if (r.min_memory_gb) detail::check_range("requirements.min_memory_gb", *r.min_memory_gb, 0, 1e6);
  if (r.min_storage_gb) detail::check_range("requirements.min_storage_gb", *r.min_storage_gb, 0, 1e9);
  if (!r.required_platform.empty()) check_name("requirements.required_platform", r.required_platform);
  if (!r.required_role.empty()) check_name("requirements.required_role", r.required_role);
  r.required_tags = checked_tags("requirements.required_tags", r.required_tags);
  if (r.timeout_seconds < 1 || r.timeout_seconds > 86400)
    invalid("requirements.timeout_seconds", "timeout_seconds must be 1..86400");
  if (r.max_retries < 0 || r.max_retries > 100) invalid("requirements.max_retries", "max_retries must be 0..100");

  auto& e = *engine_;
  const std::string at = now_text(e.core);
  const std::string id = detail::random_uuid();
  // Group commit (tasks/group_commit.hpp): concurrent submits share one
  // transaction; this returns once ours committed. The row is written before
  // the engine knows the task (its lock is not held while the batch commits):
  // until the queue entry below is made, the new task is only in the
  // database, where nothing but reads can see it.
  std::int64_t rowid = 0;
  e.submits.run([&](Conn& c) {
    auto& q = c.stmt(
        "INSERT INTO tasks (task_id, task_type, payload, priority, status, min_cpu_cores, min_memory_gb, min_storage_gb,"
        " required_platform, required_role, required_tags, gpu_required, internet_required, timeout_seconds,"
        " max_retries, metadata, created_at, submitter) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
    q.bind(1, id);
    q.bind(2, t.task_type);
    q.bind(3, t.payload_json);
    q.bind(4, static_cast<int>(t.priority));
    if (r.min_cpu_cores) q.bind(5, *r.min_cpu_cores); else q.bind(5, nullptr);
    if (r.min_memory_gb) q.bind(6, *r.min_memory_gb); else q.bind(6, nullptr);
    if (r.min_storage_gb) q.bind(7, *r.min_storage_gb); else q.bind(7, nullptr);
    q.bind(8, r.required_platform);
    q.bind(9, r.required_role);
    q.bind(10, string_array_json(r.required_tags));
    q.bind(11, r.gpu_required ? 1 : 0);
    q.bind(12, r.internet_required ? 1 : 0);
    q.bind(13, r.timeout_seconds);
    q.bind(14, r.max_retries);
    q.bind(15, t.metadata_json);
    q.bind(16, at);
    q.bind(17, t.submitter);
    rowid = q.run_returning_id();
  });
  std::lock_guard<std::mutex> lock(e.mu);
  auto a = std::make_unique<TaskEngine::Active>();
  a->rowid = rowid;
  a->task_id = id;
  a->task_type = t.task_type;
  a->priority = static_cast<int>(t.priority);
  a->sig = e.intern(r, t.task_type, pinned);
  a->timeout_seconds = r.timeout_seconds;
  a->max_retries = r.max_retries;
  e.queue[a->priority][rowid] = a.get();
  e.active.emplace(id, std::move(a));
  e.trigger();
  Task out;
  out.task_id = id;
  out.task_type = t.task_type;
  out.submitter = t.submitter;
  out.payload_json = t.payload_json;
  out.priority = t.priority;
  out.status = TaskStatus::queued;
  out.requirements = r;
  out.metadata_json = t.metadata_json;
  out.created_at = parse_rfc3339(at).value_or(Timestamp{});
  return out;
}

std::vector<Task> Tasks::list(const TaskQuery& q, std::int64_t* total) {
  if (q.page < 1 || q.page > 1000000) invalid("page", "page must be >= 1");
  if (q.page_size < 1 || q.page_size > 100) invalid("page_size", "page_size must be 1..100");
  auto& e = *engine_;
  auto rows = e.core.store->read([&](Conn& c) {
    auto bind = [&](detail::Statement& s) {
      if (q.status) s.bind(1, task_status_name(*q.status)); else s.bind(1, nullptr);
      if (!q.task_type.empty()) s.bind(2, q.task_type); else s.bind(2, nullptr);
      if (q.priority) s.bind(3, static_cast<int>(*q.priority)); else s.bind(3, nullptr);
      if (!q.device_id.empty()) s.bind(4, q.device_id); else s.bind(4, nullptr);
    };
    auto& cnt = c.stmt(kTaskCount);
    bind(cnt);
    cnt.step();
    if (total) *total = cnt.column(0).as_int64();
    auto& s = c.stmt(kTaskPage);
    bind(s);
    s.bind(5, q.page_size);
    s.bind(6, (q.page - 1) * q.page_size);
    std::vector<TaskRow> out;
    while (s.step()) out.push_back(read_task(s));
    return out;
  });
  std::vector<Task> out;
  std::lock_guard<std::mutex> lock(e.mu);
  for (auto& r : rows) out.push_back(with_live(e, std::move(r)));
  return out;
}

Task Tasks::get(std::string_view task_id) {
  auto& e = *engine_;
  TaskRow row = load_task(e, task_id);
  std::lock_guard<std::mutex> lock(e.mu);
  return with_live(e, std::move(row));
}

namespace {

// Marks task row `rowid` cancelled by its user, if it has not ended; true
// when it was. `on_agent`: an agent holds it and is to be told.
bool mark_cancelled(Conn& c, std::int64_t rowid, bool on_agent, const std::string& at) {
  auto& q = c.stmt(
      "UPDATE tasks SET status = 'cancelled', cancel_requested = ?, completed_at = ?,"
      " status_reason = 'cancelled by user' WHERE id = ? AND status IN ('queued', 'assigned', 'running')");
  q.bind(1, on_agent ? 1 : 0);
  q.bind(2, at);
  q.bind(3, rowid);
  q.run();
  return c.changes() == 1;
}

}  // namespace

Task Tasks::cancel(std::string_view task_id) {
  auto& e = *engine_;
  std::vector<std::pair<std::shared_ptr<TaskEngine::Waiter>, AgentWork>> woken;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    TaskEngine::Active* a = find_active(e, task_id);
    if (!a) {
      TaskRow row = load_task(e, task_id);  // not_found if unknown
      const auto st = row.task.status;
      if (!e.core.replicated() ||
          !(st == TaskStatus::queued || st == TaskStatus::assigned || st == TaskStatus::running))
        throw Error(Errc::conflict, "Task has already finished", "status");
      // Replicas: a task another server's engine holds (the task engine is
      // per process, docs/decisions.md). Cancelled in the database; an agent
      // that runs it learns it from that server when it reports.
      const std::string at = now_text(e.core);
      const bool on_agent = st != TaskStatus::queued;
      bool done = false;
      e.core.store->write([&](Conn& c) {
        done = mark_cancelled(c, row.rowid, on_agent, at);
        if (done && on_agent) end_attempt(c, row.rowid, row.task.attempt, "cancelled", at, "cancelled by user");
      });
      if (!done) throw Error(Errc::conflict, "Task has already finished", "status");
    } else {
      if (a->status == TaskStatus::cancelled) throw Error(Errc::conflict, "Task has already finished", "status");
      const std::string at = now_text(e.core);
      const bool on_agent = a->node && (a->delivered || a->status == TaskStatus::running);
      e.core.store->write([&](Conn& c) {
        mark_cancelled(c, a->rowid, on_agent, at);
        if (a->node) end_attempt(c, a->rowid, a->attempt, "cancelled", at, "cancelled by user");
      });
      if (on_agent) {
        // The agent is told; its slot is freed when it reports or goes stale.
        a->status = TaskStatus::cancelled;
        e.devs[a->node].cancel_out.push_back(a->task_id);
        e.wake_locked(a->node, woken);
      } else {
        const bool held = a->node != 0;
        e.release_locked(*a);
        if (held) e.trigger();
      }
    }
  }
  TaskEngine::fire(woken);
  return get(task_id);
}

Task Tasks::retry(std::string_view task_id) {
  auto& e = *engine_;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    TaskRow row = load_task(e, task_id);
    // Its pin and its execution's wait are gone once it ended: the execution
    // retries it (node config retry_count), not an operator.
    if (detail::sched::is_workflow_job_type(row.task.task_type))
      throw Error(Errc::conflict, "Workflow jobs are retried by their workflow execution, not by hand", "task_type");
    if (find_active(e, task_id) ||
        !(row.task.status == TaskStatus::failed || row.task.status == TaskStatus::timeout ||
          row.task.status == TaskStatus::cancelled))
      throw Error(Errc::conflict, "Only failed, timed-out or cancelled tasks can be retried", "status");
    e.core.store->write([&](Conn& c) {
      auto& q = c.stmt(
          "UPDATE tasks SET status = 'queued', retries = 0, progress = 0, progress_message = '', status_reason = 'retried',"
          " cancel_requested = 0, result = NULL, error = NULL, exit_code = NULL, duration_ms = NULL, started_at = NULL,"
          " completed_at = NULL WHERE id = ?");
      q.bind(1, row.rowid);
      q.run();
    });
    auto a = std::make_unique<TaskEngine::Active>();
    a->rowid = row.rowid;
    a->task_id = row.task.task_id;
    a->task_type = row.task.task_type;
    a->priority = static_cast<int>(row.task.priority);
    a->sig = e.intern(row.task.requirements, row.task.task_type);
    a->timeout_seconds = row.task.requirements.timeout_seconds;
    a->max_retries = row.task.requirements.max_retries;
    a->attempt = row.task.attempt;
    e.queue[a->priority][a->rowid] = a.get();
    e.active.emplace(row.task.task_id, std::move(a));
    e.trigger();
  }
  return get(task_id);
}

TaskStatistics Tasks::statistics() {
  auto& e = *engine_;
  return e.core.store->read([&](Conn& c) {
    TaskStatistics s;
    for (auto st : {TaskStatus::pending, TaskStatus::queued, TaskStatus::assigned, TaskStatus::running,
                    TaskStatus::success, TaskStatus::failed, TaskStatus::cancelled, TaskStatus::timeout})
      s.by_status[task_status_name(st)] = 0;
    for (auto p : {TaskPriority::low, TaskPriority::normal, TaskPriority::high, TaskPriority::urgent})
      s.by_priority[task_priority_name(p)] = 0;
    auto& a = c.stmt("SELECT status, COUNT(*) FROM tasks GROUP BY status");
    while (a.step()) {
      s.by_status[a.column(0).as_text()] = a.column(1).as_int64();
      s.total += a.column(1).as_int64();
    }
    auto& b = c.stmt("SELECT task_type, COUNT(*) FROM tasks GROUP BY task_type");
    while (b.step()) s.by_type[b.column(0).as_text()] = b.column(1).as_int64();
    auto& p = c.stmt("SELECT priority, COUNT(*) FROM tasks GROUP BY priority");
    while (p.step())
      s.by_priority[task_priority_name(static_cast<TaskPriority>(std::clamp(p.column(0).as_int(), 0, 3)))] =
          p.column(1).as_int64();
    auto& d = c.stmt("SELECT AVG(duration_ms) FROM tasks WHERE duration_ms IS NOT NULL AND status IN ('success','failed','timeout')");
    if (d.step() && !d.column(0).is_null()) s.average_execution_seconds = detail::round_to(d.column(0).as_double() / 1000.0, 3);
    const auto ok = s.by_status["success"];
    const auto finished = ok + s.by_status["failed"] + s.by_status["timeout"];
    s.success_rate = finished ? detail::round_to(100.0 * static_cast<double>(ok) / static_cast<double>(finished), 1) : 0;
    s.queued_now = s.by_status["queued"];
    s.running_now = s.by_status["running"] + s.by_status["assigned"];
    return s;
  });
}

std::vector<TaskTypeInfo> Tasks::types() {
  std::vector<TaskTypeInfo> out;
  for (const auto& t : known_task_types()) out.push_back({t, 0, 0});
  for (const auto& d : all_devices(*engine_))
    for (auto& ti : out)
      if (std::find(d.allowed_task_types.begin(), d.allowed_task_types.end(), ti.name) != d.allowed_task_types.end()) {
        ++ti.devices;
        if (d.online) ++ti.online_devices;
      }
  return out;
}

void Tasks::set_ranking_stage(RankingStage stage) {
  auto& e = *engine_;
  detail::sched::ExtraRank extra;
  if (stage) {
    extra = [stage = std::move(stage)](std::uint32_t type_bit, const detail::sched::ClassAttrs& a, std::int64_t device,
                                       std::int64_t running, std::int64_t max_concurrent) {
      std::string_view type;
      for (int i = 0; i < detail::sched::kTaskTypeCount; ++i)
        if (type_bit == (1u << i)) type = detail::sched::kTaskTypes[i];
      RankCandidate c;
      c.node_id = device;
      c.platform = a.platform;
      c.role = a.role;
      c.tags = a.tags;
      c.has_gpu = a.gpu;
      c.internet = a.internet;
      c.cpu_count = a.cpu;
      c.memory_gb = static_cast<double>(a.memory_q) / 4.0;
      c.storage_gb = static_cast<double>(a.storage_gb);
      c.running = running;
      c.max_concurrent = max_concurrent;
      return stage(type, c);
    };
  }
  std::lock_guard<std::mutex> lock(e.mu);
  e.placer.set_extra_rank(std::move(extra));
}

void Tasks::release_waiters() { engine_->shutdown(); }

// ---- background ----

void Tasks::schedule() {
  auto& e = *engine_;
  std::vector<std::pair<std::shared_ptr<TaskEngine::Waiter>, AgentWork>> woken;
  bool more = false;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    if (e.stopped) return;
    more = e.schedule_locked(woken, 0);
  }
  TaskEngine::fire(woken);
  if (more) e.trigger();
}

namespace detail {

bool TaskEngine::schedule_locked(std::vector<std::pair<std::shared_ptr<Waiter>, AgentWork>>& woken,
                                 std::int64_t keep_node) {
  sync_eligible_locked();  // cordoned, draining and maintenance nodes take nothing new
  if (!placer.any_capacity()) return false;
  bool more = false;
  std::vector<std::pair<Active*, std::int64_t>> placed;
  std::unordered_set<int> blocked;  // signatures that found nothing in this pass
  for (int p = 3; p >= 0 && !more; --p) {
    for (auto& [rowid, a] : queue[p]) {
      if (!placer.any_capacity()) break;
      if (placed.size() >= kMaxPlacementsPerPass) {
        more = true;
        break;
      }
      if (blocked.count(a->sig)) continue;
      auto n = placer.place(a->sig);
      if (!n) {
        blocked.insert(a->sig);
        continue;
      }
      placed.emplace_back(a, *n);
    }
  }
  if (placed.empty()) return false;
  const std::string at = now_text(core);
  try {
    core.store->write([&](Conn& c) {
      for (auto& [a, node] : placed) {
        auto& q = c.stmt(
            "UPDATE tasks SET status = 'assigned', node_id = ?, attempt = attempt + 1, assigned_at = ?,"
            " status_reason = '' WHERE id = ?");
        q.bind(1, node);
        q.bind(2, at);
        q.bind(3, a->rowid);
        q.run();
        // An attempt row left by an earlier run is replaced whole.
        auto& i = c.stmt(
            "INSERT INTO task_attempts (task_rowid, attempt, node_id, assigned_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (task_rowid, attempt) DO UPDATE SET node_id = excluded.node_id,"
            " assigned_at = excluded.assigned_at, ended_at = NULL, outcome = NULL, reason = NULL");
        i.bind(1, a->rowid);
        i.bind(2, a->attempt + 1);
        i.bind(3, node);
        i.bind(4, at);
        i.run();
      }
    });
  } catch (...) {
    for (auto& [a, node] : placed) placer.add_load(node, -1);
    throw;
  }
  std::set<std::int64_t> nodes;
  for (auto& [a, node] : placed) {
    queue[a->priority].erase(a->rowid);
    a->status = TaskStatus::assigned;
    a->node = node;
    ++a->attempt;
    a->delivered = false;
    devs[node].tasks.insert(a->task_id);
    nodes.insert(node);
  }
  for (auto n : nodes)
    if (n != keep_node) wake_locked(n, woken);
  return more;
}

}  // namespace detail


}  // namespace lucid
