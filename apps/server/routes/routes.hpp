// One table per API document.
#pragma once

#include "router.hpp"

namespace lucid::server {

// node-registration.md under /api/v1, plus the agent reporting endpoints it
// implies (README "Agent API").
void add_node_registration_routes(Router& router);
// The unified stats stream's event (all approved nodes), for SnapshotCache.
std::string encode_all_nodes_event(Cluster& cluster);
// POST /api/v1/_test/clock/advance, mounted only with --test-clock.
void add_test_clock_routes(Router& router);

}  // namespace lucid::server
