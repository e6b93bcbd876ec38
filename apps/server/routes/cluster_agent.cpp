// The agent protocol of the cluster API (docs/agent-protocol.md): devices
// report themselves, long-poll for work, report start, progress and results.
// Node API key authentication; the cluster envelope and error form.
#include "json.hpp"
#include "routes/cluster_common.hpp"
#include "routes/routes.hpp"
#include "tasks/task_codec.hpp"

namespace lucid::server {

namespace {

using namespace cluster_api;

[[noreturn]] void bad(const std::string& field, const std::string& msg) {
  throw Error(Errc::invalid_argument, msg, field);
}

std::vector<std::string> strings(const rapidjson::Value* v, const char* field, std::size_t max_items) {
  std::vector<std::string> out;
  if (!v) return out;
  if (!v->IsArray()) bad(field, std::string(field) + " must be an array of strings");
  if (v->Size() > max_items) bad(field, std::string(field) + " has too many entries");
  for (const auto& e : v->GetArray()) {
    if (!e.IsString()) bad(field, std::string(field) + " must be an array of strings");
    out.emplace_back(e.GetString(), std::min<rapidjson::SizeType>(e.GetStringLength(), 128));
  }
  return out;
}

http::Reply put_device(Context& ctx) {
  JsonBody body(ctx.req);
  const auto node = ctx.caller.node_id;
  DeviceReport r;
  r.platform = body.required_string("platform", 32);
  r.role = body.optional_string("role", 32);
  if (body.member("tags")) r.tags = strings(body.member("tags"), "tags", 32);
  const auto* caps = body.member("capabilities");
  if (!caps) bad("capabilities", "field required");
  if (!caps->IsObject()) bad("capabilities", "capabilities must be an object");
  auto num = [&](const char* name) {
    auto it = caps->FindMember(name);
    const std::string f = std::string("capabilities.") + name;
    if (it == caps->MemberEnd() || it->value.IsNull()) bad(f, "field required");
    if (!it->value.IsNumber()) bad(f, f + " must be a number");
    return it->value.GetDouble();
  };
  auto flag = [&](const char* name) {
    auto it = caps->FindMember(name);
    const std::string f = std::string("capabilities.") + name;
    if (it == caps->MemberEnd() || it->value.IsNull()) bad(f, "field required");
    if (!it->value.IsBool()) bad(f, f + " must be a boolean");
    return it->value.GetBool();
  };
  {
    auto it = caps->FindMember("cpu_count");
    if (it == caps->MemberEnd() || it->value.IsNull()) bad("capabilities.cpu_count", "field required");
    auto i = as_int(it->value);
    if (!i) bad("capabilities.cpu_count", "cpu_count must be an integer");
    r.capabilities.cpu_count = *i;
  }
  r.capabilities.memory_total_gb = num("memory_total_gb");
  r.capabilities.storage_total_gb = num("storage_total_gb");
  r.capabilities.has_gpu = flag("has_gpu");
  r.capabilities.internet = flag("internet");
  if (!body.member("allowed_task_types")) bad("allowed_task_types", "field required");
  r.allowed_task_types = strings(body.member("allowed_task_types"), "allowed_task_types", 16);
  r.max_concurrent = body.required_int("max_concurrent");
  r.agent_version = body.optional_string("agent_version", 64).value_or("");
  auto d = ctx.cluster.tasks().report_device(node, r);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  write_device(w, d, ctx.cluster.clock().now());
  return finish(ctx, buf, w, 200, "Device registered");
}

// The members of a work answer (tasks, cancel, pings) into an open object.
void write_work_members(JsonWriter& w, const AgentWork& work) {
  w.Key("tasks");
  w.StartArray();
  for (const auto& t : work.tasks) {
    w.StartObject();
    w.Key("task_id"); write_string(w, t.task_id);
    w.Key("task_type"); write_string(w, t.task_type);
    w.Key("payload"); write_raw_json(w, t.payload_json);
    w.Key("timeout_seconds"); w.Int64(t.timeout_seconds);
    w.Key("attempt"); w.Int64(t.attempt);
    w.EndObject();
  }
  w.EndArray();
  w.Key("cancel");
  w.StartArray();
  for (const auto& id : work.cancel) write_string(w, id);
  w.EndArray();
  w.Key("pings");
  w.StartArray();
  for (const auto& id : work.pings) write_string(w, id);
  w.EndArray();
}

http::Response encode_work(Cluster& cluster, const std::string& rid, const AgentWork& work) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartObject();
  write_work_members(w, work);
  w.EndObject();
  auto r = finish_response(cluster, rid, buf, w);
  r.headers.emplace_back("X-Request-ID", rid);
  return r;
}

http::Reply get_work(Context& ctx) {
  const auto wait = query_int(ctx.req, "wait", 0, 30).value_or(0);
  const auto node = ctx.caller.node_id;
  auto& tasks = ctx.cluster.tasks();
  tasks.heartbeat(node);
  http::Reply r;
  if (wait == 0) {
    r.response = encode_work(ctx.cluster, ctx.request_id, tasks.take_work(node));
    return r;
  }
  Cluster* cluster = &ctx.cluster;
  const std::string rid = ctx.request_id;
  // Answered by the core when work arrives or the wait ends; no worker
  // thread is held meanwhile.
  r.deferred = [cluster, node, wait, rid](std::shared_ptr<http::Completion> done) {
    cluster->tasks().wait_work(node, std::chrono::seconds(wait), [cluster, rid, done](AgentWork work) {
      done->complete(encode_work(*cluster, rid, work));
    });
  };
  return r;
}

http::Reply start_task(Context& ctx) {
  ctx.cluster.tasks().heartbeat(ctx.caller.node_id);
  auto t = ctx.cluster.tasks().start_task(ctx.caller.node_id, ctx.params.at(0));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartObject();
  w.Key("task_id"); write_string(w, t.task_id);
  w.Key("status"); w.String(task_status_name(t.status));
  w.EndObject();
  return finish(ctx, buf, w);
}

http::Reply task_progress(Context& ctx) {
  ctx.cluster.tasks().heartbeat(ctx.caller.node_id);
  JsonBody body(ctx.req);
  const double progress = body.required_number("progress");
  auto message = body.optional_string("message", 1024);
  const bool cancel = ctx.cluster.tasks().report_progress(ctx.caller.node_id, ctx.params.at(0), progress, message);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartObject();
  w.Key("cancel_requested"); w.Bool(cancel);
  w.EndObject();
  return finish(ctx, buf, w);
}

http::Reply task_result(Context& ctx) {
  ctx.cluster.tasks().heartbeat(ctx.caller.node_id);
  JsonBody body(ctx.req);
  TaskResultReport r;
  r.status = body.required_string("status", 16);
  auto it = body.root().FindMember("result");
  if (it != body.root().MemberEnd()) {
    rapidjson::StringBuffer b;
    JsonWriter w(b);
    it->value.Accept(w);
    r.result_json.assign(b.GetString(), b.GetSize());
  }
  r.error = body.optional_string("error", 4096);
  r.exit_code = body.optional_int("exit_code");
  r.duration_ms = body.required_int("duration_ms");
  // ?next=1: the answer also carries the device's next work (docs/agent-protocol.md),
  // saving the agent a poll; without it the answer is as before.
  const bool with_next = query_int(ctx.req, "next", 0, 1).value_or(0) == 1;
  AgentWork next;
  auto t = ctx.cluster.tasks().report_result(ctx.caller.node_id, ctx.params.at(0), r, with_next ? &next : nullptr);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  if (!with_next) {
    write_task_result(w, t);
  } else {
    detail::write_task_result_json(w, t, detail::TaskResultStyle{true, false, false, /*leave_open=*/true});
    w.Key("next_work");
    w.StartObject();
    write_work_members(w, next);
    w.EndObject();
    w.EndObject();
  }
  return finish(ctx, buf, w, 200, "Result stored");
}

http::Reply ack_ping(Context& ctx) {
  ctx.cluster.tasks().heartbeat(ctx.caller.node_id);
  ctx.cluster.tasks().ack_ping(ctx.caller.node_id, ctx.params.at(0));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  begin(w);
  w.StartObject();
  w.Key("ping_id"); write_string(w, ctx.params.at(0));
  w.EndObject();
  return finish(ctx, buf, w);
}

constexpr auto kKey = AuthMode::node_key;
constexpr auto kNone = RateCategory::none;  // agents poll often; their keys are not rate-limited here

const Route kRoutes[] = {
    {"PUT", "/api/v1/agent/device", put_device, kKey, Role::user, nullptr, kNone, NodeAccess::deny},
    {"GET", "/api/v1/agent/work", get_work, kKey, Role::user, nullptr, kNone, NodeAccess::deny, /*head_as_get=*/false},
    {"POST", "/api/v1/agent/tasks/{task_id}/start", start_task, kKey, Role::user, nullptr, kNone, NodeAccess::deny},
    {"POST", "/api/v1/agent/tasks/{task_id}/progress", task_progress, kKey, Role::user, nullptr, kNone, NodeAccess::deny},
    {"POST", "/api/v1/agent/tasks/{task_id}/result", task_result, kKey, Role::user, nullptr, kNone, NodeAccess::deny},
    {"POST", "/api/v1/agent/pings/{ping_id}", ack_ping, kKey, Role::user, nullptr, kNone, NodeAccess::deny},
};

}  // namespace

void add_cluster_agent_routes(Router& router) {
  router.add_surface("/api/v1/agent/", cluster_error, kRoutes, std::size(kRoutes));
}

}  // namespace lucid::server
