// workflow_bench — the workflow executor's overhead, in process (docs/workflows.md).
//
// Builds, in a temporary database, a 100-job chain of `cat` services and a
// 100-wide fan-out (one `cat` feeding 100 `cat`s), executes each --rounds
// times and reports end-to-end time and the per-job scheduling overhead:
// end-to-end time per job minus the cost of starting, feeding and reaping one
// `cat` process directly (measured the same way, posix_spawn + pipes + wait).
//
// Usage: workflow_bench [--jobs N] [--rounds R] [--parallel P]
// Prints `key: value` lines and the machine; never asserts on time. Exit 0
// unless setup fails, 2 on a bad command line.
#include <fcntl.h>
#include <spawn.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lucidnode/lucidnode.hpp"
#include "lucidnode/workflows.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

void print_machine() {
  utsname u{};
  if (uname(&u) == 0) std::printf("machine: %s %s %s\n", u.sysname, u.release, u.machine);
  std::printf("nproc: %u\n", std::thread::hardware_concurrency());
  std::ifstream cpu("/proc/cpuinfo");
  for (std::string line; std::getline(cpu, line);) {
    if (line.rfind("model name", 0) == 0) {
      std::printf("cpu: %s\n", line.substr(line.find(':') + 2).c_str());
      break;
    }
  }
#ifdef NDEBUG
  std::printf("bench_build: optimized (NDEBUG)\n");
#else
  std::printf("bench_build: debug (assertions on)\n");
#endif
}

// One `cat` started with pipes, fed `input`, drained and reaped: the floor
// every job pays whatever schedules it.
double direct_process_ms(const std::string& exe, const std::string& input) {
  const auto t0 = Clock::now();
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) std::exit(1);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  char* argv[] = {const_cast<char*>(exe.c_str()), nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv, environ) != 0) std::exit(1);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  if (!input.empty() && write(in[1], input.data(), input.size()) < 0) std::exit(1);
  close(in[1]);
  char buf[4096];
  while (read(out[0], buf, sizeof buf) > 0) {
  }
  close(out[0]);
  waitpid(pid, nullptr, 0);
  return ms_since(t0);
}

struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  std::int64_t done_id = 0;
};

}  // namespace

int main(int argc, char** argv) {
  int jobs = 100, rounds = 3;
  std::size_t parallel = 16;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "usage: workflow_bench [--jobs N] [--rounds R] [--parallel P]\n");
      return 2;
    }
    if (a == "--jobs") jobs = std::atoi(argv[++i]);
    else if (a == "--rounds") rounds = std::atoi(argv[++i]);
    else if (a == "--parallel") parallel = static_cast<std::size_t>(std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (jobs < 1 || rounds < 1 || parallel < 1) return 2;
  signal(SIGPIPE, SIG_IGN);
  print_machine();

  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("workflow_bench-" + std::to_string(getpid()));
  fs::create_directories(dir / "data");
  // Paths are confined to the data directory: a copy of cat lives there.
  fs::copy_file("/bin/cat", dir / "data" / "cat", fs::copy_options::overwrite_existing);
  fs::permissions(dir / "data" / "cat", fs::perms::owner_all);

  int rc = 0;
  try {
    lucid::Options o;
    o.database_path = (dir / "lucid.db").string();
    o.workflows.max_parallel = parallel;
    lucid::Cluster cluster(o);
    cluster.start();
    auto& wf = cluster.workflows();
    lucid::StandaloneCreate sc;
    sc.name = "cat";
    sc.executable_path = "cat";
    const auto cat = wf.create_standalone(sc);

    Waiter waiter;
    auto sub = cluster.events().subscribe([&](const lucid::Event& e) {
      if (e.kind != lucid::EventKind::network || e.type != "EXECUTION_UPDATED") return;
      if (e.payload.find("\"status\":\"RUNNING\"") != std::string::npos) return;
      const auto p = e.payload.find("\"execution_id\":");
      if (p == std::string::npos) return;
      std::lock_guard<std::mutex> lock(waiter.mu);
      waiter.done_id = std::atoll(e.payload.c_str() + p + 15);
      waiter.cv.notify_all();
    });

    auto build = [&](const char* name, bool chain) {
      const auto w = wf.create_workflow(name, "", "{}");
      lucid::WorkflowNode n;
      n.workflow_id = w.id;
      n.service_id = cat.id;
      std::vector<std::int64_t> ids;
      const int count = chain ? jobs : jobs + 1;
      for (int i = 0; i < count; ++i) ids.push_back(wf.add_node(n).id);
      for (int i = 1; i < count; ++i) {
        lucid::WorkflowConnection c;
        c.workflow_id = w.id;
        c.source_node_id = chain ? ids[i - 1] : ids[0];
        c.target_node_id = ids[i];
        wf.add_connection(c);
      }
      return std::make_pair(w.id, count);
    };

    auto execute = [&](std::int64_t wid) {
      const auto t0 = Clock::now();
      const auto inst = wf.execute(wid);
      std::unique_lock<std::mutex> lock(waiter.mu);
      waiter.cv.wait(lock, [&] { return waiter.done_id == inst.id; });
      lock.unlock();
      const double ms = ms_since(t0);
      const auto final = wf.execution(inst.id);
      if (final.status != "COMPLETED") {
        std::fprintf(stderr, "execution %lld %s: %s\n", static_cast<long long>(inst.id), final.status.c_str(),
                     final.error.value_or("").c_str());
        std::exit(1);
      }
      return ms;
    };

    // The floor: the same process started directly, sequentially.
    std::vector<double> direct;
    for (int i = 0; i < jobs; ++i) direct.push_back(direct_process_ms((dir / "data" / "cat").string(), ""));
    std::sort(direct.begin(), direct.end());
    const double direct_ms = direct[direct.size() / 2];
    std::printf("direct_process_ms_p50: %.3f\n", direct_ms);
    std::printf("workflow_max_parallel: %zu\n", parallel);

    for (bool chain : {true, false}) {
      const auto [wid, count] = build(chain ? "chain" : "fanout", chain);
      std::vector<double> times;
      for (int r = 0; r < rounds; ++r) times.push_back(execute(wid));
      std::sort(times.begin(), times.end());
      const double best = times.front(), median = times[times.size() / 2];
      const char* k = chain ? "chain" : "fanout";
      std::printf("%s_jobs: %d\n", k, count);
      std::printf("%s_end_to_end_ms_best: %.1f\n", k, best);
      std::printf("%s_end_to_end_ms_median: %.1f\n", k, median);
      if (chain) {
        // Sequential: every job pays one process; the rest is scheduling
        // (graph load, two job-record transactions, pipes, events).
        std::printf("chain_per_job_ms_median: %.3f\n", median / count);
        std::printf("chain_overhead_per_job_ms_median: %.3f (beyond direct_process_ms_p50)\n",
                    median / count - direct_ms);
      } else {
        std::printf("fanout_per_job_ms_median: %.3f (amortised over %d jobs, %zu at once)\n", median / count, count,
                    parallel);
      }
    }
    sub.reset();
    cluster.stop();
  } catch (const lucid::Error& e) {
    std::fprintf(stderr, "workflow_bench: %s\n", e.message().c_str());
    rc = 1;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return rc;
}
