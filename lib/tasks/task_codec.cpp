#include "tasks/task_codec.hpp"

#include "lucidnode/error.hpp"
#include "util/json.hpp"

namespace lucid::detail {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

[[noreturn]] void bad(const std::string& field, const std::string& msg) {
  throw Error(Errc::invalid_argument, msg, field);
}

std::string to_json_text(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  Writer w(b);
  v.Accept(w);
  return std::string(b.GetString(), b.GetSize());
}

// Members of `obj` (requirements); errors name prefix + name.
std::optional<bool> opt_bool(const rapidjson::Value& obj, const char* name, const std::string& prefix) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsBool()) bad(prefix + name, std::string(name) + " must be a boolean");
  return it->value.GetBool();
}

std::optional<double> opt_number(const rapidjson::Value& obj, const char* name, const std::string& prefix) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsNumber()) bad(prefix + name, std::string(name) + " must be a number");
  return it->value.GetDouble();
}

std::optional<std::int64_t> opt_integer(const rapidjson::Value& obj, const char* name, const std::string& prefix) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::nullopt;
  auto i = as_int(it->value);
  if (!i) bad(prefix + name, std::string(name) + " must be an integer");
  return i;
}

std::optional<std::string> opt_text(const rapidjson::Value& obj, const char* name, const std::string& prefix) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsString()) bad(prefix + name, std::string(name) + " must be a string");
  if (it->value.GetStringLength() > 64) bad(prefix + name, std::string(name) + " must be at most 64 characters");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

void write_text(Writer& w, const std::string& s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

void write_or_null(Writer& w, const std::string& s) {
  if (s.empty()) w.Null(); else write_text(w, s);
}

void write_raw(Writer& w, const std::string& text) {
  rapidjson::Document d;
  if (!parse_json(d, text)) w.Null();
  else d.Accept(w);
}

void write_time(Writer& w, const std::optional<Timestamp>& t, bool fraction) {
  if (t) write_text(w, format_rfc3339(*t, fraction)); else w.Null();
}

// The members the task object and its result share: result_data, error
// (null without data), exit_code, execution_time_seconds.
void write_outcome(Writer& w, const Task& t, bool with_data) {
  w.Key("result_data");
  if (with_data && t.result_json) write_raw(w, *t.result_json); else w.Null();
  w.Key("error");
  if (with_data && t.error) write_text(w, *t.error); else w.Null();
  w.Key("exit_code");
  if (t.exit_code) w.Int64(*t.exit_code); else w.Null();
  w.Key("execution_time_seconds");
  if (t.duration_ms) w.Double(static_cast<double>(*t.duration_ms) / 1000.0); else w.Null();
}

}  // namespace

TaskSubmit decode_task_submit(const JsonObject& body) {
  reject_unknown_members(body.root(), {"task_type", "payload", "priority", "requirements", "metadata"}, "");
  TaskSubmit t;
  t.task_type = body.required_string("task_type", 64);
  if (const auto* p = body.member("payload")) t.payload_json = to_json_text(*p);
  if (auto p = body.optional_string("priority", 16)) {
    auto pr = parse_task_priority(*p);
    if (!pr) bad("priority", "priority must be low, normal, high or urgent");
    t.priority = *pr;
  }
  if (const auto* m = body.member("metadata")) {
    if (!m->IsObject()) bad("metadata", "metadata must be an object");
    t.metadata_json = to_json_text(*m);
  }
  if (const auto* r = body.member("requirements")) {
    const std::string pre = "requirements.";
    if (!r->IsObject()) bad("requirements", "requirements must be an object");
    reject_unknown_members(*r,
                           {"min_cpu_cores", "min_memory_gb", "min_storage_gb", "required_platform", "required_role",
                            "required_tags", "gpu_required", "internet_required", "timeout_seconds", "max_retries"},
                           pre);
    auto& q = t.requirements;
    q.min_cpu_cores = opt_integer(*r, "min_cpu_cores", pre);
    q.min_memory_gb = opt_number(*r, "min_memory_gb", pre);
    q.min_storage_gb = opt_number(*r, "min_storage_gb", pre);
    q.required_platform = opt_text(*r, "required_platform", pre).value_or("");
    q.required_role = opt_text(*r, "required_role", pre).value_or("");
    auto it = r->FindMember("required_tags");
    if (it != r->MemberEnd() && !it->value.IsNull())
      q.required_tags = string_array(it->value, pre + "required_tags", 32);
    q.gpu_required = opt_bool(*r, "gpu_required", pre).value_or(false);
    q.internet_required = opt_bool(*r, "internet_required", pre).value_or(false);
    q.timeout_seconds = opt_integer(*r, "timeout_seconds", pre).value_or(300);
    q.max_retries = opt_integer(*r, "max_retries", pre).value_or(3);
  }
  return t;
}

void write_task_json(Writer& w, const Task& t, TaskJsonStyle style) {
  const bool frac = style.fractional_seconds;
  const auto& r = t.requirements;
  w.StartObject();
  w.Key("task_id"); write_text(w, t.task_id);
  w.Key("task_type"); write_text(w, t.task_type);
  w.Key("status"); w.String(task_status_name(t.status));
  w.Key("priority"); w.String(task_priority_name(t.priority));
  w.Key("payload");
  if (style.with_data) write_raw(w, t.payload_json); else w.Null();
  w.Key("requirements");
  w.StartObject();
  w.Key("min_cpu_cores");
  if (r.min_cpu_cores) w.Int64(*r.min_cpu_cores); else w.Null();
  w.Key("min_memory_gb");
  if (r.min_memory_gb) w.Double(*r.min_memory_gb); else w.Null();
  w.Key("min_storage_gb");
  if (r.min_storage_gb) w.Double(*r.min_storage_gb); else w.Null();
  w.Key("required_platform"); write_or_null(w, r.required_platform);
  w.Key("required_role"); write_or_null(w, r.required_role);
  w.Key("required_tags");
  w.StartArray();
  for (const auto& s : r.required_tags) write_text(w, s);
  w.EndArray();
  w.Key("gpu_required"); w.Bool(r.gpu_required);
  w.Key("internet_required"); w.Bool(r.internet_required);
  w.Key("timeout_seconds"); w.Int64(r.timeout_seconds);
  w.Key("max_retries"); w.Int64(r.max_retries);
  w.EndObject();
  w.Key("metadata"); write_raw(w, t.metadata_json);
  w.Key("device_id"); write_or_null(w, t.device_id);
  w.Key("attempt"); w.Int64(t.attempt);
  w.Key("retries"); w.Int64(t.retries);
  w.Key("progress"); w.Double(t.progress);
  w.Key("progress_message"); write_text(w, t.progress_message);
  w.Key("status_reason"); write_text(w, t.status_reason);
  w.Key("cancel_requested"); w.Bool(t.cancel_requested);
  write_outcome(w, t, style.with_data);
  w.Key("created_at"); write_time(w, t.created_at, frac);
  w.Key("assigned_at"); write_time(w, t.assigned_at, frac);
  w.Key("started_at"); write_time(w, t.started_at, frac);
  w.Key("completed_at"); write_time(w, t.completed_at, frac);
  w.EndObject();
}

void write_task_result_json(Writer& w, const Task& t, TaskResultStyle style) {
  const bool frac = style.fractional_seconds;
  w.StartObject();
  w.Key("task_id"); write_text(w, t.task_id);
  w.Key("status"); w.String(task_status_name(t.status));
  if (style.with_final) {
    w.Key("final"); w.Bool(task_status_final(t.status));
  }
  write_outcome(w, t, style.with_data);
  w.Key("worker_device_id"); write_or_null(w, t.device_id);
  w.Key("started_at"); write_time(w, t.started_at, frac);
  w.Key("completed_at"); write_time(w, t.completed_at, frac);
  if (!style.leave_open) w.EndObject();
}

}  // namespace lucid::detail
