// The task side of `lucidctl agent`: reports the device (capabilities,
// platform, role, tags, allowed task types), long-polls for work, answers
// pings, runs each task as a child process (task_exec.hpp) on one of
// max_tasks worker threads, and reports start, progress and result
// (docs/agent-protocol.md).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client.hpp"
#include "procstats.hpp"
#include "task_exec.hpp"

namespace lucidctl {

struct WorkOptions {
  std::string server;  // http://host:port
  std::string api_key;
  std::string disk_path = "/";
  std::optional<std::string> role;   // sent only when given (else the admin's choice stays)
  std::vector<std::string> tags;     // sent when given
  bool tags_given = false;
  std::vector<std::string> allow;    // opt-in task types (http_request, command, python_eval)
  int max_tasks = 1;                 // tasks run at once (the device's max_concurrent)
  int wait_seconds = 10;             // long-poll length (<= the heartbeat interval, 60 s by default)
  int progress_seconds = 2;          // between progress reports of a running task
  int capability_check_seconds = 60; // re-detect capabilities; report if changed
  int max_backoff_seconds = 30;
  std::string internet = "auto";     // auto (default route present) | yes | no
  std::optional<int> cpu_count;      // advertise instead of the detected value
  std::optional<double> memory_gb;
  std::optional<double> storage_gb;
  ExecLimits limits;
};

// Owns its threads: the poll thread and max_tasks workers, started by start()
// and stopped (running children killed, not reported: the server requeues a
// silent device's tasks) by stop() or the destructor.
// Thread-safety: start/stop/wait from one controlling thread; failed() from any.
class TaskAgent {
 public:
  explicit TaskAgent(WorkOptions o);
  ~TaskAgent();
  TaskAgent(const TaskAgent&) = delete;
  TaskAgent& operator=(const TaskAgent&) = delete;

  void start();
  void stop();
  // Non-zero once the agent cannot go on: 4 = the server rejected the API key
  // (e.g. the device was deleted); 2 = the server refused the device report.
  int failed() const { return failed_.load(); }

  // The device report body (PUT /api/v1/agent/device) for these capabilities.
  static std::string device_body(const WorkOptions& o, const Capabilities& c);
  // The task types this agent runs: echo, sleep, system_info and the allowed ones.
  static std::vector<std::string> allowed_types(const WorkOptions& o);

 private:
  struct Running {
    TaskAssignment task;
    std::atomic<bool> cancel{false};
    std::atomic<bool> abandon{false};  // do not report (shutdown, or no longer ours)
  };

  void poll_loop();
  void worker_loop();
  void run_one(ApiClient& api, const std::shared_ptr<Running>& r);
  bool report_device(ApiClient& api, bool quiet);
  Capabilities capabilities() const;
  void handle_work(ApiClient& api, const std::string& body);
  bool stopping() const { return stopping_.load() || failed_.load() != 0; }
  bool nap(double seconds) const;

  WorkOptions o_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> failed_{0};
  std::unique_ptr<ApiClient> poll_api_;
  std::thread poller_;
  std::vector<std::thread> workers_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Running>> backlog_;
  std::map<std::string, std::shared_ptr<Running>> known_;  // queued or running, by task id
  std::deque<std::string> recent_;                         // "id#attempt" finished lately (re-deliveries ignored)
  std::set<std::string> recent_set_;
  bool poller_done_ = false;
  Capabilities last_caps_;  // poll thread only
  HttpResult last_device_report_;  // poll thread only: its Retry-After paces the retry
};

}  // namespace lucidctl
