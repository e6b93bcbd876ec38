// Running one task as a child process: argv (never a shell unless the argv is
// one), optional stdin, a deadline, a cancel flag, bounded stdout/stderr.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace lucidctl {

struct ExecSpec {
  std::vector<std::string> argv;  // argv[0]: absolute path, or a name looked up in PATH
  std::string stdin_data;         // written to the child's stdin, then closed
  std::string cwd;                // empty: the agent's own
  std::vector<std::pair<std::string, std::string>> env;  // added to (or replacing in) the agent's environment
  std::chrono::milliseconds timeout{0};                   // 0: none
  std::size_t max_stdout = 256 * 1024;                    // bytes kept; the rest is read and dropped
  std::size_t max_stderr = 64 * 1024;
};

enum class ExecEnd {
  exited,        // exit_code is set
  signaled,      // killed by a signal it did not get from us (term_signal)
  timeout,       // the deadline passed: its process group was SIGKILLed
  cancelled,     // the cancel flag was set: its process group was SIGKILLed
  spawn_failed,  // could not start (error says why; e.g. no such program)
};

struct ExecResult {
  ExecEnd end = ExecEnd::spawn_failed;
  int exit_code = -1;
  int term_signal = 0;
  pid_t pid = -1;
  std::string out, err;
  bool out_truncated = false, err_truncated = false;
  std::size_t out_total = 0, err_total = 0;  // bytes the child wrote
  std::chrono::milliseconds duration{0};
  std::string error;  // spawn_failed: the reason
};

// Called about every `tick` while the child runs, with the time since it started.
using ExecTick = std::function<void(std::chrono::milliseconds elapsed)>;

// Runs spec.argv as a child in its own process group (with PR_SET_PDEATHSIG
// SIGKILL, so it does not outlive the calling thread) and waits for it. Stops
// it (SIGKILL to the whole group) when the timeout passes or `cancel` becomes
// true; within ~50 ms. When the child exits, anything left in its group is
// killed too, so a leftover grandchild cannot keep the pipes open. Never throws
// for a failure of the child; std::bad_alloc only.
// Thread-safety: safe to call from many threads at once (each call owns its
// child); `cancel` and `on_tick` are read/called on the calling thread.
ExecResult run_process(const ExecSpec& spec, const std::atomic<bool>& cancel, const ExecTick& on_tick = {},
                       std::chrono::milliseconds tick = std::chrono::milliseconds(1000));

// argv[0] resolved through PATH (or as given if it has a '/'); empty if no
// executable file matches.
std::string find_program(const std::string& name);

// `s` with every invalid UTF-8 sequence replaced by U+FFFD (a truncated tail
// too), so it can go into a JSON string.
std::string valid_utf8(const std::string& s);

}  // namespace lucidctl
