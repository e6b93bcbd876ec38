// Routes as data: each API document declares one table of
// {method, path, handler, authentication, minimum role, scope, rate category,
// node rule};
// the router matches, authenticates, authorizes, calls, and turns every
// failure into the owning document's error format through its encoder.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "http/http_server.hpp"
#include "lucidnode/lucidnode.hpp"

namespace lucid::server {

struct ServerEnv;
struct Route;

enum class AuthMode {
  none,             // public
  bearer,           // Authorization: Bearer <JWT>
  bearer_or_query,  // the same, or ?token=<JWT> (EventSource cannot set headers)
  node_key,         // X-API-KEY: <node API key>
  api_key_or_bearer,  // cluster API: X-API-Key: <JWT or admin API key>, or Authorization: Bearer <same>
  scrape,  // Authorization: Bearer <JWT, admin API key, or ServerEnv::metrics_token> (GET /metrics)
};

// Rate-limit categories of the documents; the shared limiter keys buckets by
// (caller, category). kNone: not limited.
// gw_*: api-gateway.md's tiers (public by client address, authenticated by
// user, admin, blockchain queries); see routes/api_gateway_common.hpp.
// registration: node-registration.md's public join and status routes, by client address.
// nn_challenge: network-node.md's challenge issuance, by client address
// (configure_network_limits in routes/routes.hpp).
// nn_login: network-node.md's Ed25519 login, by client address (a login
// without public_key may verify the signature against several keys).
// cluster_admin: never in a table; the router moves admin callers of a
// `cluster` route to it (the admin tier, configure_cluster_limits).
enum class RateCategory { none, nodes, admin, poot, payouts, cluster, gw_public, gw_auth, gw_admin, gw_chain,
                          registration, nn_challenge, nn_login, cluster_admin };
const char* rate_category_name(RateCategory c) noexcept;

// Longest incoming X-Request-ID honoured, in bytes.
inline constexpr std::size_t kMaxRequestIdBytes = 128;

// The id of a request: its X-Request-ID when that is 1..kMaxRequestIdBytes
// visible ASCII characters (0x21..0x7e: no space, no control character, so
// it cannot forge log lines or headers), else a new random UUID. The router
// returns it on every answer and records it in `req.request_id`.
std::string request_id_for(const http::Request& req);

// The client address of a request ("ip" or "ip6", without brackets or port):
// the key of per-address limits.
std::string client_address(const http::Request& req);

// What a node principal (a bearer token with Claims::node_id, from the
// network-node Ed25519 login with a node's own key) may do on a route. Role
// and scope do not apply to it; only this rule does.
enum class NodeAccess {
  deny,  // refused (403 in the surface's format): the default
  self,  // allowed when the route's first placeholder names the caller's own
         // node (its integer id, or its node-management "node_..." id)
  read,  // allowed for any node (network-node reads a peer needs)
};
const char* node_access_name(NodeAccess a) noexcept;

struct Caller {
  std::optional<Claims> claims;  // bearer callers
  std::int64_t node_id = 0;      // node_key callers
  std::string credential;        // the token or key that authenticated the caller ("" for none)
};

struct Context {
  http::Request& req;
  std::vector<std::string> params;  // values of {placeholders}, in order
  Caller caller;
  Cluster& cluster;
  ServerEnv& env;
  std::string request_id;  // the request's id (request_id_for), echoed in errors and X-Request-ID
  const Route* route = nullptr;  // the matched route (its policy, for handlers that authenticate late)
  AuthMode auth = AuthMode::none;  // how the matched route authenticated the caller
};

using RouteHandler = http::Reply (*)(Context&);

struct Route {
  const char* method;
  // "/api/v1/nodes/{id}/quota"; a trailing '/' is significant. A placeholder
  // may be constrained: "{id:int}" (digits) or "{node_id:node_}" (prefix), so
  // two documents can share a path shape and each answer its own id form.
  const char* pattern;
  RouteHandler handler;
  AuthMode auth;
  Role min_role;
  const char* scope;  // required scope, or nullptr
  RateCategory rate;
  NodeAccess node = NodeAccess::deny;  // node principals on a bearer route
  // For a GET route: HEAD is answered like GET without the body (RFC 9110
  // §9.3.2). false for a GET with effects or a long-lived answer (single-use
  // links, key collection, challenges, taking work, SSE, WebSocket): HEAD
  // there is 405. Keep this the last field: rows leave it out.
  bool head_as_get = true;
};

// The route's policy for a verified bearer caller: a node principal
// (Claims::is_node) by the route's node rule only (`params`: the request's
// placeholder values, for NodeAccess::self); anyone else by minimum role and
// scope. Throws Error(permission_denied) to refuse. The router runs it for
// bearer routes; handlers that authenticate themselves (the WebSocket's AUTH
// message) run it with their route.
void authorize(const Route& route, const Claims& claims, const std::vector<std::string>& params, Cluster& cluster);

// Why a request failed, for a surface's encoder.
enum class FailureKind {
  error,               // a lucid::Error from the core or from validation
  malformed_json,      // body is not JSON
  route_not_found,     // no route has this path
  method_not_allowed,  // a route has this path, not this method
  server_protocol,     // rejected by the HTTP layer (status given)
  rate_limited,        // the caller's bucket for this category is empty (429)
  internal,            // a bug: never expected
};

struct Failure {
  FailureKind kind = FailureKind::internal;
  const Error* error = nullptr;  // for kind == error
  std::string message;
  int status = 0;  // for server_protocol
  std::string request_id;
  Timestamp at = std::chrono::system_clock::now();  // the cluster clock's now, where known
  // The request that failed, where known: the encoder tells from it where a
  // field the core names ("page") came from (field_location, error_response.hpp).
  const http::Request* request = nullptr;
};

// For streams that outlive their request (SSE): a check that re-verifies
// the credential the request gave, the way the route's AuthMode did (the
// same Auth::verify_token, principal check included), and answers whether
// the caller still passes. Authorization (role, scope) depends on the
// token's claims only, which cannot change, so it stands while the
// credential verifies. Cheap (in-memory); call it every tick. Thread-safe;
// it holds `ctx.cluster` by reference (the cluster outlives the streams).
std::function<bool()> caller_recheck(const Context& ctx);

// How often an open stream (SSE, WebSocket) re-verifies its caller
// (docs/decisions.md "Issue 12 item 4: revocation"): a revoked token's
// stream ends within this time.
inline constexpr std::chrono::seconds kStreamAuthTick{1};

using ErrorEncoder = http::Response (*)(const Failure&);

// Cross-origin access to a surface (docs/decisions.md "Issue 18: CORS").
// any_origin: every answer of the surface carries
// Access-Control-Allow-Origin: * (never Allow-Credentials: the API's
// credential is a bearer token the page sends itself, not a cookie), and an
// OPTIONS request to a path the surface routes is a preflight: 204 with the
// methods the route table has for that path. none: no CORS headers, and
// OPTIONS is a method like any other (405 where no route has it).
enum class Cors { none, any_origin };
// A Prometheus label value escaped as the text format requires: backslash,
// double quote and newline become \\, \" and \n.
std::string prometheus_label_value(std::string_view v);

class Router {
 public:
  // Names the API document the following add_surface() calls belong to (for
  // routes(); add_all_routes in routes/routes.hpp sets it). `name` must have
  // static storage duration.
  void begin_document(const char* name) { document_ = name; }
  // Registers a document's table. `prefix` decides which encoder answers
  // requests that match no route (the longest matching prefix wins).
  // Every token verification runs the cluster's principal check (revoked
  // keys, blacklisted peers, ended sessions), so no surface re-checks callers.
  void add_surface(const char* prefix, ErrorEncoder encoder, const Route* routes, std::size_t count,
                   Cors cors = Cors::none);

  // A registered route as the router holds it, for documentation (the
  // security model, lucid-server --print-security-model). Read-only.
  struct RouteEntry {
    const Route* route;
    const char* document;   // begin_document()'s name at registration ("" if none)
    const char* prefix;     // add_surface()'s prefix
  };
  // Every route, in registration order (tables in the order added, rows in
  // table order). Not thread-safe against add_surface().
  std::vector<RouteEntry> routes() const;
  // Another path prefix answered by `encoder` when no route matches ("...$"
  // matches that exact path only).
  void add_prefix(const char* prefix, ErrorEncoder encoder, Cors cors = Cors::none);
  http::Reply dispatch(http::Request& req, Cluster& cluster, ServerEnv& env) const;
  // The encoder for errors found before routing (by path prefix).
  ErrorEncoder encoder_for(const std::string& path) const;
  // An error the HTTP layer found (bad framing, too large, ...), in the format
  // of the surface the path belongs to, with a request id.
  http::Response protocol_error(const http::Request& req, int status, std::string_view message) const;

  // Request counts by route and status and latency histograms, in the
  // Prometheus text format (lucid_http_requests_total{method,route,status},
  // lucid_http_request_duration_seconds{method,route}). Thread-safe.
  void write_prometheus(std::string& out) const;
  // Mean handling time of all requests so far, in milliseconds.
  double mean_latency_ms() const;

  // The last kRecentSeconds whole seconds of requests (the second running
  // now excluded), for GET /api/v1/meta/metrics: rate, latency quantiles
  // (estimated from kLatencyBuckets by linear interpolation inside the
  // bucket, as Prometheus' histogram_quantile does; the last bucket's lower
  // bound where the quantile falls beyond it), and the share of 5xx answers.
  // `uptime` shortens the window while the server is younger than it.
  // Thread-safe.
  static constexpr int kRecentSeconds = 60;
  struct Recent {
    double requests_per_second = 0;
    double p50_ms = 0, p95_ms = 0, p99_ms = 0;
    double error_rate = 0;  // 5xx answers / answers, 0..1 (0 without answers)
  };
  Recent recent(std::chrono::steady_clock::duration uptime) const;

  // Histogram bucket upper bounds, in microseconds.
  static constexpr std::array<std::int64_t, 12> kLatencyBuckets = {100,   250,    500,    1000,   2500,   5000,
                                                                   10000, 25000,  50000,  100000, 500000, 2500000};
  struct RouteStats {
    std::array<std::atomic<std::uint64_t>, 500> by_status{};  // index: status - 100
    std::array<std::atomic<std::uint64_t>, kLatencyBuckets.size() + 1> buckets{};  // last: +Inf
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> sum_us{0};
    void record(int status, std::int64_t us);
  };

 private:
  struct Compiled {
    const Route* route;
    ErrorEncoder encoder;
    std::vector<std::string> segments;  // "{}" for a placeholder
    std::shared_ptr<RouteStats> stats = std::make_shared<RouteStats>();
    std::size_t order = 0;        // registration order
    const char* document = "";    // begin_document() at registration
    const char* prefix = "";      // add_surface()'s prefix
    Cors cors = Cors::none;       // add_surface()'s
  };
  http::Reply dispatch_inner(http::Request& req, Cluster& cluster, ServerEnv& env, const Compiled** matched) const;
  struct Surface {
    std::string prefix;
    ErrorEncoder encoder;
    Cors cors = Cors::none;
  };
  // The surface answering `path` when no route matches (longest prefix), or
  // nullptr when none is registered.
  const Surface* surface_for(const std::string& path) const;
  std::vector<Compiled> routes_;  // most specific first
  std::vector<Surface> surfaces_;
  const char* document_ = "";
  std::shared_ptr<RouteStats> unmatched_ = std::make_shared<RouteStats>();  // 404/405

  // One second of answers, in a ring of kRecentSeconds + 1 slots indexed by
  // the steady clock's second: a slot whose `second` is not the current one
  // is reset (under reset_mu) before it counts again.
  struct SecondSlot {
    std::atomic<std::int64_t> second{-1};
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> errors{0};
    std::array<std::atomic<std::uint64_t>, kLatencyBuckets.size() + 1> buckets{};
  };
  void record_recent(int status, std::int64_t us) const;
  mutable std::array<SecondSlot, kRecentSeconds + 1> recent_{};
  mutable std::mutex reset_mu_;
};

}  // namespace lucid::server
