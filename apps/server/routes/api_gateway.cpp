// api-gateway.md under /api/v1: meta, auth (passwordless login, TOTP,
// sessions) and users. Errors: gw::gateway_error (api_gateway_common.cpp).
// Endpoints the document lacks (admin user CRUD, TOTP enrolment, the magic
// link's GET) are in README "API gateway".
#include <strings.h>

#include <chrono>
#include <cstdio>

#include "json.hpp"
#include "routes/api_gateway_common.hpp"
#include "routes/routes.hpp"
#include "server_env.hpp"

namespace lucid::server {

namespace {

using gw::required_string;

// ---- encoding ----

void write_user(JsonWriter& w, const User& u) {
  w.StartObject();
  w.Key("user_id"); write_string(w, u.id);
  w.Key("email"); write_string(w, u.email);
  w.Key("username"); write_string(w, u.username);
  w.Key("first_name"); write_string(w, u.first_name);
  w.Key("last_name"); write_string(w, u.last_name);
  w.Key("role"); w.String(role_name(u.role));
  w.Key("created_at"); write_time(w, u.created_at);
  w.Key("updated_at"); write_time(w, u.updated_at);
  w.Key("last_login"); write_time(w, u.last_login);
  w.Key("hardware_wallet_enabled"); w.Bool(u.hardware_wallet_enabled);
  w.Key("totp_enabled"); w.Bool(u.totp_enabled);
  w.EndObject();
}

http::Reply user_reply(int status, const User& u) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_user(w, u);
  return json_reply(status, buf);
}

http::Reply tokens_reply(const AuthTokens& t) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("access_token"); write_string(w, t.access_token);
  w.Key("refresh_token"); write_string(w, t.refresh_token);
  w.Key("token_type"); w.String("Bearer");
  w.Key("expires_in"); w.Int64(t.expires_in.count());
  w.Key("user"); write_user(w, t.user);
  w.EndObject();
  auto r = json_reply(200, buf);
  r.response.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

http::Reply message_reply(int status, const char* message) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("message"); w.String(message);
  w.EndObject();
  return json_reply(status, buf);
}

http::Reply no_content() {
  http::Reply r;
  r.response.status = 204;
  return r;
}

// The caller's token subject (a user id, or a subject such as "admin" that
// stands for one: self() below).
const std::string& self_id(const Context& ctx) { return ctx.caller.claims->subject; }

Role role_value(const std::string& s, const char* field) {
  auto r = parse_role(s);
  if (!r) gw::bad_format(field, std::string(field) + " must be one of user, viewer, node_operator, admin, super_admin");
  return *r;
}

// ---- meta ----

// __DATE__ "Nov 23 2026" + __TIME__ "18:44:01" -> RFC 3339 (the build's local
// time, reported as UTC: the build machine runs in UTC).
std::string build_date() {
  static const char* kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  const std::string d = __DATE__;
  const std::string t = __TIME__;
  const int month = static_cast<int>(std::string(kMonths).find(d.substr(0, 3)) / 3 + 1);
  char out[32];
  std::snprintf(out, sizeof out, "%s-%02d-%02dT%sZ", d.substr(7, 4).c_str(), month, std::atoi(d.substr(4, 2).c_str()),
                t.c_str());
  return out;
}

http::Reply meta_info(Context& ctx) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("service_name"); w.String("api-gateway");
  w.Key("version"); w.String(version());
  w.Key("build_date"); write_string(w, build_date());
  w.Key("environment"); write_string(w, ctx.env.environment);
  w.Key("features");
  w.StartArray();
  for (const auto& f : ctx.env.features) write_string(w, f);
  w.EndArray();
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply meta_version(Context&) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("api_version"); w.String("v1");
  w.Key("gateway_version"); w.String(version());
  w.Key("supported_versions"); w.StartArray(); w.String("v1"); w.EndArray();
  w.Key("deprecation_notice"); w.Null();
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply meta_health(Context& ctx) {
  const Health h = ctx.cluster.health(std::chrono::milliseconds(1000));
  const bool ok = h.database && h.executor;
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  // The database is what every request needs: without it the service is
  // unhealthy; without the executor (sealing, payouts, mail) it is degraded.
  w.Key("status"); w.String(ok ? "healthy" : !h.database ? "unhealthy" : "degraded");
  w.Key("timestamp"); write_time(w, ctx.cluster.clock().now());
  w.Key("service"); w.String("api-gateway");
  w.Key("version"); w.String(version());
  w.Key("dependencies");
  w.StartObject();
  w.Key("database"); w.String(h.database ? "healthy" : "unhealthy");
  w.Key("executor"); w.String(h.executor ? "healthy" : "unhealthy");
  w.EndObject();
  w.Key("errors");
  w.StartObject();
  if (!h.database) { w.Key("database"); write_string(w, h.database_error); }
  if (!h.executor) { w.Key("executor"); write_string(w, h.executor_error); }
  w.EndObject();
  w.Key("uptime");
  w.Int64(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - ctx.env.started).count());
  w.Key("response_time");
  w.Double(ctx.env.router ? ctx.env.router->mean_latency_ms() : 0.0);
  w.EndObject();
  auto r = json_reply(ok ? 200 : 503, buf);
  r.response.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// The document's MetricsResponse: the last minute of answers (Router::recent:
// rate, latency quantiles in milliseconds, the share of 5xx answers) and the
// open connections. The Prometheus text is GET /metrics (operations.cpp).
http::Reply meta_metrics(Context& ctx) {
  const auto uptime = std::chrono::steady_clock::now() - ctx.env.started;
  const Router::Recent recent = ctx.env.router ? ctx.env.router->recent(uptime) : Router::Recent{};
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("timestamp"); write_time(w, ctx.cluster.clock().now());
  w.Key("metrics");
  w.StartObject();
  w.Key("requests_per_second"); w.Double(recent.requests_per_second);
  w.Key("response_time_p50"); w.Double(recent.p50_ms);
  w.Key("response_time_p95"); w.Double(recent.p95_ms);
  w.Key("response_time_p99"); w.Double(recent.p99_ms);
  w.Key("error_rate"); w.Double(recent.error_rate);
  w.Key("active_connections");
  w.Int64(ctx.env.active_connections ? static_cast<std::int64_t>(ctx.env.active_connections()) : 0);
  w.EndObject();
  w.EndObject();
  auto r = json_reply(200, buf);
  r.response.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// ---- auth ----

http::Reply auth_login(Context& ctx) {
  JsonBody body(ctx.req);
  const std::string email = gw::required_email(body, "email");
  if (gw::optional_bool(body, "hardware_wallet").value_or(false))
    throw Error(Errc::invalid_argument, "Hardware wallet login is not supported by this server", "hardware_wallet",
                Reason::hardware_wallet);
  const auto ttl = ctx.cluster.users().start_login(email);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("message"); w.String("Magic link sent to your email");
  w.Key("expires_in"); w.Int64(ttl.count());
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply auth_verify(Context& ctx) {
  JsonBody body(ctx.req);
  const std::string email = gw::required_email(body, "email");
  // {email, code} as documented, or {email, token} from the magic link.
  if (auto token = gw::optional_string(body, "token", 1, 128); token && !body.member("code"))
    return tokens_reply(ctx.cluster.users().verify_link(email, *token));
  const std::string code = required_string(body, "code", 6, 6);
  return tokens_reply(ctx.cluster.users().verify_code(email, code));
}

// The magic link: GET /api/v1/auth/verify?email=...&token=...
http::Reply auth_verify_link(Context& ctx) {
  auto email = ctx.req.query_param("email");
  auto token = ctx.req.query_param("token");
  if (!email) gw::missing("query:email");
  if (!token) gw::missing("query:token");
  if (!gw::is_email(*email))
    throw Error(Errc::invalid_argument, "email must be an email address", "query:email", Reason::invalid_email);
  if (token->empty() || token->size() > 128) gw::bad_format("query:token", "token must be 1..128 characters");
  return tokens_reply(ctx.cluster.users().verify_link(*email, *token));
}

// Any string up to the body limit is read: what is not one of our refresh
// tokens (an access token sent by mistake, a truncated one) is the
// gateway's 401 refresh_token_invalid from Users::refresh, not a 400 about
// its length.
http::Reply auth_refresh(Context& ctx) {
  JsonBody body(ctx.req);
  return tokens_reply(ctx.cluster.users().refresh(required_string(body, "refresh_token", 1, 64 * 1024)));
}

// A login session is ended; a token without one (lucidctl admin
// create-token) is itself revoked by its jti until it expires
// (docs/decisions.md "Issue 15: server").
http::Reply auth_logout(Context& ctx) {
  const auto& claims = *ctx.caller.claims;
  if (claims.session_id.empty()) ctx.cluster.users().revoke_token(claims);
  else ctx.cluster.users().logout(claims.session_id);
  return message_reply(200, "Successfully logged out");
}

http::Reply auth_status(Context& ctx) {
  const auto& claims = *ctx.caller.claims;
  std::optional<User> user;
  if (gw::is_uuid(claims.subject)) {
    try {
      user = ctx.cluster.users().get(claims.subject);
    } catch (const Error& e) {
      if (e.code() != Errc::not_found) throw;
    }
  } else if (!claims.is_node()) {
    user = ctx.cluster.users().user_for_subject(claims.subject);
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("authenticated"); w.Bool(true);
  w.Key("user"); if (user) write_user(w, *user); else w.Null();
  w.Key("role"); w.String(role_name(claims.role));
  w.Key("session_id"); if (claims.session_id.empty()) w.Null(); else write_string(w, claims.session_id);
  w.Key("token_expires_at"); write_time(w, claims.expires_at);
  w.EndObject();
  return json_reply(200, buf);
}

// ---- users ----

// The caller's user: the token's subject as a user id, or the user a
// non-UUID subject stands for (the bootstrap admin's "admin",
// Users::ensure_subject_user).
User self(Context& ctx) {
  if (gw::is_uuid(self_id(ctx))) return ctx.cluster.users().get(self_id(ctx));
  if (!ctx.caller.claims->is_node())
    if (auto u = ctx.cluster.users().user_for_subject(self_id(ctx))) return *u;
  throw Error(Errc::not_found, "This token's subject is not a user account");
}

http::Reply users_me(Context& ctx) { return user_reply(200, self(ctx)); }

UserUpdate parse_update(const JsonBody& body) {
  UserUpdate u;
  u.username = gw::optional_string(body, "username", 3, 50);
  u.first_name = gw::optional_string(body, "first_name", 0, 100);
  u.last_name = gw::optional_string(body, "last_name", 0, 100);
  u.hardware_wallet_enabled = gw::optional_bool(body, "hardware_wallet_enabled");
  return u;
}

http::Reply users_me_update(Context& ctx) {
  JsonBody body(ctx.req);
  const User me = self(ctx);
  UserUpdate u = parse_update(body);
  if (body.member("role")) throw Error(Errc::permission_denied, "Only an administrator can change roles");
  return user_reply(200, ctx.cluster.users().update(me.id, u));
}

http::Reply users_get(Context& ctx) {
  const std::string id = gw::uuid_value(ctx.params.at(0), "path:user_id");
  if (id != self_id(ctx) && !ctx.caller.claims->has_role(Role::admin))
    throw Error(Errc::permission_denied, "Only administrators can read other users");
  return user_reply(200, ctx.cluster.users().get(id));
}

// Public sign-up always makes a self-service `user` (a "role" other than user
// is refused: 403). An administrator's bearer token creates a staff account:
// role viewer unless the body names another; super_admin needs a super_admin.
// A bearer token that is present must verify (401 otherwise): a bad token is
// never silently read as an anonymous sign-up. docs/decisions.md "Roles and principals".
http::Reply users_create(Context& ctx) {
  JsonBody body(ctx.req);
  UserCreate u;
  u.email = gw::required_email(body, "email");
  u.username = required_string(body, "username", 3, 50);
  u.password = required_string(body, "password", 1, 128);
  u.first_name = gw::optional_string(body, "first_name", 0, 100).value_or("");
  u.last_name = gw::optional_string(body, "last_name", 0, 100).value_or("");
  const auto role = gw::optional_string(body, "role", 1, 32);
  if (role) u.role = role_value(*role, "role");
  std::optional<Claims> caller;
  if (const std::string* h = ctx.req.header("authorization")) {
    if (h->size() < 8 || strncasecmp(h->c_str(), "bearer ", 7) != 0) throw Error(Errc::unauthenticated, "Not authenticated");
    caller = ctx.cluster.auth().verify_token(std::string_view(*h).substr(7));
  }
  const bool admin = caller && !caller->is_node() && caller->has_role(Role::admin);
  if (admin) {
    if (!role) u.role = Role::viewer;
    if (u.role == Role::super_admin && !caller->has_role(Role::super_admin))
      throw Error(Errc::permission_denied, "Insufficient permissions to create users with role " + *role);
  } else if (u.role != Role::user) {
    throw Error(Errc::permission_denied, "Only an administrator can create users with role " + *role);
  }
  // [limits] Self-service sign-ups per client address (an administrator's
  // bearer token is exempt): one address cannot mint accounts without bound.
  if (!admin) {
    const auto d = ctx.cluster.rate_limiter().take(gw::kSignupQuota, "ip:" + client_address(ctx.req));
    if (!d.allowed) return gw::refused_reply(ctx, d, nullptr);
  }
  return user_reply(201, ctx.cluster.users().create(u));
}

http::Reply users_list(Context& ctx) {
  const auto page = gw::page_query(ctx.req);
  UserQuery q;
  q.page = page.page;
  q.limit = page.limit;
  if (auto r = ctx.req.query_param("role")) q.role = role_value(*r, "query:role");
  std::int64_t total = 0;
  auto users = ctx.cluster.users().list(q, &total);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("users");
  w.StartArray();
  for (const auto& u : users) write_user(w, u);
  w.EndArray();
  w.Key("pagination"); gw::write_pagination(w, page, total);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply users_update(Context& ctx) {
  const std::string id = gw::uuid_value(ctx.params.at(0), "path:user_id");
  JsonBody body(ctx.req);
  UserUpdate u = parse_update(body);
  if (auto role = gw::optional_string(body, "role", 1, 32)) {
    u.role = role_value(*role, "role");
    const bool super = ctx.caller.claims->has_role(Role::super_admin);
    if (!super && (*u.role == Role::super_admin || ctx.cluster.users().get(id).role == Role::super_admin))
      throw Error(Errc::permission_denied, "Only a super_admin can grant or take away super_admin");
  }
  return user_reply(200, ctx.cluster.users().update(id, u));
}

http::Reply users_delete(Context& ctx) {
  const std::string id = gw::uuid_value(ctx.params.at(0), "path:user_id");
  if (!ctx.caller.claims->has_role(Role::super_admin) && ctx.cluster.users().get(id).role == Role::super_admin)
    throw Error(Errc::permission_denied, "Only a super_admin can delete a super_admin");
  ctx.cluster.users().remove(id);
  return no_content();
}

// ---- TOTP enrolment (README "API gateway") ----

http::Reply totp_enroll(Context& ctx) {
  const User me = self(ctx);
  const auto e = ctx.cluster.users().enroll_totp(me.id, false);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("secret"); write_string(w, e.secret_base32);
  w.Key("otpauth_uri"); write_string(w, e.otpauth_uri);
  w.Key("status"); w.String("pending");
  w.EndObject();
  auto r = json_reply(201, buf);
  r.response.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

http::Reply totp_confirm(Context& ctx) {
  JsonBody body(ctx.req);
  const std::string code = required_string(body, "code", 6, 6);
  const User me = self(ctx);
  ctx.cluster.users().confirm_totp(me.id, code);
  return user_reply(200, ctx.cluster.users().get(me.id));
}

http::Reply totp_disable(Context& ctx) {
  ctx.cluster.users().disable_totp(self(ctx).id);
  return no_content();
}

constexpr auto kNone = AuthMode::none;
constexpr auto kBearer = AuthMode::bearer;
constexpr auto kPublic = RateCategory::gw_public;
constexpr auto kAuthd = RateCategory::gw_auth;

const Route kRoutes[] = {
    {"GET", "/api/v1/meta/info", meta_info, kNone, Role::user, nullptr, kPublic, NodeAccess::deny},
    // Never limited: a load balancer's or orchestrator's probe must not see 429.
    {"GET", "/api/v1/meta/health", meta_health, kNone, Role::user, nullptr, RateCategory::none, NodeAccess::deny},
    {"GET", "/api/v1/meta/version", meta_version, kNone, Role::user, nullptr, kPublic, NodeAccess::deny},
    {"GET", "/api/v1/meta/metrics", meta_metrics, kBearer, Role::admin, nullptr, RateCategory::gw_admin, NodeAccess::deny},
    {"POST", "/api/v1/auth/login", auth_login, kNone, Role::user, nullptr, kPublic, NodeAccess::deny},
    {"POST", "/api/v1/auth/verify", auth_verify, kNone, Role::user, nullptr, kPublic, NodeAccess::deny},
    {"GET", "/api/v1/auth/verify", auth_verify_link, kNone, Role::user, nullptr, kPublic, NodeAccess::deny, /*head_as_get=*/false},
    {"POST", "/api/v1/auth/refresh", auth_refresh, kNone, Role::user, nullptr, kPublic, NodeAccess::deny},
    {"POST", "/api/v1/auth/logout", auth_logout, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"GET", "/api/v1/auth/status", auth_status, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"GET", "/api/v1/users/me", users_me, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"PUT", "/api/v1/users/me", users_me_update, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"POST", "/api/v1/users/me/totp", totp_enroll, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"POST", "/api/v1/users/me/totp/confirm", totp_confirm, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"DELETE", "/api/v1/users/me/totp", totp_disable, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"POST", "/api/v1/users", users_create, kNone, Role::user, nullptr, kPublic, NodeAccess::deny},
    {"GET", "/api/v1/users", users_list, kBearer, Role::admin, nullptr, kAuthd, NodeAccess::deny},
    {"GET", "/api/v1/users/{user_id}", users_get, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"PUT", "/api/v1/users/{user_id}", users_update, kBearer, Role::admin, nullptr, kAuthd, NodeAccess::deny},
    {"DELETE", "/api/v1/users/{user_id}", users_delete, kBearer, Role::admin, nullptr, kAuthd, NodeAccess::deny},
};

}  // namespace

void add_api_gateway_routes(Router& router) {
  router.add_surface("/api/v1/meta", gw::gateway_error, kRoutes, std::size(kRoutes));
  router.add_prefix("/api/v1/auth", gw::gateway_error);
  router.add_prefix("/api/v1/users", gw::gateway_error);
}

}  // namespace lucid::server
