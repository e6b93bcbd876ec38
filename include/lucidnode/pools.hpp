// Pools: named groups of nodes with a size bound and resource limits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lucidnode/clock.hpp"
#include "lucidnode/export.hpp"

namespace lucid {

class Nodes;
namespace detail { class ClusterCore; }
LUCID_PUBLIC_BEGIN

// Upper bounds on the summed hardware of a pool's members; absent = unbounded.
struct ResourceLimits {
  std::optional<std::int64_t> max_cpu_cores;
  std::optional<double> max_memory_gb;
  std::optional<double> max_storage_gb;
};

struct Pool {
  std::string uid;  // "pool_" + 16 hex
  std::string name;
  std::string description;
  std::int64_t node_count = 0;
  std::optional<std::int64_t> max_nodes;
  ResourceLimits limits;
  Timestamp created_at;
  Timestamp updated_at;
};

struct PoolCreate {
  std::string name;         // required, 1..100 chars, unique
  std::string description;  // <= 500 chars
  std::optional<std::int64_t> max_nodes;  // >= 1
  ResourceLimits limits;
};

// Thread-safe; each change is one transaction. Failures throw lucid::Error.
class Pools {
 public:
  // Creates an empty pool. Errors: invalid_argument (field named),
  // conflict (pool_exists: the name is taken).
  Pool create(const PoolCreate& req);
  // Pools by creation, 1-based page of `limit`; `total` (may be null)
  // receives the count. Errors: invalid_argument (page < 1, limit not 1..100).
  std::vector<Pool> list(std::int64_t page, std::int64_t limit, std::int64_t* total);
  // One pool. Errors: not_found (pool_not_found).
  Pool get(std::string_view uid);
  // Puts a node in the pool with a priority 1..100, moving it out of any other
  // pool in the same transaction. Errors: not_found (pool_not_found /
  // node_not_found), resource_exhausted (resource_limit: max_nodes or a
  // resource limit would be exceeded; nothing changes), invalid_argument.
  Pool add_node(std::string_view pool_uid, std::string_view node_uid, std::int64_t priority);

  // Resolves node uids through `nodes`, which must outlive it.
  Pools(detail::ClusterCore& core, Nodes& nodes) : core_(core), nodes_(nodes) {}

 private:
  detail::ClusterCore& core_;
  Nodes& nodes_;
};

LUCID_PUBLIC_END
}  // namespace lucid
