// Shared by the network-node document's route files (network-node.md, paths
// under /api/... without /v1): the one error encoder of this surface, the
// caller check every route of it runs, and small reply helpers.
//
// Agreement between H6a (auth, node, peers, blacklist, relay, WebSocket; owns
// this file and network_node.cpp) and H6b (services, docker, standalone,
// workflows in their own routes file):
//  - Register a table with
//      router.add_surface("/api/services", nn::network_error, kRoutes, n);
//    (add_network_node_routes registers /api/auth/, /api/node/, /api/peers,
//    /api/blacklist, /api/relay/, /api/agent/; prefixes must stay longer than
//    "/api/v1/": the shortest prefix answers unrouted paths). nn::network_error maps lucid::Error to the
//    document's {"error": "..."} body: invalid_argument 400, unauthenticated
//    401 ("Unauthorized"), permission_denied 403, not_found 404, conflict 409,
//    resource_exhausted 429, unavailable 503, storage/internal 500; malformed
//    JSON 400 "Invalid request body"; wrong method 405; no route 404.
//    Routes under /api/auth/ use {"success": false, "error": "..."} instead.
//  - Routes use AuthMode::bearer (our admin JWTs and the JWTs of the Ed25519
//    challenge login both verify); token verification (the cluster's principal
//    check) refuses a challenge-login token whose key was removed or whose peer is blacklisted.
//    Reading needs Role::viewer (nodes: NodeAccess::read); changing state needs the role written in each
//    route table (docs/decisions.md "Network node API").
//  - WebSocket events: publish on the core EventBus
//      cluster.events().publish(Event{EventKind::network, 0, "WORKFLOW_UPDATED", R"({"workflow_id":7})"});
//    `type` is the WebSocket message type sent verbatim, `payload` a JSON
//    object text ("" = {}). Types: SERVICE_UPDATED, WORKFLOW_UPDATED,
//    PEER_UPDATED, BLACKLIST_UPDATED, RELAY_CANDIDATES,
//    PEER_CAPABILITIES_UPDATED, DOCKER_OPERATION_{START,PROGRESS,COMPLETE,ERROR},
//    and for execution progress EXECUTION_UPDATED with payload
//    {"workflow_id", "execution_id", "status", "job_id"?, "job_status"?}.
//    The WebSocket layer forwards every EventKind::network event to every
//    authenticated client; publishing never blocks (bounded queues).
//  - The server's data directory is Options::data_dir (cluster.options().data_dir,
//    default "<database directory>/data"); WebSocket uploads land in
//    <data_dir>/uploads/.
#pragma once

#include <string>
#include <string_view>

#include "json.hpp"
#include "router.hpp"

namespace lucid::server::nn {

// Every surface of this document answers any origin (its notes: "CORS is
// enabled for all origins"); register each table and prefix with it.
inline constexpr Cors kCors = Cors::any_origin;

// The document's error body for a failed request: {"error": "..."}.
http::Response network_error(const Failure& f);
// The same for /api/auth/*: {"success": false, "error": "..."}.
http::Response network_auth_error(const Failure& f);

// GET /api/node/status's object ({"peer_id", ..., "stats": {...}}), also
// the UI dialect's node.status payload on /api/ws. `active_connections`: the
// open WebSocket clients.
std::string node_status_json(Cluster& cluster, std::int64_t active_connections);

// {"success": true, "message": "..."} with `status`.
http::Reply success_reply(int status, std::string_view message);
// {"message": "..."} with `status`.
http::Reply message_reply(int status, std::string_view message);

}  // namespace lucid::server::nn
