// The cluster clock's time as the database stores it. Internal.
#pragma once

#include <string>

#include "core/cluster_core.hpp"

namespace lucid::detail {

// Now, by the cluster's clock, as RFC 3339 text with fraction. Thread-safe.
inline std::string now_text(const ClusterCore& core) { return format_rfc3339(core.clock->now(), true); }

}  // namespace lucid::detail
