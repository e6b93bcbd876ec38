// scheduler_bench — task placement figures, in process (no HTTP).
//
//   1. The scheduler's stages (lib/tasks/scheduler.hpp: feasibility over
//      computed device classes, ranking by load, selection) on one core:
//      --devices (10,000) devices of mixed shapes and --tasks (1,000,000)
//      tasks with mixed requirements. Tasks finish in FIFO order once the
//      fleet is --fill (80 %) busy, so placement never runs dry. Target
//      >= 100,000 placements/s. Quality: tasks placed per device (max/mean),
//      and the spread of load at the end.
//   2. The same through lucid::Tasks with SQLite (submit, then scheduling
//      passes that persist every assignment): --db-tasks (20,000) tasks on
//      --db-devices (1,000) devices. --database URI runs it on that database
//      instead (an empty PostgreSQL database: postgresql://...).
//
// Prints `key: value` lines and the machine; never asserts on time.
#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "lucidnode/lucidnode.hpp"
#include "tasks/scheduler.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace lucid::detail::sched;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

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
}

struct Shape {
  const char* platform;
  const char* role;
  std::vector<std::string> tags;
  bool gpu, internet;
  std::vector<std::string> types;
  std::int64_t cpu;
  double mem, disk;
  std::int64_t max_concurrent;
};

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> s = {
      {"linux", "worker", {}, false, true, {"echo", "sleep", "system_info"}, 4, 8, 100, 4},
      {"linux", "compute", {"fast"}, false, true, {"echo", "sleep", "system_info", "command"}, 16, 64, 500, 16},
      {"linux", "compute", {"fast", "gpu-capable"}, true, true, {"echo", "sleep", "python_eval"}, 32, 128, 1000, 16},
      {"linux", "storage", {"eu"}, false, true, {"echo", "sleep", "http_request"}, 8, 32, 8000, 8},
      {"windows", "worker", {}, false, true, {"echo", "sleep", "system_info"}, 8, 16, 250, 4},
      {"darwin", "worker", {"eu"}, false, true, {"echo", "sleep"}, 10, 32, 500, 8},
      {"android", "mobile", {}, false, false, {"echo", "system_info"}, 8, 6, 64, 2},
      {"linux", "worker", {"edge"}, false, false, {"echo", "sleep"}, 2, 2, 16, 1},
  };
  return s;
}

std::vector<Requirements> requirement_mix() {
  std::vector<Requirements> out;
  auto base = [](const char* type) {
    Requirements r;
    r.type_bit = task_type_bit(type);
    return r;
  };
  out.push_back(base("echo"));
  out.push_back(base("sleep"));
  auto r = base("echo"); r.min_cpu = 8; out.push_back(r);
  r = base("echo"); r.min_memory_gb = 16; out.push_back(r);
  r = base("sleep"); r.platform = "linux"; out.push_back(r);
  r = base("echo"); r.platform = "windows"; out.push_back(r);
  r = base("python_eval"); r.gpu = true; out.push_back(r);
  r = base("command"); r.role = "compute"; r.tags = {"fast"}; out.push_back(r);
  r = base("http_request"); r.min_storage_gb = 1000; r.internet = true; out.push_back(r);
  r = base("system_info"); r.role = "mobile"; out.push_back(r);
  r = base("echo"); r.tags = {"eu"}; r.min_cpu = 4; out.push_back(r);
  r = base("sleep"); r.platform = "darwin"; r.min_memory_gb = 8; out.push_back(r);
  r = base("echo"); r.platform = "plan9"; out.push_back(r);  // never placeable
  return out;
}

std::int64_t arg(int argc, char** argv, const char* name, std::int64_t def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoll(argv[i + 1]);
  return def;
}

void placer_bench(std::int64_t devices, std::int64_t tasks, double fill) {
  std::mt19937_64 rng(42);
  Placer p;
  std::vector<std::int64_t> capacity_of(static_cast<std::size_t>(devices) + 1);
  std::int64_t capacity = 0;
  const auto& sh = shapes();
  for (std::int64_t d = 1; d <= devices; ++d) {
    const Shape& s = sh[rng() % sh.size()];
    std::uint32_t types = 0;
    for (const auto& t : s.types) types |= task_type_bit(t);
    // Small jitter in memory/disk: real devices differ; buckets absorb most of it.
    const double mem = s.mem - static_cast<double>(rng() % 3) * 0.05;
    p.upsert(d, ClassAttrs::make(s.platform, s.role, s.tags, s.gpu, s.internet, types, s.cpu, mem, s.disk),
             s.max_concurrent, rng() % 20 != 0 /* 5 % offline */);
    capacity_of[static_cast<std::size_t>(d)] = s.max_concurrent;
    capacity += s.max_concurrent;
  }
  const auto mix = requirement_mix();
  std::vector<int> sigs;
  for (const auto& r : mix) sigs.push_back(p.intern(r));
  std::vector<int> task_sig(static_cast<std::size_t>(tasks));
  for (auto& s : task_sig) s = sigs[rng() % sigs.size()];

  std::vector<std::int64_t> placed_on(static_cast<std::size_t>(devices) + 1, 0);
  std::deque<std::int64_t> running;
  const auto busy_limit = static_cast<std::size_t>(static_cast<double>(capacity) * fill);
  std::int64_t placed = 0, unplaced = 0;
  const auto t0 = Clock::now();
  for (std::int64_t i = 0; i < tasks; ++i) {
    auto d = p.place(task_sig[static_cast<std::size_t>(i)]);
    if (!d) {
      ++unplaced;
      continue;
    }
    ++placed;
    ++placed_on[static_cast<std::size_t>(*d)];
    running.push_back(*d);
    if (running.size() > busy_limit) {  // the oldest task finishes
      p.add_load(running.front(), -1);
      running.pop_front();
    }
  }
  const double secs = seconds_since(t0);
  std::int64_t max = 0, used = 0, online_total = 0;
  for (std::int64_t d = 1; d <= devices; ++d) {
    max = std::max(max, placed_on[static_cast<std::size_t>(d)]);
    if (placed_on[static_cast<std::size_t>(d)]) ++used;
  }
  (void)online_total;
  // Load spread at the end, over devices holding tasks: running / capacity.
  double max_load = 0, sum_load = 0;
  std::int64_t n_load = 0;
  for (std::int64_t d = 1; d <= devices; ++d) {
    const double l = static_cast<double>(p.running(d)) / static_cast<double>(capacity_of[static_cast<std::size_t>(d)]);
    if (p.running(d) > 0) {
      max_load = std::max(max_load, l);
      sum_load += l;
      ++n_load;
    }
  }
  std::printf("placer_devices: %lld\n", static_cast<long long>(devices));
  std::printf("placer_classes: %zu\n", p.class_count());
  std::printf("placer_requirement_sets: %zu\n", mix.size());
  std::printf("placer_fleet_capacity: %lld (busy limit %zu)\n", static_cast<long long>(capacity), busy_limit);
  std::printf("placer_tasks: %lld (placed %lld, not placeable now %lld)\n", static_cast<long long>(tasks),
              static_cast<long long>(placed), static_cast<long long>(unplaced));
  std::printf("placer_seconds: %.3f\n", secs);
  std::printf("placer_placements_per_second: %.0f (target >= 100000)\n", static_cast<double>(placed) / secs);
  std::printf("placer_decisions_per_second: %.0f\n", static_cast<double>(tasks) / secs);
  std::printf("placer_tasks_per_device_max_over_mean: %lld / %.1f (devices used %lld)\n", static_cast<long long>(max),
              used ? static_cast<double>(placed) / static_cast<double>(used) : 0.0, static_cast<long long>(used));
  double max_per_cap = 0, sum_per_cap = 0;
  for (std::int64_t d = 1; d <= devices; ++d) {
    const double v = static_cast<double>(placed_on[static_cast<std::size_t>(d)]) /
                     static_cast<double>(capacity_of[static_cast<std::size_t>(d)]);
    max_per_cap = std::max(max_per_cap, v);
    if (placed_on[static_cast<std::size_t>(d)]) sum_per_cap += v;
  }
  std::printf("placer_tasks_per_capacity_slot_max_over_mean: %.1f / %.1f (devices differ in max_concurrent)\n",
              max_per_cap, used ? sum_per_cap / static_cast<double>(used) : 0.0);
  std::printf("placer_end_load_max_over_mean: %.2f / %.2f (running / max_concurrent, busy devices)\n", max_load,
              n_load ? sum_load / static_cast<double>(n_load) : 0.0);
}

void engine_bench(std::int64_t devices, std::int64_t tasks, std::int64_t submit_threads, const std::string& database) {
  const auto dir = std::filesystem::temp_directory_path() / ("lucid-sched-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    lucid::Options o;
    o.database_path = database.empty() ? (dir / "bench.db").string() : database;
    o.key_file = (dir / "bench.key").string();
    o.data_dir = (dir / "data").string();
    const bool postgres = lucid::parse_database(o.database_path).kind == lucid::DatabaseKind::postgres;
    std::printf("engine_database: %s\n", postgres ? "postgresql" : "sqlite");
    lucid::Cluster c(o);
    std::mt19937_64 rng(7);
    const auto& sh = shapes();
    std::vector<std::int64_t> nodes;
    for (std::int64_t i = 0; i < devices; ++i) {
      auto j = c.nodes().request_join({"bench-" + std::to_string(i) + ".example.com", "", "", ""});
      c.nodes().approve(j.request_id);
      const Shape& s = sh[rng() % sh.size()];
      lucid::DeviceReport r;
      r.platform = s.platform;
      r.role = s.role;
      r.tags = s.tags;
      r.capabilities = {s.cpu, s.mem, s.disk, s.gpu, s.internet};
      r.allowed_task_types = s.types;
      r.max_concurrent = 1000000 / devices + 1 > 256 ? 256 : 1000000 / devices + 1;
      c.tasks().report_device(j.request_id, r);
    }
    const std::vector<std::string> types = {"echo", "sleep"};
    // `submit_threads` callers at once, as the server's workers submit:
    // concurrent submits share transactions (group commit).
    auto submit_range = [&](std::int64_t from, std::int64_t to) {
      for (std::int64_t i = from; i < to; ++i) {
        lucid::TaskSubmit t;
        t.task_type = types[static_cast<std::size_t>(i) % 2];
        if (i % 3 == 0) t.requirements.min_cpu_cores = 8;
        if (i % 5 == 0) t.requirements.required_platform = "linux";
        c.tasks().submit(t);
      }
    };
    auto t0 = Clock::now();
    {
      std::vector<std::thread> threads;
      for (std::int64_t k = 0; k < submit_threads; ++k)
        threads.emplace_back(submit_range, tasks * k / submit_threads, tasks * (k + 1) / submit_threads);
      for (auto& th : threads) th.join();
    }
    const double submit_secs = seconds_since(t0);
    t0 = Clock::now();
    auto before = c.tasks().statistics().by_status["assigned"];
    for (int pass = 0; pass < 1000; ++pass) {
      c.tasks().schedule();
      auto s = c.tasks().statistics();
      if (s.by_status["queued"] == 0 || s.by_status["assigned"] == before) break;
      before = s.by_status["assigned"];
    }
    const double sched_secs = seconds_since(t0);
    auto s = c.tasks().statistics();
    std::printf("engine_devices: %lld\n", static_cast<long long>(devices));
    std::printf("engine_submit_threads: %lld\n", static_cast<long long>(submit_threads));
    std::printf("engine_submits_per_second: %.0f\n", static_cast<double>(tasks) / submit_secs);
    std::printf("engine_assigned: %lld of %lld\n", static_cast<long long>(s.by_status["assigned"]),
                static_cast<long long>(tasks));
    std::printf("engine_placements_per_second: %.0f (persisted, batches of up to 5000 per transaction)\n",
                static_cast<double>(s.by_status["assigned"]) / sched_secs);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  const auto devices = arg(argc, argv, "--devices", 10000);
  const auto tasks = arg(argc, argv, "--tasks", 1000000);
  const double fill = static_cast<double>(arg(argc, argv, "--fill", 80)) / 100.0;
  const auto db_devices = arg(argc, argv, "--db-devices", 1000);
  const auto db_tasks = arg(argc, argv, "--db-tasks", 20000);
  const auto submit_threads = arg(argc, argv, "--submit-threads", 8);
  if (devices < 1 || tasks < 1 || fill <= 0 || fill > 1 || db_devices < 1 || db_tasks < 0 ||
      submit_threads < 1 || submit_threads > 256) {
    std::fprintf(stderr, "usage: scheduler_bench [--devices N] [--tasks N] [--fill PCT] [--db-devices N] [--db-tasks N]"
                         " [--submit-threads 1..256] [--database PATH|URI]\n");
    return 2;
  }
  print_machine();
  placer_bench(devices, tasks, fill);
  std::string database;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--database") == 0) database = argv[i + 1];
  if (db_tasks > 0) engine_bench(db_devices, db_tasks, submit_threads, database);
  return 0;
}
