// Child processes for services and tools: spawning without a shell, and the
// data-directory confinement of caller-given paths. Internal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace lucid::detail {

// `path` (relative: to `root`) resolved through every symlink; it must exist
// and lie inside canonical(root). No ".." component is accepted even when it
// would stay inside. Errors: Error(invalid_argument, ..., field).
std::filesystem::path confine(const std::filesystem::path& root, const std::string& path, const std::string& field);

// Spawns argv[0] (an absolute path) with posix_spawn: no shell, its own process
// group, stdin/stdout/stderr from the given descriptors (-1: /dev/null),
// working directory `cwd` (empty: inherit), environment exactly `env`.
// Returns the pid; throws Error(internal) with the errno text on failure.
// `die_with_parent`: the child gets SIGKILL when the calling thread ends
// (PR_SET_PDEATHSIG; fork and exec instead of posix_spawn), so a job does
// not outlive an agent that is killed; a program that cannot be executed
// then shows as exit status 127 rather than a throw.
pid_t spawn_process(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    const std::string& cwd, int in_fd, int out_fd, int err_fd, bool die_with_parent = false);

struct SyncResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  bool timed_out = false;
  bool output_truncated = false;
  std::string out, err;
};
// Runs a tool to completion with a poll loop: output bounded (excess is
// dropped and flagged), killed (whole process group) after `timeout`.
// For request-time tools (git clone, build, ls-remote); not for jobs.
SyncResult run_sync(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& cwd,
                    std::chrono::seconds timeout, std::size_t max_output);

// A job run to completion on the calling thread (a fleet node's agent runs
// workflow jobs this way): `input` written to its STDIN (then closed) while
// STDOUT and STDERR are read, each bounded; the whole process group killed
// when the timeout passes, `cancelled` returns true (polled about every
// 100 ms) or an output passes its bound. SIGPIPE is blocked on the calling
// thread while it runs (a child that does not read its input is no error).
struct PipedRun {
  std::vector<std::string> argv;  // argv[0] absolute
  std::vector<std::string> env;   // exactly this environment
  std::string cwd;                // empty: inherit
  std::string input;
  std::chrono::seconds timeout{300};
  std::size_t max_out = 1024 * 1024, max_err = 1024 * 1024;
  std::function<bool()> cancelled;  // empty: never
  bool die_with_parent = false;     // see spawn_process
};
struct PipedResult {
  std::optional<int> exit_code;  // set when it exited by itself
  std::optional<int> signal;     // killed by a signal it did not get from us
  std::optional<std::string> killed;  // why we killed it: "timed out after T s", "output exceeds N bytes", "cancelled"
  std::string out, err;
};
// Throws Error(internal) when it cannot start (no such program, pipes).
PipedResult run_piped(const PipedRun& run);

// PATH=/usr/local/bin:/usr/bin:/bin and HOME/LANG basics for children.
std::vector<std::string> base_environment();

}  // namespace lucid::detail
