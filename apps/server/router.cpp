#include "router.hpp"

#include <algorithm>

#include "json.hpp"

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

}  // namespace

void Router::add_surface(const char* prefix, ErrorEncoder encoder, const Route* routes, std::size_t count) {
  surfaces_.push_back({prefix, encoder});
  std::sort(surfaces_.begin(), surfaces_.end(),
            [](const Surface& a, const Surface& b) { return a.prefix.size() > b.prefix.size(); });
  for (std::size_t i = 0; i < count; ++i) {
    Compiled c{&routes[i], encoder, split_path(routes[i].pattern)};
    for (auto& s : c.segments) s = compile_segment(s);
    routes_.push_back(std::move(c));
  }
  std::stable_sort(routes_.begin(), routes_.end(),
                   [](const Compiled& a, const Compiled& b) { return more_specific(a.segments, b.segments); });
}

ErrorEncoder Router::encoder_for(const std::string& path) const {
  for (const auto& s : surfaces_)
    if (path.rfind(s.prefix, 0) == 0) return s.encoder;
  return surfaces_.empty() ? nullptr : surfaces_.back().encoder;
}

http::Reply Router::dispatch(http::Request& req, Cluster& cluster, ServerEnv& env) const {
  const auto segments = split_path(req.path);
  const Compiled* found = nullptr;
  std::string allowed;
  for (const auto& c : routes_) {
    if (!match(c.segments, segments, nullptr)) continue;
    if (req.method == c.route->method) {
      found = &c;
      break;
    }
    if (allowed.find(c.route->method) == std::string::npos) allowed += (allowed.empty() ? "" : ", ") + std::string(c.route->method);
  }
  ErrorEncoder encoder = found ? found->encoder : encoder_for(req.path);
  auto fail = [&](Failure f) {
    http::Reply r;
    r.response = encoder(f);
    return r;
  };
  if (!found) {
    if (!allowed.empty()) {
      auto r = fail({FailureKind::method_not_allowed, nullptr, "Method Not Allowed"});
      r.response.headers.emplace_back("Allow", allowed);
      return r;
    }
    return fail({FailureKind::route_not_found, nullptr, "Not Found"});
  }

  const Route& route = *found->route;
  Context ctx{req, {}, {}, cluster, env};
  match(found->segments, segments, &ctx.params);
  try {
    switch (route.auth) {
      case AuthMode::none: break;
      case AuthMode::bearer:
      case AuthMode::bearer_or_query: {
        std::string token = bearer_token(req);
        if (token.empty() && route.auth == AuthMode::bearer_or_query) token = req.query_param("token").value_or("");
        if (token.empty()) throw Error(Errc::unauthenticated, "Not authenticated");
        ctx.caller.claims = cluster.auth().verify_token(token);
        if (!ctx.caller.claims->has_role(route.min_role)) throw Error(Errc::permission_denied, "Insufficient permissions");
        if (route.scope && !ctx.caller.claims->has_scope(route.scope))
          throw Error(Errc::permission_denied, std::string("Missing scope ") + route.scope);
        break;
      }
      case AuthMode::node_key: {
        const std::string* key = req.header("x-api-key");
        if (!key || key->empty()) throw Error(Errc::unauthenticated, "Missing X-API-KEY header");
        ctx.caller.node_id = cluster.nodes().authenticate_key(*key);
        break;
      }
    }
    return route.handler(ctx);
  } catch (const Error& e) {
    return fail({FailureKind::error, &e, e.message()});
  } catch (const MalformedJson& e) {
    return fail({FailureKind::malformed_json, nullptr, e.message});
  } catch (const std::exception& e) {
    return fail({FailureKind::internal, nullptr, e.what()});
  }
}

}  // namespace lucid::server
