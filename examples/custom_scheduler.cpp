// Plugging an extra ranking stage into the task scheduler.
//
// Placement runs feasibility (the task's requirements), then ranking, then
// selection. The built-in ranking spreads load. Here a RankingStage placed
// before it prefers devices tagged "ssd": tasks go there while they have free
// capacity, and only then to the others. The example registers three devices,
// queues four echo tasks, runs one scheduling pass and prints where each went.
//
//   custom_scheduler [DB_PATH]    (default: a fresh file in the temp directory)
#include <lucidnode/lucidnode.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <unistd.h>

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("lucid-sched-" + std::to_string(::getpid()));
  const std::string db = argc > 1 ? argv[1] : (fs::create_directories(dir), (dir / "fleet.db").string());
  try {
    lucid::Options options;
    options.database_path = db;
    lucid::Cluster cluster(options);  // not started: we run the scheduling pass ourselves
    lucid::Nodes& nodes = cluster.nodes();
    lucid::Tasks& tasks = cluster.tasks();

    // Three approved nodes report their devices: "plain" can run 4 tasks at
    // once, "ssd-a" 2 and "ssd-b" 1.
    struct Spec {
      const char* host;
      std::vector<std::string> tags;
      std::int64_t max_concurrent;
    };
    const Spec specs[] = {{"plain.example", {}, 4}, {"ssd-a.example", {"ssd"}, 2}, {"ssd-b.example", {"ssd"}, 1}};
    std::map<std::string, std::string> host_of;  // device id -> hostname
    for (const auto& s : specs) {
      const auto join = nodes.request_join({s.host, "", "custom_scheduler example", ""});
      const auto node = join.already_active ? nodes.get(join.request_id, 0) : nodes.approve_by_code(join.registration_code);
      lucid::DeviceReport r;
      r.platform = "linux";
      r.tags = s.tags;
      r.capabilities.cpu_count = 4;
      r.capabilities.memory_total_gb = 8;
      r.capabilities.storage_total_gb = 100;
      r.allowed_task_types = {"echo"};
      r.max_concurrent = s.max_concurrent;
      r.agent_version = "example";
      const auto d = tasks.report_device(node.id, r);
      host_of[d.device_id] = d.hostname;
    }

    // The extra stage: penalty 0 for an "ssd" device, 1 for the rest. Equal
    // penalties keep the built-in order (least loaded first).
    tasks.set_ranking_stage([](std::string_view /*task_type*/, const lucid::RankCandidate& d) -> std::int64_t {
      return std::binary_search(d.tags.begin(), d.tags.end(), std::string("ssd")) ? 0 : 1;
    });

    std::vector<std::string> ids;
    for (int i = 1; i <= 4; ++i) {
      lucid::TaskSubmit t;
      t.task_type = "echo";
      t.payload_json = "{\"message\":\"task " + std::to_string(i) + "\"}";
      ids.push_back(tasks.submit(t).task_id);
    }
    tasks.schedule();

    int on_ssd = 0;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const auto t = tasks.get(ids[i]);
      const std::string host = t.device_id.empty() ? "(not placed)" : host_of[t.device_id];
      std::cout << "task " << i + 1 << " -> " << host << " (" << lucid::task_status_name(t.status) << ")\n";
      if (host.rfind("ssd-", 0) == 0) ++on_ssd;
    }
    // ssd devices have 3 slots: the first three tasks fill them, the fourth
    // goes to the plain device.
    std::cout << on_ssd << " of " << ids.size() << " tasks on ssd devices\n";
    if (argc <= 1) fs::remove_all(dir);
    return on_ssd == 3 ? 0 : 1;
  } catch (const lucid::Error& e) {
    std::cerr << "error (" << lucid::errc_name(e.code()) << "): " << e.message() << "\n";
    return 1;
  }
}
