// Tasks: devices, the task queue, placement, agents' work, retries, pings.
#include "lucidnode/tasks.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/cluster_core.hpp"
#include "nodes/node_common.hpp"
#include "tasks/engine.hpp"
#include "util/enum_names.hpp"
#include "util/json.hpp"

namespace lucid {

using detail::Conn;
using detail::TaskEngine;

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

namespace {

using detail::invalid;

constexpr std::size_t kMaxPayload = 256 * 1024;
constexpr std::size_t kMaxMetadata = 16 * 1024;
constexpr std::size_t kMaxResult = 256 * 1024;
constexpr std::size_t kMaxTags = 32;
constexpr auto kDeliveryLease = std::chrono::seconds(60);
constexpr auto kRunningGrace = std::chrono::seconds(15);
constexpr std::size_t kMaxPlacementsPerPass = 5000;

bool name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; }
bool tag_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == ':' || c == '-';
}

void check_name(const std::string& field, const std::string& v) {
  if (v.empty() || v.size() > 32 || !std::all_of(v.begin(), v.end(), name_char))
    invalid(field, field + " must be 1..32 characters of a-z, 0-9, '_' or '-'");
}

std::vector<std::string> checked_tags(const std::string& field, std::vector<std::string> tags) {
  if (tags.size() > kMaxTags) invalid(field, field + " must have at most 32 entries");
  for (const auto& t : tags)
    if (t.empty() || t.size() > 64 || !std::all_of(t.begin(), t.end(), tag_char))
      invalid(field, field + " entries must be 1..64 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'");
  std::sort(tags.begin(), tags.end());
  tags.erase(std::unique(tags.begin(), tags.end()), tags.end());
  return tags;
}

std::string json_array(const std::vector<std::string>& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartArray();
  for (const auto& s : v) w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
  return std::string(b.GetString(), b.GetSize());
}

std::vector<std::string> parse_array(const std::string& text) {
  std::vector<std::string> out;
  rapidjson::Document d;
  if (!detail::parse_json(d, text) || !d.IsArray()) return out;
  for (const auto& v : d.GetArray())
    if (v.IsString()) out.emplace_back(v.GetString(), v.GetStringLength());
  return out;
}

bool valid_json(const std::string& text, bool object) {
  rapidjson::Document d;
  return detail::parse_json(d, text) && (!object || d.IsObject());
}

using detail::now_text;
std::string time_text(Timestamp t) { return format_rfc3339(t, true); }

[[noreturn]] void task_not_found() { throw Error(Errc::not_found, "Task not found", "task_id"); }
[[noreturn]] void device_not_found() { throw Error(Errc::not_found, "Device not found", "device_id"); }

// ---- rows --------------------------------------------------------------------

#define LUCID_TASK_COLUMNS                                                                                   \
  "t.id, t.task_id, t.task_type, t.payload, t.priority, t.status, t.min_cpu_cores, t.min_memory_gb,"         \
  " t.min_storage_gb, t.required_platform, t.required_role, t.required_tags, t.gpu_required,"                \
  " t.internet_required, t.timeout_seconds, t.max_retries, t.metadata, COALESCE(n.uid, ''), t.attempt,"      \
  " t.retries, t.progress, t.progress_message, t.status_reason, t.cancel_requested, t.result, t.error,"      \
  " t.exit_code, t.duration_ms, t.created_at, t.assigned_at, t.started_at, t.completed_at, t.node_id,"   \
  " t.submitter"

constexpr const char* kTaskById =
    "SELECT " LUCID_TASK_COLUMNS " FROM tasks t LEFT JOIN nodes n ON n.id = t.node_id WHERE t.task_id = ?";
constexpr const char* kTaskPage =
    "SELECT " LUCID_TASK_COLUMNS " FROM tasks t LEFT JOIN nodes n ON n.id = t.node_id"
    " WHERE (?1 IS NULL OR t.status = ?1) AND (?2 IS NULL OR t.task_type = ?2) AND (?3 IS NULL OR t.priority = ?3)"
    " AND (?4 IS NULL OR n.uid = ?4) ORDER BY t.id DESC LIMIT ?5 OFFSET ?6";
constexpr const char* kTaskCount =
    "SELECT COUNT(*) FROM tasks t LEFT JOIN nodes n ON n.id = t.node_id"
    " WHERE (?1 IS NULL OR t.status = ?1) AND (?2 IS NULL OR t.task_type = ?2) AND (?3 IS NULL OR t.priority = ?3)"
    " AND (?4 IS NULL OR n.uid = ?4)";

struct TaskRow {
  Task task;
  std::int64_t rowid = 0;
  std::int64_t node_id = 0;
};

TaskRow read_task(detail::Statement& q) {
  TaskRow r;
  Task& t = r.task;
  r.rowid = q.column(0).as_int64();
  t.task_id = q.column(1).as_text();
  t.task_type = q.column(2).as_text();
  t.payload_json = q.column(3).as_text();
  t.priority = static_cast<TaskPriority>(q.column(4).as_int());
  t.status = parse_task_status(q.column(5).as_text()).value_or(TaskStatus::pending);
  auto& rq = t.requirements;
  if (!q.column(6).is_null()) rq.min_cpu_cores = q.column(6).as_int64();
  if (!q.column(7).is_null()) rq.min_memory_gb = q.column(7).as_double();
  if (!q.column(8).is_null()) rq.min_storage_gb = q.column(8).as_double();
  rq.required_platform = q.column(9).as_text();
  rq.required_role = q.column(10).as_text();
  rq.required_tags = parse_array(q.column(11).as_text());
  rq.gpu_required = q.column(12).as_int() != 0;
  rq.internet_required = q.column(13).as_int() != 0;
  rq.timeout_seconds = q.column(14).as_int64();
  rq.max_retries = q.column(15).as_int64();
  t.metadata_json = q.column(16).as_text();
  t.device_id = q.column(17).as_text();
  t.attempt = q.column(18).as_int64();
  t.retries = q.column(19).as_int64();
  t.progress = q.column(20).as_double();
  t.progress_message = q.column(21).as_text();
  t.status_reason = q.column(22).as_text();
  t.cancel_requested = q.column(23).as_int() != 0;
  if (!q.column(24).is_null()) t.result_json = q.column(24).as_text();
  if (!q.column(25).is_null()) t.error = q.column(25).as_text();
  if (!q.column(26).is_null()) t.exit_code = q.column(26).as_int64();
  if (!q.column(27).is_null()) t.duration_ms = q.column(27).as_int64();
  t.created_at = detail::parse_stored(q.column(28).as_text());
  t.assigned_at = detail::parse_stored_opt(q.column(29));
  t.started_at = detail::parse_stored_opt(q.column(30));
  t.completed_at = detail::parse_stored_opt(q.column(31));
  if (!q.column(32).is_null()) r.node_id = q.column(32).as_int64();
  t.submitter = q.column(33).as_text();
  return r;
}

std::optional<TaskRow> find_task(Conn& c, std::string_view task_id) {
  if (task_id.empty() || task_id.size() > 64) return std::nullopt;
  auto& q = c.stmt(kTaskById);
  q.bind(1, std::string(task_id));
  if (!q.step()) return std::nullopt;
  return read_task(q);
}

#define LUCID_DEVICE_COLUMNS                                                                                 \
  "n.id, n.uid, n.hostname, n.ip_address, d.platform, d.role, d.tags, d.cpu_count, d.memory_total_gb,"       \
  " d.storage_total_gb, d.has_gpu, d.internet, d.allowed_types, d.max_concurrent, d.agent_version,"          \
  " COALESCE(d.reported, 0), d.last_heartbeat"

constexpr const char* kDevicesAll =
    "SELECT " LUCID_DEVICE_COLUMNS " FROM nodes n LEFT JOIN devices d ON d.node_id = n.id"
    " WHERE n.status = 'active' AND COALESCE(d.removed, 0) = 0 ORDER BY n.id";
constexpr const char* kDeviceByUid =
    "SELECT " LUCID_DEVICE_COLUMNS " FROM nodes n LEFT JOIN devices d ON d.node_id = n.id"
    " WHERE n.uid = ? AND n.status = 'active' AND COALESCE(d.removed, 0) = 0";
constexpr const char* kDeviceById =
    "SELECT " LUCID_DEVICE_COLUMNS " FROM nodes n LEFT JOIN devices d ON d.node_id = n.id"
    " WHERE n.id = ? AND n.status = 'active' AND COALESCE(d.removed, 0) = 0";

Device read_device(detail::Statement& q) {
  Device d;
  d.node_id = q.column(0).as_int64();
  d.device_id = q.column(1).as_text();
  d.hostname = q.column(2).as_text();
  d.ip_address = q.column(3).as_text();
  if (!q.column(4).is_null()) {
    d.platform = q.column(4).as_text();
    d.role = q.column(5).as_text();
    d.tags = parse_array(q.column(6).as_text());
    d.capabilities.cpu_count = q.column(7).as_int64();
    d.capabilities.memory_total_gb = q.column(8).as_double();
    d.capabilities.storage_total_gb = q.column(9).as_double();
    d.capabilities.has_gpu = q.column(10).as_int() != 0;
    d.capabilities.internet = q.column(11).as_int() != 0;
    d.allowed_task_types = parse_array(q.column(12).as_text());
    d.max_concurrent = q.column(13).as_int64();
    d.agent_version = q.column(14).as_text();
  }
  d.reported = q.column(15).as_int() != 0;
  d.last_heartbeat = detail::parse_stored_opt(q.column(16));
  return d;
}

std::optional<Device> find_device(Conn& c, std::string_view uid) {
  if (uid.empty() || uid.size() > 64) return std::nullopt;
  auto& q = c.stmt(kDeviceByUid);
  q.bind(1, std::string(uid));
  if (!q.step()) return std::nullopt;
  return read_device(q);
}

void end_attempt(Conn& c, std::int64_t rowid, std::int64_t attempt, const char* outcome, const std::string& at,
                 const std::string& reason) {
  auto& q = c.stmt(
      "UPDATE task_attempts SET ended_at = ?, outcome = ?, reason = ? WHERE task_rowid = ? AND attempt = ? AND ended_at IS NULL");
  q.bind(1, at);
  q.bind(2, outcome);
  q.bind(3, reason);
  q.bind(4, rowid);
  q.bind(5, attempt);
  q.run();
}

}  // namespace

namespace detail {

// ---- engine helpers (mu held) ----------------------------------------------------

int TaskEngine::intern(const TaskRequirements& r, const std::string& type) {
  sched::Requirements q;
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
                                   std::vector<Active*>& requeued, std::vector<std::string>& dropped) {
  const std::string at = now_text(core);
  for (const auto& id : d.tasks) {
    auto it = active.find(id);
    if (it == active.end() || it->second->node != node) continue;
    Active& a = *it->second;
    dropped.push_back(id);
    if (a.status == TaskStatus::cancelled) continue;  // already cancelled: only the slot was held
    end_attempt(c, a.rowid, a.attempt, "requeued", at, why);
    if (a.retries < a.max_retries) {
      auto& q = c.stmt(
          "UPDATE tasks SET status = 'queued', retries = retries + 1, progress = 0, progress_message = '',"
          " started_at = NULL, status_reason = ? WHERE id = ?");
      q.bind(1, "requeued: " + why);
      q.bind(2, a.rowid);
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
void TaskEngine::apply_lost(std::int64_t node, std::vector<Active*>& requeued, std::vector<std::string>& dropped) {
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
      ++a.retries;
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
    core.tasks.schedule();
  });
}

void TaskEngine::load() {
  std::lock_guard<std::mutex> lock(mu);
  const Timestamp now = core.clock->now();
  const auto offline_after = core.settings.heartbeat().offline_after();
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
      r.required_tags = parse_array(t.column(10).as_text());
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

}  // namespace detail

// ---- Tasks -----------------------------------------------------------------------

Tasks::Tasks(detail::ClusterCore& core) : engine_(std::make_unique<TaskEngine>(core)) {}
Tasks::~Tasks() = default;

Device Tasks::report_device(std::int64_t node_id, const DeviceReport& r) {
  check_name("platform", r.platform);
  if (r.role) check_name("role", *r.role);
  std::optional<std::vector<std::string>> tags;
  if (r.tags) tags = checked_tags("tags", *r.tags);
  const auto& caps = r.capabilities;
  if (caps.cpu_count < 1 || caps.cpu_count > 4096) invalid("capabilities.cpu_count", "cpu_count must be 1..4096");
  detail::check_range("capabilities.memory_total_gb", caps.memory_total_gb, 0, 1e6);
  detail::check_range("capabilities.storage_total_gb", caps.storage_total_gb, 0, 1e9);
  if (r.allowed_task_types.empty() || r.allowed_task_types.size() > 16)
    invalid("allowed_task_types", "allowed_task_types must have 1..16 entries");
  std::vector<std::string> types;
  for (const auto& t : r.allowed_task_types) {
    if (!detail::sched::task_type_bit(t)) invalid("allowed_task_types", "unknown task type '" + t.substr(0, 64) + "'");
    if (std::find(types.begin(), types.end(), t) == types.end()) types.push_back(t);
  }
  if (r.max_concurrent < 1 || r.max_concurrent > 256) invalid("max_concurrent", "max_concurrent must be 1..256");
  detail::check_text("agent_version", r.agent_version, 64, false);

  auto& e = *engine_;
  std::lock_guard<std::mutex> lock(e.mu);
  const std::string at = now_text(e.core);
  Device d = e.core.store->write([&](Conn& c) {
    auto& q = c.stmt(
        "INSERT INTO devices (node_id, platform, role, tags, cpu_count, memory_total_gb, storage_total_gb, has_gpu,"
        " internet, allowed_types, max_concurrent, agent_version, reported, last_heartbeat, updated_at)"
        " SELECT id, ?2, COALESCE(?3, 'worker'), COALESCE(?4, '[]'), ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1, ?13, ?13"
        " FROM nodes WHERE id = ?1 AND status = 'active'"
        " ON CONFLICT(node_id) DO UPDATE SET platform = excluded.platform, role = COALESCE(?3, role),"
        " tags = COALESCE(?4, tags), cpu_count = excluded.cpu_count, memory_total_gb = excluded.memory_total_gb,"
        " storage_total_gb = excluded.storage_total_gb, has_gpu = excluded.has_gpu, internet = excluded.internet,"
        " allowed_types = excluded.allowed_types, max_concurrent = excluded.max_concurrent,"
        " agent_version = excluded.agent_version, reported = 1, last_heartbeat = excluded.last_heartbeat,"
        " updated_at = excluded.updated_at WHERE removed = 0");
    q.bind(1, node_id);
    q.bind(2, r.platform);
    if (r.role) q.bind(3, *r.role); else q.bind(3, nullptr);
    if (tags) q.bind(4, json_array(*tags)); else q.bind(4, nullptr);
    q.bind(5, caps.cpu_count);
    q.bind(6, caps.memory_total_gb);
    q.bind(7, caps.storage_total_gb);
    q.bind(8, caps.has_gpu ? 1 : 0);
    q.bind(9, caps.internet ? 1 : 0);
    q.bind(10, json_array(types));
    q.bind(11, r.max_concurrent);
    q.bind(12, r.agent_version);
    q.bind(13, at);
    q.run();
    if (c.changes() == 0) throw Error(Errc::not_found, "Device not found (node not approved or removed)", "device_id");
    auto& s = c.stmt(kDeviceById);
    s.bind(1, node_id);
    if (!s.step()) throw Error(Errc::not_found, "Device not found", "device_id");
    return read_device(s);
  });
  auto& m = e.devs[node_id];
  m.info = d;
  m.heartbeat = e.core.clock->now();
  m.heartbeat_dirty = false;
  e.placer.upsert(node_id, e.attrs_of(d), d.max_concurrent, m.online);
  e.set_online(m, node_id, true, *m.heartbeat);
  e.trigger();
  return e.overlay(std::move(d));
}

namespace detail {

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
  std::string why;
  if (!placer.explain(a.sig, &why)) return why;
  return "waiting for the scheduler";
}

}  // namespace detail

namespace {

// Locks the engine and returns the Active of `task_id`, or nullptr.
TaskEngine::Active* find_active(TaskEngine& e, std::string_view task_id) {
  auto it = e.active.find(std::string(task_id));
  return it == e.active.end() ? nullptr : it->second.get();
}

Task with_live(TaskEngine& e, TaskRow row) {
  if (row.task.status == TaskStatus::queued) {
    if (auto* a = find_active(e, row.task.task_id); a && a->status == TaskStatus::queued) {
      std::string why = e.queued_reason(*a);
      row.task.status_reason = row.task.status_reason.empty() ? why : row.task.status_reason + "; " + why;
    }
  }
  return std::move(row.task);
}

TaskRow load_task(TaskEngine& e, std::string_view task_id) {
  auto row = e.core.store->read([&](Conn& c) { return find_task(c, task_id); });
  if (!row) task_not_found();
  return std::move(*row);
}

std::int64_t device_node(TaskEngine& e, std::string_view uid) {
  auto d = e.core.store->read([&](Conn& c) { return find_device(c, uid); });
  if (!d) device_not_found();
  return d->node_id;
}

}  // namespace

namespace {
// Every device with its live fields.
std::vector<Device> all_devices(TaskEngine& e) {
  auto all = e.core.store->read([&](Conn& c) {
    std::vector<Device> out;
    auto& s = c.stmt(kDevicesAll);
    while (s.step()) out.push_back(read_device(s));
    return out;
  });
  std::lock_guard<std::mutex> lock(e.mu);
  for (auto& d : all) d = e.overlay(std::move(d));
  return all;
}
}  // namespace

std::vector<Device> Tasks::devices(const DeviceQuery& q, std::int64_t* total) {
  if (q.page < 1 || q.page > 1000000) invalid("page", "page must be >= 1");
  if (q.page_size < 1 || q.page_size > 100) invalid("page_size", "page_size must be 1..100");
  auto& e = *engine_;
  std::vector<Device> matched;
  {
    for (auto& x : all_devices(e)) {
      if (q.online && x.online != *q.online) continue;
      if (!q.role.empty() && x.role != q.role) continue;
      if (!q.platform.empty() && x.platform != q.platform) continue;
      bool tags_ok = true;
      for (const auto& t : q.tags)
        if (std::find(x.tags.begin(), x.tags.end(), t) == x.tags.end()) tags_ok = false;
      if (!tags_ok) continue;
      matched.push_back(std::move(x));
    }
  }
  if (total) *total = static_cast<std::int64_t>(matched.size());
  std::vector<Device> page;
  const std::size_t from = static_cast<std::size_t>((q.page - 1) * q.page_size);
  for (std::size_t i = from; i < matched.size() && page.size() < static_cast<std::size_t>(q.page_size); ++i)
    page.push_back(std::move(matched[i]));
  return page;
}

Device Tasks::device(std::string_view device_id) {
  auto& e = *engine_;
  auto d = e.core.store->read([&](Conn& c) { return find_device(c, device_id); });
  if (!d) device_not_found();
  std::lock_guard<std::mutex> lock(e.mu);
  return e.overlay(std::move(*d));
}

Device Tasks::set_device_labels(std::string_view device_id, const std::optional<std::string>& role,
                                const std::optional<std::vector<std::string>>& tags_in) {
  if (role) check_name("role", *role);
  std::optional<std::vector<std::string>> tags;
  if (tags_in) tags = checked_tags("tags", *tags_in);
  auto& e = *engine_;
  std::lock_guard<std::mutex> lock(e.mu);
  const std::string at = now_text(e.core);
  Device d = e.core.store->write([&](Conn& c) {
    auto found = find_device(c, device_id);
    if (!found) device_not_found();
    auto& q = c.stmt(
        "INSERT INTO devices (node_id, role, tags, updated_at) VALUES (?1, COALESCE(?2, 'worker'), COALESCE(?3, '[]'), ?4)"
        " ON CONFLICT(node_id) DO UPDATE SET role = COALESCE(?2, role), tags = COALESCE(?3, tags), updated_at = ?4");
    q.bind(1, found->node_id);
    if (role) q.bind(2, *role); else q.bind(2, nullptr);
    if (tags) q.bind(3, json_array(*tags)); else q.bind(3, nullptr);
    q.bind(4, at);
    q.run();
    auto& s = c.stmt(kDeviceById);
    s.bind(1, found->node_id);
    if (!s.step()) device_not_found();
    return read_device(s);
  });
  auto it = e.devs.find(d.node_id);
  if (it != e.devs.end() && d.reported) {
    it->second.info = d;
    e.placer.upsert(d.node_id, e.attrs_of(d), d.max_concurrent, it->second.online);
    e.trigger();
  }
  return e.overlay(std::move(d));
}

void Tasks::remove_device(std::string_view device_id) {
  auto& e = *engine_;
  std::lock_guard<std::mutex> lock(e.mu);
  const std::string at = now_text(e.core);
  std::vector<TaskEngine::Active*> requeued;
  std::vector<std::string> dropped;
  std::int64_t node = 0;
  std::string key_hash;
  e.core.store->write([&](Conn& c) {
    auto found = find_device(c, device_id);
    if (!found) device_not_found();
    node = found->node_id;
    auto& k = c.stmt("SELECT api_key_hash FROM nodes WHERE id = ?");
    k.bind(1, node);
    if (k.step() && !k.column(0).is_null()) key_hash = k.column(0).as_text();
    auto& r = c.stmt("UPDATE nodes SET api_key_hash = NULL WHERE id = ?");
    r.bind(1, node);
    r.run();
    auto& q = c.stmt(
        "INSERT INTO devices (node_id, removed, updated_at) VALUES (?1, 1, ?2)"
        " ON CONFLICT(node_id) DO UPDATE SET removed = 1, reported = 0, updated_at = ?2");
    q.bind(1, node);
    q.bind(2, at);
    q.run();
    auto it = e.devs.find(node);
    if (it != e.devs.end()) e.lose_tasks_locked(c, node, it->second, "device removed", requeued, dropped);
  });
  e.apply_lost(node, requeued, dropped);
  {
    // The key no longer authenticates.
    std::unique_lock<std::shared_mutex> klock(e.core.nodes_state.mu);
    if (!key_hash.empty()) e.core.nodes_state.keys.erase(key_hash);
  }
  auto it = e.devs.find(node);
  if (it != e.devs.end()) {
    for (auto& w : it->second.waiters) {
      w->finished = true;
      if (w->timer) w->timer->cancel();
      auto done = w->done;
      e.core.post([done] { done(AgentWork{}); });
    }
    e.devs.erase(it);
  }
  e.placer.remove(node);
  if (!requeued.empty()) e.trigger();
}

ClusterStats Tasks::cluster_stats() {
  ClusterStats s;
  for (const auto& d : all_devices(*engine_)) {
    ++s.total_devices;
    s.by_role[d.role]++;
    s.by_platform[d.platform]++;
    s.by_status[d.online ? "online" : "offline"]++;
    if (!d.online) continue;
    ++s.online_devices;
    s.cpu_cores += d.capabilities.cpu_count;
    s.memory_gb += d.capabilities.memory_total_gb;
    s.storage_gb += d.capabilities.storage_total_gb;
    if (d.capabilities.has_gpu) ++s.gpu_devices;
    s.active_tasks += d.active_tasks;
    s.capacity += d.max_concurrent;
  }
  s.offline_devices = s.total_devices - s.online_devices;
  s.health_percentage =
      s.total_devices ? detail::round_to(100.0 * static_cast<double>(s.online_devices) / static_cast<double>(s.total_devices), 1) : 0;
  s.tasks_by_status = statistics().by_status;
  return s;
}

void Tasks::ping(std::string_view device_id, std::chrono::milliseconds timeout, std::function<void(bool)> done) {
  auto& e = *engine_;
  const std::int64_t node = device_node(e, device_id);
  auto p = std::make_shared<TaskEngine::PingState>();
  p->node = node;
  p->done = std::move(done);
  const std::string id = detail::random_uuid();
  std::vector<std::pair<std::shared_ptr<TaskEngine::Waiter>, AgentWork>> woken;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    p->timer = std::make_unique<asio::steady_timer>(e.core.io());
    p->timer->expires_after(timeout);
    e.pings[id] = p;
    e.devs[node].pings_out.push_back(id);
    p->timer->async_wait([&e, id](const asio::error_code&) {
      std::shared_ptr<TaskEngine::PingState> mine;
      {
        std::lock_guard<std::mutex> lock(e.mu);
        auto it = e.pings.find(id);
        if (it == e.pings.end() || it->second->finished) return;
        mine = it->second;
        mine->finished = true;
        e.pings.erase(it);
        auto d = e.devs.find(mine->node);
        if (d != e.devs.end()) {
          auto& out = d->second.pings_out;
          out.erase(std::remove(out.begin(), out.end(), id), out.end());
        }
      }
      mine->done(false);
    });
    e.wake_locked(node, woken);
  }
  TaskEngine::fire(woken);
}

void Tasks::ack_ping(std::int64_t node_id, std::string_view ping_id) {
  auto& e = *engine_;
  std::shared_ptr<TaskEngine::PingState> p;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    auto it = e.pings.find(std::string(ping_id));
    if (it == e.pings.end() || it->second->node != node_id || it->second->finished)
      throw Error(Errc::not_found, "Ping not found or expired", "ping_id");
    p = it->second;
    p->finished = true;
    e.pings.erase(it);
    if (p->timer) p->timer->cancel();
  }
  p->done(true);
}

// ---- tasks ----

Task Tasks::submit(const TaskSubmit& t) {
  if (t.task_type.empty()) invalid("task_type", "task_type is required");
  if (!detail::sched::task_type_bit(t.task_type))
    invalid("task_type", "task_type must be one of echo, sleep, system_info, http_request, command, python_eval");
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
  std::lock_guard<std::mutex> lock(e.mu);
  const std::string at = now_text(e.core);
  const std::string id = detail::random_uuid();
  const std::int64_t rowid = e.core.store->write([&](Conn& c) {
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
    q.bind(10, json_array(r.required_tags));
    q.bind(11, r.gpu_required ? 1 : 0);
    q.bind(12, r.internet_required ? 1 : 0);
    q.bind(13, r.timeout_seconds);
    q.bind(14, r.max_retries);
    q.bind(15, t.metadata_json);
    q.bind(16, at);
    q.bind(17, t.submitter);
    return q.run_returning_id();
  });
  auto a = std::make_unique<TaskEngine::Active>();
  a->rowid = rowid;
  a->task_id = id;
  a->task_type = t.task_type;
  a->priority = static_cast<int>(t.priority);
  a->sig = e.intern(r, t.task_type);
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

Task Tasks::cancel(std::string_view task_id) {
  auto& e = *engine_;
  std::vector<std::pair<std::shared_ptr<TaskEngine::Waiter>, AgentWork>> woken;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    TaskEngine::Active* a = find_active(e, task_id);
    if (!a || a->status == TaskStatus::cancelled) {
      load_task(e, task_id);  // not_found if unknown
      throw Error(Errc::conflict, "Task has already finished", "status");
    }
    const std::string at = now_text(e.core);
    const bool on_agent = a->node && (a->delivered || a->status == TaskStatus::running);
    e.core.store->write([&](Conn& c) {
      auto& q = c.stmt(
          "UPDATE tasks SET status = 'cancelled', cancel_requested = ?, completed_at = ?, status_reason = 'cancelled by user'"
          " WHERE id = ?");
      q.bind(1, on_agent ? 1 : 0);
      q.bind(2, at);
      q.bind(3, a->rowid);
      q.run();
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
  TaskEngine::fire(woken);
  return get(task_id);
}

Task Tasks::retry(std::string_view task_id) {
  auto& e = *engine_;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    TaskRow row = load_task(e, task_id);
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
  {
    std::lock_guard<std::mutex> lock(e.mu);
    TaskEngine::Active* a = find_active(e, task_id);
    if (!a || a->node != node_id) {
      TaskRow row = load_task(e, task_id);
      if (row.node_id == node_id && task_status_final(row.task.status)) return std::move(row.task);  // repeat
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
    e.trigger();
  }
  return get(task_id);
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
    if (e.stopped || !e.placer.any_capacity()) return;
    std::vector<std::pair<TaskEngine::Active*, std::int64_t>> placed;
    std::unordered_set<int> blocked;  // signatures that found nothing in this pass
    for (int p = 3; p >= 0 && !more; --p) {
      for (auto& [rowid, a] : e.queue[p]) {
        if (!e.placer.any_capacity()) break;
        if (placed.size() >= kMaxPlacementsPerPass) {
          more = true;
          break;
        }
        if (blocked.count(a->sig)) continue;
        auto n = e.placer.place(a->sig);
        if (!n) {
          blocked.insert(a->sig);
          continue;
        }
        placed.emplace_back(a, *n);
      }
    }
    if (placed.empty()) return;
    const std::string at = now_text(e.core);
    try {
      e.core.store->write([&](Conn& c) {
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
      for (auto& [a, node] : placed) e.placer.add_load(node, -1);
      throw;
    }
    std::set<std::int64_t> nodes;
    for (auto& [a, node] : placed) {
      e.queue[a->priority].erase(a->rowid);
      a->status = TaskStatus::assigned;
      a->node = node;
      ++a->attempt;
      a->delivered = false;
      e.devs[node].tasks.insert(a->task_id);
      nodes.insert(node);
    }
    for (auto n : nodes) e.wake_locked(n, woken);
  }
  TaskEngine::fire(woken);
  if (more) e.trigger();
}

void Tasks::sweep() {
  auto& e = *engine_;
  std::vector<std::pair<std::shared_ptr<TaskEngine::Waiter>, AgentWork>> woken;
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    if (e.stopped) return;
    const Timestamp now = e.core.clock->now();
    const auto offline_after = e.core.settings.heartbeat().offline_after();
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
    if (!beats.empty() || !stale.empty() || !timed_out.empty()) {
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

// ---- Settings ----------------------------------------------------------------------

struct Settings::Impl {
  mutable std::mutex mu;
  HeartbeatSettings heartbeat;
  ServerSettings server;
  HeartbeatSettings default_heartbeat;
  ServerSettings default_server;
  std::vector<std::function<void(const ServerSettings&)>> listeners;
};

Settings::Settings(detail::ClusterCore& core) : impl_(std::make_unique<Impl>()), core_(core) {}
Settings::~Settings() = default;

void Settings::load() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->default_server.max_connections = core_.opts.max_connections;
  impl_->heartbeat = impl_->default_heartbeat;
  impl_->server = impl_->default_server;
  core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT key, value FROM settings");
    while (q.step()) {
      const std::string k = q.column(0).as_text();
      const std::int64_t v = q.column(1).as_int64();
      if (k == "heartbeat.interval") impl_->heartbeat.interval = v;
      else if (k == "heartbeat.timeout") impl_->heartbeat.timeout = v;
      else if (k == "heartbeat.max_missed") impl_->heartbeat.max_missed = v;
      else if (k == "server.max_connections") impl_->server.max_connections = v;
    }
  });
}

HeartbeatSettings Settings::heartbeat() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->heartbeat;
}

ServerSettings Settings::server() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->server;
}

namespace {
void check_setting(const char* field, std::optional<std::int64_t> v, std::int64_t lo, std::int64_t hi) {
  if (v && (*v < lo || *v > hi))
    invalid(field, std::string(field) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
}
void store_setting(Conn& c, const char* key, std::int64_t v) {
  auto& q = c.stmt("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  q.bind(1, key);
  q.bind(2, v);
  q.run();
}
}  // namespace

HeartbeatSettings Settings::update_heartbeat(std::optional<std::int64_t> interval, std::optional<std::int64_t> timeout,
                                             std::optional<std::int64_t> max_missed) {
  check_setting("interval", interval, 1, 3600);
  check_setting("timeout", timeout, 1, 86400);
  check_setting("max_missed", max_missed, 1, 100);
  std::lock_guard<std::mutex> lock(impl_->mu);
  HeartbeatSettings h = impl_->heartbeat;
  if (interval) h.interval = *interval;
  if (timeout) h.timeout = *timeout;
  if (max_missed) h.max_missed = *max_missed;
  if (h.timeout < h.interval) invalid(timeout ? "timeout" : "interval", "timeout must be at least interval");
  core_.store->write([&](Conn& c) {
    store_setting(c, "heartbeat.interval", h.interval);
    store_setting(c, "heartbeat.timeout", h.timeout);
    store_setting(c, "heartbeat.max_missed", h.max_missed);
  });
  impl_->heartbeat = h;
  return h;
}

ServerSettings Settings::update_server(std::optional<std::int64_t> max_connections) {
  check_setting("max_connections", max_connections, 1, 1000000);
  std::vector<std::function<void(const ServerSettings&)>> ls;
  ServerSettings s;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    s = impl_->server;
    if (max_connections) s.max_connections = *max_connections;
    core_.store->write([&](Conn& c) { store_setting(c, "server.max_connections", s.max_connections); });
    impl_->server = s;
    ls = impl_->listeners;
  }
  for (auto& f : ls) f(s);
  return s;
}

void Settings::reset() {
  std::vector<std::function<void(const ServerSettings&)>> ls;
  ServerSettings s;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    core_.store->write([&](Conn& c) { c.exec("DELETE FROM settings"); });
    impl_->heartbeat = impl_->default_heartbeat;
    impl_->server = impl_->default_server;
    s = impl_->server;
    ls = impl_->listeners;
  }
  for (auto& f : ls) f(s);
}

std::string Settings::create_api_key(const std::string& name, Role role) {
  detail::check_text("name", name, 100, true);
  const std::string key = "lak_" + detail::base64url_encode(detail::random_bytes(32));
  const std::string at = now_text(core_);
  core_.store->write([&](Conn& c) {
    auto& q = c.stmt("INSERT INTO api_keys (name, key_hash, role, created_at) VALUES (?, ?, ?, ?)");
    q.bind(1, name);
    const std::string h = detail::blob(detail::sha256(key));
    q.bind_blob(2, h);
    q.bind(3, role_name(role));
    q.bind(4, at);
    q.run();
  });
  return key;
}

Claims Settings::authenticate_api_key(std::string_view key) {
  if (key.size() < 8 || key.size() > 128) throw Error(Errc::unauthenticated, "Invalid API key");
  // Looked up by SHA-256 of the key: the lookup's timing depends on the hash only.
  const std::string h = detail::blob(detail::sha256(key));
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT id, role, key_hash FROM api_keys WHERE key_hash = ?");
    q.bind_blob(1, h);
    if (!q.step()) throw Error(Errc::unauthenticated, "Invalid API key");
    const std::string stored = q.column(2).as_text();
    if (!detail::equal_ct(stored, h)) throw Error(Errc::unauthenticated, "Invalid API key");
    Claims cl;
    cl.subject = "apikey:" + std::to_string(q.column(0).as_int64());
    cl.role = parse_role(q.column(1).as_text()).value_or(Role::user);
    cl.issued_at = core_.clock->now();
    cl.expires_at = cl.issued_at + std::chrono::hours(1);
    return cl;
  });
}

void Settings::on_server_change(std::function<void(const ServerSettings&)> fn) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->listeners.push_back(std::move(fn));
}

}  // namespace lucid
