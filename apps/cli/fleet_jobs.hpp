// Workflow jobs on this node (docs/workflows.md "Jobs on fleet nodes"): the
// agent's side of the task types workflow_job (a standalone program) and
// workflow_docker (a container). The job format, its checks and the runner
// are the library's (lib/workflows/fleet_job.hpp), shared with the server;
// this file is the shell: the opt-in options, the Docker check, and the
// task outcome reported for a job's end.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "task_exec.hpp"

namespace lucidctl {

struct FleetOptions {
  bool allow_jobs = false;    // --allow-workflow-jobs: standalone workflow jobs
  bool allow_docker = false;  // --allow-docker: container jobs (needs a daemon)
  std::string docker_socket;  // --docker-socket; empty: DOCKER_HOST, else /var/run/docker.sock
  std::string dir;            // --workflow-dir: each job runs in a fresh directory under it
};

// Whether `type` is one of the two workflow job types.
bool is_fleet_type(const std::string& type);

// Prepares the opt-ins at agent start: creates the job directory (0700) when
// jobs are allowed, resolves the Docker socket and asks the daemon for its
// version when Docker is allowed. An opt-in that cannot work is switched off
// with a line saying why (the agent then does not advertise it, so the
// server never sends such a job here). Call once, before the device report.
void prepare_fleet(FleetOptions& o);

// The task types the opt-ins add to the device report.
std::vector<std::string> fleet_types(const FleetOptions& o);

// Runs the workflow job of `t` to its end and returns what to report:
// completed (exit status 0), failed ("exited with status N" with the exit
// code, or why it could not run), timeout, or cancelled (`cancel` became
// true). The result carries STDOUT/STDERR (lib/workflows fleet_result_json).
// `on_tick` is called about every `tick` while it runs (progress reports).
TaskOutcome run_fleet_task(const TaskAssignment& t, const FleetOptions& o, const std::atomic<bool>& cancel,
                           const std::function<void(std::chrono::milliseconds)>& on_tick,
                           std::chrono::milliseconds tick);

}  // namespace lucidctl
