// node-registration.md: join, approval, node views, quotas, sites, backups,
// stats streams; and the agent-side reporting endpoints.
//
// Errors follow the FastAPI convention this document's clients were written
// against (docs/decisions.md): {"detail": "message"} for 4xx, and for a bad
// field 422 {"detail": [{"loc": [...], "msg": ..., "type": ...}]}.
#include <cmath>

#include "error_response.hpp"
#include "json.hpp"
#include "routes/routes.hpp"
#include "server_env.hpp"
#include "sse.hpp"

namespace lucid::server {

namespace {

// ---- the document's error format: the one place it is encoded ----

http::Response detail_response(int status, std::string_view message) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("detail");
  write_string(w, message);
  w.EndObject();
  http::Response r;
  r.status = status;
  r.body.assign(buf.GetString(), buf.GetSize());
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

http::Response validation_response(const Failure& f) {
  // field_location: the core's bare "name", the server's "query:name" /
  // "path:name"; a dotted path ("sites.0.site_name") names a member of a list.
  const Error& e = *f.error;
  auto [where, name] = field_location(f);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("detail");
  w.StartArray();
  w.StartObject();
  w.Key("loc");
  w.StartArray();
  write_string(w, where);
  if (!name.empty() && name != "body") {
    std::size_t start = 0;
    while (true) {
      const auto dot = name.find('.', start);
      const std::string part = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (!part.empty() && part.find_first_not_of("0123456789") == std::string::npos && part.size() < 10)
        w.Int(std::stoi(part));
      else
        write_string(w, part);
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
  }
  w.EndArray();
  w.Key("msg");
  write_string(w, e.message());
  w.Key("type");
  w.String(e.message() == "field required" ? "value_error.missing" : "value_error");
  w.EndObject();
  w.EndArray();
  w.EndObject();
  http::Response r;
  r.status = 422;
  r.body.assign(buf.GetString(), buf.GetSize());
  return r;
}

http::Response registration_error(const Failure& f) {
  switch (f.kind) {
    case FailureKind::malformed_json: return detail_response(400, f.message);
    case FailureKind::route_not_found: return detail_response(404, "Not Found");
    case FailureKind::method_not_allowed: return detail_response(405, "Method Not Allowed");
    case FailureKind::server_protocol: return detail_response(f.status, f.message);
    case FailureKind::rate_limited: return detail_response(429, f.message);
    case FailureKind::internal: return detail_response(500, "Internal Server Error");
    case FailureKind::error: break;
  }
  const Error& e = *f.error;
  switch (e.code()) {
    case Errc::invalid_argument: return validation_response(f);
    case Errc::not_found: return detail_response(404, e.message());
    case Errc::conflict: return detail_response(409, e.message());
    case Errc::unauthenticated: return detail_response(401, e.message());
    case Errc::permission_denied: return detail_response(403, e.message());
    case Errc::resource_exhausted: {
      auto r = detail_response(429, e.message());
      r.headers.emplace_back("Retry-After", "60");
      return r;
    }
    case Errc::unavailable: {
      auto r = detail_response(503, e.message());
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    case Errc::storage:
    case Errc::internal: return detail_response(503, "Service temporarily unavailable");
  }
  return detail_response(500, "Internal Server Error");
}

// ---- encoding of the document's shapes ----

void write_sample(JsonWriter& w, const StatsSample& s) {
  w.StartObject();
  w.Key("cpu_usage"); w.Double(s.cpu_usage);
  w.Key("disk_usage"); w.Double(s.disk_usage);
  w.Key("active_backups"); w.Int64(s.active_backups);
  w.Key("memory_percent"); write_opt(w, s.memory_percent);
  w.Key("uptime_seconds"); write_opt(w, s.uptime_seconds);
  w.Key("timestamp"); write_string(w, format_rfc3339(s.at));
  w.EndObject();
}

void write_stats(JsonWriter& w, const Node& n) {
  w.Key("stats");
  w.StartArray();
  for (const auto& s : n.recent_stats) write_sample(w, s);
  w.EndArray();
}

double gb(std::int64_t bytes) { return std::round(static_cast<double>(bytes) / (1024.0 * 1024 * 1024) * 100) / 100; }

// NodeResponse: what approve and quota updates return.
void write_node_fields(JsonWriter& w, const Node& n) {
  w.Key("id"); w.Int64(n.id);
  w.Key("uuid"); write_string(w, n.uuid);
  w.Key("hostname"); write_string(w, n.hostname);
  w.Key("ip_address"); write_string(w, n.ip_address);
  w.Key("status"); w.String(node_status_name(n.status));
  w.Key("is_master"); w.Bool(n.is_master);
  w.Key("storage_quota_gb"); w.Double(n.storage_quota_gb);
  w.Key("storage_used_bytes"); w.Int64(n.storage_used_bytes);
  w.Key("health"); w.String(liveness_name(n.liveness));
  w.Key("last_seen"); write_time(w, n.last_seen);
  w.Key("created_at"); write_string(w, format_rfc3339(n.created_at));
  w.Key("approved_at"); write_time(w, n.approved_at);
}

http::Reply node_response(const Node& n) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  write_node_fields(w, n);
  w.EndObject();
  return json_reply(200, buf);
}

// The unified stream's node object (document: "SSE Event").
void write_live(JsonWriter& w, const Nodes::LiveNode& n) {
  w.StartObject();
  w.Key("id"); w.Int64(n.id);
  w.Key("hostname"); write_string(w, n.hostname);
  w.Key("status"); w.String(liveness_name(n.liveness));
  w.Key("is_master"); w.Bool(n.is_master);
  w.Key("cpu_percent"); if (n.latest) w.Double(n.latest->cpu_usage); else w.Null();
  w.Key("memory_percent"); write_opt(w, n.latest ? n.latest->memory_percent : std::nullopt);
  w.Key("disk_percent"); if (n.latest) w.Double(n.latest->disk_usage); else w.Null();
  w.Key("uptime_seconds"); write_opt(w, n.latest ? n.latest->uptime_seconds : std::nullopt);
  w.Key("active_backups"); if (n.latest) w.Int64(n.latest->active_backups); else w.Null();
  w.Key("last_seen"); write_time(w, n.last_seen);
  w.EndObject();
}

Page page_from_query(const http::Request& req, std::int64_t default_limit, std::int64_t max_limit) {
  Page p;
  p.skip = query_int(req, "skip", 0, 1000000000).value_or(0);
  p.limit = query_int(req, "limit", 1, max_limit).value_or(default_limit);
  return p;
}

// ---- handlers ----

http::Reply join_request(Context& ctx) {
  JsonBody body(ctx.req);
  JoinRequest jr;
  jr.hostname = body.required_string("hostname", 253);
  jr.ip_address = body.optional_string("ip_address", 45).value_or("");
  jr.system_info = body.optional_string("system_info", 1024).value_or("");
  // A re-join of a pending hostname presents the secret of the first join.
  jr.join_secret = body.optional_string("join_secret", 128).value_or("");
  auto r = ctx.cluster.nodes().request_join(jr);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("request_id"); write_string(w, std::to_string(r.request_id));
  w.Key("registration_code"); write_string(w, r.registration_code);
  w.Key("message");
  write_string(w, r.already_active ? "Node is already registered and active."
                                   : "Join request submitted. Give code " + r.registration_code + " to admin.");
  // Added to the document's fields, only in the response that created the
  // request: the agent keeps it for re-joins and key collection.
  if (!r.join_secret.empty()) {
    w.Key("join_secret");
    write_string(w, r.join_secret);
  }
  w.EndObject();
  return json_reply(200, buf);
}

// The join secret of a key collection travels in a header, so that it stays
// out of URLs and access logs.
constexpr const char* kJoinSecretHeader = "x-join-secret";

http::Reply status_by_code(Context& ctx) {
  CodePoll poll;
  const std::string* secret = ctx.req.header(kJoinSecretHeader);
  try {
    poll = ctx.cluster.nodes().poll_by_code(ctx.params[0], secret ? std::string_view(*secret) : std::string_view());
  } catch (const Error& e) {
    // The code came in the path, the secret in a header: say so in the error's loc.
    if (e.code() == Errc::invalid_argument)
      throw Error(e.code(), e.message(), e.field() == "join_secret" ? "header:x-join-secret" : "path:code");
    throw;
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("status"); w.String(node_status_name(poll.status));
  w.Key("api_key"); if (poll.api_key) write_string(w, *poll.api_key); else w.Null();
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply status_by_request(Context& ctx) {
  const auto id = path_id(ctx.params[0], "Join request");
  auto status = ctx.cluster.nodes().status_of_request(id);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("request_id"); write_string(w, std::to_string(id));
  w.Key("status"); w.String(node_status_name(status));
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply approve(Context& ctx) {
  return node_response(ctx.cluster.nodes().approve(path_id(ctx.params[0], "Node")));
}

// One value of register-by-code from the query or the body (issue 15: the
// original dashboard sends query parameters). Upper-cased for comparing
// codes; addresses compare as written.
struct CodeParam {
  std::optional<std::string> value;
  bool from_query = false;
};

// `name` (or `alias`) from the query and from `body` (null: no body). Both
// given and different: the reply to send (the document's 400); else nullopt
// and `out` set.
std::optional<http::Reply> code_param(const http::Request& req, const JsonBody* body, const char* name,
                                      const char* alias, bool upper, CodeParam& out) {
  auto q = req.query_param(name);
  if (!q && alias) q = req.query_param(alias);
  std::optional<std::string> b;
  if (body) {
    b = body->optional_string(name, 64);
    if (!b && alias) b = body->optional_string(alias, 64);
  }
  if (q && q->size() > 64) throw Error(Errc::invalid_argument, std::string(name) + " is too long", std::string("query:") + name);
  auto norm = [upper](std::string v) {
    if (upper)
      for (char& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return v;
  };
  if (q && b && norm(*q) != norm(*b)) {
    http::Reply r;
    r.response = detail_response(400, std::string("The query parameter and the body disagree on ") + name +
                                          "; give it once");
    return r;
  }
  out.from_query = q && !b;
  out.value = b ? b : q;
  return std::nullopt;
}

http::Reply register_by_code(Context& ctx) {
  // The body form ({"code": ..., "ip_address": ...}) and the query form
  // (?code=...&ip_address=...) are both accepted; a body is optional when the
  // query has the code. "registration_code" (the join response's field
  // name) is accepted for "code".
  std::optional<JsonBody> body;
  const bool has_body = ctx.req.body.find_first_not_of(" \t\r\n") != std::string::npos;
  const bool query_code = ctx.req.query_param("code") || ctx.req.query_param("registration_code");
  if (has_body || !query_code) body.emplace(ctx.req);  // no code anywhere: "Request body is empty" as before
  CodeParam code, ip;
  if (auto r = code_param(ctx.req, body ? &*body : nullptr, "code", "registration_code", true, code)) return std::move(*r);
  if (auto r = code_param(ctx.req, body ? &*body : nullptr, "ip_address", nullptr, false, ip)) return std::move(*r);
  if (!code.value) throw Error(Errc::invalid_argument, "field required", "code");
  try {
    return node_response(ctx.cluster.nodes().approve_by_code(*code.value, ip.value.value_or("")));
  } catch (const Error& e) {
    // Say where a bad value came from.
    const bool query = (e.field() == "code" && code.from_query) || (e.field() == "ip_address" && ip.from_query);
    if (e.code() == Errc::invalid_argument && query) throw Error(e.code(), e.message(), "query:" + e.field());
    throw;
  }
}

http::Reply list_nodes(Context& ctx) {
  auto nodes = ctx.cluster.nodes().list(page_from_query(ctx.req, 1000, 5000));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartArray();
  for (const auto& n : nodes) {
    w.StartObject();
    write_node_fields(w, n);
    write_stats(w, n);
    w.EndObject();
  }
  w.EndArray();
  return json_reply(200, buf);
}

http::Reply get_node(Context& ctx) {
  auto n = ctx.cluster.nodes().get(path_id(ctx.params[0], "Node"), 10);
  // total_available_gb is a number, as the document's example shows (issue
  // 15; docs/decisions.md): the newest disk report's disk_total_gb; before
  // any, the capacity the node declared (hardware_info.storage_gb), then what
  // its agent reported as a device (capabilities.storage_total_gb); else 0.
  std::optional<double> disk_total;
  for (const auto& s : n.recent_stats)
    if (s.disk_total_gb) { disk_total = s.disk_total_gb; break; }
  if (!disk_total) disk_total = n.hardware.storage_gb;
  if (!disk_total && n.status == NodeStatus::active) {
    try {
      auto d = ctx.cluster.tasks().device(n.uid);
      if (d.reported) disk_total = d.capabilities.storage_total_gb;
    } catch (const Error& e) {
      if (e.code() != Errc::not_found) throw;  // a removed device: nothing declared
    }
  }
  if (!disk_total) disk_total = 0.0;
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  write_node_fields(w, n);
  w.Key("system_info"); write_string(w, n.system_info);
  w.Key("total_available_gb"); write_opt(w, disk_total);
  w.Key("storage_used_gb"); w.Double(gb(n.storage_used_bytes));
  w.Key("sites_count"); w.Int64(n.sites_count);
  w.Key("backups_count"); w.Int64(n.backups_count);
  write_stats(w, n);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply put_quota(Context& ctx) {
  const auto id = path_id(ctx.params[0], "Node");
  JsonBody body(ctx.req);
  const double q = body.required_number("storage_quota_gb");
  return node_response(ctx.cluster.nodes().set_quota(id, q));
}

http::Reply quota_status(Context& ctx) {
  auto st = ctx.cluster.nodes().quota_status(path_id(ctx.params[0], "Node"));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("node_id"); w.Int64(st.node_id);
  w.Key("hostname"); write_string(w, st.hostname);
  w.Key("used_gb"); w.Double(st.used_gb);
  w.Key("quota_gb"); w.Double(st.quota_gb);
  w.Key("usage_percent"); w.Double(st.usage_percent);
  w.Key("is_over_quota"); w.Bool(st.is_over_quota);
  w.Key("sites_count"); w.Int64(static_cast<std::int64_t>(st.sites.size()));
  w.Key("sites_over_quota"); w.Int64(st.sites_over_quota);
  w.Key("sites_warning"); w.Int64(st.sites_warning);
  w.Key("sites_breakdown");
  w.StartArray();
  for (const auto& s : st.sites) {
    w.StartObject();
    w.Key("site_id"); w.Int64(s.site.id);
    w.Key("site_name"); write_string(w, s.site.name);
    w.Key("used_gb"); w.Double(s.used_gb);
    w.Key("quota_gb"); write_opt(w, s.site.quota_gb);
    w.Key("usage_percent"); write_opt(w, s.usage_percent);
    w.Key("is_over_quota"); w.Bool(s.is_over_quota);
    w.Key("is_warning"); w.Bool(s.is_warning);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return json_reply(200, buf);
}

void write_site(JsonWriter& w, const Site& s) {
  w.StartObject();
  w.Key("id"); w.Int64(s.id);
  w.Key("site_name"); write_string(w, s.name);
  w.Key("used_bytes"); w.Int64(s.used_bytes);
  w.Key("used_gb"); w.Double(gb(s.used_bytes));
  w.Key("quota_gb"); write_opt(w, s.quota_gb);
  w.Key("updated_at"); write_string(w, format_rfc3339(s.updated_at));
  w.EndObject();
}

// {"sites": [...], "total": n}: the node's site list and the agent's report answer.
http::Reply sites_reply(const std::vector<Site>& sites, std::int64_t total) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("sites");
  w.StartArray();
  for (const auto& s : sites) write_site(w, s);
  w.EndArray();
  w.Key("total"); w.Int64(total);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply list_sites(Context& ctx) {
  const auto id = path_id(ctx.params[0], "Node");
  std::int64_t total = 0;
  auto sites = ctx.cluster.nodes().sites(id, page_from_query(ctx.req, 50, 1000), &total);
  return sites_reply(sites, total);
}

void write_backup(JsonWriter& w, const Backup& b) {
  w.StartObject();
  w.Key("id"); w.Int64(b.id);
  w.Key("site_id"); write_opt(w, b.site_id);
  w.Key("site_name"); if (b.site_name.empty()) w.Null(); else write_string(w, b.site_name);
  w.Key("filename"); write_string(w, b.filename);
  w.Key("size_bytes"); w.Int64(b.size_bytes);
  w.Key("size_gb"); w.Double(gb(b.size_bytes));
  w.Key("s3_path"); write_string(w, b.s3_path);
  w.Key("created_at"); write_string(w, format_rfc3339(b.created_at, true));
  w.Key("backup_type"); write_string(w, b.backup_type);
  w.Key("status"); write_string(w, b.status);
  w.Key("storage_provider"); write_string(w, b.storage_provider);
  w.EndObject();
}

http::Reply list_backups(Context& ctx) {
  const auto id = path_id(ctx.params[0], "Node");
  auto site = query_int(ctx.req, "site_id", 1, INT64_MAX);
  std::int64_t total = 0;
  auto backups = ctx.cluster.nodes().backups(id, page_from_query(ctx.req, 50, 500), site, &total);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("backups");
  w.StartArray();
  for (const auto& b : backups) write_backup(w, b);
  w.EndArray();
  w.Key("total"); w.Int64(total);
  w.EndObject();
  return json_reply(200, buf);
}

std::chrono::seconds stream_interval(const http::Request& req) {
  return std::chrono::seconds(query_int(req, "interval", 1, 60).value_or(5));
}

http::Reply stream_all(Context& ctx) {
  const auto interval = stream_interval(ctx.req);  // checked before the stream starts
  auto* cache = &ctx.env.snapshot;
  return sse_reply(interval, [cache]() -> std::optional<std::string> { return *cache->get(); }, caller_recheck(ctx));
}

http::Reply stream_one(Context& ctx) {
  const auto id = path_id(ctx.params[0], "Node");
  const auto interval = stream_interval(ctx.req);
  Nodes* nodes = &ctx.cluster.nodes();
  nodes->live_view(id);  // 404 before the stream starts
  const Clock* clock = &ctx.cluster.clock();
  return sse_reply(interval, [nodes, id, clock]() -> std::optional<std::string> {
    auto n = nodes->live_view(id);
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    w.StartObject();
    w.Key("timestamp"); write_string(w, format_rfc3339(clock->now()));
    w.Key("node"); write_live(w, n);
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
  }, caller_recheck(ctx));
}

// ---- agent reporting (node API key) ----

http::Reply report_stats(Context& ctx) {
  JsonBody body(ctx.req);
  StatsSample s;
  s.cpu_usage = body.required_number("cpu_usage");
  s.disk_usage = body.required_number("disk_usage");
  s.active_backups = body.required_int("active_backups");
  s.memory_percent = body.optional_number("memory_percent");
  s.uptime_seconds = body.optional_int("uptime_seconds");
  s.disk_total_gb = body.optional_number("disk_total_gb");
  ctx.cluster.nodes().report_stats(ctx.caller.node_id, s);
  http::Reply r;
  r.response.body = R"({"status":"ok"})";
  return r;
}

http::Reply report_sites(Context& ctx) {
  JsonBody body(ctx.req);
  const auto* arr = body.member("sites");
  if (!arr) throw Error(Errc::invalid_argument, "field required", "sites");
  if (!arr->IsArray()) throw Error(Errc::invalid_argument, "sites must be an array", "sites");
  if (arr->Size() > 1000) throw Error(Errc::invalid_argument, "at most 1000 sites per report", "sites");
  std::vector<SiteReport> reports;
  for (rapidjson::SizeType i = 0; i < arr->Size(); ++i) {
    const auto& v = (*arr)[i];
    const std::string at = "sites." + std::to_string(i) + ".";
    if (!v.IsObject()) throw Error(Errc::invalid_argument, "each site must be an object", "sites." + std::to_string(i));
    auto name = v.FindMember("site_name");
    auto used = v.FindMember("used_bytes");
    auto quota = v.FindMember("quota_gb");
    SiteReport r;
    if (name == v.MemberEnd() || name->value.IsNull())
      throw Error(Errc::invalid_argument, "field required", at + "site_name");
    if (!name->value.IsString()) throw Error(Errc::invalid_argument, "site_name must be a string", at + "site_name");
    r.name.assign(name->value.GetString(), name->value.GetStringLength());
    if (used == v.MemberEnd() || used->value.IsNull())
      throw Error(Errc::invalid_argument, "field required", at + "used_bytes");
    auto used_int = as_int(used->value);
    if (!used_int) throw Error(Errc::invalid_argument, "used_bytes must be an integer", at + "used_bytes");
    r.used_bytes = *used_int;
    if (quota != v.MemberEnd() && !quota->value.IsNull()) {
      if (!quota->value.IsNumber()) throw Error(Errc::invalid_argument, "quota_gb must be a number", at + "quota_gb");
      r.quota_gb = quota->value.GetDouble();
    }
    reports.push_back(std::move(r));
  }
  auto sites = ctx.cluster.nodes().report_sites(ctx.caller.node_id, reports);
  return sites_reply(sites, static_cast<std::int64_t>(sites.size()));
}

http::Reply report_backup(Context& ctx) {
  JsonBody body(ctx.req);
  BackupReport r;
  r.site_name = body.optional_string("site_name", 253).value_or("");
  r.filename = body.required_string("filename", 512);
  r.size_bytes = body.required_int("size_bytes");
  r.s3_path = body.optional_string("s3_path", 1024).value_or("");
  r.backup_type = body.optional_string("backup_type", 32).value_or("full");
  r.status = body.optional_string("status", 32).value_or("SUCCESS");
  r.storage_provider = body.optional_string("storage_provider", 128).value_or("");
  if (auto t = body.optional_string("created_at", 64)) {
    r.created_at = parse_rfc3339(*t);
    if (!r.created_at) throw Error(Errc::invalid_argument, "created_at must be an RFC 3339 date-time", "created_at");
  }
  auto b = ctx.cluster.nodes().report_backup(ctx.caller.node_id, r);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_backup(w, b);
  return json_reply(201, buf);
}

// The node's Ed25519 key for signing PoOT proofs (docs/poot.md); replaces any previous one.
http::Reply register_public_key(Context& ctx) {
  JsonBody body(ctx.req);
  const auto k = ctx.cluster.poot().register_public_key(ctx.caller.node_id, body.required_string("public_key", 64));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("status"); w.String("ok");
  w.Key("public_key"); write_string(w, k.public_key);
  w.Key("registered_at"); write_time(w, k.registered_at);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply advance_clock(Context& ctx) {
  JsonBody body(ctx.req);
  const auto secs = body.required_int("seconds");
  if (secs < 0 || secs > 10LL * 365 * 86400)
    throw Error(Errc::invalid_argument, "seconds must be between 0 and 315360000", "seconds");
  ctx.env.test_clock->advance(std::chrono::seconds(secs));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("now"); write_string(w, format_rfc3339(ctx.env.test_clock->now()));
  w.EndObject();
  return json_reply(200, buf);
}

constexpr Role kAny = Role::user;       // public and node_key routes: the role is not consulted
constexpr Role kAllUsers = Role::viewer;  // the document's "All Users": staff of the fleet, not self-service accounts
constexpr Role kNodeAdmin = Role::node_operator;
constexpr Role kSuper = Role::super_admin;
// The registration document sets no rate limits. The public join and status
// routes are limited per client address (RateCategory::registration, --rate-join;
// docs/decisions.md "Join secrets, expiry and rate limits"); agents report at
// their own interval.
constexpr auto kN = RateCategory::none;
constexpr auto kReg = RateCategory::registration;

// The document's table, as written ("All Users" = any valid token,
// "Node Admin+" = node_operator and above, "Super Admin" = super_admin).
const Route kRoutes[] = {
    {"POST", "/api/v1/nodes/join-request", join_request, AuthMode::none, kAny, nullptr, kReg, NodeAccess::deny},
    {"GET", "/api/v1/nodes/status/code/{code}", status_by_code, AuthMode::none, kAny, nullptr, kReg, NodeAccess::deny, /*head_as_get=*/false},
    {"GET", "/api/v1/nodes/status/{request_id}", status_by_request, AuthMode::none, kAny, nullptr, kReg, NodeAccess::deny},
    {"POST", "/api/v1/nodes/approve/{id}", approve, AuthMode::bearer, kSuper, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/v1/nodes/register-by-code", register_by_code, AuthMode::bearer, kSuper, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/v1/nodes/", list_nodes, AuthMode::bearer, kAllUsers, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/v1/nodes/{id}", get_node, AuthMode::bearer, kNodeAdmin, nullptr, kN, NodeAccess::deny},
    {"PUT", "/api/v1/nodes/{id}/quota", put_quota, AuthMode::bearer, kSuper, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/v1/nodes/{id}/quota/status", quota_status, AuthMode::bearer, kNodeAdmin, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/v1/nodes/{id}/sites", list_sites, AuthMode::bearer, kNodeAdmin, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/v1/nodes/{id}/backups", list_backups, AuthMode::bearer, kNodeAdmin, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/v1/metrics/nodes/stats/stream", stream_all, AuthMode::bearer_or_query, kNodeAdmin, nullptr, kN, NodeAccess::deny, /*head_as_get=*/false},
    {"GET", "/api/v1/metrics/nodes/{id}/stats/stream", stream_one, AuthMode::bearer_or_query, kNodeAdmin, nullptr, kN, NodeAccess::deny, /*head_as_get=*/false},
    // Agent reporting (designed here; README "Agent API").
    {"POST", "/api/v1/stats/", report_stats, AuthMode::node_key, kAny, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/v1/stats/sites", report_sites, AuthMode::node_key, kAny, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/v1/stats/backups", report_backup, AuthMode::node_key, kAny, nullptr, kN, NodeAccess::deny},
    {"PUT", "/api/v1/stats/public-key", register_public_key, AuthMode::node_key, kAny, nullptr, kN, NodeAccess::deny},
};

const Route kTestClockRoutes[] = {
    {"POST", "/api/v1/_test/clock/advance", advance_clock, AuthMode::bearer, kSuper, nullptr, RateCategory::none, NodeAccess::deny},
};

}  // namespace

std::string encode_all_nodes_event(Cluster& cluster) {
  auto nodes = cluster.nodes().live_view();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("timestamp"); write_string(w, format_rfc3339(cluster.clock().now()));
  w.Key("nodes");
  w.StartArray();
  for (const auto& n : nodes)
    if (n.status == NodeStatus::active) write_live(w, n);
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void configure_registration_limits(RateLimiter& limiter, std::int64_t per_minute) {
  limiter.configure(rate_category_name(RateCategory::registration), {per_minute, std::chrono::seconds(60), 0});
}

void add_node_registration_routes(Router& router) {
  router.add_surface("/api/v1/", registration_error, kRoutes, std::size(kRoutes));
}

void add_test_clock_routes(Router& router) {
  router.add_surface("/api/v1/_test/", registration_error, kTestClockRoutes, std::size(kTestClockRoutes));
}

}  // namespace lucid::server
