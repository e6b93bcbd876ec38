// Inside of lucid::Workflows: shared by the CRUD and executor files. Internal.
#pragma once

#include <sodium.h>

#include <filesystem>
#include <functional>
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

struct LUCID_HIDDEN Workflows::Impl {
  std::filesystem::path data_dir;
  // Workflows::set_local_peer_rule; nullptr: only "" is local.
  std::function<bool(std::string_view)> is_local_peer;

  std::mutex mu;  // guards runs, stopping
  std::map<std::int64_t, std::shared_ptr<wf::Run>> runs;
  bool stopping = false;
};

}  // namespace lucid
