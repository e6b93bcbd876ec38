// One table per API document.
#pragma once

#include "router.hpp"

namespace lucid::server {

// node-registration.md under /api/v1, plus the agent reporting endpoints it
// implies (README "Agent API").
void add_node_registration_routes(Router& router);
// node-management.md under /api/v1 (node_ ids, pools, resources, PoOT, payouts).
void add_node_management_routes(Router& router);
// network-node.md: services, docker and standalone services, workflows and
// their executions (/api/services, /api/workflows, /api/job-executions,
// /api/workflow-executions); errors through nn::network_error.
void add_network_node_workflow_routes(Router& router);
// network-node.md: auth (Ed25519 challenge), node, peers, blacklist, relay,
// WebSocket (/api/ws) and the agent's PUT /api/agent/network.
void add_network_node_routes(Router& router);

// Requests per minute per caller, by the node-management document's categories.
struct RateLimits {
  std::int64_t nodes_per_minute = 1000;
  std::int64_t admin_per_minute = 10000;
  std::int64_t poot_per_minute = 100;
  std::int64_t payouts_per_minute = 50;
};
void configure_node_management_limits(RateLimiter& limiter, const RateLimits& limits);

// The unified stats stream's event (all approved nodes), for SnapshotCache.
std::string encode_all_nodes_event(Cluster& cluster);
// POST /api/v1/_test/clock/advance, mounted only with --test-clock.
void add_test_clock_routes(Router& router);

}  // namespace lucid::server
