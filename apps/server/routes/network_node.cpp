// network-node.md under /api/ (no /v1): authentication (Ed25519 challenge
// login), node, peers, blacklist, relay, WebSocket, and the agent's network
// report (README "Network node API"). Services and workflows are in
// network_node_workflows.cpp.
//
// Errors: {"error": "..."}; on /api/auth/* {"success": false, "error": "..."}.
#include <filesystem>

#include "json.hpp"
#include "routes/network_node_common.hpp"
#include "routes/routes.hpp"
#include "server_env.hpp"
#include "ws/ws_hub.hpp"

namespace lucid::server {

namespace nn {

namespace {

struct Status {
  int status;
  std::string message;
};

Status status_for(const Failure& f) {
  switch (f.kind) {
    case FailureKind::error: {
      const Error& e = *f.error;
      switch (e.code()) {
        case Errc::invalid_argument:
          if (e.reason() == Reason::unprocessable) return {422, e.message()};
          return {400, e.field() == "body" ? "Invalid request body" : e.field().empty() || e.message() != "field required"
                                                                          ? e.message()
                                                                          : "Missing required field: " + e.field()};
        case Errc::not_found: return {404, e.message()};
        case Errc::conflict: return {409, e.message()};
        case Errc::unauthenticated: return {401, e.message()};
        case Errc::permission_denied: return {403, e.message()};
        case Errc::resource_exhausted: return {429, e.message()};
        case Errc::unavailable: return {e.reason() == Reason::upstream_failed ? 502 : 503, e.message()};
        case Errc::storage: return {500, "Internal server error"};
        case Errc::internal: return {500, e.message()};
      }
      return {500, "Internal server error"};
    }
    case FailureKind::malformed_json: return {400, "Invalid request body"};
    case FailureKind::route_not_found: return {404, "Not found"};
    case FailureKind::method_not_allowed: return {405, "Method not allowed"};
    case FailureKind::server_protocol: return {f.status, f.message};
    case FailureKind::rate_limited: return {429, "Rate limit exceeded"};
    case FailureKind::internal: return {500, "Internal server error"};
  }
  return {500, "Internal server error"};
}

// The document's 401 body says "Unauthorized" for a missing or bad token; the
// reason goes to a second field so clients still learn why.
http::Response encode(const Failure& f, bool auth_surface) {
  Status s = status_for(f);
  std::string detail;
  if (s.status == 401 && !auth_surface) {
    detail = s.message;
    s.message = "Unauthorized";
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  if (auth_surface) {
    w.Key("success");
    w.Bool(false);
  }
  w.Key("error");
  write_string(w, s.message);
  if (!detail.empty() && detail != s.message) {
    w.Key("detail");
    write_string(w, detail);
  }
  w.EndObject();
  http::Response r;
  r.status = s.status;
  r.body.assign(buf.GetString(), buf.GetSize());
  return r;
}

}  // namespace

http::Response network_error(const Failure& f) { return encode(f, false); }
http::Response network_auth_error(const Failure& f) { return encode(f, true); }

http::Reply success_reply(int status, std::string_view message) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("success"); w.Bool(true);
  w.Key("message"); write_string(w, message);
  w.EndObject();
  return json_reply(status, buf);
}

std::string node_status_json(Cluster& cluster, std::int64_t active) {
  const auto s = cluster.network().status();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("peer_id"); write_string(w, s.peer_id);
  w.Key("dht_node_id"); write_string(w, s.dht_node_id);
  w.Key("uptime_seconds"); w.Int64(s.uptime_seconds);
  w.Key("known_peers"); w.Int64(s.known_peers);
  w.Key("stats");
  w.StartObject();
  w.Key("peer_id"); write_string(w, s.peer_id);
  w.Key("dht_node_id"); write_string(w, s.dht_node_id);
  w.Key("relay_mode"); w.Bool(s.relay_mode);
  w.Key("nat_mode"); w.Bool(s.nat_mode);
  w.Key("connected_relay"); write_string(w, s.connected_relay);
  w.Key("active_connections"); w.Int64(active);
  // What the UI's dashboard reads besides the document's fields
  // (docs/decisions.md "Issue 18"): a NAT-mode node is "private", any other
  // (relay or plain) "public", as the original node says.
  w.Key("node_type"); w.String(s.nat_mode && !s.relay_mode ? "private" : "public");
  w.Key("running"); w.Bool(true);
  w.Key("uptime_seconds"); w.Int64(s.uptime_seconds);
  w.Key("known_peers"); w.Int64(s.known_peers);
  if (s.relay_mode) {
    w.Key("active_sessions"); w.Int64(static_cast<std::int64_t>(cluster.network().relay_sessions().size()));
  }
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

http::Reply message_reply(int status, std::string_view message) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("message"); write_string(w, message);
  w.EndObject();
  return json_reply(status, buf);
}

}  // namespace nn

namespace {

std::int64_t unix_seconds(Timestamp t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// The route's peer id path parameter or ?peer_id=, bounded.
std::string peer_id_param(const std::string& v) {
  if (v.empty()) throw Error(Errc::invalid_argument, "Missing peer ID", "peer_id");
  if (v.size() > 128) throw Error(Errc::invalid_argument, "peer_id must be at most 128 characters", "peer_id");
  return v;
}

// ---- authentication ----

http::Reply get_challenge(Context& ctx) {
  // Per client address: at most --max-challenges-per-client outstanding
  // (the route's nn_challenge category bounds how fast they are issued).
  const auto c = ctx.cluster.network().issue_challenge(client_address(ctx.req));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("challenge"); write_string(w, c.challenge);
  w.Key("expires_in"); w.Int64(c.expires_in.count());
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply post_ed25519(Context& ctx) {
  std::string challenge, signature, public_key;
  try {
    JsonBody body(ctx.req);
    challenge = body.required_string("challenge", 256);
    signature = body.required_string("signature", 256);
    public_key = body.optional_string("public_key", 256).value_or("");
  } catch (const MalformedJson&) {
    throw Error(Errc::invalid_argument, "Invalid request body", "body");
  } catch (const Error& e) {
    // A challenge that is present is spent even when the rest is unusable.
    try {
      JsonBody again(ctx.req);
      if (auto c = again.optional_string("challenge", 256)) ctx.cluster.network().login(*c, "", "");
    } catch (...) {
    }
    throw Error(Errc::invalid_argument, "Invalid request body: " + e.message(), "body");
  }
  const auto r = ctx.cluster.network().login(challenge, signature, public_key);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("success"); w.Bool(true);
  w.Key("token"); write_string(w, r.token);
  w.Key("peer_id"); write_string(w, r.peer_id);
  w.Key("role"); w.String(r.node_id ? "node" : role_name(r.role));
  w.Key("expires_in"); w.Int64(24 * 3600);
  w.EndObject();
  return json_reply(200, buf);
}

// ---- node ----

// GET /api/health: the UI's reachability probe (public; says nothing about
// the node beyond that it answers).
http::Reply health(Context& ctx) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("status"); w.String("ok");
  w.Key("timestamp"); write_time(w, ctx.cluster.clock().now());
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply node_status(Context& ctx) {
  const auto active = ctx.env.ws_hub ? static_cast<std::int64_t>(ctx.env.ws_hub->connection_count()) : 0;
  http::Reply r;
  r.response.body = nn::node_status_json(ctx.cluster, active);
  return r;
}

http::Reply node_capabilities(Context& ctx) {
  const auto c = probe_system(ctx.cluster.options().data_dir, ctx.cluster.workflows().docker_socket());
  const std::string system = capabilities_json(c);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("docker_available"); w.Bool(c.has_docker);
  w.Key("docker_version"); write_string(w, c.docker_version);
  w.Key("system"); w.RawValue(system.data(), system.size(), rapidjson::kObjectType);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply node_restart(Context& ctx) {
  if (ctx.env.ws_hub) ctx.env.ws_hub->close_all();
  ctx.cluster.restart();
  return nn::success_reply(200, "Node restart initiated successfully");
}

// ---- peers ----

http::Reply list_peers(Context& ctx) {
  const auto peers = ctx.cluster.network().peers();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("peers");
  w.StartArray();
  for (const auto& p : peers) {
    w.StartObject();
    w.Key("peer_id"); write_string(w, p.peer_id);
    w.Key("dht_node_id"); write_string(w, p.dht_node_id);
    w.Key("is_relay"); w.Bool(p.is_relay);
    w.Key("is_store"); w.Bool(p.is_store);
    w.Key("files_count"); w.Int64(p.files_count);
    w.Key("apps_count"); w.Int64(p.apps_count);
    w.Key("last_seen"); write_time(w, p.last_seen);
    w.Key("topic"); w.String("lucidnode-fleet");
    w.Key("source"); w.String("fleet");
    w.Key("is_behind_nat"); w.Bool(p.is_behind_nat);
    w.Key("nat_type"); write_string(w, p.nat_type);
    w.Key("using_relay"); w.Bool(!p.connected_relay_id.empty());
    w.Key("connected_relay_id"); write_string(w, p.connected_relay_id);
    w.EndObject();
  }
  w.EndArray();
  w.Key("total"); w.Int64(static_cast<std::int64_t>(peers.size()));
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply peer_capabilities(Context& ctx) {
  const std::string id = peer_id_param(ctx.params.at(0));
  const auto p = ctx.cluster.network().peer_capabilities(id);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("peer_id"); write_string(w, p.peer_id);
  if (p.capabilities_json.empty()) {
    w.Key("error"); w.String("No system capabilities found in peer metadata");
    w.EndObject();
    http::Reply r;
    r.response.status = 404;
    r.response.body.assign(buf.GetString(), buf.GetSize());
    return r;
  }
  w.Key("capabilities"); w.RawValue(p.capabilities_json.data(), p.capabilities_json.size(), rapidjson::kObjectType);
  w.EndObject();
  return json_reply(200, buf);
}

// PUT /api/agent/network (node API key): what the node's agent measured.
http::Reply agent_report(Context& ctx) {
  JsonBody body(ctx.req);
  AgentNetworkReport r;
  auto flag = [&](const char* k) {
    const auto* v = body.member(k);
    if (!v) return false;
    if (!v->IsBool()) throw Error(Errc::invalid_argument, std::string(k) + " must be a boolean", k);
    return v->GetBool();
  };
  r.is_relay = flag("is_relay");
  r.is_store = flag("is_store");
  r.is_behind_nat = flag("is_behind_nat");
  r.endpoint = body.optional_string("endpoint", 255).value_or("");
  r.nat_type = body.optional_string("nat_type", 32).value_or("");
  r.connected_relay_id = body.optional_string("connected_relay_id", 128).value_or("");
  r.latency_ms = body.optional_int("latency_ms");
  r.pricing_per_gb = body.optional_number("pricing_per_gb").value_or(0);
  r.capacity = body.optional_int("capacity").value_or(0);
  r.relay_ingress_bytes = body.optional_int("relay_ingress_bytes").value_or(0);
  r.relay_egress_bytes = body.optional_int("relay_egress_bytes").value_or(0);
  if (const auto* caps = body.member("capabilities")) {
    if (!caps->IsObject()) throw Error(Errc::invalid_argument, "capabilities must be an object", "capabilities");
    rapidjson::StringBuffer cb;
    JsonWriter cw(cb);
    caps->Accept(cw);
    r.capabilities_json.assign(cb.GetString(), cb.GetSize());
  }
  ctx.cluster.network().report(ctx.caller.node_id, r);
  return nn::success_reply(200, "Report stored");
}

// ---- blacklist ----

http::Reply get_blacklist(Context& ctx) {
  const auto list = ctx.cluster.network().blacklist();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("blacklist");
  w.StartArray();
  for (const auto& e : list) {
    w.StartObject();
    w.Key("peer_id"); write_string(w, e.peer_id);
    w.Key("reason"); write_string(w, e.reason);
    w.Key("blacklisted_at"); write_time(w, e.blacklisted_at);
    w.EndObject();
  }
  w.EndArray();
  w.Key("peer_ids");
  w.StartArray();
  for (const auto& e : list) write_string(w, e.peer_id);
  w.EndArray();
  w.Key("total"); w.Int64(static_cast<std::int64_t>(list.size()));
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply add_blacklist(Context& ctx) {
  JsonBody body(ctx.req);
  const auto peer = body.optional_string("peer_id", 128);
  if (!peer || peer->empty()) throw Error(Errc::invalid_argument, "Missing peer_id", "peer_id");
  const auto e = ctx.cluster.network().add_to_blacklist(*peer, body.optional_string("reason", 512).value_or(""));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("peer_id"); write_string(w, e.peer_id);
  w.Key("reason"); write_string(w, e.reason);
  w.Key("message"); w.String("Peer added to blacklist successfully");
  w.EndObject();
  return json_reply(201, buf);
}

http::Reply remove_blacklist(Context& ctx) {
  ctx.cluster.network().remove_from_blacklist(peer_id_param(ctx.params.at(0)));
  http::Reply r;
  r.response.status = 204;
  return r;
}

http::Reply check_blacklist(Context& ctx) {
  const std::string id = peer_id_param(ctx.req.query_param("peer_id").value_or(""));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("peer_id"); write_string(w, id);
  w.Key("is_blacklisted"); w.Bool(ctx.cluster.network().is_blacklisted(id));
  w.EndObject();
  return json_reply(200, buf);
}

// ---- relay ----

http::Reply relay_sessions(Context& ctx) {
  const auto sessions = ctx.cluster.network().relay_sessions();
  const auto now = unix_seconds(ctx.cluster.clock().now());
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartArray();
  for (const auto& s : sessions) {
    w.StartObject();
    w.Key("session_id"); write_string(w, s.session_id);
    w.Key("client_node_id"); write_string(w, s.client_node_id);
    w.Key("client_peer_id"); write_string(w, s.client_peer_id);
    w.Key("session_type"); w.String("FLEET");
    w.Key("start_time"); w.Int64(s.start_time);
    w.Key("duration_seconds"); w.Int64(std::max<std::int64_t>(0, now - s.start_time));
    w.Key("ingress_bytes"); w.Int64(s.ingress_bytes);
    w.Key("egress_bytes"); w.Int64(s.egress_bytes);
    w.Key("total_bytes"); w.Int64(s.ingress_bytes + s.egress_bytes);
    w.Key("earnings"); w.Double(s.earnings);
    w.Key("last_keepalive"); w.Int64(s.last_keepalive);
    w.EndObject();
  }
  w.EndArray();
  return json_reply(200, buf);
}

http::Reply disconnect_session(Context& ctx) {
  ctx.cluster.network().disconnect_session(ctx.params.at(0));
  return nn::success_reply(200, "Session disconnected successfully");
}

http::Reply blacklist_session(Context& ctx) {
  ctx.cluster.network().blacklist_session(ctx.params.at(0));
  return nn::success_reply(200, "Peer blacklisted and disconnected successfully");
}

http::Reply relay_candidates(Context& ctx) {
  const auto list = ctx.cluster.network().relay_candidates();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartArray();
  for (const auto& c : list) {
    w.StartObject();
    w.Key("node_id"); write_string(w, c.node_id);
    w.Key("peer_id"); write_string(w, c.peer_id);
    w.Key("endpoint"); write_string(w, c.endpoint);
    w.Key("latency");
    if (c.latency_ms) write_string(w, std::to_string(*c.latency_ms) + "ms"); else w.String("");
    w.Key("latency_ms"); w.Int64(c.latency_ms.value_or(0));
    w.Key("reputation_score"); w.Double(c.reputation_score);
    w.Key("pricing_per_gb"); w.Double(c.pricing_per_gb);
    w.Key("capacity"); w.Int64(c.capacity);
    w.Key("last_seen"); w.Int64(c.last_seen);
    w.Key("is_connected"); w.Bool(c.is_connected);
    w.Key("is_preferred"); w.Bool(c.is_preferred);
    w.Key("is_available"); w.Bool(c.is_available);
    w.Key("unavailable_msg"); write_string(w, c.unavailable_msg);
    w.EndObject();
  }
  w.EndArray();
  return json_reply(200, buf);
}

std::string relay_peer_body(Context& ctx) {
  JsonBody body(ctx.req);
  const auto peer = body.optional_string("peer_id", 128);
  if (!peer || peer->empty()) throw Error(Errc::invalid_argument, "Missing peer_id", "peer_id");
  return *peer;
}

http::Reply relay_connect(Context& ctx) {
  // The mode is checked before the body, as the document lists 403 for it.
  if (!ctx.cluster.options().network.nat_mode) ctx.cluster.network().connect_relay("");
  ctx.cluster.network().connect_relay(relay_peer_body(ctx));
}

http::Reply relay_disconnect(Context& ctx) { ctx.cluster.network().disconnect_relay(); }

http::Reply relay_prefer(Context& ctx) {
  if (!ctx.cluster.options().network.nat_mode) ctx.cluster.network().prefer_relay("");
  ctx.cluster.network().prefer_relay(relay_peer_body(ctx));
  return nn::success_reply(200, "Preferred relay set successfully");
}

// ---- WebSocket ----

bool header_has_token(const http::Request& req, std::string_view name, std::string_view token) {
  const std::string* h = req.header(name);
  if (!h) return false;
  std::string v = *h;
  for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v.find(token) != std::string::npos;
}

http::Reply websocket(Context& ctx) {
  if (!ctx.env.ws_hub) throw Error(Errc::unavailable, "WebSocket not available");
  if (!header_has_token(ctx.req, "upgrade", "websocket") || !header_has_token(ctx.req, "connection", "upgrade") ||
      !ctx.req.header("sec-websocket-key"))
    throw Error(Errc::invalid_argument, "Expected a WebSocket upgrade request", "upgrade");
  std::optional<Claims> claims;
  if (auto token = ctx.req.query_param("token"); token && !token->empty()) {
    claims = ctx.cluster.network().verify_token(*token);
    authorize(*ctx.route, *claims, ctx.params, ctx.cluster);  // the table's policy for /api/ws (AuthMode::none: ours)
  }
  return ctx.env.ws_hub->accept(ctx, std::move(claims));
}

constexpr Route kAuthRoutes[] = {
    {"GET", "/api/auth/challenge", get_challenge, AuthMode::none, Role::user, nullptr, RateCategory::nn_challenge, NodeAccess::deny, /*head_as_get=*/false},
    {"POST", "/api/auth/ed25519", post_ed25519, AuthMode::none, Role::user, nullptr, RateCategory::nn_login, NodeAccess::deny},
};

constexpr Route kRoutes[] = {
    {"GET", "/api/health", health, AuthMode::none, Role::user, nullptr, RateCategory::none, NodeAccess::deny},
    {"GET", "/api/node/status", node_status, AuthMode::bearer, Role::viewer, nullptr, RateCategory::none, NodeAccess::read},
    {"GET", "/api/node/capabilities", node_capabilities, AuthMode::bearer, Role::viewer, nullptr, RateCategory::none, NodeAccess::read},
    {"POST", "/api/node/restart", node_restart, AuthMode::bearer, Role::admin, nullptr, RateCategory::none, NodeAccess::deny},
    {"GET", "/api/peers", list_peers, AuthMode::bearer, Role::viewer, nullptr, RateCategory::none, NodeAccess::read},
    {"GET", "/api/peers/{peer_id}/capabilities", peer_capabilities, AuthMode::bearer, Role::viewer, nullptr, RateCategory::none, NodeAccess::read},
    {"GET", "/api/blacklist", get_blacklist, AuthMode::bearer, Role::viewer, nullptr, RateCategory::none, NodeAccess::read},
    {"POST", "/api/blacklist", add_blacklist, AuthMode::bearer, Role::admin, nullptr, RateCategory::none, NodeAccess::deny},
    {"GET", "/api/blacklist/check", check_blacklist, AuthMode::bearer, Role::viewer, nullptr, RateCategory::none, NodeAccess::read},
    {"DELETE", "/api/blacklist/{peer_id}", remove_blacklist, AuthMode::bearer, Role::admin, nullptr, RateCategory::none, NodeAccess::deny},
    {"GET", "/api/relay/sessions", relay_sessions, AuthMode::bearer, Role::viewer, nullptr, RateCategory::none, NodeAccess::read},
    {"POST", "/api/relay/sessions/{session_id}/disconnect", disconnect_session, AuthMode::bearer, Role::admin, nullptr, RateCategory::none, NodeAccess::deny},
    {"POST", "/api/relay/sessions/{session_id}/blacklist", blacklist_session, AuthMode::bearer, Role::admin, nullptr, RateCategory::none, NodeAccess::deny},
    {"GET", "/api/relay/candidates", relay_candidates, AuthMode::bearer, Role::viewer, nullptr, RateCategory::none, NodeAccess::read},
    {"POST", "/api/relay/connect", relay_connect, AuthMode::bearer, Role::admin, nullptr, RateCategory::none, NodeAccess::deny},
    {"POST", "/api/relay/disconnect", relay_disconnect, AuthMode::bearer, Role::admin, nullptr, RateCategory::none, NodeAccess::deny},
    {"POST", "/api/relay/prefer", relay_prefer, AuthMode::bearer, Role::admin, nullptr, RateCategory::none, NodeAccess::deny},
    {"GET", "/api/ws", websocket, AuthMode::none, Role::viewer, nullptr, RateCategory::none, NodeAccess::read, /*head_as_get=*/false},
    {"PUT", "/api/agent/network", agent_report, AuthMode::node_key, Role::user, nullptr, RateCategory::none, NodeAccess::deny},
};

}  // namespace

void configure_network_limits(RateLimiter& limiter, std::int64_t challenges_per_minute) {
  limiter.configure(rate_category_name(RateCategory::nn_challenge),
                    {challenges_per_minute, std::chrono::seconds(60), challenges_per_minute});
  // A login spends a challenge, so it needs no larger budget than they have;
  // its own bucket bounds the signature checks (up to 64 each without
  // public_key) a client address can ask for.
  limiter.configure(rate_category_name(RateCategory::nn_login),
                    {challenges_per_minute, std::chrono::seconds(60), challenges_per_minute});
}

void add_network_node_routes(Router& router) {
  // CORS for all origins (the document's notes; docs/decisions.md "Issue 18").
  router.add_surface("/api/auth/", nn::network_auth_error, kAuthRoutes, std::size(kAuthRoutes), nn::kCors);
  // This document's path prefixes only: other /api paths (no route) stay
  // with the registration document's 404, as before.
  router.add_surface("/api/node/", nn::network_error, kRoutes, std::size(kRoutes), nn::kCors);
  // (/api/ws and /api/health are single routes: their wrong methods get 405 through the table.)
  for (const char* prefix : {"/api/peers", "/api/blacklist", "/api/relay/", "/api/agent/"})
    router.add_prefix(prefix, nn::network_error, nn::kCors);
}

}  // namespace lucid::server
