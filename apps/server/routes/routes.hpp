// One table per API document.
#pragma once

#include "router.hpp"

namespace lucid::server {

// Every surface's table, in the order lucid-server registers them, each under
// its document's name (Router::begin_document); with test_clock also
// POST /api/v1/_test/clock/advance. lucid-server and its
// --print-security-model (the README's generated tables) both call this, so
// the documented routes are the served ones. Limits are configured apart
// (configure_*_limits below).
void add_all_routes(Router& router, bool test_clock);

// node-registration.md under /api/v1, plus the agent reporting endpoints it
// implies (README "Agent API").
void add_node_registration_routes(Router& router);
// The per-client-address limit of its public join and status routes
// (RateCategory::registration): requests per minute, also the burst.
void configure_registration_limits(RateLimiter& limiter, std::int64_t per_minute);
// node-management.md under /api/v1 (node_ ids, pools, resources, PoOT, payouts).
void add_node_management_routes(Router& router);
// network-node.md: services, docker and standalone services, workflows and
// their executions (/api/services, /api/workflows, /api/job-executions,
// /api/workflow-executions); errors through nn::network_error.
void add_network_node_workflow_routes(Router& router);
// network-node.md: auth (Ed25519 challenge), node, peers, blacklist, relay,
// WebSocket (/api/ws) and the agent's PUT /api/agent/network.
void add_network_node_routes(Router& router);
// GET /api/auth/challenge per client address: this many per minute (also the
// burst); beyond, 429 {"success": false, "error": "Rate limit exceeded"}.
void configure_network_limits(RateLimiter& limiter, std::int64_t challenges_per_minute);

// api-gateway.md under /api/v1: meta, auth, users (routes/api_gateway.cpp).
// Shared helpers, error encoder and rate tiers: routes/api_gateway_common.hpp.
void add_api_gateway_routes(Router& router);
// api-gateway.md: sessions and chunk upload, manifests, trust policies, chain,
// wallets (routes/api_gateway_data.cpp).
void add_api_gateway_data_routes(Router& router);
// The chunk-upload bandwidth (bytes per second per user); 0: unlimited.
void configure_chunk_bandwidth(RateLimiter& limiter, std::int64_t bytes_per_second);
// The operator's wallet key: 64 hex characters from `path` (which must be
// 0600) or, when path is empty, from LUCID_WALLET_KEY; when neither is set,
// from `default_path`, created (random, 0600) on first start like the
// signing key. Throws lucid::Error(invalid_argument) for a malformed key or
// a file others can read, Error(storage) when the default cannot be
// created or read.
std::string load_wallet_key(const std::string& path, const std::string& default_path);
// GET /metrics' scrape token from the 0600 file `path` (its first line,
// 32..256 visible ASCII characters). Throws lucid::Error(invalid_argument).
std::string load_metrics_token(const std::string& path);

// Requests per minute per caller, by the node-management document's categories.
struct RateLimits {
  std::int64_t nodes_per_minute = 1000;
  std::int64_t admin_per_minute = 10000;
  std::int64_t poot_per_minute = 100;
  std::int64_t payouts_per_minute = 50;
};
void configure_node_management_limits(RateLimiter& limiter, const RateLimits& limits);

// cluster-devices-tasks.md: /health, /api/v1/cluster, devices, tasks, config;
// plus the agent protocol under /api/v1/agent/ (docs/agent-protocol.md).
void add_cluster_routes(Router& router);
void add_cluster_agent_routes(Router& router);  // called by add_cluster_routes

// The cluster API's per-client limits (the document's defaults), and the
// admin tier: admin and super_admin tokens and admin API keys, which an
// operator's scripts use (the document's 60/min burst 10 refuses them after
// ten quick calls).
struct ClusterApiLimits {
  std::int64_t per_minute = 60;
  std::int64_t per_hour = 1000;
  std::int64_t burst = 10;
  std::int64_t admin_per_minute = 1200;
  std::int64_t admin_per_hour = 36000;
  std::int64_t admin_burst = 200;
};
void configure_cluster_limits(RateLimiter& limiter, const ClusterApiLimits& limits);

// The unified stats stream's event (all approved nodes), for SnapshotCache.
std::string encode_all_nodes_event(Cluster& cluster);
// Server operations outside the documents: GET /metrics (Prometheus text;
// admin token, admin API key or the scrape token). routes/operations.cpp.
void add_operations_routes(Router& router);

// POST /api/v1/_test/clock/advance, mounted only with --test-clock.
void add_test_clock_routes(Router& router);

}  // namespace lucid::server
