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

TaskRow read_task(SQLite::Statement& q) {
  TaskRow r;
  Task& t = r.task;
  r.rowid = q.getColumn(0).getInt64();
  t.task_id = q.getColumn(1).getString();
  t.task_type = q.getColumn(2).getString();
  t.payload_json = q.getColumn(3).getString();
  t.priority = static_cast<TaskPriority>(q.getColumn(4).getInt());
  t.status = parse_task_status(q.getColumn(5).getString()).value_or(TaskStatus::pending);
  auto& rq = t.requirements;
  if (!q.getColumn(6).isNull()) rq.min_cpu_cores = q.getColumn(6).getInt64();
  if (!q.getColumn(7).isNull()) rq.min_memory_gb = q.getColumn(7).getDouble();
  if (!q.getColumn(8).isNull()) rq.min_storage_gb = q.getColumn(8).getDouble();
  rq.required_platform = q.getColumn(9).getString();
  rq.required_role = q.getColumn(10).getString();
  rq.required_tags = parse_string_array(q.getColumn(11).getString());
  rq.gpu_required = q.getColumn(12).getInt() != 0;
  rq.internet_required = q.getColumn(13).getInt() != 0;
  rq.timeout_seconds = q.getColumn(14).getInt64();
  rq.max_retries = q.getColumn(15).getInt64();
  t.metadata_json = q.getColumn(16).getString();
  t.device_id = q.getColumn(17).getString();
  t.attempt = q.getColumn(18).getInt64();
  t.retries = q.getColumn(19).getInt64();
  t.progress = q.getColumn(20).getDouble();
  t.progress_message = q.getColumn(21).getString();
  t.status_reason = q.getColumn(22).getString();
  t.cancel_requested = q.getColumn(23).getInt() != 0;
  if (!q.getColumn(24).isNull()) t.result_json = q.getColumn(24).getString();
  if (!q.getColumn(25).isNull()) t.error = q.getColumn(25).getString();
  if (!q.getColumn(26).isNull()) t.exit_code = q.getColumn(26).getInt64();
  if (!q.getColumn(27).isNull()) t.duration_ms = q.getColumn(27).getInt64();
  t.created_at = detail::parse_stored(q.getColumn(28).getString());
  t.assigned_at = detail::parse_stored_opt(q.getColumn(29));
  t.started_at = detail::parse_stored_opt(q.getColumn(30));
  t.completed_at = detail::parse_stored_opt(q.getColumn(31));
  if (!q.getColumn(32).isNull()) r.node_id = q.getColumn(32).getInt64();
  t.submitter = q.getColumn(33).getString();
  return r;
}

std::optional<TaskRow> find_task(Conn& c, std::string_view task_id) {
  if (task_id.empty() || task_id.size() > 64) return std::nullopt;
  auto& q = c.stmt(kTaskById);
  q.bind(1, std::string(task_id));
  if (!q.executeStep()) return std::nullopt;
  return read_task(q);
}

Device read_device(SQLite::Statement& q) {
  Device d;
  d.node_id = q.getColumn(0).getInt64();
  d.device_id = q.getColumn(1).getString();
  d.hostname = q.getColumn(2).getString();
  d.ip_address = q.getColumn(3).getString();
  if (!q.getColumn(4).isNull()) {
    d.platform = q.getColumn(4).getString();
    d.role = q.getColumn(5).getString();
    d.tags = parse_string_array(q.getColumn(6).getString());
    d.capabilities.cpu_count = q.getColumn(7).getInt64();
    d.capabilities.memory_total_gb = q.getColumn(8).getDouble();
    d.capabilities.storage_total_gb = q.getColumn(9).getDouble();
    d.capabilities.has_gpu = q.getColumn(10).getInt() != 0;
    d.capabilities.internet = q.getColumn(11).getInt() != 0;
    d.allowed_task_types = parse_string_array(q.getColumn(12).getString());
    d.max_concurrent = q.getColumn(13).getInt64();
    d.agent_version = q.getColumn(14).getString();
  }
  d.reported = q.getColumn(15).getInt() != 0;
  d.last_heartbeat = detail::parse_stored_opt(q.getColumn(16));
  return d;
}

std::optional<Device> find_device(Conn& c, std::string_view uid) {
  if (uid.empty() || uid.size() > 64) return std::nullopt;
  auto& q = c.stmt(kDeviceByUid);
  q.bind(1, std::string(uid));
  if (!q.executeStep()) return std::nullopt;
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
  q.exec();
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
    while (s.executeStep()) out.push_back(read_device(s));
    return out;
  });
  std::lock_guard<std::mutex> lock(e.mu);
  for (auto& d : all) d = e.overlay(std::move(d));
  return all;
}

}  // namespace lucid::detail::task_impl
