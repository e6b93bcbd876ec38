// Inside of lucid::Workflows: shared by the CRUD and executor files. Internal.
#pragma once

#include <sodium.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <list>
#include <thread>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "core/cluster_core.hpp"
#include "lucidnode/workflows.hpp"
#include "nodes/node_rows.hpp"

namespace lucid {

namespace wf {
struct Run;  // one execution instance in progress (executor.cpp)

// JSON text helpers (RapidJSON inside the library).
std::string env_to_json(const std::vector<std::pair<std::string, std::string>>& v);
std::vector<std::pair<std::string, std::string>> env_from_json(const std::string& s);
// The "timeout" member of a node's config (seconds), if an integer 1..86400.
std::optional<std::int64_t> config_timeout(const std::string& config_json);

// Publishes a WebSocket event (EventKind::network) on the core's bus.
void publish(detail::ClusterCore& core, const char* type, const std::string& payload);
}  // namespace wf

// Threads for blocking Docker work (builds, container jobs): joined when
// the Workflows object goes, so none outlives the core it posts to.
class ThreadSet {
 public:
  ~ThreadSet() { join_all(); }
  void spawn(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    reap();
    auto done = std::make_shared<std::atomic<bool>>(false);
    threads_.push_back({std::thread([fn = std::move(fn), done] {
                          try {
                            fn();
                          } catch (...) {
                          }
                          done->store(true);
                        }),
                        done});
  }
  void join_all() {
    std::list<Entry> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      all.swap(threads_);
    }
    for (auto& e : all)
      if (e.t.joinable()) e.t.join();
  }

 private:
  struct Entry {
    std::thread t;
    std::shared_ptr<std::atomic<bool>> done;
  };
  void reap() {
    for (auto it = threads_.begin(); it != threads_.end();) {
      if (it->done->load()) {
        it->t.join();
        it = threads_.erase(it);
      } else {
        ++it;
      }
    }
  }
  std::mutex mu_;
  std::list<Entry> threads_;
};

struct LUCID_HIDDEN Workflows::Impl {
  std::filesystem::path data_dir;
  // Workflows::set_local_peer_rule; nullptr: only "" is local.
  std::function<bool(std::string_view)> is_local_peer;
  std::string docker_socket;   // resolved at open (docker_socket_path)
  std::string docker_problem;  // why there is none (DOCKER_HOST not unix://)

  std::mutex mu;  // guards runs, stopping
  std::map<std::int64_t, std::shared_ptr<wf::Run>> runs;
  bool stopping = false;
  std::atomic<int> docker_ops{0};      // image pulls/builds in progress (bounded)
  ThreadSet threads;                   // last: joined before the rest goes
};

}  // namespace lucid
