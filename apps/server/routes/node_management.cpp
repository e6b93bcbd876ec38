// node-management.md under /api/v1: nodes (node_ ids), lifecycle, pools,
// resources and metrics; PoOT and payouts handlers live beside this file.
//
// Errors: {"error": {"code": "LUCID_ERR_xxxx", "message", "details",
// "request_id", "timestamp"}} with the document's 5001..5010 table; codes the
// table lacks come from the gateway's registry (docs/decisions.md).
#include <cmath>

#include "error_response.hpp"
#include "json.hpp"
#include "routes/node_management_common.hpp"
#include "routes/node_management_handlers.hpp"
#include "routes/routes.hpp"
#include "server_env.hpp"

namespace lucid::server {

namespace {

// ---- the document's error format: the one place it is encoded ----

struct Code {
  int status;
  const char* code;
};

Code code_for(const Error& e) {
  switch (e.reason()) {
    case Reason::node_not_found: return {404, "LUCID_ERR_5001"};
    case Reason::pool_not_found: return {404, "LUCID_ERR_5002"};
    case Reason::invalid_node_status: return {400, "LUCID_ERR_5003"};
    case Reason::resource_limit: return {400, "LUCID_ERR_5004"};
    case Reason::poot_failed: return {400, "LUCID_ERR_5005"};
    case Reason::payout_failed: return {400, "LUCID_ERR_5006"};
    case Reason::node_exists: return {409, "LUCID_ERR_5007"};
    case Reason::pool_exists: return {409, "LUCID_ERR_5008"};
    case Reason::invalid_allocation: return {400, "LUCID_ERR_5009"};
    case Reason::batch_failed: return {409, "LUCID_ERR_5010"};
    case Reason::payout_not_found: return {404, "LUCID_ERR_4001"};
    default: break;  // none, or another surface's reasons: by Errc below
  }
  switch (e.code()) {
    case Errc::invalid_argument:
      return {400, e.message() == "field required" ? "LUCID_ERR_1002" : "LUCID_ERR_1001"};
    case Errc::not_found: return {404, "LUCID_ERR_4001"};
    case Errc::conflict: return {409, "LUCID_ERR_4003"};
    case Errc::unauthenticated:
      return {401, e.message() == "token expired" ? "LUCID_ERR_2002" : "LUCID_ERR_2003"};
    case Errc::permission_denied: return {403, "LUCID_ERR_2004"};
    case Errc::resource_exhausted: return {429, "LUCID_ERR_3002"};
    case Errc::unavailable:
    case Errc::storage: return {503, "LUCID_ERR_3003"};
    case Errc::internal: break;
  }
  return {500, "LUCID_ERR_4008"};
}

http::Response management_error(const Failure& f) {
  Code c{500, "LUCID_ERR_4008"};
  std::string message = f.message;
  switch (f.kind) {
    case FailureKind::error: c = code_for(*f.error); break;
    case FailureKind::malformed_json: c = {400, "LUCID_ERR_1009"}; break;
    case FailureKind::route_not_found: c = {404, "LUCID_ERR_4001"}; break;
    case FailureKind::method_not_allowed: c = {405, "LUCID_ERR_4003"}; break;
    case FailureKind::rate_limited: c = {429, "LUCID_ERR_3001"}; break;
    case FailureKind::server_protocol:
      c = {f.status, f.status == 413 ? "LUCID_ERR_1010" : "LUCID_ERR_1001"};
      break;
    case FailureKind::internal: message = "Internal error"; break;
  }
  return error_response(c.status, c.code, message, f);
}

// ---- request parsing ----

[[noreturn]] void bad(const std::string& field, const std::string& msg) {
  throw Error(Errc::invalid_argument, msg, field);
}

template <class T>
std::optional<T> member_of(const rapidjson::Value& obj, const char* name, const std::string& prefix);

template <>
std::optional<std::string> member_of(const rapidjson::Value& obj, const char* name, const std::string& prefix) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsString()) bad(prefix + name, std::string(name) + " must be a string");
  if (it->value.GetStringLength() > 1000) bad(prefix + name, std::string(name) + " is too long");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

template <>
std::optional<double> member_of(const rapidjson::Value& obj, const char* name, const std::string& prefix) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsNumber()) bad(prefix + name, std::string(name) + " must be a number");
  return it->value.GetDouble();
}

template <>
std::optional<std::int64_t> member_of(const rapidjson::Value& obj, const char* name, const std::string& prefix) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::nullopt;
  auto i = as_int(it->value);
  if (!i) bad(prefix + name, std::string(name) + " must be an integer");
  return i;
}

const rapidjson::Value* object_member(const JsonBody& body, const char* name) {
  const auto* v = body.member(name);
  if (v && !v->IsObject()) bad(name, std::string(name) + " must be an object");
  return v;
}

HardwareInfo parse_hardware(const rapidjson::Value& v) {
  const std::string p = "hardware_info.";
  HardwareInfo h;
  h.cpu_cores = member_of<std::int64_t>(v, "cpu_cores", p);
  h.memory_gb = member_of<double>(v, "memory_gb", p);
  h.storage_gb = member_of<double>(v, "storage_gb", p);
  h.gpu_count = member_of<std::int64_t>(v, "gpu_count", p);
  h.gpu_model = member_of<std::string>(v, "gpu_model", p);
  h.architecture = member_of<std::string>(v, "architecture", p);
  h.os = member_of<std::string>(v, "os", p);
  return h;
}

NodeLocation parse_location(const rapidjson::Value& v) {
  const std::string p = "location.";
  NodeLocation l;
  l.region = member_of<std::string>(v, "region", p);
  l.country = member_of<std::string>(v, "country", p);
  l.city = member_of<std::string>(v, "city", p);
  l.latitude = member_of<double>(v, "latitude", p);
  l.longitude = member_of<double>(v, "longitude", p);
  return l;
}

NodeType node_type_field(const std::string& s) {
  auto t = parse_node_type(s);
  if (!t) bad("node_type", "node_type must be one of worker, validator, storage, compute");
  return *t;
}

std::string pool_uid_field(const std::string& s, const char* field) {
  if (s.rfind("pool_", 0) != 0 || s.size() <= 5) bad(field, std::string(field) + " must match ^pool_[a-zA-Z0-9_-]+$");
  return s;
}

// ---- encoding ----

void write_hardware(JsonWriter& w, const HardwareInfo& h) {
  w.StartObject();
  w.Key("cpu_cores"); write_opt(w, h.cpu_cores);
  w.Key("memory_gb"); write_opt(w, h.memory_gb);
  w.Key("storage_gb"); write_opt(w, h.storage_gb);
  w.Key("gpu_count"); write_opt(w, h.gpu_count);
  w.Key("gpu_model"); write_opt(w, h.gpu_model);
  w.Key("architecture"); write_opt(w, h.architecture);
  w.Key("os"); write_opt(w, h.os);
  w.EndObject();
}

void write_location(JsonWriter& w, const NodeLocation& l) {
  w.StartObject();
  w.Key("region"); write_opt(w, l.region);
  w.Key("country"); write_opt(w, l.country);
  w.Key("city"); write_opt(w, l.city);
  w.Key("latitude"); write_opt(w, l.latitude);
  w.Key("longitude"); write_opt(w, l.longitude);
  w.EndObject();
}

void write_pool(JsonWriter& w, const Pool& p) {
  w.StartObject();
  w.Key("pool_id"); write_string(w, p.uid);
  w.Key("name"); write_string(w, p.name);
  w.Key("description"); write_string(w, p.description);
  w.Key("node_count"); w.Int64(p.node_count);
  w.Key("max_nodes"); write_opt(w, p.max_nodes);
  w.Key("resource_limits");
  w.StartObject();
  w.Key("max_cpu_cores"); write_opt(w, p.limits.max_cpu_cores);
  w.Key("max_memory_gb"); write_opt(w, p.limits.max_memory_gb);
  w.Key("max_storage_gb"); write_opt(w, p.limits.max_storage_gb);
  w.EndObject();
  w.Key("created_at"); write_time(w, p.created_at);
  w.Key("updated_at"); write_time(w, p.updated_at);
  w.EndObject();
}

http::Reply pool_reply(int status, const Pool& p) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_pool(w, p);
  return json_reply(status, buf);
}

http::Reply node_reply(Cluster& cluster, int status, const Node& n, const std::string* code = nullptr,
                       const std::string* join_secret = nullptr) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  if (!code) {
    mgmt::write_node(w, n, cluster);
  } else {
    // The one-time registration code of a created node rides along once,
    // with the join secret its agent must present to collect the key
    // (docs/decisions.md, "Join secrets"). Both are [A-Za-z0-9_-] only.
    rapidjson::StringBuffer inner;
    JsonWriter iw(inner);
    mgmt::write_node(iw, n, cluster);
    std::string s(inner.GetString(), inner.GetSize());
    s.pop_back();
    s += ",\"registration_code\":\"" + *code + "\"";
    if (join_secret) s += ",\"join_secret\":\"" + *join_secret + "\"";
    s += "}";
    http::Reply r;
    r.response.status = status;
    r.response.body = std::move(s);
    return r;
  }
  return json_reply(status, buf);
}

// ---- handlers ----

http::Reply list_nodes(Context& ctx) {
  const auto page = mgmt::page_params(ctx.req);
  NodeQuery q;
  q.page = page.page;
  q.limit = page.limit;
  if (auto s = ctx.req.query_param("status")) {
    q.lifecycle = parse_lifecycle(*s);
    if (!q.lifecycle) bad("query:status", "status must be one of active, inactive, maintenance, error, starting, stopping");
  }
  if (auto p = ctx.req.query_param("pool_id")) q.pool_uid = pool_uid_field(*p, "query:pool_id");
  std::int64_t total = 0;
  auto nodes = ctx.cluster.nodes().query(q, &total);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("nodes");
  w.StartArray();
  for (const auto& n : nodes) mgmt::write_node(w, n, ctx.cluster);
  w.EndArray();
  w.Key("pagination");
  mgmt::write_pagination(w, page, total);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply create_node(Context& ctx) {
  JsonBody body(ctx.req);
  NodeCreate req;
  // Free text (issue 15); Nodes::create bounds it (100 code points). The
  // reader's bound here only stops a huge string early.
  req.name = body.required_string("name", 1000);
  req.hostname = body.optional_string("hostname", 253).value_or("");
  if (auto t = body.optional_string("node_type", 32)) req.node_type = node_type_field(*t);
  if (const auto* h = object_member(body, "hardware_info")) req.hardware = parse_hardware(*h);
  if (const auto* l = object_member(body, "location")) req.location = parse_location(*l);
  if (auto p = body.optional_string("pool_id", 64)) req.pool_uid = pool_uid_field(*p, "pool_id");
  std::string code, secret;
  auto n = ctx.cluster.nodes().create(req, &code, &secret);
  return node_reply(ctx.cluster, 201, n, &code, &secret);
}

http::Reply get_node(Context& ctx) {
  return node_reply(ctx.cluster, 200, ctx.cluster.nodes().get(mgmt::node_uid(ctx)));
}

http::Reply update_node(Context& ctx) {
  JsonBody body(ctx.req);
  NodeUpdate req;
  req.name = body.optional_string("name", 1000);
  if (auto t = body.optional_string("node_type", 32)) req.node_type = node_type_field(*t);
  if (const auto* h = object_member(body, "hardware_info")) req.hardware = parse_hardware(*h);
  if (const auto* l = object_member(body, "location")) req.location = parse_location(*l);
  if (auto s = body.optional_string("status", 32)) {
    req.lifecycle = parse_lifecycle(*s);
    if (!req.lifecycle) bad("status", "status must be one of the Node status values");
  }
  return node_reply(ctx.cluster, 200, ctx.cluster.nodes().update(mgmt::node_uid(ctx), req));
}

// ---- removal, cordon and drain (issue 15; docs/decisions.md) ----

http::Reply remove_node(Context& ctx) {
  ctx.cluster.tasks().remove_node(mgmt::node_uid(ctx));
  http::Reply r;
  r.response.status = 204;
  return r;
}

http::Reply cordon_node(Context& ctx) {
  return node_reply(ctx.cluster, 200, ctx.cluster.nodes().cordon(mgmt::node_uid(ctx)));
}

http::Reply uncordon_node(Context& ctx) {
  return node_reply(ctx.cluster, 200, ctx.cluster.nodes().uncordon(mgmt::node_uid(ctx)));
}

constexpr std::int64_t kDefaultDrainSeconds = 300;

http::Reply drain_node(Context& ctx) {
  std::int64_t seconds = kDefaultDrainSeconds;
  // The body is optional: none (or only whitespace) drains with the default.
  if (ctx.req.body.find_first_not_of(" \t\r\n") != std::string::npos) {
    JsonBody body(ctx.req);
    body.reject_unknown({"deadline_seconds"});
    if (auto v = body.optional_int("deadline_seconds")) seconds = *v;
  }
  // Nodes::drain bounds it (1..86400).
  return node_reply(ctx.cluster, 200, ctx.cluster.nodes().drain(mgmt::node_uid(ctx), std::chrono::seconds(seconds)));
}

http::Reply lifecycle_reply(const LifecycleChange& c, const char* at_key) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("node_id"); write_string(w, c.uid);
  w.Key("status"); w.String(lifecycle_name(c.lifecycle));
  w.Key(at_key); write_time(w, c.at);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply start_node(Context& ctx) {
  return lifecycle_reply(ctx.cluster.nodes().start(mgmt::node_uid(ctx)), "started_at");
}

http::Reply stop_node(Context& ctx) {
  return lifecycle_reply(ctx.cluster.nodes().stop(mgmt::node_uid(ctx)), "stopped_at");
}

http::Reply list_pools(Context& ctx) {
  const auto page = mgmt::page_params(ctx.req);
  std::int64_t total = 0;
  auto pools = ctx.cluster.pools().list(page.page, page.limit, &total);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("pools");
  w.StartArray();
  for (const auto& p : pools) write_pool(w, p);
  w.EndArray();
  w.Key("pagination");
  mgmt::write_pagination(w, page, total);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply create_pool(Context& ctx) {
  JsonBody body(ctx.req);
  PoolCreate req;
  req.name = body.required_string("name", 100);
  req.description = body.optional_string("description", 500).value_or("");
  req.max_nodes = body.optional_int("max_nodes");
  if (const auto* l = object_member(body, "resource_limits")) {
    const std::string p = "resource_limits.";
    req.limits.max_cpu_cores = member_of<std::int64_t>(*l, "max_cpu_cores", p);
    req.limits.max_memory_gb = member_of<double>(*l, "max_memory_gb", p);
    req.limits.max_storage_gb = member_of<double>(*l, "max_storage_gb", p);
  }
  return pool_reply(201, ctx.cluster.pools().create(req));
}

http::Reply add_node_to_pool(Context& ctx) {
  JsonBody body(ctx.req);
  const std::string node = body.required_string("node_id", 64);
  if (node.rfind("node_", 0) != 0 || node.size() <= 5) bad("node_id", "node_id must match ^node_[a-zA-Z0-9_-]+$");
  const auto priority = body.optional_int("priority").value_or(50);
  return pool_reply(200, ctx.cluster.pools().add_node(ctx.params.at(0), node, priority));
}

std::chrono::seconds parse_span(const std::string& s, const char* field,
                                std::initializer_list<std::pair<const char*, long>> allowed) {
  for (const auto& [name, secs] : allowed)
    if (s == name) return std::chrono::seconds(secs);
  std::string names;
  for (const auto& a : allowed) names += (names.empty() ? "" : ", ") + std::string(a.first);
  bad(field, std::string(field).substr(6) + " must be one of " + names);
}

void write_figures(JsonWriter& w, const ResourceFigures& f) {
  w.StartObject();
  w.Key("cpu_percent"); write_opt(w, f.cpu_percent);
  w.Key("memory_percent"); write_opt(w, f.memory_percent);
  w.Key("disk_percent"); write_opt(w, f.disk_percent);
  w.EndObject();
}

http::Reply node_resources(Context& ctx) {
  const std::string range_text = ctx.req.query_param("time_range").value_or("1h");
  const auto range =
      parse_span(range_text, "query:time_range", {{"1h", 3600}, {"6h", 21600}, {"24h", 86400}, {"7d", 604800}});
  auto r = ctx.cluster.nodes().resources(mgmt::node_uid(ctx), range);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("node_id"); write_string(w, r.uid);
  w.Key("time_range"); write_string(w, range_text);
  w.Key("timestamp"); write_time(w, ctx.cluster.clock().now());
  w.Key("current");
  if (r.current) {
    w.StartObject();
    w.Key("cpu_percent"); w.Double(r.current->cpu_usage);
    w.Key("memory_percent"); write_opt(w, r.current->memory_percent);
    w.Key("disk_percent"); w.Double(r.current->disk_usage);
    w.Key("disk_total_gb"); write_opt(w, r.current->disk_total_gb);
    w.Key("uptime_seconds"); write_opt(w, r.current->uptime_seconds);
    w.Key("active_backups"); w.Int64(r.current->active_backups);
    w.Key("sampled_at"); write_time(w, r.current->at);
    w.EndObject();
  } else {
    w.Null();
  }
  w.Key("average"); write_figures(w, r.average);
  w.Key("peak"); write_figures(w, r.peak);
  w.Key("sample_count"); w.Int64(r.sample_count);
  w.Key("hardware_info"); write_hardware(w, r.hardware);
  w.EndObject();
  return json_reply(200, buf);
}

Timestamp time_param(const http::Request& req, const char* name, Timestamp fallback) {
  auto v = req.query_param(name);
  if (!v) return fallback;
  auto t = parse_rfc3339(*v);
  if (!t) bad(std::string("query:") + name, std::string(name) + " must be an RFC 3339 date-time");
  return *t;
}

http::Reply node_metrics(Context& ctx) {
  std::optional<MetricType> type;
  if (auto t = ctx.req.query_param("metric_type")) {
    type = parse_metric_type(*t);
    if (!type) bad("query:metric_type", "metric_type must be one of cpu, memory, disk, network");
  }
  const std::string g_text = ctx.req.query_param("granularity").value_or("5m");
  const auto g = parse_span(g_text, "query:granularity", {{"1m", 60}, {"5m", 300}, {"15m", 900}, {"1h", 3600}});
  const auto now = ctx.cluster.clock().now();
  const auto end = time_param(ctx.req, "end_time", now);
  const auto start = time_param(ctx.req, "start_time", end - std::chrono::hours(1));
  std::vector<MetricSeries> series;
  try {
    series = ctx.cluster.nodes().metrics(mgmt::node_uid(ctx), type, g, start, end);
  } catch (const Error& e) {
    // Every input of metrics() is a query parameter, given or defaulted here
    // (a defaulted one is not in the request for field_location to find).
    if (e.code() != Errc::invalid_argument || e.field().empty()) throw;
    throw Error(e.code(), e.message(), "query:" + e.field(), e.reason());
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("node_id"); write_string(w, mgmt::node_uid(ctx));
  w.Key("granularity"); write_string(w, g_text);
  w.Key("start_time"); write_time(w, start);
  w.Key("end_time"); write_time(w, end);
  w.Key("metrics");
  w.StartArray();
  for (const auto& s : series) {
    w.StartObject();
    w.Key("metric_type"); w.String(metric_type_name(s.type));
    w.Key("unit"); w.String(s.type == MetricType::network ? "bytes_per_second" : "percent");
    w.Key("data_points");
    w.StartArray();
    for (const auto& b : s.buckets) {
      w.StartObject();
      w.Key("timestamp"); write_time(w, b.start);
      w.Key("min"); w.Double(b.min);
      w.Key("avg"); w.Double(std::round(b.avg * 1000) / 1000);
      w.Key("max"); w.Double(b.max);
      w.Key("count"); w.Int64(b.count);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return json_reply(200, buf);
}

constexpr auto kBearer = AuthMode::bearer;
constexpr Role kAny = Role::user;  // the document authorizes by scope (user has no fleet scope; viewer reads)
// Creating a node here makes an approved node without the join/approve flow:
// as approving a join is super_admin in the registration document, so is this.
constexpr Role kSuper = Role::super_admin;
constexpr auto kNodes = RateCategory::nodes;

// The document's table. Node ids are "node_..." (the registration document
// answers integer ids at the same path shapes).
const Route kRoutes[] = {
    {"GET", "/api/v1/nodes", list_nodes, kBearer, kAny, "node:read", kNodes, NodeAccess::deny},
    {"POST", "/api/v1/nodes", create_node, kBearer, kSuper, "node:write", kNodes, NodeAccess::deny},
    {"GET", "/api/v1/nodes/{node_id:node_}", get_node, kBearer, kAny, "node:read", kNodes, NodeAccess::deny},
    {"PUT", "/api/v1/nodes/{node_id:node_}", update_node, kBearer, kAny, "node:write", kNodes, NodeAccess::deny},
    {"POST", "/api/v1/nodes/{node_id:node_}/start", start_node, kBearer, kAny, "node:write", kNodes, NodeAccess::deny},
    {"POST", "/api/v1/nodes/{node_id:node_}/stop", stop_node, kBearer, kAny, "node:write", kNodes, NodeAccess::deny},
    // Ours (issue 15; the documents are silent): operators as for PUT above.
    {"DELETE", "/api/v1/nodes/{node_id:node_}", remove_node, kBearer, kAny, "node:write", kNodes, NodeAccess::deny},
    {"POST", "/api/v1/nodes/{node_id:node_}/cordon", cordon_node, kBearer, kAny, "node:write", kNodes, NodeAccess::deny},
    {"POST", "/api/v1/nodes/{node_id:node_}/uncordon", uncordon_node, kBearer, kAny, "node:write", kNodes, NodeAccess::deny},
    {"POST", "/api/v1/nodes/{node_id:node_}/drain", drain_node, kBearer, kAny, "node:write", kNodes, NodeAccess::deny},
    {"GET", "/api/v1/nodes/pools", list_pools, kBearer, kAny, "node:read", kNodes, NodeAccess::deny},
    {"POST", "/api/v1/nodes/pools", create_pool, kBearer, kAny, "node:write", kNodes, NodeAccess::deny},
    {"POST", "/api/v1/nodes/pools/{pool_id:pool_}/nodes", add_node_to_pool, kBearer, kAny, "node:write", kNodes, NodeAccess::deny},
    {"GET", "/api/v1/nodes/{node_id:node_}/resources", node_resources, kBearer, kAny, "node:read", kNodes, NodeAccess::deny},
    {"GET", "/api/v1/nodes/{node_id:node_}/resources/metrics", node_metrics, kBearer, kAny, "node:read", kNodes, NodeAccess::deny},
    {"GET", "/api/v1/nodes/{node_id:node_}/poot/score", poot_score, kBearer, kAny, "poot:read", RateCategory::poot, NodeAccess::deny},
    {"POST", "/api/v1/nodes/{node_id:node_}/poot/validate", poot_validate, kBearer, kAny, "poot:write", RateCategory::poot, NodeAccess::deny},
    {"POST", "/api/v1/nodes/poot/batch-validate", poot_batch_validate, kBearer, kAny, "poot:write", RateCategory::poot, NodeAccess::deny},
    {"GET", "/api/v1/nodes/{node_id:node_}/payouts", node_payouts, kBearer, kAny, "payout:read", RateCategory::payouts, NodeAccess::deny},
    {"POST", "/api/v1/nodes/payouts/batch", payouts_batch, kBearer, kAny, "payout:write", RateCategory::payouts, NodeAccess::deny},
};

}  // namespace

namespace mgmt {

PageParams page_params(const http::Request& req) {
  PageParams p;
  p.page = query_int(req, "page", 1, 1000000).value_or(1);
  p.limit = query_int(req, "limit", 1, 100).value_or(20);
  return p;
}

void write_pagination(JsonWriter& w, const PageParams& p, std::int64_t total) {
  const std::int64_t pages = total == 0 ? 0 : (total + p.limit - 1) / p.limit;
  w.StartObject();
  w.Key("page"); w.Int64(p.page);
  w.Key("limit"); w.Int64(p.limit);
  w.Key("total"); w.Int64(total);
  w.Key("total_pages"); w.Int64(pages);
  w.Key("has_next"); w.Bool(p.page < pages);
  w.Key("has_prev"); w.Bool(p.page > 1);
  w.EndObject();
}

void write_node(JsonWriter& w, const Node& n, Cluster& cluster) {
  w.StartObject();
  w.Key("node_id"); write_string(w, n.uid);
  // Added (issue 16): the same row's integer id, which the registration
  // document's routes take (/nodes/{id}/quota/status, /sites, /backups).
  w.Key("id"); w.Int64(n.id);
  w.Key("name"); write_string(w, n.name);
  w.Key("status"); w.String(lifecycle_name(n.lifecycle));
  w.Key("node_type"); w.String(node_type_name(n.node_type));
  w.Key("pool_id"); if (n.pool_uid.empty()) w.Null(); else write_string(w, n.pool_uid);
  w.Key("pool_priority"); write_opt(w, n.pool_priority);
  w.Key("hostname"); write_string(w, n.hostname);
  w.Key("registration_status"); w.String(node_status_name(n.status));
  w.Key("hardware_info"); write_hardware(w, n.hardware);
  w.Key("location"); write_location(w, n.location);
  w.Key("created_at"); write_time(w, n.created_at);
  w.Key("updated_at"); write_time(w, n.updated_at);
  w.Key("last_heartbeat"); write_time(w, n.last_seen);
  w.Key("poot_score"); write_opt(w, n.poot_score);
  // Added to the document's fields (issue 15): whether new work may be placed
  // here, and a drain's progress.
  w.Key("schedulable"); w.Bool(n.schedulable());
  w.Key("drain");
  if (n.drain_deadline) {
    const auto running = cluster.tasks().tasks_on(n.id);
    w.StartObject();
    w.Key("deadline"); write_time(w, *n.drain_deadline);
    w.Key("running_tasks"); w.Int64(running);
    w.Key("complete"); w.Bool(running == 0);
    w.EndObject();
  } else {
    w.Null();
  }
  w.EndObject();
}

}  // namespace mgmt

void add_node_management_routes(Router& router) {
  // Paths of this document's shapes; the rest of /api/v1/nodes... is the
  // registration document's.
  router.add_surface("/api/v1/nodes/node_", management_error, kRoutes, std::size(kRoutes));
  router.add_prefix("/api/v1/nodes$", management_error);
  router.add_prefix("/api/v1/nodes/pools", management_error);
  router.add_prefix("/api/v1/nodes/poot", management_error);
  router.add_prefix("/api/v1/nodes/payouts", management_error);
}

void configure_node_management_limits(RateLimiter& limiter, const RateLimits& l) {
  limiter.configure("nodes", {l.nodes_per_minute, std::chrono::seconds(60), 0});
  limiter.configure("admin", {l.admin_per_minute, std::chrono::seconds(60), 0});
  limiter.configure("poot", {l.poot_per_minute, std::chrono::seconds(60), 0});
  limiter.configure("payouts", {l.payouts_per_minute, std::chrono::seconds(60), 0});
}

}  // namespace lucid::server
