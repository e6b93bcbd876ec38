// Pool membership rules, usable inside another capability's transaction.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/cluster_core.hpp"

namespace lucid::detail {

// Moves node `node_id` into the pool (out of any other), then checks the
// pool's max_nodes and resource limits; throws Error(resource_exhausted,
// resource_limit) or not_found (pool_not_found). Call inside a write; the
// caller's transaction rolls everything back on a throw.
void pool_add_node(ClusterCore& core, Conn& c, std::string_view pool_uid, std::int64_t node_id, std::int64_t priority);
// Checks the pool's members against its limits (after a hardware change).
void pool_check_limits(Conn& c, std::string_view pool_uid);

}  // namespace lucid::detail
