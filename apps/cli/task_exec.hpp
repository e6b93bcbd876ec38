// Cluster task types run by `lucidctl agent`: how each becomes a child process
// and how the child's end becomes the result reported to the server.
//
//   echo         result {"echo": <payload>}
//   sleep        payload {"seconds": 0..86400}; result {"slept_seconds": s}
//   system_info  result: platform, hostname, kernel, cpu, memory, disk, gpu, load
//   http_request payload {"url", "method"?, "headers"?, "body"?, "timeout_seconds"?};
//                result {"status_code", "headers", "body", "body_truncated", "elapsed_ms"}
//   command      payload {"argv": [..]} or {"command": "..", "shell": true}, plus
//                "cwd"?, "env"?, "stdin"?; result {"exit_code", "stdout", "stderr",
//                "stdout_truncated", "stderr_truncated"}; non-zero exit = failed
//   python_eval  payload {"expression": ".."} (eval) or {"code": ".."} (exec; the
//                variable `result` is returned); result {"result", "stdout"}
//
// echo, sleep, system_info and http_request run as `lucidctl __task TYPE` (the
// agent re-executing itself) with the payload on stdin; command runs its argv;
// python_eval runs the local python3.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "exec.hpp"

namespace lucidctl {

inline constexpr const char* kAlwaysAllowedTypes[] = {"echo", "sleep", "system_info"};
inline constexpr const char* kOptInTypes[] = {"http_request", "command", "python_eval"};
inline constexpr std::size_t kMaxResultBytes = 256 * 1024;  // the server's bound on "result"

bool is_task_type(const std::string& t);
bool is_opt_in_type(const std::string& t);

struct TaskAssignment {
  std::string task_id, task_type;
  std::string payload_json = "null";  // the payload as JSON text
  int timeout_seconds = 300;
  int attempt = 1;
};

// Thrown by build_exec for a payload the task type cannot run (reported as a
// failed task with this message).
struct PayloadError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ExecLimits {
  std::string self_exe;  // the task runner, for `__task TYPE` (task_runner_for)
  std::string python = "python3";
  std::string disk_path = "/";  // for system_info
  std::size_t max_stdout = 128 * 1024;
  std::size_t max_stderr = 32 * 1024;
};

// The child process for a task. Throws PayloadError.
ExecSpec build_exec(const TaskAssignment& t, const ExecLimits& lim);

struct TaskOutcome {
  std::string status;       // completed | failed | timeout | cancelled
  std::string result_json;  // JSON text, at most kMaxResultBytes
  std::string error;        // empty: none
  std::optional<int> exit_code;
  std::int64_t duration_ms = 0;
};

// What to report for a child's end.
TaskOutcome outcome_of(const TaskAssignment& t, const ExecResult& r);

// The failure reported for a task that could not be started (e.g. PayloadError).
TaskOutcome failed_outcome(const std::string& error);

// The body of POST /api/v1/agent/tasks/{id}/result.
std::string result_body(const TaskOutcome& o);

// The program the agent runs `__task TYPE` with: lucid-task beside `self_exe`
// (the build tree) or in ../libexec/lucidnode (installed), when executable;
// else `self_exe` itself (lucidctl runs `__task` too). lucid-task is the
// lighter exec (task_main.cpp says why).
std::string task_runner_for(const std::string& self_exe);

// `lucidctl __task TYPE`: reads the payload from stdin, writes the result JSON
// to stdout; exit 0, or 1 with the reason on stderr.
int run_builtin_task(const std::string& type);

}  // namespace lucidctl
