// cluster-devices-tasks.md: /health, /api/v1/cluster/*, /api/v1/devices*,
// /api/v1/tasks*, /api/v1/config*. Every answer is the document's envelope;
// errors its error form (the one encoder below).
#include <cmath>

#include "json.hpp"
#include "routes/cluster_common.hpp"
#include "routes/routes.hpp"
#include "server_env.hpp"
#include "tasks/task_codec.hpp"
#include "util/json.hpp"

namespace lucid::server {

namespace cluster_api {

namespace {

struct Code {
  int status;
  const char* code;
};

Code code_for(const Error& e) {
  switch (e.code()) {
    case Errc::invalid_argument: return {400, "VALIDATION_ERROR"};
    case Errc::not_found:
      if (e.reason() == Reason::task_not_found) return {404, "TASK_NOT_FOUND"};
      if (e.reason() == Reason::device_not_found) return {404, "DEVICE_NOT_FOUND"};
      return {404, "NOT_FOUND"};
    case Errc::conflict: return {409, "CONFLICT"};
    case Errc::unauthenticated: return {401, "UNAUTHORIZED"};
    case Errc::permission_denied: return {403, "UNAUTHORIZED"};
    case Errc::resource_exhausted: return {429, "RATE_LIMIT_EXCEEDED"};
    case Errc::unavailable: return {503, "SERVICE_UNAVAILABLE"};
    case Errc::storage:
    case Errc::internal: break;
  }
  return {500, "INTERNAL_ERROR"};
}

}  // namespace

http::Response cluster_error(const Failure& f) {
  Code c{500, "INTERNAL_ERROR"};
  std::string message = f.message;
  std::string field, reason;
  switch (f.kind) {
    case FailureKind::error:
      c = code_for(*f.error);
      field = f.error->field();
      reason = c.status == 400 ? "validation_error" : errc_name(f.error->code());
      if (f.error->code() == Errc::storage || f.error->code() == Errc::internal) message = "Internal error";
      break;
    case FailureKind::malformed_json:
      c = {400, "VALIDATION_ERROR"};
      field = "body";
      reason = "malformed_json";
      break;
    case FailureKind::route_not_found: c = {404, "NOT_FOUND"}; reason = "route_not_found"; break;
    case FailureKind::method_not_allowed: c = {405, "METHOD_NOT_ALLOWED"}; reason = "method_not_allowed"; break;
    case FailureKind::rate_limited: c = {429, "RATE_LIMIT_EXCEEDED"}; reason = "rate_limited"; break;
    case FailureKind::server_protocol:
      c = {f.status, f.status == 503 ? "SERVICE_UNAVAILABLE" : f.status >= 500 ? "INTERNAL_ERROR" : "VALIDATION_ERROR"};
      reason = "protocol_error";
      break;
    case FailureKind::internal: message = "Internal error"; reason = "internal"; break;
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("status"); w.String("error");
  w.Key("message"); write_string(w, message);
  w.Key("error_code"); w.String(c.code);
  w.Key("error_details");
  w.StartObject();
  if (!field.empty()) {
    w.Key("field");
    // "query:page" -> "page"; the document's details name the field only.
    write_string(w, field.rfind("query:", 0) == 0 ? field.substr(6) : field);
  }
  if (!reason.empty()) { w.Key("reason"); write_string(w, reason); }
  w.EndObject();
  w.Key("timestamp"); write_time(w, f.at);
  w.Key("request_id"); write_string(w, f.request_id);
  w.EndObject();
  http::Response r;
  r.status = c.status;
  r.body.assign(buf.GetString(), buf.GetSize());
  return r;
}

void begin(JsonWriter& w) {
  w.StartObject();
  w.Key("status"); w.String("success");
  w.Key("data");
}

http::Response finish_response(Cluster& cluster, const std::string& request_id, const rapidjson::StringBuffer& buf,
                               JsonWriter& w, int status, const char* message) {
  w.Key("message"); w.String(message);
  w.Key("timestamp"); write_time(w, cluster.clock().now());
  w.Key("request_id"); write_string(w, request_id);
  w.EndObject();
  http::Response r;
  r.status = status;
  r.body.assign(buf.GetString(), buf.GetSize());
  return r;
}

http::Reply finish(const Context& ctx, const rapidjson::StringBuffer& buf, JsonWriter& w, int status,
                   const char* message) {
  http::Reply r;
  r.response = finish_response(ctx.cluster, ctx.request_id, buf, w, status, message);
  return r;
}

void write_raw_json(JsonWriter& w, const std::string& text) {
  rapidjson::Document d;
  if (!detail::parse_json(d, text)) w.Null();
  else d.Accept(w);
}

namespace {

std::string human_duration(std::int64_t seconds) {
  const std::int64_t d = seconds / 86400, h = seconds % 86400 / 3600, m = seconds % 3600 / 60;
  if (d) return std::to_string(d) + "d " + std::to_string(h) + "h " + std::to_string(m) + "m";
  if (h) return std::to_string(h) + "h " + std::to_string(m) + "m";
  if (m) return std::to_string(m) + "m";
  return std::to_string(seconds) + "s";
}

void write_strings(JsonWriter& w, const std::vector<std::string>& v) {
  w.StartArray();
  for (const auto& s : v) write_string(w, s);
  w.EndArray();
}

void write_counts(JsonWriter& w, const std::map<std::string, std::int64_t>& m) {
  w.StartObject();
  for (const auto& [k, v] : m) {
    write_string(w, k);  // as a key
    w.Int64(v);
  }
  w.EndObject();
}

double round2(double v) { return std::round(v * 100) / 100; }

}  // namespace

void write_device(JsonWriter& w, const Device& d, Timestamp now) {
  w.StartObject();
  w.Key("device_id"); write_string(w, d.device_id);
  w.Key("hostname"); write_string(w, d.hostname);
  w.Key("role"); write_string(w, d.role);
  w.Key("platform"); write_string(w, d.platform);
  w.Key("status"); w.String(d.online ? "online" : "offline");
  w.Key("ip_address"); write_string(w, d.ip_address);
  w.Key("last_heartbeat"); write_time(w, d.last_heartbeat);
  w.Key("uptime");
  if (d.online && d.online_since)
    write_string(w, human_duration(std::chrono::duration_cast<std::chrono::seconds>(now - *d.online_since).count()));
  else
    w.Null();
  w.Key("capabilities");
  w.StartObject();
  w.Key("cpu_count"); w.Int64(d.capabilities.cpu_count);
  w.Key("memory_total_gb"); w.Double(round2(d.capabilities.memory_total_gb));
  w.Key("storage_total_gb"); w.Double(round2(d.capabilities.storage_total_gb));
  w.Key("has_gpu"); w.Bool(d.capabilities.has_gpu);
  w.Key("internet"); w.Bool(d.capabilities.internet);
  w.EndObject();
  w.Key("tags"); write_strings(w, d.tags);
  w.Key("allowed_task_types"); write_strings(w, d.allowed_task_types);
  w.Key("max_concurrent"); w.Int64(d.max_concurrent);
  w.Key("active_tasks"); w.Int64(d.active_tasks);
  w.Key("agent_version"); write_string(w, d.agent_version);
  w.Key("reported"); w.Bool(d.reported);
  w.EndObject();
}

namespace {

void write_device_id(JsonWriter& w, const Task& t) {
  if (t.device_id.empty()) w.Null(); else write_string(w, t.device_id);
}

}  // namespace

void write_task(JsonWriter& w, const Task& t, bool full) {
  detail::write_task_json(w, t, detail::TaskJsonStyle{full, false});
}

void write_task_result(JsonWriter& w, const Task& t, bool full) {
  detail::write_task_result_json(w, t, detail::TaskResultStyle{full, false, false});
}

}  // namespace cluster_api

namespace {

using namespace cluster_api;

ClusterApiLimits g_limits;  // set once at startup, before serving

[[noreturn]] void bad(const std::string& field, const std::string& msg) {
  throw Error(Errc::invalid_argument, msg, field);
}

std::int64_t page_param(const Context& ctx) { return query_int(ctx.req, "page", 1, 1000000).value_or(1); }
std::int64_t page_size_param(const Context& ctx) { return query_int(ctx.req, "page_size", 1, 100).value_or(20); }

void write_pagination(JsonWriter& w, std::int64_t page, std::int64_t page_size, std::int64_t total) {
  const std::int64_t pages = (total + page_size - 1) / page_size;
  w.Key("pagination");
  w.StartObject();
  w.Key("page"); w.Int64(page);
  w.Key("page_size"); w.Int64(page_size);
  w.Key("total_items"); w.Int64(total);
  w.Key("total_pages"); w.Int64(pages);
  w.Key("has_next"); w.Bool(page < pages);
  w.Key("has_previous"); w.Bool(page > 1);
  w.EndObject();
}

// Comma-separated list in a query parameter.
std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= s.size()) {
    auto j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

const std::string& param(const Context& ctx) { return ctx.params.at(0); }

// An optional JSON string array field (detail::string_array).
std::optional<std::vector<std::string>> string_list(const rapidjson::Value* v, const std::string& field,
                                                    std::size_t max_items) {
  if (!v) return std::nullopt;
  return detail::string_array(*v, field, max_items);
}

// ---- health and cluster ----

http::Reply health(Context& ctx) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  std::string db = "healthy";
  try {
    ctx.cluster.tasks().statistics();
  } catch (const Error&) {
    db = "unhealthy";
  }
  w.StartObject();
  w.Key("status"); w.String(db == "healthy" ? "healthy" : "unhealthy");
  w.Key("timestamp"); write_time(w, ctx.cluster.clock().now());
  w.Key("components");
  w.StartObject();
  w.Key("api"); w.String("healthy");
  w.Key("cluster_server"); write_string(w, db);
  w.Key("task_scheduler"); write_string(w, db);
  w.EndObject();
  w.Key("request_id"); write_string(w, ctx.request_id);
  w.EndObject();
  return json_reply(db == "healthy" ? 200 : 503, buf);
}

void write_resources(JsonWriter& w, const ClusterStats& s) {
  w.Key("total_resources");
  w.StartObject();
  w.Key("cpu_cores"); w.Int64(s.cpu_cores);
  w.Key("memory_gb"); w.Double(round2(s.memory_gb));
  w.Key("storage_gb"); w.Double(round2(s.storage_gb));
  w.Key("gpu_devices"); w.Int64(s.gpu_devices);
  w.EndObject();
}

void write_device_counts(JsonWriter& w, const ClusterStats& s) {
  w.Key("total_devices"); w.Int64(s.total_devices);
  w.Key("online_devices"); w.Int64(s.online_devices);
  w.Key("offline_devices"); w.Int64(s.offline_devices);
  w.Key("health_percentage"); w.Double(s.health_percentage);
  write_resources(w, s);
  w.Key("by_role"); write_counts(w, s.by_role);
  w.Key("by_platform"); write_counts(w, s.by_platform);
}

http::Reply cluster_status(Context& ctx) {
  const auto s = ctx.cluster.tasks().cluster_stats();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartObject();
  w.Key("cluster_stats");
  w.StartObject();
  write_device_counts(w, s);
  w.EndObject();
  w.Key("server_info");
  w.StartObject();
  w.Key("version"); w.String(version());
  const auto up = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - ctx.env.started);
  w.Key("uptime"); write_string(w, human_duration(up.count()));
  w.Key("uptime_seconds"); w.Int64(up.count());
  w.Key("host"); write_string(w, ctx.env.host);
  w.Key("port"); w.Int(ctx.env.port);
  w.EndObject();
  w.EndObject();
  return finish(ctx, buf, w);
}

http::Reply cluster_metrics(Context& ctx) {
  const auto s = ctx.cluster.tasks().cluster_stats();
  const auto t = ctx.cluster.tasks().statistics();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartObject();
  w.Key("devices");
  w.StartObject();
  write_device_counts(w, s);
  w.EndObject();
  w.Key("tasks");
  w.StartObject();
  w.Key("total"); w.Int64(t.total);
  w.Key("by_status"); write_counts(w, t.by_status);
  w.Key("queued"); w.Int64(t.queued_now);
  w.Key("active"); w.Int64(t.running_now);
  w.Key("success_rate"); w.Double(t.success_rate);
  w.Key("average_execution_seconds"); w.Double(t.average_execution_seconds);
  w.EndObject();
  w.Key("utilization");
  w.StartObject();
  w.Key("active_tasks"); w.Int64(s.active_tasks);
  w.Key("capacity"); w.Int64(s.capacity);
  w.Key("utilization_percent");
  w.Double(s.capacity ? std::round(1000.0 * static_cast<double>(s.active_tasks) / static_cast<double>(s.capacity)) / 10 : 0);
  w.EndObject();
  w.EndObject();
  return finish(ctx, buf, w);
}

void write_heartbeat(JsonWriter& w, const HeartbeatSettings& h) {
  w.StartObject();
  w.Key("interval"); w.Int64(h.interval);
  w.Key("timeout"); w.Int64(h.timeout);
  w.Key("max_missed"); w.Int64(h.max_missed);
  w.Key("offline_after_seconds"); w.Int64(h.offline_after().count());
  w.EndObject();
}

void write_server(JsonWriter& w, const ServerSettings& s, const ServerEnv& env) {
  w.StartObject();
  w.Key("max_connections"); w.Int64(s.max_connections);
  w.Key("host"); write_string(w, env.host);
  w.Key("port"); w.Int(env.port);
  w.EndObject();
}

void write_config(JsonWriter& w, Context& ctx) {
  auto& st = ctx.cluster.settings();
  w.StartObject();
  w.Key("server"); write_server(w, st.server(), ctx.env);
  w.Key("heartbeat"); write_heartbeat(w, st.heartbeat());
  w.Key("rate_limits");
  w.StartObject();
  w.Key("requests_per_minute"); w.Int64(g_limits.per_minute);
  w.Key("requests_per_hour"); w.Int64(g_limits.per_hour);
  w.Key("burst_size"); w.Int64(g_limits.burst);
  w.EndObject();
  w.Key("task_types"); write_strings(w, known_task_types());
  w.EndObject();
}

http::Reply cluster_config(Context& ctx) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  write_config(w, ctx);
  return finish(ctx, buf, w);
}

http::Reply create_api_key(Context& ctx) {
  JsonBody body(ctx.req);
  detail::reject_unknown_members(body.root(), {"name", "role"}, "");
  const std::string name = body.required_string("name", 100);
  Role role = Role::admin;
  if (auto r = body.optional_string("role", 32)) {
    auto parsed = parse_role(*r);
    if (!parsed) bad("role", "role must be user, viewer, node_operator, admin or super_admin");
    role = *parsed;
  }
  const std::string key = ctx.cluster.api_keys().create(name, role);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartObject();
  w.Key("api_key"); write_string(w, key);
  w.Key("name"); write_string(w, name);
  w.Key("role"); w.String(role_name(role));
  w.EndObject();
  return finish(ctx, buf, w, 201, "API key created; it is shown only once");
}

// ---- devices ----

http::Reply list_devices(Context& ctx) {
  DeviceQuery q;
  q.page = page_param(ctx);
  q.page_size = page_size_param(ctx);
  if (auto s = ctx.req.query_param("status")) {
    if (*s == "online") q.online = true;
    else if (*s == "offline") q.online = false;
    else if (*s != "all") bad("status", "status must be online, offline or all");
  }
  if (auto r = ctx.req.query_param("role")) q.role = r->substr(0, 64);
  if (auto p = ctx.req.query_param("platform")) q.platform = p->substr(0, 64);
  if (auto t = ctx.req.query_param("tags")) {
    q.tags = split_list(*t);
    if (q.tags.size() > 32) bad("tags", "tags must have at most 32 entries");
  }
  std::int64_t total = 0;
  auto devices = ctx.cluster.tasks().devices(q, &total);
  const auto now = ctx.cluster.clock().now();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartArray();
  for (const auto& d : devices) write_device(w, d, now);
  w.EndArray();
  write_pagination(w, q.page, q.page_size, total);
  return finish(ctx, buf, w);
}

http::Reply get_device(Context& ctx) {
  auto d = ctx.cluster.tasks().device(param(ctx));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  write_device(w, d, ctx.cluster.clock().now());
  return finish(ctx, buf, w);
}

http::Reply device_status(Context& ctx) {
  auto d = ctx.cluster.tasks().device(param(ctx));
  const auto now = ctx.cluster.clock().now();
  const auto hb = ctx.cluster.settings().heartbeat();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartObject();
  w.Key("device_id"); write_string(w, d.device_id);
  w.Key("status"); w.String(d.online ? "online" : "offline");
  w.Key("health"); w.String(d.online ? "healthy" : "unreachable");
  w.Key("last_heartbeat"); write_time(w, d.last_heartbeat);
  w.Key("seconds_since_heartbeat");
  if (d.last_heartbeat) w.Int64(std::chrono::duration_cast<std::chrono::seconds>(now - *d.last_heartbeat).count());
  else w.Null();
  w.Key("offline_after_seconds"); w.Int64(hb.offline_after().count());
  w.Key("uptime");
  if (d.online && d.online_since)
    write_string(w, human_duration(std::chrono::duration_cast<std::chrono::seconds>(now - *d.online_since).count()));
  else
    w.Null();
  w.Key("active_tasks"); w.Int64(d.active_tasks);
  w.Key("max_concurrent"); w.Int64(d.max_concurrent);
  w.EndObject();
  return finish(ctx, buf, w);
}

http::Reply update_device(Context& ctx) {
  JsonBody body(ctx.req);
  detail::reject_unknown_members(body.root(), {"role", "tags"}, "");
  auto role = body.optional_string("role", 32);
  auto tags = string_list(body.member("tags"), "tags", 32);
  if (!role && !tags) bad("body", "give role and/or tags");
  auto d = ctx.cluster.tasks().set_device_labels(param(ctx), role, tags);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  write_device(w, d, ctx.cluster.clock().now());
  return finish(ctx, buf, w, 200, "Device updated");
}

http::Reply delete_device(Context& ctx) {
  const std::string id = param(ctx);
  ctx.cluster.tasks().remove_device(id);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartObject();
  w.Key("device_id"); write_string(w, id);
  w.Key("removed"); w.Bool(true);
  w.EndObject();
  return finish(ctx, buf, w, 200, "Device removed; its API key is revoked");
}

http::Reply ping_device(Context& ctx) {
  const std::string id = param(ctx);
  const auto timeout = query_int(ctx.req, "timeout", 1, 30).value_or(10);
  ctx.cluster.tasks().device(id);  // 404 now rather than later
  Cluster* cluster = &ctx.cluster;
  const std::string rid = ctx.request_id;
  http::Reply r;
  r.deferred = [cluster, id, timeout, rid](std::shared_ptr<http::Completion> done) {
    const auto started = std::chrono::steady_clock::now();
    auto answer = [cluster, id, rid, started, timeout, done](bool acked) {
      http::Response resp;
      if (acked) {
        rapidjson::StringBuffer buf;
        JsonWriter w(buf);
        begin(w);
        w.StartObject();
        w.Key("device_id"); write_string(w, id);
        w.Key("reachable"); w.Bool(true);
        w.Key("round_trip_ms");
        w.Int64(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
        w.EndObject();
        resp = finish_response(*cluster, rid, buf, w, 200, "Device answered");
      } else {
        Error e(Errc::unavailable, "Device did not answer within " + std::to_string(timeout) + " s", "device_id");
        Failure f;
        f.kind = FailureKind::error;
        f.error = &e;
        f.message = e.message();
        f.request_id = rid;
        f.at = cluster->clock().now();
        resp = cluster_error(f);
      }
      resp.headers.emplace_back("X-Request-ID", rid);
      done->complete(std::move(resp));
    };
    try {
      cluster->tasks().ping(id, std::chrono::seconds(timeout), answer);
    } catch (const Error& e) {
      Failure f;
      f.kind = FailureKind::error;
      f.error = &e;
      f.message = e.message();
      f.request_id = rid;
      f.at = cluster->clock().now();
      auto resp = cluster_error(f);
      resp.headers.emplace_back("X-Request-ID", rid);
      done->complete(std::move(resp));
    }
  };
  return r;
}

http::Reply devices_summary(Context& ctx) {
  const auto s = ctx.cluster.tasks().cluster_stats();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartObject();
  write_device_counts(w, s);
  w.Key("by_status"); write_counts(w, s.by_status);
  w.Key("active_tasks"); w.Int64(s.active_tasks);
  w.Key("capacity"); w.Int64(s.capacity);
  w.EndObject();
  return finish(ctx, buf, w);
}

// ---- tasks ----

// Payloads and results (commands, their output) are for the task's submitter
// and the fleet's operators; other readers (viewers) see them as null.
bool sees_task_data(const Context& ctx, const Task& t) {
  const Claims& c = *ctx.caller.claims;
  if (c.is_node()) return false;
  if (c.has_role(Role::node_operator)) return true;
  return !t.submitter.empty() && t.submitter == c.subject;
}

http::Reply submit_task(Context& ctx) {
  TaskSubmit t = detail::decode_task_submit(JsonBody(ctx.req));
  t.submitter = ctx.caller.claims->subject;
  auto task = ctx.cluster.tasks().submit(t);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartObject();
  w.Key("task_id"); write_string(w, task.task_id);
  w.Key("task");
  w.StartObject();
  w.Key("task_id"); write_string(w, task.task_id);
  w.Key("task_type"); write_string(w, task.task_type);
  w.Key("status"); w.String(task_status_name(task.status));
  w.Key("priority"); w.String(task_priority_name(task.priority));
  w.Key("created_at"); write_time(w, task.created_at);
  w.EndObject();
  w.EndObject();
  return finish(ctx, buf, w, 201, "Task submitted");
}

http::Reply list_tasks(Context& ctx) {
  TaskQuery q;
  q.page = page_param(ctx);
  q.page_size = page_size_param(ctx);
  if (auto s = ctx.req.query_param("status")) {
    q.status = parse_task_status(*s);
    if (!q.status) bad("status", "status must be one of pending, queued, assigned, running, success, failed, cancelled, timeout");
  }
  if (auto s = ctx.req.query_param("task_type")) q.task_type = s->substr(0, 64);
  if (auto s = ctx.req.query_param("priority")) {
    q.priority = parse_task_priority(*s);
    if (!q.priority) bad("priority", "priority must be low, normal, high or urgent");
  }
  if (auto s = ctx.req.query_param("device_id")) q.device_id = s->substr(0, 64);
  std::int64_t total = 0;
  auto tasks = ctx.cluster.tasks().list(q, &total);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartArray();
  for (const auto& t : tasks) write_task(w, t, sees_task_data(ctx, t));
  w.EndArray();
  write_pagination(w, q.page, q.page_size, total);
  return finish(ctx, buf, w);
}

http::Reply get_task(Context& ctx) {
  auto t = ctx.cluster.tasks().get(param(ctx));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  write_task(w, t, sees_task_data(ctx, t));
  return finish(ctx, buf, w);
}

http::Reply task_status(Context& ctx) {
  auto t = ctx.cluster.tasks().get(param(ctx));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartObject();
  w.Key("task_id"); write_string(w, t.task_id);
  w.Key("status"); w.String(task_status_name(t.status));
  w.Key("status_reason"); write_string(w, t.status_reason);
  w.Key("progress"); w.Double(t.progress);
  w.Key("progress_message"); write_string(w, t.progress_message);
  w.Key("device_id"); write_device_id(w, t);
  w.Key("attempt"); w.Int64(t.attempt);
  w.Key("retries"); w.Int64(t.retries);
  w.Key("max_retries"); w.Int64(t.requirements.max_retries);
  w.Key("cancel_requested"); w.Bool(t.cancel_requested);
  w.Key("created_at"); write_time(w, t.created_at);
  w.Key("assigned_at"); write_time(w, t.assigned_at);
  w.Key("started_at"); write_time(w, t.started_at);
  w.Key("completed_at"); write_time(w, t.completed_at);
  w.EndObject();
  return finish(ctx, buf, w);
}

http::Reply task_result(Context& ctx) {
  auto t = ctx.cluster.tasks().get(param(ctx));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  write_task_result(w, t, sees_task_data(ctx, t));
  return finish(ctx, buf, w, 200, task_status_final(t.status) ? "OK" : "Task has not finished");
}

http::Reply cancel_task(Context& ctx) {
  auto t = ctx.cluster.tasks().cancel(param(ctx));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  write_task(w, t);
  return finish(ctx, buf, w, 200, "Task cancelled");
}

http::Reply retry_task(Context& ctx) {
  auto t = ctx.cluster.tasks().retry(param(ctx));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  write_task(w, t);
  return finish(ctx, buf, w, 200, "Task queued again");
}

http::Reply task_statistics(Context& ctx) {
  auto s = ctx.cluster.tasks().statistics();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartObject();
  w.Key("total_tasks"); w.Int64(s.total);
  w.Key("by_status"); write_counts(w, s.by_status);
  w.Key("by_type"); write_counts(w, s.by_type);
  w.Key("by_priority"); write_counts(w, s.by_priority);
  w.Key("success_rate"); w.Double(s.success_rate);
  w.Key("average_execution_seconds"); w.Double(s.average_execution_seconds);
  w.Key("queued"); w.Int64(s.queued_now);
  w.Key("active"); w.Int64(s.running_now);
  w.EndObject();
  return finish(ctx, buf, w);
}

http::Reply task_types(Context& ctx) {
  auto types = ctx.cluster.tasks().types();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartObject();
  w.Key("task_types");
  w.StartArray();
  for (const auto& t : types) {
    w.StartObject();
    w.Key("name"); write_string(w, t.name);
    w.Key("devices"); w.Int64(t.devices);
    w.Key("online_devices"); w.Int64(t.online_devices);
    w.Key("available"); w.Bool(t.online_devices > 0);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return finish(ctx, buf, w);
}

// ---- configuration ----

http::Reply get_config(Context& ctx) { return cluster_config(ctx); }

http::Reply get_server_config(Context& ctx) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  write_server(w, ctx.cluster.settings().server(), ctx.env);
  return finish(ctx, buf, w);
}

http::Reply put_server_config(Context& ctx) {
  JsonBody body(ctx.req);
  detail::reject_unknown_members(body.root(), {"max_connections"}, "");
  auto mc = body.optional_int("max_connections");
  if (!mc) bad("max_connections", "field required");
  auto s = ctx.cluster.settings().update_server(mc);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  write_server(w, s, ctx.env);
  return finish(ctx, buf, w, 200, "Server configuration updated");
}

http::Reply get_heartbeat_config(Context& ctx) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  write_heartbeat(w, ctx.cluster.settings().heartbeat());
  return finish(ctx, buf, w);
}

http::Reply put_heartbeat_config(Context& ctx) {
  JsonBody body(ctx.req);
  detail::reject_unknown_members(body.root(), {"interval", "timeout", "max_missed"}, "");
  auto i = body.optional_int("interval");
  auto t = body.optional_int("timeout");
  auto m = body.optional_int("max_missed");
  if (!i && !t && !m) bad("body", "give interval, timeout and/or max_missed");
  auto h = ctx.cluster.settings().update_heartbeat(i, t, m);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  write_heartbeat(w, h);
  return finish(ctx, buf, w, 200, "Heartbeat configuration updated");
}

http::Reply reset_config(Context& ctx) {
  ctx.cluster.settings().reset();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  write_config(w, ctx);
  return finish(ctx, buf, w, 200, "Configuration reset to defaults");
}

constexpr auto kAuth = AuthMode::api_key_or_bearer;
constexpr auto kRate = RateCategory::cluster;
constexpr Role kUser = Role::user;
constexpr Role kViewer = Role::viewer;  // fleet reads: an admin-granted role, not self-service accounts
constexpr Role kOperator = Role::node_operator;
constexpr Role kAdmin = Role::admin;

// The document's table, plus PUT /devices/{id} (role, tags) and POST
// /cluster/api-keys (README "Cluster API").
const Route kRoutes[] = {
    {"GET", "/health", health, AuthMode::none, kUser, nullptr, RateCategory::none, NodeAccess::deny},
    {"GET", "/api/v1/cluster/status", cluster_status, kAuth, kViewer, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/cluster/metrics", cluster_metrics, kAuth, kViewer, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/cluster/config", cluster_config, kAuth, kAdmin, nullptr, kRate, NodeAccess::deny},
    {"POST", "/api/v1/cluster/api-keys", create_api_key, kAuth, Role::super_admin, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/devices", list_devices, kAuth, kViewer, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/devices/summary", devices_summary, kAuth, kViewer, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/devices/{device_id}", get_device, kAuth, kViewer, nullptr, kRate, NodeAccess::deny},
    {"PUT", "/api/v1/devices/{device_id}", update_device, kAuth, kAdmin, nullptr, kRate, NodeAccess::deny},
    {"DELETE", "/api/v1/devices/{device_id}", delete_device, kAuth, kAdmin, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/devices/{device_id}/status", device_status, kAuth, kViewer, nullptr, kRate, NodeAccess::deny},
    {"POST", "/api/v1/devices/{device_id}/ping", ping_device, kAuth, kAdmin, nullptr, kRate, NodeAccess::deny},
    {"POST", "/api/v1/tasks", submit_task, kAuth, kOperator, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/tasks", list_tasks, kAuth, kViewer, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/tasks/statistics", task_statistics, kAuth, kViewer, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/tasks/types", task_types, kAuth, kViewer, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/tasks/{task_id}", get_task, kAuth, kViewer, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/tasks/{task_id}/status", task_status, kAuth, kViewer, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/tasks/{task_id}/result", task_result, kAuth, kViewer, nullptr, kRate, NodeAccess::deny},
    {"POST", "/api/v1/tasks/{task_id}/cancel", cancel_task, kAuth, kAdmin, nullptr, kRate, NodeAccess::deny},
    {"POST", "/api/v1/tasks/{task_id}/retry", retry_task, kAuth, kAdmin, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/config", get_config, kAuth, kAdmin, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/config/server", get_server_config, kAuth, kAdmin, nullptr, kRate, NodeAccess::deny},
    {"PUT", "/api/v1/config/server", put_server_config, kAuth, kAdmin, nullptr, kRate, NodeAccess::deny},
    {"GET", "/api/v1/config/heartbeat", get_heartbeat_config, kAuth, kAdmin, nullptr, kRate, NodeAccess::deny},
    {"PUT", "/api/v1/config/heartbeat", put_heartbeat_config, kAuth, kAdmin, nullptr, kRate, NodeAccess::deny},
    {"POST", "/api/v1/config/reset", reset_config, kAuth, kAdmin, nullptr, kRate, NodeAccess::deny},
};

}  // namespace

void add_cluster_routes(Router& router) {
  router.add_surface("/api/v1/cluster/", cluster_error, kRoutes, std::size(kRoutes));
  router.add_prefix("/api/v1/devices", cluster_error);
  router.add_prefix("/api/v1/tasks", cluster_error);
  router.add_prefix("/api/v1/config", cluster_error);
  add_cluster_agent_routes(router);
}

void configure_cluster_limits(RateLimiter& limiter, const ClusterApiLimits& l) {
  g_limits = l;
  limiter.configure("cluster", {l.per_minute, std::chrono::seconds(60), l.burst});
  limiter.configure("cluster_hour", {l.per_hour, std::chrono::seconds(3600), 0});
  limiter.configure("cluster_admin", {l.admin_per_minute, std::chrono::seconds(60), l.admin_burst});
  limiter.configure("cluster_admin_hour", {l.admin_per_hour, std::chrono::seconds(3600), 0});
}

}  // namespace lucid::server
