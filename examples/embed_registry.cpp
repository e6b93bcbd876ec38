// Embedding lucidnode: open a cluster on a database file, run a node through
// join -> approve -> collect key -> report stats, and print it.
//
//   embed_registry [DB_PATH]    (default: a fresh file in the temp directory)
#include <lucidnode/lucidnode.hpp>
#include <unistd.h>  // getpid

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("lucid-embed-" + std::to_string(::getpid()));
  const std::string db = argc > 1 ? argv[1] : (fs::create_directories(dir), (dir / "fleet.db").string());
  try {
    lucid::Options options;
    options.database_path = db;
    lucid::Cluster cluster(options);
    cluster.start();

    lucid::Nodes& nodes = cluster.nodes();
    const auto join = nodes.request_join({"worker-1.example.com", "192.0.2.10", "Debian 12", ""});
    std::cout << "join request " << join.request_id << ", code " << join.registration_code << "\n";

    if (!join.already_active) {
      nodes.approve_by_code(join.registration_code);
      // The key goes to the holder of the join secret the join returned.
      const auto poll = nodes.poll_by_code(join.registration_code, join.join_secret);
      std::cout << "approved; API key issued once: " << (poll.api_key ? "yes" : "no") << "\n";
      lucid::StatsSample s;
      s.cpu_usage = 12.5;
      s.disk_usage = 40;
      s.memory_percent = 61.2;
      nodes.report_stats(nodes.authenticate_key(*poll.api_key), s);
    }

    for (const auto& n : nodes.list({0, 100})) {
      std::cout << n.id << "  " << n.hostname << "  " << lucid::node_status_name(n.status) << "  "
                << lucid::liveness_name(n.liveness);
      if (!n.recent_stats.empty()) std::cout << "  cpu " << n.recent_stats[0].cpu_usage << "%";
      std::cout << "\n";
    }
    cluster.stop();
    std::cout << "lucidnode " << lucid::version() << ", database " << db << "\n";
    if (argc <= 1) fs::remove_all(dir);
    return 0;
  } catch (const lucid::Error& e) {
    std::cerr << "error (" << lucid::errc_name(e.code()) << "): " << e.message() << "\n";
    return 1;
  }
}
