// network-node.md: Services (generic), Docker Services, Standalone Services,
// Workflows (and their executions). Errors through nn::network_error.
#include <charconv>
#include <map>

#include "json.hpp"
#include "routes/network_node_common.hpp"
#include "routes/routes.hpp"
#include "util/command_words.hpp"

namespace lucid::server {

namespace {

// ---------------------------------------------------------------- input

// A path id that must be a positive integer: 400 "Invalid <what> ID" otherwise.
std::int64_t id_param(const Context& ctx, std::size_t i, const char* what) {
  const std::string& t = ctx.params.at(i);
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || p != t.data() + t.size() || v <= 0)
    throw Error(Errc::invalid_argument, std::string("Invalid ") + what + " ID", "path:id");
  return v;
}

std::string to_json_text(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

// A member that must be a JSON object; its text, or `dflt` when absent/null.
std::optional<std::string> object_text(const JsonBody& b, const char* field) {
  const auto* v = b.member(field);
  if (!v) return std::nullopt;
  if (!v->IsObject()) throw Error(Errc::invalid_argument, std::string(field) + " must be an object", field);
  return to_json_text(*v);
}

std::vector<std::string> string_list(const JsonBody& b, const char* field) {
  std::vector<std::string> out;
  const auto* v = b.member(field);
  if (!v) return out;
  if (!v->IsArray() || v->Size() > WorkflowLimits::list)
    throw Error(Errc::invalid_argument, std::string(field) + " must be an array of at most 256 strings", field);
  for (const auto& e : v->GetArray()) {
    if (!e.IsString()) throw Error(Errc::invalid_argument, std::string(field) + " must contain strings", field);
    out.emplace_back(e.GetString(), e.GetStringLength());
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> string_map(const JsonBody& b, const char* field) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto* v = b.member(field);
  if (!v) return out;
  if (!v->IsObject() || v->MemberCount() > WorkflowLimits::list)
    throw Error(Errc::invalid_argument, std::string(field) + " must be an object of at most 256 strings", field);
  for (const auto& m : v->GetObject()) {
    if (!m.value.IsString()) throw Error(Errc::invalid_argument, std::string(field) + " values must be strings", field);
    out.emplace_back(std::string(m.name.GetString(), m.name.GetStringLength()),
                     std::string(m.value.GetString(), m.value.GetStringLength()));
  }
  return out;
}

std::string member_string(const rapidjson::Value& o, const char* field) {
  auto it = o.FindMember(field);
  if (it == o.MemberEnd() || it->value.IsNull()) return {};
  if (!it->value.IsString()) throw Error(Errc::invalid_argument, std::string(field) + " must be a string", field);
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::vector<ServiceInterface> interface_list(const JsonBody& b, const char* field, bool required) {
  std::vector<ServiceInterface> out;
  const auto* v = b.member(field);
  if (!v) {
    if (required) throw Error(Errc::invalid_argument, std::string(field) + " is required", field);
    return out;
  }
  if (!v->IsArray() || v->Size() > WorkflowLimits::list)
    throw Error(Errc::invalid_argument, std::string(field) + " must be an array of at most 256 interfaces", field);
  for (const auto& e : v->GetArray()) {
    if (!e.IsObject()) throw Error(Errc::invalid_argument, std::string(field) + " must contain objects", field);
    ServiceInterface i;
    i.interface_type = member_string(e, "interface_type");
    i.path = member_string(e, "path");
    i.mount_function = member_string(e, "mount_function");
    i.description = member_string(e, "description");
    out.push_back(std::move(i));
  }
  return out;
}

StandaloneCreate standalone_request(const JsonBody& b, bool need_name) {
  StandaloneCreate r;
  if (need_name) r.name = b.required_string("service_name", WorkflowLimits::name);
  r.description = b.optional_string("description", WorkflowLimits::text).value_or("");
  r.executable_path = b.required_string("executable_path", WorkflowLimits::text);
  r.arguments = string_list(b, "arguments");
  r.working_directory = b.optional_string("working_directory", WorkflowLimits::text).value_or("");
  r.environment = string_map(b, "environment_variables");
  r.timeout_seconds = b.optional_int("timeout_seconds").value_or(300);
  r.run_as_user = b.optional_string("run_as_user", WorkflowLimits::name).value_or("");
  r.capabilities_json = object_text(b, "capabilities").value_or("{}");
  r.interfaces = interface_list(b, "custom_interfaces", false);
  return r;
}

// ---------------------------------------------------------------- output

// Job output may be any bytes: JSON carries it as UTF-8, invalid sequences
// replaced by U+FFFD.
std::string valid_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size() && !(n == 2 && c < 0xC2) && !(n == 4 && c > 0xF4);
    for (std::size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok && n == 3) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    }
    if (ok && n == 4) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

void write_raw_json(JsonWriter& w, const std::string& text) {
  w.RawValue(text.data(), text.size(), rapidjson::kObjectType);
}

const char* api_type(const std::string& service_type) {
  if (service_type == "DATA") return "storage";
  if (service_type == "DOCKER") return "docker";
  if (service_type == "STANDALONE") return "standalone";
  return "relay";
}

void write_interface(JsonWriter& w, const ServiceInterface& i) {
  w.StartObject();
  w.Key("id"); w.Int64(i.id);
  w.Key("service_id"); w.Int64(i.service_id);
  w.Key("interface_type"); write_string(w, i.interface_type);
  w.Key("path"); write_string(w, i.path);
  w.Key("mount_function"); write_string(w, i.mount_function);
  w.Key("description"); write_string(w, i.description);
  w.EndObject();
}

void write_docker(JsonWriter& w, const DockerDetails& d) {
  w.StartObject();
  w.Key("id"); w.Int64(d.id);
  w.Key("service_id"); w.Int64(d.service_id);
  w.Key("image_name"); write_string(w, d.image_name);
  w.Key("image_tag"); write_string(w, d.image_tag);
  w.Key("source"); write_string(w, d.source);
  w.Key("compose_path"); write_string(w, d.compose_path);
  w.Key("entrypoint"); write_string(w, d.entrypoint);
  w.Key("cmd"); write_string(w, d.cmd);
  w.EndObject();
}

// The full service object of GET /api/services (interfaces always, docker
// details for DOCKER services).
void write_service(JsonWriter& w, const Service& s) {
  w.StartObject();
  w.Key("id"); w.Int64(s.id);
  w.Key("name"); write_string(w, s.name);
  w.Key("description"); write_string(w, s.description);
  w.Key("service_type"); write_string(w, s.service_type);
  w.Key("type"); w.String(api_type(s.service_type));
  w.Key("status"); write_string(w, s.status);
  w.Key("endpoint"); write_string(w, s.endpoint);
  w.Key("pricing_amount"); w.Double(s.pricing_amount);
  w.Key("pricing_type"); write_string(w, s.pricing_type);
  w.Key("pricing_interval"); write_string(w, s.pricing_interval);
  w.Key("pricing_unit"); write_string(w, s.pricing_unit);
  w.Key("capabilities"); write_raw_json(w, s.capabilities_json);
  w.Key("created_at"); write_time(w, s.created_at);
  w.Key("updated_at"); write_time(w, s.updated_at);
  w.Key("interfaces");
  w.StartArray();
  for (const auto& i : s.interfaces) write_interface(w, i);
  w.EndArray();
  if (s.docker) {
    w.Key("docker_details");
    write_docker(w, *s.docker);
  }
  w.EndObject();
}

void write_suggested_std(JsonWriter& w) {
  w.StartArray();
  for (const char* t : {"STDIN", "STDOUT"}) {
    w.StartObject();
    w.Key("interface_type"); w.String(t);
    w.Key("description"); w.String(t[3] == 'I' ? "Standard input stream" : "Standard output stream");
    w.EndObject();
  }
  w.EndArray();
}

// {"success": true, "service": {...}, "suggested_interfaces": [...]} (201 on create).
http::Reply standalone_reply(int status, const Service& s) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("success"); w.Bool(true);
  w.Key("service"); write_service(w, s);
  w.Key("suggested_interfaces"); write_suggested_std(w);
  w.EndObject();
  return json_reply(status, buf);
}

void write_workflow(JsonWriter& w, const Workflow& f) {
  w.StartObject();
  w.Key("id"); w.Int64(f.id);
  w.Key("name"); write_string(w, f.name);
  w.Key("description"); write_string(w, f.description);
  w.Key("definition"); write_raw_json(w, f.definition_json);
  w.Key("created_at"); write_time(w, f.created_at);
  w.Key("updated_at"); write_time(w, f.updated_at);
  w.EndObject();
}

// ---- the network node web UI's shapes (docs/decisions.md "Issue 18") ----
// Outputs are supersets (the document's fields, then the UI's); inputs take
// either shape. The UI's node fields live in the document's objects: gui_x,
// gui_y and order in gui_props ({"position": {"x", "y"}, "order"}),
// entrypoint and cmd in config; service_name, service_type and interfaces
// are the node's service's (read, never stored on the node).

rapidjson::Document parse_object(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject()) d.SetObject();
  return d;
}

std::string document_text(const rapidjson::Document& d) { return to_json_text(d); }

// Sets `key` of object `o` to `v` (replacing it).
void set_member(rapidjson::Document& d, const char* key, rapidjson::Value v) {
  auto& a = d.GetAllocator();
  if (auto it = d.FindMember(key); it != d.MemberEnd()) it->value = std::move(v);
  else d.AddMember(rapidjson::Value(key, a), std::move(v), a);
}

rapidjson::Value string_array(const std::vector<std::string>& words, rapidjson::Document::AllocatorType& a) {
  rapidjson::Value arr(rapidjson::kArrayType);
  for (const auto& s : words) arr.PushBack(rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a), a);
  return arr;
}

// gui_props with position {x, y} (either may be absent: the other stays).
std::string with_position(const std::string& gui_props, std::optional<double> x, std::optional<double> y) {
  auto d = parse_object(gui_props);
  auto& a = d.GetAllocator();
  auto it = d.FindMember("position");
  if (it == d.MemberEnd() || !it->value.IsObject()) {
    set_member(d, "position", rapidjson::Value(rapidjson::kObjectType));
    it = d.FindMember("position");
  }
  auto& pos = it->value;
  for (auto [key, v] : {std::pair{"x", x}, std::pair{"y", y}}) {
    if (!v) continue;
    if (auto m = pos.FindMember(key); m != pos.MemberEnd()) m->value.SetDouble(*v);
    else pos.AddMember(rapidjson::Value(key, a), rapidjson::Value(*v), a);
  }
  return document_text(d);
}

// A member that must be an array of strings when present (the UI's
// entrypoint/cmd); nullopt when absent or null.
std::optional<std::vector<std::string>> words_member(const JsonBody& b, const char* field) {
  if (!b.member(field)) return std::nullopt;
  auto words = string_list(b, field);
  for (const auto& w : words)
    if (w.size() > WorkflowLimits::text)
      throw Error(Errc::invalid_argument, std::string(field) + " entries must be at most 4096 bytes", field);
  return words;
}

// config with entrypoint/cmd set where given.
std::string with_words(const std::string& config, const std::optional<std::vector<std::string>>& entrypoint,
                       const std::optional<std::vector<std::string>>& cmd) {
  auto d = parse_object(config);
  if (entrypoint) set_member(d, "entrypoint", string_array(*entrypoint, d.GetAllocator()));
  if (cmd) set_member(d, "cmd", string_array(*cmd, d.GetAllocator()));
  return document_text(d);
}

// A string array of a stored object (config's entrypoint/cmd), else of a
// JSON array text (a docker service's), else [].
void write_words(JsonWriter& w, const rapidjson::Document& config, const char* key, const std::string& fallback) {
  auto it = config.FindMember(key);
  if (it != config.MemberEnd() && it->value.IsArray()) {
    it->value.Accept(w);
    return;
  }
  rapidjson::Document f;
  f.Parse(fallback.data(), fallback.size());
  if (!f.HasParseError() && f.IsArray()) {
    f.Accept(w);
    return;
  }
  w.StartArray();
  w.EndArray();
}

void write_node(JsonWriter& w, const WorkflowNode& n, const Service* service) {
  w.StartObject();
  w.Key("id"); w.Int64(n.id);
  w.Key("workflow_id"); w.Int64(n.workflow_id);
  w.Key("node_type"); write_string(w, n.node_type);
  w.Key("peer_id"); write_string(w, n.peer_id);
  w.Key("service_id"); w.Int64(n.service_id);
  w.Key("config"); write_raw_json(w, n.config_json);
  w.Key("gui_props"); write_raw_json(w, n.gui_props_json);
  // The UI's fields.
  const auto gui = parse_object(n.gui_props_json);
  const auto config = parse_object(n.config_json);
  auto coordinate = [&](const char* key) {
    auto pos = gui.FindMember("position");
    if (pos != gui.MemberEnd() && pos->value.IsObject()) {
      auto v = pos->value.FindMember(key);
      if (v != pos->value.MemberEnd() && v->value.IsNumber()) return v->value.GetDouble();
    }
    return 0.0;
  };
  w.Key("gui_x"); w.Double(coordinate("x"));
  w.Key("gui_y"); w.Double(coordinate("y"));
  w.Key("order");
  if (auto o = gui.FindMember("order"); o != gui.MemberEnd() && o->value.IsInt64()) w.Int64(o->value.GetInt64());
  else w.Int64(0);
  w.Key("service_name"); write_string(w, service ? service->name : std::string("Unknown Service"));
  w.Key("service_type"); write_string(w, service ? service->service_type : std::string());
  w.Key("interfaces");
  w.StartArray();
  if (service)
    for (const auto& i : service->interfaces) {
      w.StartObject();
      w.Key("id"); w.Int64(i.id);
      w.Key("interface_type"); write_string(w, i.interface_type);
      w.Key("path"); write_string(w, i.path);
      w.Key("mount_function"); write_string(w, i.mount_function);
      w.EndObject();
    }
  w.EndArray();
  const std::string no_words;
  w.Key("entrypoint"); write_words(w, config, "entrypoint", service && service->docker ? service->docker->entrypoint : no_words);
  w.Key("cmd"); write_words(w, config, "cmd", service && service->docker ? service->docker->cmd : no_words);
  w.EndObject();
}

// A node end of a connection in the UI's shape: kThisNode is null.
void write_end(JsonWriter& w, std::int64_t node_id) {
  if (node_id == WorkflowConnection::kThisNode) w.Null(); else w.Int64(node_id);
}

void write_connection(JsonWriter& w, const WorkflowConnection& c) {
  w.StartObject();
  w.Key("id"); w.Int64(c.id);
  w.Key("workflow_id"); w.Int64(c.workflow_id);
  w.Key("source_node_id"); w.Int64(c.source_node_id);
  w.Key("source_interface_id"); write_opt(w, c.source_interface_id);
  w.Key("target_node_id"); w.Int64(c.target_node_id);
  w.Key("target_interface_id"); write_opt(w, c.target_interface_id);
  w.Key("from_node_id"); write_end(w, c.source_node_id);
  w.Key("from_interface_type"); write_string(w, c.source_interface_type);
  w.Key("to_node_id"); write_end(w, c.target_node_id);
  w.Key("to_interface_type"); write_string(w, c.target_interface_type);
  w.Key("destination_file_name"); write_string(w, c.destination_file_name);
  w.EndObject();
}

void write_instance(JsonWriter& w, const ExecutionInstance& e, bool progress) {
  w.StartObject();
  w.Key("id"); w.Int64(e.id);
  w.Key("workflow_id"); w.Int64(e.workflow_id);
  w.Key("status"); write_string(w, e.status);
  w.Key("started_at"); write_time(w, e.started_at);
  w.Key("completed_at"); write_time(w, e.completed_at);
  w.Key("error"); write_opt(w, e.error);
  if (progress) {
    w.Key("progress"); w.Int(e.progress());
    w.Key("jobs_total"); w.Int64(e.jobs_total);
    w.Key("jobs_done"); w.Int64(e.jobs_done);
  }
  w.EndObject();
}

void write_job(JsonWriter& w, const JobExecution& j) {
  w.StartObject();
  w.Key("id"); w.Int64(j.id);
  w.Key("workflow_execution_id"); w.Int64(j.workflow_execution_id);
  w.Key("workflow_id"); w.Int64(j.workflow_id);
  w.Key("node_id"); w.Int64(j.node_id);
  w.Key("service_id"); w.Int64(j.service_id);
  w.Key("status"); write_string(w, j.status);
  w.Key("created_at"); write_time(w, j.created_at);
  w.Key("started_at"); write_time(w, j.started_at);
  w.Key("completed_at"); write_time(w, j.completed_at);
  w.Key("exit_code");
  if (j.exit_code) w.Int(*j.exit_code); else w.Null();
  w.Key("error"); write_opt(w, j.error);
  w.EndObject();
}

template <class T, class F>
http::Reply list_reply(const char* key, const std::vector<T>& items, F write_one, bool total = true) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key(key);
  w.StartArray();
  for (const auto& i : items) write_one(w, i);
  w.EndArray();
  if (total) {
    w.Key("total");
    w.Uint64(items.size());
  }
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply no_content() {
  http::Reply r;
  r.response.status = 204;
  return r;
}

// ---------------------------------------------------------------- services

http::Reply list_services(Context& ctx) {
  return list_reply("services", ctx.cluster.workflows().list_services(), write_service);
}

http::Reply get_service(Context& ctx) {
  auto s = ctx.cluster.workflows().get_service(id_param(ctx, 0, "service"));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("service"); write_service(w, s);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply service_with_message(int status, const Service& s, const char* message) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("service"); write_service(w, s);
  w.Key("message"); w.String(message);
  w.EndObject();
  return json_reply(status, buf);
}

http::Reply create_service(Context& ctx) {
  JsonBody b(ctx.req);
  ServiceCreate r;
  r.type = b.required_string("type", 32);
  r.name = b.required_string("name", WorkflowLimits::name);
  r.description = b.optional_string("description", WorkflowLimits::text).value_or("");
  r.endpoint = b.optional_string("endpoint", WorkflowLimits::text).value_or("");
  r.status = b.optional_string("status", 32).value_or("ACTIVE");
  r.capabilities_json = object_text(b, "capabilities").value_or("{}");
  const auto file_path = b.optional_string("file_path", WorkflowLimits::text);
  auto& wf = ctx.cluster.workflows();
  auto s = wf.create_service(r);
  if (file_path) {
    // DATA services may name their file (inside the data directory) here;
    // undo the creation if it is refused.
    try {
      wf.attach_data_file(s.id, *file_path);
    } catch (const Error&) {
      wf.delete_service(s.id);
      throw;
    }
    s = wf.get_service(s.id);
  }
  return service_with_message(201, s, "Service added successfully");
}

http::Reply update_service(Context& ctx) {
  const auto id = id_param(ctx, 0, "service");
  JsonBody b(ctx.req);
  ServiceUpdate u;
  u.name = b.optional_string("name", WorkflowLimits::name);
  u.description = b.optional_string("description", WorkflowLimits::text);
  u.endpoint = b.optional_string("endpoint", WorkflowLimits::text);
  u.status = b.optional_string("status", 32);
  u.capabilities_json = object_text(b, "capabilities");
  return service_with_message(200, ctx.cluster.workflows().update_service(id, u), "Service updated successfully");
}

http::Reply delete_service(Context& ctx) {
  ctx.cluster.workflows().delete_service(id_param(ctx, 0, "service"));
  return no_content();
}

http::Reply put_service_status(Context& ctx) {
  const auto id = id_param(ctx, 0, "service");
  JsonBody b(ctx.req);
  const auto status = b.required_string("status", 32);
  ctx.cluster.workflows().set_service_status(id, status);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("message"); w.String("Service status updated successfully");
  w.Key("status"); write_string(w, status);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply get_passphrase(Context& ctx) {
  auto [pass, d] = ctx.cluster.workflows().service_passphrase(id_param(ctx, 0, "service"));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("passphrase"); write_string(w, pass);
  w.Key("data_details");
  w.StartObject();
  w.Key("id"); w.Int64(d.id);
  w.Key("service_id"); w.Int64(d.service_id);
  w.Key("file_path"); write_string(w, d.file_path);
  w.Key("file_size"); w.Int64(d.file_size);
  w.Key("file_hash"); write_string(w, d.file_hash);
  w.Key("encryption_method"); write_string(w, d.encryption_method);
  w.EndObject();
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply get_service_interfaces(Context& ctx) {
  return list_reply("interfaces", ctx.cluster.workflows().service_interfaces(id_param(ctx, 0, "service")),
                    write_interface);
}

// ---- docker

void write_suggested(JsonWriter& w, const std::vector<ServiceInterface>& list) {
  w.StartArray();
  for (const auto& i : list) {
    w.StartObject();
    w.Key("interface_type"); write_string(w, i.interface_type);
    if (!i.path.empty()) { w.Key("path"); write_string(w, i.path); }
    if (!i.mount_function.empty()) { w.Key("mount_function"); write_string(w, i.mount_function); }
    w.Key("description"); write_string(w, i.description);
    w.EndObject();
  }
  w.EndArray();
}

// {"success": true, "service": {...}, "suggested_interfaces": [...]}: the
// document's answer to from-registry and from-local.
http::Reply docker_created_reply(const DockerCreated& c) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("success"); w.Bool(true);
  w.Key("service"); write_service(w, c.service);
  w.Key("suggested_interfaces"); write_suggested(w, c.suggested);
  w.EndObject();
  return json_reply(201, buf);
}

http::Reply docker_from_registry(Context& ctx) {
  JsonBody b(ctx.req);
  DockerRegistryCreate r;
  r.name = b.required_string("service_name", WorkflowLimits::name);
  r.image_name = b.required_string("image_name", WorkflowLimits::name);
  r.image_tag = b.optional_string("image_tag", 128).value_or("latest");
  r.description = b.optional_string("description", WorkflowLimits::text).value_or("");
  r.username = b.optional_string("username", WorkflowLimits::name).value_or("");
  r.password = b.optional_string("password", WorkflowLimits::text).value_or("");
  r.interfaces = interface_list(b, "custom_interfaces", false);
  return docker_created_reply(ctx.cluster.workflows().create_docker_from_registry(r));
}

http::Reply docker_from_git(Context& ctx) {
  JsonBody b(ctx.req);
  DockerGitCreate r;
  r.name = b.required_string("service_name", WorkflowLimits::name);
  r.repo_url = b.required_string("repo_url", 2048);
  r.branch = b.optional_string("branch", WorkflowLimits::name).value_or("");
  r.description = b.optional_string("description", WorkflowLimits::text).value_or("");
  r.username = b.optional_string("username", WorkflowLimits::name).value_or("");
  r.password = b.optional_string("password", WorkflowLimits::text).value_or("");
  r.interfaces = interface_list(b, "custom_interfaces", false);
  const auto op = ctx.cluster.workflows().create_docker_from_git(r);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("operation_id"); write_string(w, op);
  w.Key("message"); w.String("Docker service creation started");
  w.EndObject();
  return json_reply(202, buf);
}

http::Reply docker_from_local(Context& ctx) {
  JsonBody b(ctx.req);
  DockerLocalCreate r;
  r.name = b.required_string("service_name", WorkflowLimits::name);
  r.local_path = b.required_string("local_path", WorkflowLimits::text);
  r.description = b.optional_string("description", WorkflowLimits::text).value_or("");
  r.interfaces = interface_list(b, "custom_interfaces", false);
  return docker_created_reply(ctx.cluster.workflows().create_docker_from_local(r));
}

http::Reply docker_validate_git(Context& ctx) {
  JsonBody b(ctx.req);
  const auto url = b.required_string("repo_url", 2048);
  const auto user = b.optional_string("username", WorkflowLimits::name).value_or("");
  const auto pass = b.optional_string("password", WorkflowLimits::text).value_or("");
  std::optional<std::string> problem;
  try {
    problem = ctx.cluster.workflows().validate_git(url, user, pass);
  } catch (const Error& e) {
    // A URL we refuse to run git on is an invalid repository, not a bad request.
    if (e.code() != Errc::invalid_argument || e.field() != "repo_url") throw;
    problem = e.message();
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("valid"); w.Bool(!problem);
  if (problem) {
    w.Key("error");
    write_string(w, *problem);
  }
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply docker_details(Context& ctx) {
  auto d = ctx.cluster.workflows().docker_details(id_param(ctx, 0, "service"));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("details"); write_docker(w, d);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply docker_suggested(Context& ctx) {
  const auto list = ctx.cluster.workflows().docker_suggested_interfaces(id_param(ctx, 0, "service"));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("suggested_interfaces"); write_suggested(w, list);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply docker_put_interfaces(Context& ctx) {
  const auto id = id_param(ctx, 0, "service");
  JsonBody b(ctx.req);
  const auto list = interface_list(b, "interfaces", true);
  ctx.cluster.workflows().docker_details(id);  // a docker service
  ctx.cluster.workflows().replace_interfaces(id, list);
  return nn::success_reply(200, "Interfaces updated successfully");
}

http::Reply docker_put_config(Context& ctx) {
  const auto id = id_param(ctx, 0, "service");
  JsonBody b(ctx.req);
  std::optional<std::vector<std::string>> ep, cmd;
  if (auto s = b.optional_string("entrypoint", WorkflowLimits::text)) ep = detail::command_words(*s, "entrypoint");
  if (auto s = b.optional_string("cmd", WorkflowLimits::text)) cmd = detail::command_words(*s, "cmd");
  ctx.cluster.workflows().set_docker_config(id, ep, cmd);
  return nn::success_reply(200, "Configuration updated successfully");
}

// ---- standalone

http::Reply standalone_from_local(Context& ctx) {
  JsonBody b(ctx.req);
  return standalone_reply(201, ctx.cluster.workflows().create_standalone(standalone_request(b, true)));
}

http::Reply standalone_from_git(Context& ctx) {
  JsonBody b(ctx.req);
  StandaloneGitCreate g;
  g.service = standalone_request(b, true);
  g.repo_url = b.required_string("repo_url", 2048);
  g.branch = b.optional_string("branch", WorkflowLimits::name).value_or("");
  g.build_command = b.optional_string("build_command", WorkflowLimits::text).value_or("");
  g.username = b.optional_string("username", WorkflowLimits::name).value_or("");
  g.password = b.optional_string("password", WorkflowLimits::text).value_or("");
  return standalone_reply(201, ctx.cluster.workflows().create_standalone_from_git(g));
}

http::Reply standalone_details(Context& ctx) {
  auto s = ctx.cluster.workflows().get_service(id_param(ctx, 0, "service"));
  if (s.service_type != "STANDALONE" || !s.standalone)
    throw Error(Errc::invalid_argument, "Service is not a standalone service", "service_type");
  const auto& d = *s.standalone;
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("success"); w.Bool(true);
  w.Key("service"); write_service(w, s);
  w.Key("details");
  w.StartObject();
  w.Key("id"); w.Int64(d.id);
  w.Key("service_id"); w.Int64(d.service_id);
  w.Key("executable_path"); write_string(w, d.executable_path);
  w.Key("arguments");
  w.StartArray();
  for (const auto& a : d.arguments) write_string(w, a);
  w.EndArray();
  w.Key("working_directory"); write_string(w, d.working_directory);
  w.Key("environment_variables");
  w.StartObject();
  for (const auto& [k, v] : d.environment) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    write_string(w, v);
  }
  w.EndObject();
  w.Key("timeout_seconds"); w.Int64(d.timeout_seconds);
  w.Key("run_as_user"); write_string(w, d.run_as_user);
  w.Key("source"); write_string(w, d.source);
  w.EndObject();
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply standalone_finalize(Context& ctx) {
  const auto id = id_param(ctx, 0, "service");
  JsonBody b(ctx.req);
  return standalone_reply(200, ctx.cluster.workflows().finalize_standalone(id, standalone_request(b, false)));
}

http::Reply standalone_delete(Context& ctx) {
  ctx.cluster.workflows().delete_standalone_service(id_param(ctx, 0, "service"));
  return no_content();
}

// ---------------------------------------------------------------- workflows

http::Reply workflow_reply(int status, const Workflow& f) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_workflow(w, f);
  return json_reply(status, buf);
}

http::Reply list_workflows(Context& ctx) {
  return list_reply("workflows", ctx.cluster.workflows().list_workflows(), write_workflow);
}

http::Reply get_workflow(Context& ctx) {
  return workflow_reply(200, ctx.cluster.workflows().get_workflow(id_param(ctx, 0, "workflow")));
}

http::Reply create_workflow(Context& ctx) {
  JsonBody b(ctx.req);
  const auto name = b.required_string("name", WorkflowLimits::name);
  const auto desc = b.optional_string("description", WorkflowLimits::text).value_or("");
  const auto def = object_text(b, "definition").value_or("{}");
  return workflow_reply(201, ctx.cluster.workflows().create_workflow(name, desc, def));
}

http::Reply update_workflow(Context& ctx) {
  const auto id = id_param(ctx, 0, "workflow");
  JsonBody b(ctx.req);
  const auto name = b.required_string("name", WorkflowLimits::name);
  return workflow_reply(200, ctx.cluster.workflows().update_workflow(
                                 id, name, b.optional_string("description", WorkflowLimits::text),
                                 object_text(b, "definition")));
}

http::Reply delete_workflow(Context& ctx) {
  ctx.cluster.workflows().delete_workflow(id_param(ctx, 0, "workflow"));
  return no_content();
}

http::Reply execute_workflow(Context& ctx) {
  const auto id = id_param(ctx, 0, "workflow");
  auto inst = ctx.cluster.workflows().execute(id);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("message"); w.String("Workflow execution started - validation and execution in progress");
  w.Key("workflow_id"); w.Int64(id);
  w.Key("execution_id"); w.Int64(inst.id);
  w.Key("note"); w.String("Check workflow status via GET /api/workflows/:id for execution progress");
  w.EndObject();
  return json_reply(202, buf);
}

http::Reply workflow_jobs(Context& ctx) {
  const auto id = id_param(ctx, 0, "workflow");
  auto& wf = ctx.cluster.workflows();
  wf.get_workflow(id);
  return list_reply("jobs", wf.workflow_jobs(id), [](JsonWriter& w, const JobExecution& j) {
    w.StartObject();
    w.Key("id"); w.Int64(j.id);
    w.Key("workflow_id"); w.Int64(j.workflow_id);
    w.Key("status"); write_string(w, j.status);
    w.Key("created_at"); write_time(w, j.created_at);
    w.EndObject();
  });
}

http::Reply workflow_instances(Context& ctx) {
  const auto id = id_param(ctx, 0, "workflow");
  auto& wf = ctx.cluster.workflows();
  wf.get_workflow(id);
  return list_reply("executions", wf.executions(id),
                    [](JsonWriter& w, const ExecutionInstance& e) { write_instance(w, e, false); });
}

http::Reply workflow_executions_legacy(Context& ctx) {
  const auto id = id_param(ctx, 0, "workflow");
  auto& wf = ctx.cluster.workflows();
  wf.get_workflow(id);
  return list_reply("executions", wf.workflow_jobs(id), write_job);
}

http::Reply list_nodes(Context& ctx) {
  auto& wf = ctx.cluster.workflows();
  const auto nodes = wf.nodes(id_param(ctx, 0, "workflow"));
  std::map<std::int64_t, Service> services;
  for (auto& s : wf.list_services()) services.emplace(s.id, std::move(s));
  return list_reply("nodes", nodes, [&](JsonWriter& w, const WorkflowNode& n) {
    auto it = services.find(n.service_id);
    write_node(w, n, it == services.end() ? nullptr : &it->second);
  });
}

// The node's service, or nullopt when it is gone.
std::optional<Service> node_service(Context& ctx, std::int64_t service_id) {
  try {
    return ctx.cluster.workflows().get_service(service_id);
  } catch (const Error& e) {
    if (e.code() != Errc::not_found) throw;
    return std::nullopt;
  }
}

http::Reply add_node(Context& ctx) {
  WorkflowNode n;
  n.workflow_id = id_param(ctx, 0, "workflow");
  JsonBody b(ctx.req);
  n.node_type = b.optional_string("node_type", 32).value_or("SERVICE");
  n.peer_id = b.optional_string("peer_id", WorkflowLimits::name).value_or("");
  n.service_id = b.required_int("service_id");
  n.config_json = object_text(b, "config").value_or("{}");
  n.gui_props_json = object_text(b, "gui_props").value_or("{}");
  // The UI's shape: gui_x/gui_y/order and entrypoint/cmd (service_name,
  // service_type and interfaces are the service's: not stored).
  const auto x = b.optional_number("gui_x"), y = b.optional_number("gui_y");
  if (x || y) n.gui_props_json = with_position(n.gui_props_json, x, y);
  if (const auto order = b.optional_int("order")) {
    auto d = parse_object(n.gui_props_json);
    set_member(d, "order", rapidjson::Value(static_cast<std::int64_t>(*order)));
    n.gui_props_json = document_text(d);
  }
  const auto entrypoint = words_member(b, "entrypoint"), cmd = words_member(b, "cmd");
  if (entrypoint || cmd) n.config_json = with_words(n.config_json, entrypoint, cmd);
  auto r = ctx.cluster.workflows().add_node(n);
  const auto service = node_service(ctx, r.service_id);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_node(w, r, service ? &*service : nullptr);
  return json_reply(201, buf);
}

// The stored node (not_found when the workflow has no such node).
WorkflowNode find_node(Context& ctx, std::int64_t workflow_id, std::int64_t node_id) {
  for (auto& n : ctx.cluster.workflows().nodes(workflow_id))
    if (n.id == node_id) return std::move(n);
  throw Error(Errc::not_found, "Node not found");
}

http::Reply delete_node(Context& ctx) {
  ctx.cluster.workflows().delete_node(id_param(ctx, 0, "workflow"), id_param(ctx, 1, "node"));
  return no_content();
}

// {"gui_props": {...}} (the document) or {"x", "y"} (the UI: the position,
// other properties kept).
http::Reply put_gui_props(Context& ctx) {
  const auto wid = id_param(ctx, 0, "workflow"), nid = id_param(ctx, 1, "node");
  JsonBody b(ctx.req);
  std::string json;
  if (auto t = object_text(b, "gui_props")) {
    json = *t;
  } else {
    const auto x = b.optional_number("x"), y = b.optional_number("y");
    if (!x && !y) throw Error(Errc::invalid_argument, "gui_props (or x and y) is required", "gui_props");
    json = with_position(find_node(ctx, wid, nid).gui_props_json, x, y);
  }
  ctx.cluster.workflows().set_node_gui_props(wid, nid, json);
  return nn::success_reply(200, "GUI properties updated");
}

// {"config": {...}} (the document) or {"entrypoint": [...], "cmd": [...]}
// (the UI: set in the config, other keys kept).
http::Reply put_node_config(Context& ctx) {
  const auto wid = id_param(ctx, 0, "workflow"), nid = id_param(ctx, 1, "node");
  JsonBody b(ctx.req);
  std::string json;
  if (auto t = object_text(b, "config")) {
    json = *t;
  } else {
    const auto entrypoint = words_member(b, "entrypoint"), cmd = words_member(b, "cmd");
    if (!entrypoint && !cmd) throw Error(Errc::invalid_argument, "config (or entrypoint/cmd) is required", "config");
    json = with_words(find_node(ctx, wid, nid).config_json, entrypoint, cmd);
  }
  ctx.cluster.workflows().set_node_config(wid, nid, json);
  return nn::success_reply(200, "Node configuration updated");
}

// The document's {source_node_id, source_interface_id, target_node_id,
// target_interface_id} or the UI's {from_node_id|null, from_interface_type,
// to_node_id|null, to_interface_type, destination_file_name} (a null end is
// this node: WorkflowConnection::kThisNode). The document's names win when
// both are given.
WorkflowConnection connection_body(Context& ctx) {
  WorkflowConnection c;
  c.workflow_id = id_param(ctx, 0, "workflow");
  JsonBody b(ctx.req);
  const auto& root = b.root();
  const bool ui = !root.HasMember("source_node_id") && !root.HasMember("target_node_id") &&
                  (root.HasMember("from_node_id") || root.HasMember("to_node_id"));
  if (ui) {
    auto end = [&](const char* field) {
      const auto v = b.optional_int(field);
      if (v && *v <= 0) throw Error(Errc::invalid_argument, std::string(field) + " must be a node id or null", field);
      return v.value_or(WorkflowConnection::kThisNode);
    };
    c.source_node_id = end("from_node_id");
    c.target_node_id = end("to_node_id");
  } else {
    c.source_node_id = b.required_int("source_node_id");
    c.target_node_id = b.required_int("target_node_id");
    for (auto [id, field] : {std::pair{c.source_node_id, "source_node_id"}, std::pair{c.target_node_id, "target_node_id"}})
      if (id <= 0) throw Error(Errc::invalid_argument, std::string(field) + " must be a positive node id", field);
  }
  c.source_interface_id = b.optional_int("source_interface_id");
  c.target_interface_id = b.optional_int("target_interface_id");
  c.source_interface_type = b.optional_string("from_interface_type", 32).value_or("");
  c.target_interface_type = b.optional_string("to_interface_type", 32).value_or("");
  c.destination_file_name = b.optional_string("destination_file_name", WorkflowLimits::name).value_or("");
  return c;
}

http::Reply list_connections(Context& ctx) {
  return list_reply("connections", ctx.cluster.workflows().connections(id_param(ctx, 0, "workflow")),
                    write_connection);
}

http::Reply add_connection(Context& ctx) {
  auto r = ctx.cluster.workflows().add_connection(connection_body(ctx));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  // The document's object, with the UI's {"connection": {...}} besides.
  w.StartObject();
  w.Key("id"); w.Int64(r.id);
  w.Key("workflow_id"); w.Int64(r.workflow_id);
  w.Key("source_node_id"); w.Int64(r.source_node_id);
  w.Key("source_interface_id"); write_opt(w, r.source_interface_id);
  w.Key("target_node_id"); w.Int64(r.target_node_id);
  w.Key("target_interface_id"); write_opt(w, r.target_interface_id);
  w.Key("connection"); write_connection(w, r);
  w.EndObject();
  return json_reply(201, buf);
}

http::Reply update_connection(Context& ctx) {
  auto c = connection_body(ctx);
  c.id = id_param(ctx, 1, "connection");
  ctx.cluster.workflows().update_connection(c);
  return nn::success_reply(200, "Connection updated");
}

http::Reply delete_connection(Context& ctx) {
  ctx.cluster.workflows().delete_connection(id_param(ctx, 0, "workflow"), id_param(ctx, 1, "connection"));
  return no_content();
}

// The UI's flat ui-state fields: snap_to_grid (boolean), the rest numbers.
constexpr const char* kFlatUiNumbers[] = {"zoom_level", "pan_x", "pan_y", "self_peer_x", "self_peer_y"};

// {"ui_state": {...}} and, besides, the UI's flat fields read from it
// (zoom_level falls back to the document's "zoom").
http::Reply get_ui_state(Context& ctx) {
  const auto s = ctx.cluster.workflows().ui_state(id_param(ctx, 0, "workflow"));
  const auto d = parse_object(s);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("ui_state"); write_raw_json(w, s);
  auto snap = d.FindMember("snap_to_grid");
  w.Key("snap_to_grid"); w.Bool(snap != d.MemberEnd() && snap->value.IsBool() && snap->value.GetBool());
  for (const char* key : kFlatUiNumbers) {
    auto it = d.FindMember(key);
    if (it == d.MemberEnd() && std::string_view(key) == "zoom_level") it = d.FindMember("zoom");
    w.Key(key);
    if (it != d.MemberEnd() && it->value.IsNumber()) w.Double(it->value.GetDouble());
    else if (std::string_view(key) == "zoom_level") w.Double(1.0);
    else if (std::string_view(key).rfind("pan_", 0) == 0) w.Double(0.0);
    else w.Null();
  }
  w.EndObject();
  return json_reply(200, buf);
}

// {"ui_state": {...}} (the document) or the UI's flat object, stored as
// that object with "zoom" = zoom_level for readers of the document's shape.
http::Reply put_ui_state(Context& ctx) {
  const auto id = id_param(ctx, 0, "workflow");
  JsonBody b(ctx.req);
  std::string json;
  if (auto t = object_text(b, "ui_state")) {
    json = *t;
  } else {
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    w.StartObject();
    bool any = false;
    if (auto snap = b.optional_bool("snap_to_grid")) {
      w.Key("snap_to_grid"); w.Bool(*snap);
      any = true;
    }
    for (const char* key : kFlatUiNumbers) {
      if (auto v = b.optional_number(key)) {
        w.Key(key); w.Double(*v);
        if (std::string_view(key) == "zoom_level") { w.Key("zoom"); w.Double(*v); }
        any = true;
      }
    }
    w.EndObject();
    if (!any) throw Error(Errc::invalid_argument, "ui_state is required", "ui_state");
    json.assign(buf.GetString(), buf.GetSize());
  }
  ctx.cluster.workflows().set_ui_state(id, json);
  return nn::success_reply(200, "UI state updated");
}

http::Reply job_interfaces(Context& ctx) {
  return list_reply(
      "interfaces", ctx.cluster.workflows().job_interfaces(id_param(ctx, 0, "job execution")),
      [](JsonWriter& w, const JobInterface& i) {
        w.StartObject();
        w.Key("id"); w.Int64(i.id);
        w.Key("job_execution_id"); w.Int64(i.job_execution_id);
        w.Key("interface_type"); write_string(w, i.interface_type);
        w.Key("value"); write_string(w, valid_utf8(i.value));
        w.EndObject();
      },
      false);
}

http::Reply execution_jobs(Context& ctx) {
  return list_reply("jobs", ctx.cluster.workflows().execution_jobs(id_param(ctx, 0, "workflow execution")), write_job,
                    false);
}

// The document's status object, with the UI's {"execution": {...},
// "jobs": [...]} besides (its details page reads those).
http::Reply execution_status(Context& ctx) {
  auto& wf = ctx.cluster.workflows();
  const auto id = id_param(ctx, 0, "workflow execution");
  auto e = wf.execution(id);
  const auto jobs = wf.execution_jobs(id);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("id"); w.Int64(e.id);
  w.Key("workflow_id"); w.Int64(e.workflow_id);
  w.Key("status"); write_string(w, e.status);
  w.Key("started_at"); write_time(w, e.started_at);
  w.Key("completed_at"); write_time(w, e.completed_at);
  w.Key("error"); write_opt(w, e.error);
  w.Key("progress"); w.Int(e.progress());
  w.Key("jobs_total"); w.Int64(e.jobs_total);
  w.Key("jobs_done"); w.Int64(e.jobs_done);
  w.Key("execution"); write_instance(w, e, true);
  w.Key("jobs");
  w.StartArray();
  for (const auto& j : jobs) write_job(w, j);
  w.EndArray();
  w.EndObject();
  return json_reply(200, buf);
}

// Reading: any valid token. Editing workflows and executing them:
// node_operator. Defining services (which choose what executables run, clone
// repositories and run build commands): admin.
constexpr Role kRead = Role::viewer;  // fleet reads: not self-service accounts
constexpr Role kEdit = Role::node_operator;
constexpr Role kAdmin = Role::admin;
constexpr auto kB = AuthMode::bearer;
constexpr auto kN = RateCategory::none;

const Route kServiceRoutes[] = {
    {"GET", "/api/services", list_services, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/services", create_service, kB, kAdmin, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/services/{id}", get_service, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"PUT", "/api/services/{id}", update_service, kB, kAdmin, nullptr, kN, NodeAccess::deny},
    {"DELETE", "/api/services/{id}", delete_service, kB, kAdmin, nullptr, kN, NodeAccess::deny},
    {"PUT", "/api/services/{id}/status", put_service_status, kB, kAdmin, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/services/{id}/passphrase", get_passphrase, kB, kAdmin, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/services/{id}/interfaces", get_service_interfaces, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/services/docker/from-registry", docker_from_registry, kB, kAdmin, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/services/docker/from-git", docker_from_git, kB, kAdmin, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/services/docker/from-local", docker_from_local, kB, kAdmin, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/services/docker/validate-git", docker_validate_git, kB, kAdmin, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/services/docker/{id}/details", docker_details, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/services/docker/{id}/interfaces/suggested", docker_suggested, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"PUT", "/api/services/docker/{id}/interfaces", docker_put_interfaces, kB, kAdmin, nullptr, kN, NodeAccess::deny},
    {"PUT", "/api/services/docker/{id}/config", docker_put_config, kB, kAdmin, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/services/standalone/from-local", standalone_from_local, kB, kAdmin, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/services/standalone/from-git", standalone_from_git, kB, kAdmin, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/services/standalone/{id}/details", standalone_details, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/services/standalone/{id}/finalize", standalone_finalize, kB, kAdmin, nullptr, kN, NodeAccess::deny},
    {"DELETE", "/api/services/standalone/{id}", standalone_delete, kB, kAdmin, nullptr, kN, NodeAccess::deny},
};

const Route kWorkflowRoutes[] = {
    {"GET", "/api/workflows", list_workflows, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/workflows", create_workflow, kB, kEdit, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/workflows/{id}", get_workflow, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"PUT", "/api/workflows/{id}", update_workflow, kB, kEdit, nullptr, kN, NodeAccess::deny},
    {"DELETE", "/api/workflows/{id}", delete_workflow, kB, kEdit, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/workflows/{id}/execute", execute_workflow, kB, kEdit, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/workflows/{id}/jobs", workflow_jobs, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/workflows/{id}/execution-instances", workflow_instances, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/workflows/{id}/executions", workflow_executions_legacy, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/workflows/{id}/nodes", list_nodes, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/workflows/{id}/nodes", add_node, kB, kEdit, nullptr, kN, NodeAccess::deny},
    {"DELETE", "/api/workflows/{id}/nodes/{node}", delete_node, kB, kEdit, nullptr, kN, NodeAccess::deny},
    {"PUT", "/api/workflows/{id}/nodes/{node}/gui-props", put_gui_props, kB, kEdit, nullptr, kN, NodeAccess::deny},
    {"PUT", "/api/workflows/{id}/nodes/{node}/config", put_node_config, kB, kEdit, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/workflows/{id}/connections", list_connections, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"POST", "/api/workflows/{id}/connections", add_connection, kB, kEdit, nullptr, kN, NodeAccess::deny},
    {"PUT", "/api/workflows/{id}/connections/{conn}", update_connection, kB, kEdit, nullptr, kN, NodeAccess::deny},
    {"DELETE", "/api/workflows/{id}/connections/{conn}", delete_connection, kB, kEdit, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/workflows/{id}/ui-state", get_ui_state, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"PUT", "/api/workflows/{id}/ui-state", put_ui_state, kB, kEdit, nullptr, kN, NodeAccess::deny},
};

const Route kExecutionRoutes[] = {
    {"GET", "/api/job-executions/{id}/interfaces", job_interfaces, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/workflow-executions/{id}/jobs", execution_jobs, kB, kRead, nullptr, kN, NodeAccess::deny},
    {"GET", "/api/workflow-executions/{id}/status", execution_status, kB, kRead, nullptr, kN, NodeAccess::deny},
};

}  // namespace

void add_network_node_workflow_routes(Router& router) {
  router.add_surface("/api/services", nn::network_error, kServiceRoutes, std::size(kServiceRoutes), nn::kCors);
  router.add_surface("/api/workflows", nn::network_error, kWorkflowRoutes, std::size(kWorkflowRoutes), nn::kCors);
  router.add_surface("/api/job-executions/", nn::network_error, kExecutionRoutes, 1, nn::kCors);
  router.add_surface("/api/workflow-executions/", nn::network_error, kExecutionRoutes + 1, 2, nn::kCors);
}

}  // namespace lucid::server
