// Rows of the tasks capability (tasks, devices, task_attempts) and the checks
// its source files share; declared in tasks/tasks_internal.hpp.
#include <rapidjson/document.h>

#include <algorithm>

#include "core/cluster_core.hpp"
#include "tasks/engine.hpp"
#include "tasks/tasks_internal.hpp"
#include "util/json.hpp"

namespace lucid::detail::task_impl {

namespace {

bool name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; }
bool tag_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == ':' || c == '-';
}

}  // namespace

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

bool valid_json(const std::string& text, bool object) {
  rapidjson::Document d;
  return detail::parse_json(d, text) && (!object || d.IsObject());
}

std::string time_text(Timestamp t) { return format_rfc3339(t, true); }

[[noreturn]] void task_not_found() { throw Error(Errc::not_found, "Task not found", "task_id", Reason::task_not_found); }
[[noreturn]] void device_not_found() { throw Error(Errc::not_found, "Device not found", "device_id", Reason::device_not_found); }

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
  rq.required_tags = parse_string_array(q.column(11).as_text());
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

Device read_device(detail::Statement& q) {
  Device d;
  d.node_id = q.column(0).as_int64();
  d.device_id = q.column(1).as_text();
  d.hostname = q.column(2).as_text();
  d.ip_address = q.column(3).as_text();
  if (!q.column(4).is_null()) {
    d.platform = q.column(4).as_text();
    d.role = q.column(5).as_text();
    d.tags = parse_string_array(q.column(6).as_text());
    d.capabilities.cpu_count = q.column(7).as_int64();
    d.capabilities.memory_total_gb = q.column(8).as_double();
    d.capabilities.storage_total_gb = q.column(9).as_double();
    d.capabilities.has_gpu = q.column(10).as_int() != 0;
    d.capabilities.internet = q.column(11).as_int() != 0;
    d.allowed_task_types = parse_string_array(q.column(12).as_text());
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

}  // namespace lucid::detail::task_impl
