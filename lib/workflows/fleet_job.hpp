// Workflow jobs on fleet nodes (docs/workflows.md "Jobs on fleet nodes"): the
// task payload the executor sends to a node's agent, the agent's run of it
// (a standalone program or a Docker container, under the same rules as the
// server's own jobs), and the result it reports back. Both ends use this one
// module: the executor (lib/workflows) encodes jobs and decodes results, the
// agent (apps/cli) decodes jobs, runs them and encodes results. Internal.
//
// Thread-safety: every function is independent of the others (no state).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lucid::detail {

// Bounds of a fleet job's interfaces. The agent protocol carries a payload
// and a result of at most 256 KiB of JSON each (lib/tasks), base64 inside:
// STDIN up to 128 KiB, STDOUT up to 128 KiB and STDERR up to 32 KiB (each
// also at most Options::workflows.max_output_bytes). A larger STDIN fails the
// job before it is sent; a larger output kills it, as on the server.
inline constexpr std::size_t kFleetMaxInput = 128 * 1024;
inline constexpr std::size_t kFleetMaxStdout = 128 * 1024;
inline constexpr std::size_t kFleetMaxStderr = 32 * 1024;

// The task types (lib/tasks): a standalone job, a container job.
inline constexpr const char* kFleetStandaloneType = "workflow_job";
inline constexpr const char* kFleetDockerType = "workflow_docker";

struct FleetJob {
  bool container = false;
  // A standalone job: the program (absolute path on the node), its
  // arguments and the service's environment variables.
  std::string executable;
  std::vector<std::string> arguments;
  std::vector<std::pair<std::string, std::string>> environment;
  // A container job: image "name:tag", the service's entrypoint/cmd (empty:
  // the image's), the node config's limits (0: none) and network switch.
  std::string image;
  std::vector<std::string> entrypoint, cmd;
  std::int64_t memory_bytes = 0, nano_cpus = 0, pids_limit = 0;
  bool network = false;
  // Both.
  std::string input;  // STDIN: the upstream jobs' STDOUT
  std::int64_t timeout_seconds = 300;
  std::size_t max_stdout = kFleetMaxStdout, max_stderr = kFleetMaxStderr;
  std::int64_t workflow_id = 0, execution_id = 0, job_id = 0;
};

// The task payload (JSON text) of `job`; STDIN base64url-encoded.
std::string fleet_job_payload(const FleetJob& job);

// The job of a payload, every field checked: a known kind, an absolute
// executable without NUL, at most 256 arguments and 256 environment
// variables (names [A-Za-z_][A-Za-z0-9_]*, not LUCID_*), a valid image
// reference, STDIN within kFleetMaxInput, timeout 1..86400, output bounds
// within the kFleetMax* ones, limits within the server's ranges. Throws
// Error(invalid_argument, message, field) otherwise.
FleetJob parse_fleet_job(const std::string& payload_json);

// What the agent of a node allows and has.
struct FleetJobHost {
  bool allow_standalone = false;  // lucidctl agent --allow-workflow-jobs
  bool allow_docker = false;      // --allow-docker (with a daemon on docker_socket)
  std::string docker_socket;
  std::filesystem::path work_root;  // each job runs in a fresh directory under it
};

struct FleetJobResult {
  std::optional<int> exit_code;        // the program's or container's exit status
  std::optional<std::string> failure;  // why it did not complete: refused, timed out, killed, too much output
  bool cancelled = false;              // the server cancelled it
  std::string out, err;
};

// Runs `job` on this node and returns its end; never throws for what
// happens to the job (a refusal or start failure is `failure`). A standalone
// job runs as the server's local jobs do (lib/workflows/process.hpp: no
// shell, its own process group, exactly base_environment() + the LUCID_*
// ids + the service's variables) with its working directory a fresh
// directory under host.work_root (mode 0700, removed afterwards). A
// container job runs through the Docker driver (lib/workflows/docker.hpp)
// exactly as the server runs one. `cancelled` is polled while it runs.
FleetJobResult run_fleet_job(const FleetJob& job, const FleetJobHost& host, const std::function<bool()>& cancelled);

// The task result (JSON text) of `r`: {"exit_code", "stdout", "stderr"}
// (base64url) plus "failure" when set. At most 256 KiB for outputs within
// the bounds.
std::string fleet_result_json(const FleetJobResult& r);

// The outputs of a result the agent reported (fleet_result_json), each cut
// to its bound; nullopt when `result_json` is not such a result.
struct FleetOutputs {
  std::string out, err;
  std::optional<int> exit_code;
};
std::optional<FleetOutputs> parse_fleet_result(const std::string& result_json);

}  // namespace lucid::detail
