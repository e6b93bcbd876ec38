// The cluster API's task JSON (cluster-devices-tasks.md "Tasks"), read and
// written in one place for every surface that speaks it: the server's
// /api/v1/tasks routes and the C ABI's lucid_task_* (bindings/c). Internal.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "lucidnode/tasks.hpp"
#include "util/json_object.hpp"

namespace lucid::detail {

// A submission body {task_type, payload?, priority?, requirements?,
// metadata?} -> TaskSubmit (submitter left empty: the surface knows who
// asks). Only those members (and requirements' own: min_cpu_cores,
// min_memory_gb, min_storage_gb, required_platform, required_role,
// required_tags, gpu_required, internet_required, timeout_seconds,
// max_retries) are allowed. Errors: Error(invalid_argument, message, field)
// for an unknown member or a bad value; a member of requirements is named
// "requirements.<name>". What Tasks::submit checks beyond the shapes (known
// task types, ranges, sizes) it checks itself. Thread-safe (no state).
TaskSubmit decode_task_submit(const JsonObject& body);

// How write_task_json writes a task.
struct TaskJsonStyle {
  // payload, result_data and error; false writes null for them (a reader
  // who may not see the task's data).
  bool with_data = true;
  // Timestamps with fractional seconds (the C ABI's style) or whole seconds
  // (the server's).
  bool fractional_seconds = false;
};

// The task object {task_id, task_type, status, priority, payload,
// requirements {...}, metadata, device_id, attempt, retries, progress,
// progress_message, status_reason, cancel_requested, result_data, error,
// exit_code, execution_time_seconds, created_at, assigned_at, started_at,
// completed_at}. Stored JSON that does not parse is written as null.
// Thread-safe (no state).
void write_task_json(rapidjson::Writer<rapidjson::StringBuffer>& w, const Task& t, TaskJsonStyle style = {});

// How write_task_result_json writes a task's result.
struct TaskResultStyle {
  // result_data and error; false writes null for them.
  bool with_data = true;
  // Timestamps with fractional seconds (the C ABI's) or whole seconds (the
  // server's).
  bool fractional_seconds = false;
  // A "final" member after status (the C ABI's: whether the status is
  // final, so a caller polling the result knows when to stop).
  bool with_final = false;
  // The object is left open (no EndObject): the caller adds members of its
  // own and closes it (the agent's result answer adds "next_work").
  bool leave_open = false;
};

// The task result object (GET /api/v1/tasks/{task_id}/result, the agent's
// result answer, lucid_task_result): {task_id, status, [final,] result_data,
// error, exit_code, execution_time_seconds, worker_device_id, started_at,
// completed_at}. Stored JSON that does not parse is written as null.
// Thread-safe (no state).
void write_task_result_json(rapidjson::Writer<rapidjson::StringBuffer>& w, const Task& t, TaskResultStyle style = {});

}  // namespace lucid::detail
