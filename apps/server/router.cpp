#include "router.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "json.hpp"
#include "server_env.hpp"
#include "util/encoding.hpp"
#include "util/enum_names.hpp"

namespace lucid::server {

namespace {

// "/a/b/" -> {"a", "b", ""}: the empty last segment keeps a trailing slash
// significant, as the documents distinguish /nodes and /nodes/.
std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  std::size_t i = 1;
  if (path.empty() || path[0] != '/') return out;
  while (true) {
    auto j = path.find('/', i);
    out.push_back(path.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

// Compiled placeholders: "{}" any non-empty segment, "{int}" digits only,
// "{^prefix}" a segment starting with prefix ("{node_id:node_}" in a pattern).
bool is_param(const std::string& seg) { return !seg.empty() && seg.front() == '{'; }

bool param_accepts(const std::string& param, const std::string& value) {
  if (value.empty()) return false;
  if (param == "{}") return true;
  if (param == "{int}")
    return value.size() <= 18 && value.find_first_not_of("0123456789") == std::string::npos;
  const std::string prefix = param.substr(2, param.size() - 3);  // "{^node_}" -> "node_"
  return value.size() > prefix.size() && value.compare(0, prefix.size(), prefix) == 0;
}

bool match(const std::vector<std::string>& pattern, const std::vector<std::string>& path,
           std::vector<std::string>* params) {
  if (pattern.size() != path.size()) return false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (is_param(pattern[i])) {
      if (!param_accepts(pattern[i], path[i])) return false;
      if (params) params->push_back(path[i]);
    } else if (pattern[i] != path[i]) {
      return false;
    }
  }
  return true;
}

// Literal segments before constrained placeholders before free ones:
// "/nodes/join-request" beats "/nodes/{id:int}" beats "/nodes/{id}".
int rank(const std::string& seg) { return !is_param(seg) ? 2 : seg == "{}" ? 0 : 1; }

bool more_specific(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    if (rank(a[i]) != rank(b[i])) return rank(a[i]) > rank(b[i]);
  return a.size() > b.size();
}

std::string compile_segment(const std::string& s) {
  if (s.size() < 2 || s.front() != '{' || s.back() != '}') return s;
  const auto colon = s.find(':');
  if (colon == std::string::npos) return "{}";
  const std::string constraint = s.substr(colon + 1, s.size() - colon - 2);
  return constraint == "int" ? "{int}" : "{^" + constraint + "}";
}

std::string bearer_token(const http::Request& req) {
  const std::string* h = req.header("authorization");
  if (!h) return {};
  constexpr std::string_view kBearer = "bearer ";
  if (h->size() <= kBearer.size()) return {};
  for (std::size_t i = 0; i < kBearer.size(); ++i)
    if (std::tolower(static_cast<unsigned char>((*h)[i])) != kBearer[i]) return {};
  return h->substr(kBearer.size());
}

// A random (version 4) UUID for tracing a request; not a secret, so a
// per-thread PRNG (no system call per request) feeds the shared formatter.
std::string new_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::uint64_t words[2] = {rng(), rng()};
  return detail::uuid_v4(std::string_view(reinterpret_cast<const char*>(words), sizeof words));
}

}  // namespace

std::string request_id_for(const http::Request& req) {
  if (const std::string* h = req.header("x-request-id")) {
    const bool ok = !h->empty() && h->size() <= kMaxRequestIdBytes &&
                    std::all_of(h->begin(), h->end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
    if (ok) return *h;
  }
  return new_request_id();
}

namespace {

std::string caller_key(const Context& ctx) {
  if (ctx.caller.claims) return "user:" + ctx.caller.claims->subject;
  if (ctx.caller.node_id) return "node:" + std::to_string(ctx.caller.node_id);
  return "ip:" + client_address(ctx.req);
}

// Every answer of a Cors::any_origin surface: any page may read it (the
// credential is a bearer token the page holds, never a cookie, so no
// Allow-Credentials), including the headers clients act on.
void add_cors_headers(http::Response& r) {
  r.headers.emplace_back("Access-Control-Allow-Origin", "*");
  r.headers.emplace_back("Access-Control-Expose-Headers",
                         "X-Request-ID, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After");
}

// The request headers a preflight may ask for: what the network-node clients
// send (Authorization for the bearer token, Content-Type for JSON bodies).
constexpr const char* kCorsAllowHeaders = "Authorization, Content-Type, X-Request-ID";
constexpr const char* kCorsMaxAgeSeconds = "600";

void add_rate_headers(http::Response& r, const RateDecision& d) {
  r.headers.emplace_back("X-RateLimit-Limit", std::to_string(d.limit));
  r.headers.emplace_back("X-RateLimit-Remaining", std::to_string(d.remaining));
  r.headers.emplace_back("X-RateLimit-Reset", std::to_string(d.reset_seconds));
}

}  // namespace

void authorize(const Route& route, const Claims& c, const std::vector<std::string>& params, Cluster& cluster) {
  if (c.is_node()) {
    switch (route.node) {
      case NodeAccess::read: return;
      case NodeAccess::self:
        if (!params.empty()) {
          const std::string& v = params.front();
          if (v == std::to_string(c.node_id)) return;
          if (v.rfind("node_", 0) == 0) {
            try {
              if (cluster.nodes().resolve(v) == c.node_id) return;
            } catch (const Error&) {
            }
          }
        }
        break;
      case NodeAccess::deny: break;
    }
    throw Error(Errc::permission_denied, "Insufficient permissions");
  }
  if (!c.has_role(route.min_role)) throw Error(Errc::permission_denied, "Insufficient permissions");
  if (route.scope && !c.has_scope(route.scope))
    throw Error(Errc::permission_denied, std::string("Missing scope ") + route.scope);
}

namespace {
constexpr detail::EnumNames<NodeAccess, 3> kNodeAccessNames{
    {{NodeAccess::deny, "deny"}, {NodeAccess::self, "self"}, {NodeAccess::read, "read"}}};
constexpr detail::EnumNames<RateCategory, 14> kRateCategoryNames{{{RateCategory::none, "none"},
                                                                  {RateCategory::nodes, "nodes"},
                                                                  {RateCategory::admin, "admin"},
                                                                  {RateCategory::poot, "poot"},
                                                                  {RateCategory::payouts, "payouts"},
                                                                  {RateCategory::cluster, "cluster"},
                                                                  {RateCategory::gw_public, "gw_public"},
                                                                  {RateCategory::gw_auth, "gw_auth"},
                                                                  {RateCategory::gw_admin, "gw_admin"},
                                                                  {RateCategory::gw_chain, "gw_chain"},
                                                                  {RateCategory::registration, "registration"},
                                                                  {RateCategory::nn_challenge, "nn_challenge"},
                                                                  {RateCategory::nn_login, "nn_login"},
                                                                  {RateCategory::cluster_admin, "cluster_admin"}}};
}  // namespace

const char* node_access_name(NodeAccess a) noexcept { return detail::enum_name(kNodeAccessNames, a, "deny"); }

std::function<bool()> caller_recheck(const Context& ctx) {
  if (ctx.auth == AuthMode::none || ctx.caller.credential.empty()) return [] { return true; };
  return [mode = ctx.auth, credential = ctx.caller.credential, cluster = &ctx.cluster] {
    try {
      switch (mode) {
        case AuthMode::none: break;
        case AuthMode::bearer:
        case AuthMode::bearer_or_query: cluster->auth().verify_token(credential); break;
        case AuthMode::api_key_or_bearer:
        case AuthMode::scrape:
          if (credential.rfind("lak_", 0) == 0) cluster->api_keys().authenticate(credential);
          else cluster->auth().verify_token(credential);
          break;
        case AuthMode::node_key:
          if (cluster->network().node_refused(cluster->nodes().authenticate_key(credential))) return false;
          break;
      }
      return true;
    } catch (const std::exception&) {
      return false;
    }
  };
}

std::string client_address(const http::Request& req) {
  const auto& a = req.remote_addr;  // "ip:port" / "[ip]:port"
  std::string ip = a.substr(0, a.rfind(':'));
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  return ip;
}

const char* rate_category_name(RateCategory c) noexcept { return detail::enum_name(kRateCategoryNames, c, "none"); }

void Router::add_prefix(const char* prefix, ErrorEncoder encoder, Cors cors) {
  surfaces_.push_back({prefix, encoder, cors});
  std::sort(surfaces_.begin(), surfaces_.end(),
            [](const Surface& a, const Surface& b) { return a.prefix.size() > b.prefix.size(); });
}

void Router::add_surface(const char* prefix, ErrorEncoder encoder, const Route* routes, std::size_t count, Cors cors) {
  add_prefix(prefix, encoder, cors);
  for (std::size_t i = 0; i < count; ++i) {
    Compiled c{&routes[i], encoder, split_path(routes[i].pattern), std::make_shared<RouteStats>(), routes_.size(), document_, prefix, cors};
    for (auto& s : c.segments) s = compile_segment(s);
    routes_.push_back(std::move(c));
  }
  std::stable_sort(routes_.begin(), routes_.end(),
                   [](const Compiled& a, const Compiled& b) { return more_specific(a.segments, b.segments); });
}

std::vector<Router::RouteEntry> Router::routes() const {
  std::vector<const Compiled*> by_order;
  for (const auto& c : routes_) by_order.push_back(&c);
  std::sort(by_order.begin(), by_order.end(), [](const Compiled* a, const Compiled* b) { return a->order < b->order; });
  std::vector<RouteEntry> out;
  for (const Compiled* c : by_order) out.push_back({c->route, c->document, c->prefix});
  return out;
}

const Router::Surface* Router::surface_for(const std::string& path) const {
  for (const auto& s : surfaces_) {
    if (!s.prefix.empty() && s.prefix.back() == '$') {
      if (path == std::string_view(s.prefix).substr(0, s.prefix.size() - 1)) return &s;
    } else if (path.rfind(s.prefix, 0) == 0) {
      return &s;
    }
  }
  return surfaces_.empty() ? nullptr : &surfaces_.back();
}

ErrorEncoder Router::encoder_for(const std::string& path) const {
  const Surface* s = surface_for(path);
  return s ? s->encoder : nullptr;
}

http::Response Router::protocol_error(const http::Request& req, int status, std::string_view message) const {
  Failure f;
  f.kind = FailureKind::server_protocol;
  f.message = std::string(message);
  f.status = status;
  f.request_id = request_id_for(req);
  req.request_id = f.request_id;
  f.request = &req;
  const Surface* s = surface_for(req.path);
  http::Response r = s->encoder(f);
  r.headers.emplace_back("X-Request-ID", f.request_id);
  if (s->cors == Cors::any_origin) add_cors_headers(r);
  return r;
}

void Router::RouteStats::record(int status, std::int64_t us) {
  if (status >= 100 && status < 600) by_status[static_cast<std::size_t>(status - 100)].fetch_add(1, std::memory_order_relaxed);
  std::size_t b = 0;
  while (b < kLatencyBuckets.size() && us > kLatencyBuckets[b]) ++b;
  buckets[b].fetch_add(1, std::memory_order_relaxed);
  count.fetch_add(1, std::memory_order_relaxed);
  sum_us.fetch_add(static_cast<std::uint64_t>(us), std::memory_order_relaxed);
}

http::Reply Router::dispatch(http::Request& req, Cluster& cluster, ServerEnv& env) const {
  const auto t0 = std::chrono::steady_clock::now();
  const Compiled* matched = nullptr;
  auto reply = dispatch_inner(req, cluster, env, &matched);
  // A WebSocket upgrade's answer is written by the protocol engine (browsers
  // apply no CORS to WebSockets); every other answer of a CORS surface,
  // errors included, carries the headers.
  if (!reply.upgrade) {
    const Surface* s = matched ? nullptr : surface_for(req.path);
    const Cors cors = matched ? matched->cors : s ? s->cors : Cors::none;
    const auto& hs = reply.response.headers;
    const bool has = std::any_of(hs.begin(), hs.end(), [](const auto& h) { return h.first == "Access-Control-Allow-Origin"; });
    if (cors == Cors::any_origin && !has) add_cors_headers(reply.response);
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  (matched ? *matched->stats : *unmatched_).record(reply.response.status, us);
  record_recent(reply.response.status, us);
  return reply;
}

namespace {
std::int64_t steady_second(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
}  // namespace

void Router::record_recent(int status, std::int64_t us) const {
  const std::int64_t now = steady_second(std::chrono::steady_clock::now());
  SecondSlot& slot = recent_[static_cast<std::size_t>(now % static_cast<std::int64_t>(recent_.size()))];
  if (slot.second.load(std::memory_order_acquire) != now) {
    std::lock_guard<std::mutex> lock(reset_mu_);
    if (slot.second.load(std::memory_order_relaxed) != now) {
      slot.count.store(0, std::memory_order_relaxed);
      slot.errors.store(0, std::memory_order_relaxed);
      for (auto& b : slot.buckets) b.store(0, std::memory_order_relaxed);
      slot.second.store(now, std::memory_order_release);
    }
  }
  slot.count.fetch_add(1, std::memory_order_relaxed);
  if (status >= 500) slot.errors.fetch_add(1, std::memory_order_relaxed);
  std::size_t b = 0;
  while (b < kLatencyBuckets.size() && us > kLatencyBuckets[b]) ++b;
  slot.buckets[b].fetch_add(1, std::memory_order_relaxed);
}

Router::Recent Router::recent(std::chrono::steady_clock::duration uptime) const {
  const std::int64_t now = steady_second(std::chrono::steady_clock::now());
  std::uint64_t count = 0, errors = 0;
  std::array<std::uint64_t, kLatencyBuckets.size() + 1> buckets{};
  for (const auto& slot : recent_) {
    const std::int64_t s = slot.second.load(std::memory_order_acquire);
    if (s < now - kRecentSeconds || s >= now) continue;  // stale, or the second still running
    count += slot.count.load(std::memory_order_relaxed);
    errors += slot.errors.load(std::memory_order_relaxed);
    for (std::size_t b = 0; b < buckets.size(); ++b) buckets[b] += slot.buckets[b].load(std::memory_order_relaxed);
  }
  Recent r;
  const auto up = std::chrono::duration_cast<std::chrono::seconds>(uptime).count();
  const auto window = std::clamp<std::int64_t>(up, 1, kRecentSeconds);
  r.requests_per_second = static_cast<double>(count) / static_cast<double>(window);
  if (count == 0) return r;
  r.error_rate = static_cast<double>(errors) / static_cast<double>(count);
  auto quantile = [&](double q) {
    const double rank = q * static_cast<double>(count);
    std::uint64_t below = 0;
    for (std::size_t b = 0; b < buckets.size(); ++b) {
      const double lower = b == 0 ? 0.0 : static_cast<double>(kLatencyBuckets[b - 1]);
      if (b == kLatencyBuckets.size()) return lower / 1000.0;  // beyond the last bound
      if (static_cast<double>(below + buckets[b]) >= rank && buckets[b] > 0) {
        const double upper = static_cast<double>(kLatencyBuckets[b]);
        const double within = (rank - static_cast<double>(below)) / static_cast<double>(buckets[b]);
        return (lower + (upper - lower) * within) / 1000.0;
      }
      below += buckets[b];
    }
    return 0.0;
  };
  r.p50_ms = quantile(0.50);
  r.p95_ms = quantile(0.95);
  r.p99_ms = quantile(0.99);
  return r;
}

double Router::mean_latency_ms() const {
  std::uint64_t n = unmatched_->count.load(), sum = unmatched_->sum_us.load();
  for (const auto& c : routes_) {
    n += c.stats->count.load();
    sum += c.stats->sum_us.load();
  }
  return n == 0 ? 0.0 : static_cast<double>(sum) / static_cast<double>(n) / 1000.0;
}

std::string prometheus_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void Router::write_prometheus(std::string& out) const {
  auto each = [&](auto&& fn) {
    for (const auto& c : routes_) fn(prometheus_label_value(c.route->method), prometheus_label_value(c.route->pattern), *c.stats);
    fn(std::string(""), std::string("unmatched"), *unmatched_);
  };
  out += "# HELP lucid_http_requests_total HTTP requests by route and status.\n";
  out += "# TYPE lucid_http_requests_total counter\n";
  each([&](const std::string& method, const std::string& route, const RouteStats& s) {
    for (std::size_t i = 0; i < s.by_status.size(); ++i) {
      const auto n = s.by_status[i].load(std::memory_order_relaxed);
      if (n == 0) continue;
      out += "lucid_http_requests_total{method=\"" + method + "\",route=\"" + route + "\",status=\"" +
             std::to_string(i + 100) + "\"} " + std::to_string(n) + "\n";
    }
  });
  out += "# HELP lucid_http_request_duration_seconds Time to handle a request, by route.\n";
  out += "# TYPE lucid_http_request_duration_seconds histogram\n";
  each([&](const std::string& method, const std::string& route, const RouteStats& s) {
    const auto count = s.count.load(std::memory_order_relaxed);
    if (count == 0) return;
    const std::string labels = "method=\"" + method + "\",route=\"" + route + "\"";
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= kLatencyBuckets.size(); ++b) {
      cumulative += s.buckets[b].load(std::memory_order_relaxed);
      char le[32];
      if (b < kLatencyBuckets.size()) std::snprintf(le, sizeof le, "%g", static_cast<double>(kLatencyBuckets[b]) / 1e6);
      else std::snprintf(le, sizeof le, "+Inf");
      out += "lucid_http_request_duration_seconds_bucket{" + labels + ",le=\"" + le + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    char sum[32];
    std::snprintf(sum, sizeof sum, "%.6f", static_cast<double>(s.sum_us.load(std::memory_order_relaxed)) / 1e6);
    out += "lucid_http_request_duration_seconds_sum{" + labels + "} " + sum + "\n";
    out += "lucid_http_request_duration_seconds_count{" + labels + "} " + std::to_string(cumulative) + "\n";
  });
}

http::Reply Router::dispatch_inner(http::Request& req, Cluster& cluster, ServerEnv& env, const Compiled** matched) const {
  const auto segments = split_path(req.path);
  const Compiled* found = nullptr;
  const Compiled* same_path = nullptr;  // a route of this path with another method
  std::string allowed;
  auto allow = [&](std::string_view m) {  // no method name is part of another
    if (allowed.find(m) == std::string::npos) allowed += (allowed.empty() ? "" : ", ") + std::string(m);
  };
  // HEAD: the route's own HEAD row if it has one, else its GET row without
  // the body (http::Server drops the body of an answer to HEAD).
  const bool head = req.method == "HEAD";
  for (const auto& c : routes_) {
    if (!match(c.segments, segments, nullptr)) continue;
    const std::string_view m = c.route->method;
    if (req.method == m || (head && m == "GET" && c.route->head_as_get)) {
      found = &c;
      break;
    }
    if (!same_path) same_path = &c;
    allow(m);
    if (m == "GET" && c.route->head_as_get) allow("HEAD");
  }
  ErrorEncoder encoder = found ? found->encoder : same_path ? same_path->encoder : encoder_for(req.path);
  const std::string request_id = request_id_for(req);
  req.request_id = request_id;
  auto fail = [&](FailureKind kind, const Error* error, std::string message) {
    Failure f;
    f.kind = kind;
    f.error = error;
    f.message = std::move(message);
    f.request_id = request_id;
    f.at = cluster.clock().now();
    f.request = &req;
    http::Reply r;
    r.response = encoder(f);
    r.response.headers.emplace_back("X-Request-ID", request_id);
    return r;
  };
  if (!found) {
    if (!allowed.empty() && req.method == "OPTIONS" && same_path->cors == Cors::any_origin) {
      // A CORS preflight (or a plain OPTIONS): what the table allows here.
      // Before authentication: a preflight never carries credentials.
      allow("OPTIONS");
      http::Reply r;
      r.response.status = 204;
      r.response.headers.emplace_back("Allow", allowed);
      r.response.headers.emplace_back("Access-Control-Allow-Origin", "*");
      r.response.headers.emplace_back("Access-Control-Allow-Methods", allowed);
      r.response.headers.emplace_back("Access-Control-Allow-Headers", kCorsAllowHeaders);
      r.response.headers.emplace_back("Access-Control-Max-Age", kCorsMaxAgeSeconds);
      r.response.headers.emplace_back("X-Request-ID", request_id);
      return r;
    }
    if (!allowed.empty()) {
      auto r = fail(FailureKind::method_not_allowed, nullptr, "Method Not Allowed");
      r.response.headers.emplace_back("Allow", allowed);
      return r;
    }
    return fail(FailureKind::route_not_found, nullptr, "Not Found");
  }

  *matched = found;
  const Route& route = *found->route;
  Context ctx{req, {}, {}, cluster, env, request_id, found->route};
  ctx.auth = route.auth;
  match(found->segments, segments, &ctx.params);
  std::optional<RateDecision> rate;
  try {
    switch (route.auth) {
      case AuthMode::none: break;
      case AuthMode::bearer:
      case AuthMode::bearer_or_query: {
        std::string token = bearer_token(req);
        if (token.empty() && route.auth == AuthMode::bearer_or_query) token = req.query_param("token").value_or("");
        if (token.empty()) throw Error(Errc::unauthenticated, "Not authenticated");
        ctx.caller.claims = cluster.auth().verify_token(token);
        ctx.caller.credential = std::move(token);
        authorize(route, *ctx.caller.claims, ctx.params, cluster);
        break;
      }
      case AuthMode::api_key_or_bearer: {
        const std::string* key = req.header("x-api-key");
        std::string token = key ? *key : bearer_token(req);
        if (token.empty()) throw Error(Errc::unauthenticated, "Authentication required: X-API-Key or Authorization: Bearer");
        ctx.caller.claims = token.rfind("lak_", 0) == 0 ? cluster.api_keys().authenticate(token)
                                                        : cluster.auth().verify_token(token);
        ctx.caller.credential = std::move(token);
        authorize(route, *ctx.caller.claims, ctx.params, cluster);
        break;
      }
      case AuthMode::scrape: {
        std::string token = bearer_token(req);
        if (token.empty()) throw Error(Errc::unauthenticated, "Authentication required: Authorization: Bearer");
        // The scrape token (compared in constant time) stands for no user:
        // it reads the metrics and nothing else.
        if (!env.metrics_token.empty() && detail::equal_ct(token, env.metrics_token)) break;
        ctx.caller.claims = token.rfind("lak_", 0) == 0 ? cluster.api_keys().authenticate(token)
                                                        : cluster.auth().verify_token(token);
        ctx.caller.credential = std::move(token);
        authorize(route, *ctx.caller.claims, ctx.params, cluster);
        break;
      }
      case AuthMode::node_key: {
        const std::string* key = req.header("x-api-key");
        if (!key || key->empty()) throw Error(Errc::unauthenticated, "Missing X-API-KEY header");
        ctx.caller.node_id = cluster.nodes().authenticate_key(*key);
        ctx.caller.credential = *key;
        // A node whose peer is blacklisted (network-node.md) is refused.
        if (cluster.network().node_refused(ctx.caller.node_id))
          throw Error(Errc::permission_denied, "Node is blacklisted");
        break;
      }
    }
    if (route.rate != RateCategory::none) {
      // Administrators get the document's admin budget on any limited route.
      RateCategory cat = route.rate;
      if (cat == RateCategory::nodes && ctx.caller.claims && ctx.caller.claims->has_role(Role::admin))
        cat = RateCategory::admin;
      if (cat == RateCategory::gw_auth && ctx.caller.claims && ctx.caller.claims->has_role(Role::admin))
        cat = RateCategory::gw_admin;
      // The cluster document's 60/min burst 10 is for its clients; an
      // operator's admin token or admin API key gets the admin tier
      // (--rate-cluster-admin-*, docs/decisions.md "Issue 15: server").
      if (cat == RateCategory::cluster && ctx.caller.claims && !ctx.caller.claims->is_node() &&
          ctx.caller.claims->has_role(Role::admin))
        cat = RateCategory::cluster_admin;
      rate = cluster.rate_limiter().take(rate_category_name(cat), caller_key(ctx));
      if ((cat == RateCategory::cluster || cat == RateCategory::cluster_admin) && rate->allowed) {
        // The cluster API has a per-hour budget besides the per-minute one.
        RateDecision hour = cluster.rate_limiter().take(
            cat == RateCategory::cluster ? "cluster_hour" : "cluster_admin_hour", caller_key(ctx));
        if (!hour.allowed || (hour.limit > 0 && hour.remaining < rate->remaining)) rate = hour;
      }
      if (!rate->allowed) {
        auto r = fail(FailureKind::rate_limited, nullptr, "Rate limit exceeded");
        add_rate_headers(r.response, *rate);
        r.response.headers.emplace_back("Retry-After", std::to_string(std::max<std::int64_t>(1, rate->retry_after_seconds)));
        return r;
      }
    }
    auto reply = route.handler(ctx);
    if (head && (reply.stream || reply.upgrade || reply.deferred))  // a table error: head_as_get is wrong
      return fail(FailureKind::method_not_allowed, nullptr, "Method Not Allowed");
    if (rate && rate->limit > 0) add_rate_headers(reply.response, *rate);
    reply.response.headers.emplace_back("X-Request-ID", request_id);
    return reply;
  } catch (const Error& e) {
    auto r = fail(FailureKind::error, &e, e.message());
    if (rate && rate->limit > 0) add_rate_headers(r.response, *rate);
    return r;
  } catch (const MalformedJson& e) {
    auto r = fail(FailureKind::malformed_json, nullptr, e.message);
    if (rate && rate->limit > 0) add_rate_headers(r.response, *rate);
    return r;
  } catch (const std::exception& e) {
    return fail(FailureKind::internal, nullptr, e.what());
  }
}

}  // namespace lucid::server
