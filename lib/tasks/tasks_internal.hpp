// What the source files of the tasks capability share. Internal.
//
// lib/tasks/ is split by concern: queue.cpp (names, submission, listing,
// cancel and retry, statistics, placement), devices.cpp (devices, labels,
// removal, cluster stats, pings), agent_protocol.cpp (what agents call),
// sweeps.cpp (the periodic liveness and timeout sweep), engine.cpp (the
// TaskEngine of engine.hpp), settings.cpp (runtime settings) and task_rows.cpp
// (this header's functions: the rows of tasks, devices and task_attempts,
// and the input checks).
//
// The row functions take the caller's Conn and run inside its transaction;
// they throw what the store throws (Error(storage)). None takes a lock: the
// callers hold TaskEngine::mu where engine.hpp says they must.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/cluster_core.hpp"
#include "core/clock_text.hpp"
#include "util/checks.hpp"
#include "store/stored.hpp"
#include "tasks/engine.hpp"
#include "util/json.hpp"

namespace lucid::detail::task_impl {

using detail::invalid;
using detail::now_text;

constexpr std::size_t kMaxPayload = 256 * 1024;
constexpr std::size_t kMaxMetadata = 16 * 1024;
constexpr std::size_t kMaxResult = 256 * 1024;
constexpr std::size_t kMaxTags = 32;
constexpr auto kDeliveryLease = std::chrono::seconds(60);
constexpr auto kRunningGrace = std::chrono::seconds(15);
constexpr std::size_t kMaxPlacementsPerPass = 5000;

// Throws Error(invalid_argument, field) unless `v` is 1..32 characters of
// a-z, 0-9, '_' or '-'.
void check_name(const std::string& field, const std::string& v);
// The tags sorted and without duplicates; throws Error(invalid_argument,
// field) for more than 32 entries or an entry that is not 1..64 tag characters.
std::vector<std::string> checked_tags(const std::string& field, std::vector<std::string> tags);
// The tags, required_tags and allowed_types columns hold JSON arrays of strings.
using detail::parse_string_array;
using detail::string_array_json;
// Whether `text` is JSON (an object when `object`).
bool valid_json(const std::string& text, bool object);
std::string time_text(Timestamp t);

[[noreturn]] void task_not_found();
[[noreturn]] void device_not_found();

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
    " WHERE (CAST(?1 AS TEXT) IS NULL OR t.status = ?1) AND (CAST(?2 AS TEXT) IS NULL OR t.task_type = ?2)"
    " AND (CAST(?3 AS BIGINT) IS NULL OR t.priority = ?3) AND (CAST(?4 AS TEXT) IS NULL OR n.uid = ?4) ORDER BY t.id DESC LIMIT ?5 OFFSET ?6";
constexpr const char* kTaskCount =
    "SELECT COUNT(*) FROM tasks t LEFT JOIN nodes n ON n.id = t.node_id"
    " WHERE (CAST(?1 AS TEXT) IS NULL OR t.status = ?1) AND (CAST(?2 AS TEXT) IS NULL OR t.task_type = ?2)"
    " AND (CAST(?3 AS BIGINT) IS NULL OR t.priority = ?3) AND (CAST(?4 AS TEXT) IS NULL OR n.uid = ?4)";

struct TaskRow {
  Task task;
  std::int64_t rowid = 0;
  std::int64_t node_id = 0;
};

// A task from a statement selecting LUCID_TASK_COLUMNS.
TaskRow read_task(detail::Statement& q);
// The task `task_id`, or nullopt (also for an id no task can have).
std::optional<TaskRow> find_task(Conn& c, std::string_view task_id);

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

// A device (without its live fields) from a statement selecting LUCID_DEVICE_COLUMNS.
Device read_device(detail::Statement& q);
// The device of node uid `uid` (active, not removed), or nullopt.
std::optional<Device> find_device(Conn& c, std::string_view uid);

// Closes the open task_attempts row of (rowid, attempt) with its outcome.
void end_attempt(Conn& c, std::int64_t rowid, std::int64_t attempt, const char* outcome, const std::string& at,
                 const std::string& reason);

// ---- engine lookups (each says whether it wants TaskEngine::mu held) ----------

// The Active of `task_id`, or nullptr. Call with e.mu held.
TaskEngine::Active* find_active(TaskEngine& e, std::string_view task_id);
// The stored task with its live queue reason. Call with e.mu held.
Task with_live(TaskEngine& e, TaskRow row);
// The stored task; Error(not_found, task_id) when there is none. Reads the store.
TaskRow load_task(TaskEngine& e, std::string_view task_id);
// The node id of device `uid`; Error(not_found, device_id) when there is none.
std::int64_t device_node(TaskEngine& e, std::string_view uid);
// Every device with its live fields. Takes e.mu: call without it.
std::vector<Device> all_devices(TaskEngine& e);

}  // namespace lucid::detail::task_impl
