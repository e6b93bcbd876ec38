#include "fleet_jobs.hpp"

#include <algorithm>
#include <filesystem>

#include "agent.hpp"
#include "exec.hpp"
#include "lucidnode/error.hpp"
#include "workflows/docker.hpp"
#include "workflows/fleet_job.hpp"

namespace lucidctl {

namespace {
constexpr std::size_t kMaxError = 4000;  // the server keeps at most 4096 characters

std::string bounded_error(const std::string& s) { return valid_utf8(s.substr(0, kMaxError)); }
}  // namespace

bool is_fleet_type(const std::string& type) {
  return type == lucid::detail::kFleetStandaloneType || type == lucid::detail::kFleetDockerType;
}

void prepare_fleet(FleetOptions& o) {
  if (o.allow_jobs || o.allow_docker) {
    std::error_code ec;
    std::filesystem::create_directories(o.dir, ec);
    if (!ec) std::filesystem::permissions(o.dir, std::filesystem::perms::owner_all, ec);
    if (ec) {
      agent_say("agent: workflow jobs disabled: cannot prepare " + o.dir + ": " + ec.message());
      o.allow_jobs = o.allow_docker = false;
      return;
    }
  }
  if (o.allow_docker) {
    std::string why;
    o.docker_socket = lucid::detail::docker_socket_path(o.docker_socket, &why);
    const auto version = o.docker_socket.empty() ? std::nullopt : lucid::detail::DockerClient(o.docker_socket).version();
    if (!version) {
      agent_say("agent: Docker workflow jobs disabled: no Docker daemon answers" +
                (o.docker_socket.empty() ? " (" + why + ")" : " on " + o.docker_socket));
      o.allow_docker = false;
    } else {
      agent_say("agent: Docker workflow jobs allowed (daemon " + *version + " on " + o.docker_socket + ")");
    }
  }
  if (o.allow_jobs) agent_say("agent: workflow jobs allowed (directories under " + o.dir + ")");
}

std::vector<std::string> fleet_types(const FleetOptions& o) {
  std::vector<std::string> out;
  if (o.allow_jobs) out.emplace_back(lucid::detail::kFleetStandaloneType);
  if (o.allow_docker) out.emplace_back(lucid::detail::kFleetDockerType);
  return out;
}

TaskOutcome run_fleet_task(const TaskAssignment& t, const FleetOptions& o, const std::atomic<bool>& cancel,
                           const std::function<void(std::chrono::milliseconds)>& on_tick,
                           std::chrono::milliseconds tick) {
  const auto t0 = std::chrono::steady_clock::now();
  lucid::detail::FleetJob job;
  try {
    job = lucid::detail::parse_fleet_job(t.payload_json);
  } catch (const lucid::Error& e) {
    return failed_outcome(bounded_error("invalid workflow job: " + e.message()));
  }
  // The type says which opt-in it needs; the payload must agree with it.
  if (job.container != (t.task_type == lucid::detail::kFleetDockerType))
    return failed_outcome("invalid workflow job: its kind does not match the task type " + t.task_type);
  lucid::detail::FleetJobHost host;
  host.allow_standalone = o.allow_jobs;
  host.allow_docker = o.allow_docker;
  host.docker_socket = o.docker_socket;
  host.work_root = o.dir;
  auto next_tick = t0 + tick;
  auto poll = [&] {
    const auto now = std::chrono::steady_clock::now();
    if (on_tick && now >= next_tick) {
      next_tick = now + tick;
      on_tick(std::chrono::duration_cast<std::chrono::milliseconds>(now - t0));
    }
    return cancel.load();
  };
  const auto r = lucid::detail::run_fleet_job(job, host, poll);
  TaskOutcome out;
  out.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  out.result_json = lucid::detail::fleet_result_json(r);
  out.exit_code = r.exit_code;
  if (r.cancelled) {
    out.status = "cancelled";
    out.error = "cancelled";
  } else if (r.failure) {
    out.status = r.failure->rfind("timed out", 0) == 0 ? "timeout" : "failed";
    out.error = bounded_error(*r.failure);
  } else if (r.exit_code && *r.exit_code == 0) {
    out.status = "completed";
  } else {
    out.status = "failed";
    out.error = "exited with status " + std::to_string(r.exit_code.value_or(-1));
  }
  return out;
}

}  // namespace lucidctl
