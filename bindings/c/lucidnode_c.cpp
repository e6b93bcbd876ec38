// The C ABI (bindings/c/lucidnode.h) over the C++ API. Every entry point runs
// its body inside guard(): no exception crosses the boundary, each becomes a
// lucid_status plus a thread-local message and field.
#include "lucidnode/lucidnode.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <utility>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "lucidnode/auth.hpp"
#include "lucidnode/events.hpp"
#include "lucidnode/lucidnode.hpp"
#include "lucidnode/mail.hpp"
#include "lucidnode/users.hpp"
#include "lucidnode/workflows.hpp"
#include "tasks/task_codec.hpp"
#include "util/json.hpp"
#include "util/json_object.hpp"

struct lucid_cluster {
  std::unique_ptr<lucid::Cluster> cluster;
};

struct lucid_subscription {
  lucid::Subscription subscription;
};

namespace {

using lucid::Errc;
using lucid::Error;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

thread_local std::string t_message;
thread_local std::string t_field;

template <class F>
lucid_status guard(F&& body) noexcept {
  try {
    t_message.clear();
    t_field.clear();
    body();
    return LUCID_OK;
  } catch (const Error& e) {
    try {
      t_message = e.message();
      t_field = e.field();
    } catch (...) {
    }
    return static_cast<lucid_status>(static_cast<int>(e.code()));
  } catch (const std::bad_alloc&) {
    t_message.clear();  // no allocation here: the message is the status name
    return LUCID_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    try {
      t_message = std::string("internal error: ") + e.what();
    } catch (...) {
    }
    return LUCID_INTERNAL;
  } catch (...) {
    return LUCID_INTERNAL;
  }
}

// guard() for a function with an out_json result: *out_json is NULL unless
// the call succeeds (then it holds the library-allocated result).
template <class F>
lucid_status guard_out(char** out_json, F&& body) noexcept {
  if (out_json != nullptr) *out_json = nullptr;
  return guard([&] {
    if (out_json == nullptr) throw Error(Errc::invalid_argument, "out_json is NULL", "out_json");
    body();
  });
}

[[noreturn]] void invalid(const std::string& field, const std::string& message) {
  throw Error(Errc::invalid_argument, message, field);
}

lucid::Cluster& need(lucid_cluster* c) {
  if (c == nullptr || !c->cluster) invalid("cluster", "cluster handle is NULL");
  return *c->cluster;
}

template <class T>
T* need_ptr(T* p, const char* name) {
  if (p == nullptr) invalid(name, std::string(name) + " is NULL");
  return p;
}

// ---- JSON input: strict objects ----

constexpr std::size_t kMaxInputBytes = 64 * 1024 * 1024;

// A JSON object argument `text` named `what`, read by the library's one
// field reader (lib/util/json_object.hpp). Errors (invalid_argument, field
// `what`): NULL, over 64 MiB, not JSON, not an object.
lucid::detail::JsonObject input(const char* text, const char* what) {
  need_ptr(text, what);
  const std::size_t n = ::strnlen(text, kMaxInputBytes + 1);
  if (n > kMaxInputBytes) invalid(what, std::string(what) + " exceeds 64 MiB");
  if (n == 0) invalid(what, std::string(what) + " is not valid JSON: it is empty");
  try {
    return lucid::detail::JsonObject(std::string_view(text, n));
  } catch (const lucid::detail::MalformedJson& m) {
    invalid(what, std::string(what) + " is not valid JSON: " + m.message);
  } catch (const Error&) {
    invalid(what, std::string(what) + " must be a JSON object");
  }
}

using lucid::detail::JsonObject;

// Strings of the C ABI's inputs have no length limit of their own; the
// capability checks its values.
constexpr std::size_t kAnyLength = std::numeric_limits<std::size_t>::max();
// Paths and URLs of the options.
constexpr std::size_t kMaxPath = 4096;

// ---- JSON output ----

void put(Writer& w, const char* key, const std::string& s) {
  w.Key(key);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
}
void put(Writer& w, const char* key, const char* s) {
  w.Key(key);
  w.String(s);
}
void put_time(Writer& w, const char* key, const std::optional<lucid::Timestamp>& t) {
  w.Key(key);
  if (t) {
    const std::string s = lucid::format_rfc3339(*t, true);
    w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  } else {
    w.Null();
  }
}
template <class T>
void put_opt(Writer& w, const char* key, const std::optional<T>& v) {
  w.Key(key);
  if (!v) {
    w.Null();
  } else if constexpr (std::is_same_v<T, double>) {
    w.Double(*v);
  } else {
    w.Int64(*v);
  }
}
void put_str_or_null(Writer& w, const char* key, const std::string& s) {
  w.Key(key);
  if (s.empty()) {
    w.Null();
  } else {
    w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  }
}

void write_stats(Writer& w, const lucid::StatsSample& s) {
  w.StartObject();
  w.Key("cpu_usage");
  w.Double(s.cpu_usage);
  w.Key("disk_usage");
  w.Double(s.disk_usage);
  w.Key("active_backups");
  w.Int64(s.active_backups);
  put_opt(w, "memory_percent", s.memory_percent);
  put_opt(w, "uptime_seconds", s.uptime_seconds);
  put_opt(w, "disk_total_gb", s.disk_total_gb);
  put_time(w, "at", s.at);
  w.EndObject();
}

void write_node(Writer& w, const lucid::Node& n, bool all_stats) {
  w.StartObject();
  w.Key("id");
  w.Int64(n.id);
  put(w, "uid", n.uid);
  put(w, "uuid", n.uuid);
  put(w, "name", n.name);
  put(w, "hostname", n.hostname);
  put_str_or_null(w, "ip_address", n.ip_address);
  put(w, "status", lucid::node_status_name(n.status));
  put(w, "liveness", lucid::liveness_name(n.liveness));
  put(w, "lifecycle", lucid::lifecycle_name(n.lifecycle));
  put(w, "node_type", lucid::node_type_name(n.node_type));
  put_str_or_null(w, "pool_uid", n.pool_uid);
  w.Key("storage_quota_gb");
  w.Double(n.storage_quota_gb);
  put_time(w, "created_at", n.created_at);
  put_time(w, "approved_at", n.approved_at);
  put_time(w, "last_seen", n.last_seen);
  put_opt(w, "poot_score", n.poot_score);
  w.Key("latest_stats");
  if (n.recent_stats.empty()) {
    w.Null();
  } else {
    write_stats(w, n.recent_stats.front());
  }
  if (all_stats) {
    w.Key("recent_stats");
    w.StartArray();
    for (const auto& s : n.recent_stats) write_stats(w, s);
    w.EndArray();
  }
  w.EndObject();
}

void write_batch(Writer& w, const lucid::PayoutBatch& b) {
  w.StartObject();
  put(w, "batch_id", b.batch_id);
  put(w, "status", b.status);
  w.Key("payout_count");
  w.Int64(b.payout_count);
  w.Key("pending");
  w.Int64(b.pending);
  w.Key("processing");
  w.Int64(b.processing);
  w.Key("completed");
  w.Int64(b.completed);
  w.Key("failed");
  w.Int64(b.failed);
  w.Key("created");
  w.Bool(b.created);
  put_time(w, "created_at", b.created_at);
  put_time(w, "estimated_completion", b.estimated_completion);
  w.EndObject();
}

// A library-allocated copy for *out_json (freed with lucid_free).
void give(const rapidjson::StringBuffer& sb, char** out) {
  const std::size_t n = sb.GetSize();
  char* p = static_cast<char*>(std::malloc(n + 1));
  if (p == nullptr) throw std::bad_alloc();
  std::memcpy(p, sb.GetString(), n);
  p[n] = '\0';
  *out = p;
}


template <class Ms>
void set_ms(const JsonObject& o, const char* key, Ms& target) {
  if (auto v = o.optional_exact_int(key)) target = Ms(*v);
}

void write_pool(Writer& w, const lucid::Pool& p) {
  w.StartObject();
  put(w, "uid", p.uid);
  put(w, "name", p.name);
  put(w, "description", p.description);
  w.Key("node_count");
  w.Int64(p.node_count);
  put_opt(w, "max_nodes", p.max_nodes);
  put_opt(w, "max_cpu_cores", p.limits.max_cpu_cores);
  put_opt(w, "max_memory_gb", p.limits.max_memory_gb);
  put_opt(w, "max_storage_gb", p.limits.max_storage_gb);
  put_time(w, "created_at", p.created_at);
  w.EndObject();
}

void give_pool(const lucid::Pool& p, char** out_json) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  write_pool(w, p);
  give(sb, out_json);
}

void give_node(const lucid::Node& n, char** out_json) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  write_node(w, n, false);
  give(sb, out_json);
}

// ---- tasks ----

// Any JSON value as compact text (payload, result, metadata).
std::string json_text(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  v.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

// Stored JSON text (validated by the library) written as a value.
void put_raw(Writer& w, const char* key, const std::optional<std::string>& json) {
  w.Key(key);
  if (!json) {
    w.Null();
    return;
  }
  rapidjson::Document d;
  if (!lucid::detail::parse_json(d, *json)) throw Error(Errc::internal, "stored JSON does not parse");
  d.Accept(w);
}

std::vector<std::string> string_list(const JsonObject& o, const char* key) {
  const auto* v = o.member(key);
  if (v == nullptr) return {};
  return lucid::detail::string_array(*v, o.field_name(key), std::numeric_limits<std::size_t>::max());
}

void put_strings(Writer& w, const char* key, const std::vector<std::string>& v) {
  w.Key(key);
  w.StartArray();
  for (const auto& s : v) w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
}

// The cluster API's task object (GET /api/v1/tasks/{id}), field for field
// (the server's writer), timestamps with fractional seconds.
void write_task(Writer& w, const lucid::Task& t) {
  lucid::detail::write_task_json(w, t, lucid::detail::TaskJsonStyle{true, true});
}

void give_task(const lucid::Task& t, char** out_json) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  write_task(w, t);
  give(sb, out_json);
}

void write_device(Writer& w, const lucid::Device& d) {
  w.StartObject();
  put(w, "device_id", d.device_id);
  w.Key("node_id");
  w.Int64(d.node_id);
  put(w, "hostname", d.hostname);
  put(w, "ip_address", d.ip_address);
  put(w, "role", d.role);
  put(w, "platform", d.platform);
  w.Key("reported");
  w.Bool(d.reported);
  w.Key("online");
  w.Bool(d.online);
  put_time(w, "last_heartbeat", d.last_heartbeat);
  w.Key("capabilities");
  w.StartObject();
  w.Key("cpu_count");
  w.Int64(d.capabilities.cpu_count);
  w.Key("memory_total_gb");
  w.Double(d.capabilities.memory_total_gb);
  w.Key("storage_total_gb");
  w.Double(d.capabilities.storage_total_gb);
  w.Key("has_gpu");
  w.Bool(d.capabilities.has_gpu);
  w.Key("internet");
  w.Bool(d.capabilities.internet);
  w.EndObject();
  put_strings(w, "tags", d.tags);
  put_strings(w, "allowed_task_types", d.allowed_task_types);
  w.Key("max_concurrent");
  w.Int64(d.max_concurrent);
  put(w, "agent_version", d.agent_version);
  w.Key("active_tasks");
  w.Int64(d.active_tasks);
  w.EndObject();
}

}  // namespace

namespace {

// Login mail handed to a C callback (lucid_cluster_open_with_mailer).
class CallbackMailer final : public lucid::Mailer {
 public:
  CallbackMailer(lucid_mail_fn fn, void* user_data) : fn_(fn), user_data_(user_data) {}
  bool deliver(const lucid::MailMessage& m) override {
    return fn_(user_data_, m.to.c_str(), m.subject.c_str(), m.body.c_str()) != 0;
  }
  std::string describe() const override { return "the embedding program's mail callback"; }

 private:
  lucid_mail_fn fn_;
  void* user_data_;
};

// The capability group `name` of options_json (an object holding only
// `keys`; see lucid_cluster_open), or nullopt when absent.
std::optional<JsonObject> option_group(const JsonObject& o, const char* name,
                                       std::initializer_list<const char*> keys) {
  const auto* v = o.member(name);
  if (v == nullptr) return std::nullopt;
  if (!v->IsObject()) invalid(name, std::string(name) + " must be an object");
  JsonObject group(*v, std::string(name) + ".");
  group.reject_unknown(keys);
  return group;
}

lucid_status open_cluster(const char* options_json, std::shared_ptr<lucid::Mailer> mailer, lucid_cluster** out) {
  return guard([&] {
    need_ptr(out, "out");
    *out = nullptr;
    const auto o = input(options_json, "options_json");
    o.reject_unknown({"database_path", "key_file", "read_only", "executor_threads", "data_dir",
                      "stats_flush_interval_ms", "block_time_ms", "payout_interval_ms", "poot_freshness_s",
                      "poot_window_s", "outbox_dir", "public_url", "nodes", "ledger", "payouts", "poot", "login"});
    const auto nodes = option_group(o, "nodes", {"stats_flush_interval_ms"});
    const auto ledger = option_group(o, "ledger", {"block_time_ms"});
    const auto payouts = option_group(o, "payouts", {"interval_ms"});
    const auto poot = option_group(o, "poot", {"freshness_s", "window_s"});
    const auto login = option_group(o, "login", {"outbox_dir", "public_url"});
    // Where a grouped option is read from: its flat key (the ABI since
    // version 1) or its key in the group, never both. `given` maps the
    // lucid::Options path to the key the caller wrote, for Cluster's errors.
    std::vector<std::pair<std::string, std::string>> given;
    const auto source = [&](const std::optional<JsonObject>& group, const char* key, const char* flat,
                            const char* path) -> std::pair<const JsonObject*, const char*> {
      const bool grouped = group && group->member(key) != nullptr;
      if (grouped && o.member(flat) != nullptr)
        invalid(group->field_name(key), group->field_name(key) + " and " + flat + " set the same option: give one");
      if (grouped) {
        given.emplace_back(path, group->field_name(key));
        return {&*group, key};
      }
      if (o.member(flat) != nullptr) given.emplace_back(path, flat);
      return {&o, flat};
    };
    lucid::Options opt;
    opt.login.mailer = std::move(mailer);
    opt.database_path = o.required_string("database_path", kAnyLength);
    opt.key_file = o.optional_string("key_file", kAnyLength).value_or("");
    if (auto v = o.optional_bool("read_only")) opt.read_only = *v;
    if (auto v = o.optional_exact_int("executor_threads")) {
      if (*v < 1 || *v > 64) invalid("executor_threads", "executor_threads must be 1..64");
      opt.executor_threads = static_cast<int>(*v);
    }
    if (auto v = o.optional_string("data_dir", kMaxPath)) opt.data_dir = *v;
    {
      auto [in, key] = source(nodes, "stats_flush_interval_ms", "stats_flush_interval_ms", "nodes.stats_flush_interval");
      set_ms(*in, key, opt.nodes.stats_flush_interval);
    }
    {
      auto [in, key] = source(ledger, "block_time_ms", "block_time_ms", "ledger.block_time");
      set_ms(*in, key, opt.ledger.block_time);
    }
    {
      auto [in, key] = source(payouts, "interval_ms", "payout_interval_ms", "payouts.interval");
      set_ms(*in, key, opt.payouts.interval);
    }
    {
      auto [in, key] = source(poot, "freshness_s", "poot_freshness_s", "poot.freshness");
      set_ms(*in, key, opt.poot.freshness);
    }
    {
      auto [in, key] = source(poot, "window_s", "poot_window_s", "poot.window");
      set_ms(*in, key, opt.poot.window);
    }
    {
      auto [in, key] = source(login, "outbox_dir", "outbox_dir", "login.outbox_dir");
      if (auto v = in->optional_string(key, kMaxPath)) opt.login.outbox_dir = *v;
    }
    {
      auto [in, key] = source(login, "public_url", "public_url", "login.public_url");
      if (auto v = in->optional_string(key, kMaxPath)) opt.login.public_url = *v;
    }
    auto handle = std::make_unique<lucid_cluster>();
    try {
      handle->cluster = std::make_unique<lucid::Cluster>(std::move(opt));
    } catch (const Error& e) {
      // Name the option by the key the caller wrote, not the C++ field.
      for (const auto& [path, key] : given)
        if (e.field() == path) throw Error(e.code(), e.message(), key, e.reason());
      throw;
    }
    *out = handle.release();
  });
}

}  // namespace

extern "C" {

const char* lucid_version(void) { return lucid::version(); }
int lucid_abi_version(void) { return LUCID_C_ABI_VERSION; }

const char* lucid_status_name(int status) {
  switch (status) {
    case LUCID_OK: return "ok";
    case LUCID_OUT_OF_MEMORY: return "out_of_memory";
    default: break;
  }
  if (status >= 1 && status <= 9) return lucid::errc_name(static_cast<Errc>(status));
  return "unknown";
}

const char* lucid_last_error_message(void) { return t_message.c_str(); }
const char* lucid_last_error_field(void) { return t_field.c_str(); }
void lucid_free(char* p) { std::free(p); }

lucid_status lucid_cluster_open(const char* options_json, lucid_cluster** out) {
  return open_cluster(options_json, nullptr, out);
}

lucid_status lucid_cluster_open_with_mailer(const char* options_json, lucid_mail_fn mail, void* user_data,
                                            lucid_cluster** out) {
  std::shared_ptr<lucid::Mailer> mailer;
  if (mail != nullptr) {
    try {
      mailer = std::make_shared<CallbackMailer>(mail, user_data);
    } catch (const std::bad_alloc&) {
      if (out != nullptr) *out = nullptr;
      return LUCID_OUT_OF_MEMORY;
    }
  }
  return open_cluster(options_json, std::move(mailer), out);
}

void lucid_cluster_close(lucid_cluster* cluster) {
  // ~Cluster stops and flushes; it does not throw (stop() swallows errors).
  delete cluster;
}

lucid_status lucid_cluster_start(lucid_cluster* cluster) {
  return guard([&] { need(cluster).start(); });
}
lucid_status lucid_cluster_stop(lucid_cluster* cluster) {
  return guard([&] { need(cluster).stop(); });
}

lucid_status lucid_node_join(lucid_cluster* cluster, const char* request_json, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    const auto o = input(request_json, "request_json");
    o.reject_unknown({"hostname", "ip_address", "system_info", "join_secret"});
    const auto r = c.nodes().request_join({o.required_string("hostname", kAnyLength),
                                           o.optional_string("ip_address", kAnyLength).value_or(""),
                                           o.optional_string("system_info", kAnyLength).value_or(""),
                                           o.optional_string("join_secret", kAnyLength).value_or("")});
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("request_id");
    w.Int64(r.request_id);
    put(w, "registration_code", r.registration_code);
    w.Key("already_active");
    w.Bool(r.already_active);
    if (!r.join_secret.empty()) put(w, "join_secret", r.join_secret);
    w.EndObject();
    give(sb, out_json);
  });
}

lucid_status lucid_node_poll(lucid_cluster* cluster, const char* code, const char* join_secret, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    need_ptr(code, "code");
    const auto p = c.nodes().poll_by_code(code, join_secret ? std::string_view(join_secret) : std::string_view());
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    put(w, "status", lucid::node_status_name(p.status));
    if (p.api_key) put(w, "api_key", *p.api_key);
    w.EndObject();
    give(sb, out_json);
  });
}


lucid_status lucid_node_approve(lucid_cluster* cluster, int64_t node_id, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    give_node(c.nodes().approve(node_id), out_json);
  });
}

lucid_status lucid_node_approve_code(lucid_cluster* cluster, const char* code, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    need_ptr(code, "code");
    give_node(c.nodes().approve_by_code(code), out_json);
  });
}

lucid_status lucid_node_authenticate(lucid_cluster* cluster, const char* api_key, int64_t* node_id) {
  return guard([&] {
    auto& c = need(cluster);
    need_ptr(api_key, "api_key");
    need_ptr(node_id, "node_id");
    *node_id = c.nodes().authenticate_key(api_key);
  });
}

lucid_status lucid_node_report_stats(lucid_cluster* cluster, int64_t node_id, const char* stats_json) {
  return guard([&] {
    auto& c = need(cluster);
    const auto o = input(stats_json, "stats_json");
    o.reject_unknown({"cpu_usage", "disk_usage", "active_backups", "memory_percent", "uptime_seconds", "disk_total_gb"});
    lucid::StatsSample s;
    s.cpu_usage = o.required_number("cpu_usage");
    s.disk_usage = o.required_number("disk_usage");
    s.active_backups = o.optional_exact_int("active_backups").value_or(0);
    s.memory_percent = o.optional_number("memory_percent");
    s.uptime_seconds = o.optional_exact_int("uptime_seconds");
    s.disk_total_gb = o.optional_number("disk_total_gb");
    c.nodes().report_stats(node_id, s);
  });
}

lucid_status lucid_nodes_list(lucid_cluster* cluster, int64_t skip, int64_t limit, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    if (skip < 0) invalid("skip", "skip must be >= 0");
    if (limit < 1 || limit > 1000) invalid("limit", "limit must be 1..1000");
    const auto nodes = c.nodes().list({skip, limit});
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("total");
    w.Int64(c.nodes().count());
    w.Key("nodes");
    w.StartArray();
    for (const auto& n : nodes) write_node(w, n, false);
    w.EndArray();
    w.EndObject();
    give(sb, out_json);
  });
}

lucid_status lucid_node_get(lucid_cluster* cluster, int64_t node_id, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    rapidjson::StringBuffer sb;
    Writer w(sb);
    write_node(w, c.nodes().get(node_id, 10), true);
    give(sb, out_json);
  });
}

lucid_status lucid_pool_create(lucid_cluster* cluster, const char* pool_json, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    const auto o = input(pool_json, "pool_json");
    o.reject_unknown({"name", "description", "max_nodes", "max_cpu_cores", "max_memory_gb", "max_storage_gb"});
    lucid::PoolCreate req;
    req.name = o.required_string("name", kAnyLength);
    req.description = o.optional_string("description", kAnyLength).value_or("");
    req.max_nodes = o.optional_exact_int("max_nodes");
    req.limits.max_cpu_cores = o.optional_exact_int("max_cpu_cores");
    req.limits.max_memory_gb = o.optional_number("max_memory_gb");
    req.limits.max_storage_gb = o.optional_number("max_storage_gb");
    give_pool(c.pools().create(req), out_json);
  });
}

lucid_status lucid_pool_add_node(lucid_cluster* cluster, const char* pool_uid, const char* node_uid,
                                 int64_t priority, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    need_ptr(pool_uid, "pool_uid");
    need_ptr(node_uid, "node_uid");
    give_pool(c.pools().add_node(pool_uid, node_uid, priority), out_json);
  });
}

lucid_status lucid_pools_list(lucid_cluster* cluster, int64_t page, int64_t limit, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    if (page < 1) invalid("page", "page must be >= 1");
    if (limit < 1 || limit > 100) invalid("limit", "limit must be 1..100");
    std::int64_t total = 0;
    const auto pools = c.pools().list(page, limit, &total);
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("total");
    w.Int64(total);
    w.Key("pools");
    w.StartArray();
    for (const auto& p : pools) {
      write_pool(w, p);
    }
    w.EndArray();
    w.EndObject();
    give(sb, out_json);
  });
}

lucid_status lucid_poot_validate(lucid_cluster* cluster, const char* proof_json, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    const auto o = input(proof_json, "proof_json");
    o.reject_unknown({"node_uid", "output_data", "timestamp", "nonce", "signature"});
    lucid::PootProof p{o.required_string("node_uid", kAnyLength), o.required_string("output_data", kAnyLength),
                       o.required_string("timestamp", kAnyLength), o.required_string("nonce", kAnyLength),
                       o.optional_string("signature", kAnyLength).value_or("")};
    const auto v = c.poot().validate(p);
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    put(w, "node_uid", v.node_uid);
    w.Key("valid");
    w.Bool(v.valid);
    put(w, "status", lucid::poot_status_name(v.status));
    put(w, "output_hash", v.output_hash);
    put_str_or_null(w, "failure", lucid::poot_failure_name(v.failure));
    put(w, "reason", v.reason);
    put_time(w, "validated_at", v.validated_at);
    put(w, "nonce", v.nonce);
    w.EndObject();
    give(sb, out_json);
  });
}

lucid_status lucid_payout_submit(lucid_cluster* cluster, const char* batch_json, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    const auto o = input(batch_json, "batch_json");
    o.reject_unknown({"batch_id", "payout_requests"});
    lucid::PayoutBatchRequest req;
    req.batch_id = o.optional_string("batch_id", kAnyLength).value_or("");
    const auto* list = o.member("payout_requests");
    if (list == nullptr) invalid("payout_requests", "payout_requests is required");
    if (!list->IsArray()) invalid("payout_requests", "payout_requests must be an array");
    for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
      const std::string prefix = "payout_requests." + std::to_string(i) + ".";
      if (!(*list)[i].IsObject()) invalid(prefix.substr(0, prefix.size() - 1), "payout request must be an object");
      const JsonObject r((*list)[i], prefix);
      r.reject_unknown({"node_id", "amount", "currency", "wallet_address"});
      lucid::PayoutRequest p;
      p.node_uid = r.required_string("node_id", kAnyLength);
      p.amount = r.required_string("amount", kAnyLength);
      if (auto cur = r.optional_string("currency", kAnyLength).value_or(""); !cur.empty()) p.currency = cur;
      p.wallet_address = r.optional_string("wallet_address", kAnyLength).value_or("");
      req.requests.push_back(std::move(p));
    }
    const auto b = c.payouts().submit(req);
    rapidjson::StringBuffer sb;
    Writer w(sb);
    write_batch(w, b);
    give(sb, out_json);
  });
}

lucid_status lucid_payout_batch(lucid_cluster* cluster, const char* batch_id, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    need_ptr(batch_id, "batch_id");
    rapidjson::StringBuffer sb;
    Writer w(sb);
    write_batch(w, c.payouts().batch(batch_id));
    give(sb, out_json);
  });
}

lucid_status lucid_payouts_for_node(lucid_cluster* cluster, const char* node_uid, int64_t page, int64_t limit, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    need_ptr(node_uid, "node_uid");
    lucid::PayoutQuery q;
    q.page = page;
    q.limit = limit;
    std::int64_t total = 0;
    const auto payouts = c.payouts().list_for_node(node_uid, q, &total);
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("total");
    w.Int64(total);
    w.Key("payouts");
    w.StartArray();
    for (const auto& p : payouts) {
      w.StartObject();
      put(w, "payout_id", p.payout_id);
      put(w, "node_uid", p.node_uid);
      put(w, "amount", lucid::format_micros(p.amount_micros));
      put(w, "currency", lucid::currency_name(p.currency));
      put(w, "status", lucid::payout_status_name(p.status));
      put_str_or_null(w, "failure_reason", p.failure_reason);
      put_str_or_null(w, "transaction_hash", p.transaction_hash);
      put(w, "batch_id", p.batch_id);
      put_time(w, "created_at", p.created_at);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    give(sb, out_json);
  });
}

lucid_status lucid_payouts_process(lucid_cluster* cluster, size_t* settled) {
  return guard([&] {
    auto& c = need(cluster);
    const std::size_t n = c.payouts().process();
    if (settled != nullptr) *settled = n;
  });
}

lucid_status lucid_ledger_seal(lucid_cluster* cluster, int64_t* blocks) {
  return guard([&] {
    auto& c = need(cluster);
    const auto sealed = c.ledger().seal();
    if (blocks != nullptr) *blocks = static_cast<int64_t>(sealed.size());
  });
}

lucid_status lucid_ledger_verify(lucid_cluster* cluster, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    const auto r = c.ledger().verify();
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("ok");
    w.Bool(r.ok);
    w.Key("blocks");
    w.Int64(r.blocks);
    w.Key("transactions");
    w.Int64(r.transactions);
    w.Key("pending");
    w.Int64(r.pending);
    put_opt(w, "broken_height", r.broken_height);
    put_str_or_null(w, "broken_hash", r.broken_hash);
    put_str_or_null(w, "problem", r.problem);
    w.EndObject();
    give(sb, out_json);
  });
}

lucid_status lucid_task_submit(lucid_cluster* cluster, const char* task_json, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    const auto o = input(task_json, "task_json");
    // The server's POST /api/v1/tasks reads the same body the same way.
    give_task(c.tasks().submit(lucid::detail::decode_task_submit(o)), out_json);
  });
}

lucid_status lucid_task_get(lucid_cluster* cluster, const char* task_id, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    need_ptr(task_id, "task_id");
    rapidjson::StringBuffer sb;
    Writer w(sb);
    write_task(w, c.tasks().get(task_id));
    give(sb, out_json);
  });
}

lucid_status lucid_task_result(lucid_cluster* cluster, const char* task_id, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    need_ptr(task_id, "task_id");
    const auto t = c.tasks().get(task_id);
    rapidjson::StringBuffer sb;
    Writer w(sb);
    // The server's GET /api/v1/tasks/{id}/result object, plus "final".
    lucid::detail::write_task_result_json(w, t, lucid::detail::TaskResultStyle{true, true, true});
    give(sb, out_json);
  });
}

lucid_status lucid_tasks_schedule(lucid_cluster* cluster) {
  return guard([&] { need(cluster).tasks().schedule(); });
}

lucid_status lucid_device_report(lucid_cluster* cluster, int64_t node_id, const char* device_json, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    const auto o = input(device_json, "device_json");
    o.reject_unknown({"platform", "role", "tags", "capabilities", "allowed_task_types", "max_concurrent", "agent_version"});
    lucid::DeviceReport r;
    r.platform = o.required_string("platform", kAnyLength);
    if (o.member("role")) r.role = o.required_string("role", kAnyLength);
    if (o.member("tags")) r.tags = string_list(o, "tags");
    const auto* cv = o.member("capabilities");
    if (cv == nullptr) invalid("capabilities", "capabilities is required");
    if (!cv->IsObject()) invalid("capabilities", "capabilities must be an object");
    const JsonObject cap(*cv, "capabilities.");
    cap.reject_unknown({"cpu_count", "memory_total_gb", "storage_total_gb", "has_gpu", "internet"});
    auto cpu = cap.optional_exact_int("cpu_count");
    if (!cpu) invalid("capabilities.cpu_count", "capabilities.cpu_count is required");
    r.capabilities.cpu_count = *cpu;
    r.capabilities.memory_total_gb = cap.required_number("memory_total_gb");
    r.capabilities.storage_total_gb = cap.required_number("storage_total_gb");
    r.capabilities.has_gpu = cap.optional_bool("has_gpu").value_or(false);
    r.capabilities.internet = cap.optional_bool("internet").value_or(false);
    if (!o.member("allowed_task_types")) invalid("allowed_task_types", "allowed_task_types is required");
    r.allowed_task_types = string_list(o, "allowed_task_types");
    r.max_concurrent = o.optional_exact_int("max_concurrent").value_or(1);
    r.agent_version = o.optional_string("agent_version", kAnyLength).value_or("");
    const auto d = c.tasks().report_device(node_id, r);
    rapidjson::StringBuffer sb;
    Writer w(sb);
    write_device(w, d);
    give(sb, out_json);
  });
}

lucid_status lucid_agent_take_work(lucid_cluster* cluster, int64_t node_id, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    // node_id comes from the caller here, not from a verified key as over HTTP:
    // an id that names no node is refused before it reaches the scheduler.
    (void)c.nodes().get(node_id, 0);
    c.tasks().heartbeat(node_id);
    const auto work = c.tasks().take_work(node_id);
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("tasks");
    w.StartArray();
    for (const auto& t : work.tasks) {
      w.StartObject();
      put(w, "task_id", t.task_id);
      put(w, "task_type", t.task_type);
      put_raw(w, "payload", t.payload_json);
      w.Key("timeout_seconds");
      w.Int64(t.timeout_seconds);
      w.Key("attempt");
      w.Int64(t.attempt);
      w.EndObject();
    }
    w.EndArray();
    put_strings(w, "cancel", work.cancel);
    put_strings(w, "pings", work.pings);
    w.EndObject();
    give(sb, out_json);
  });
}

lucid_status lucid_task_start(lucid_cluster* cluster, int64_t node_id, const char* task_id, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    need_ptr(task_id, "task_id");
    give_task(c.tasks().start_task(node_id, task_id), out_json);
  });
}

lucid_status lucid_task_report_result(lucid_cluster* cluster, int64_t node_id, const char* task_id,
                                      const char* result_json, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    need_ptr(task_id, "task_id");
    const auto o = input(result_json, "result_json");
    o.reject_unknown({"status", "result", "error", "exit_code", "duration_ms"});
    lucid::TaskResultReport r;
    r.status = o.required_string("status", kAnyLength);
    if (const auto* v = o.member("result")) r.result_json = json_text(*v);
    if (o.member("error")) r.error = o.required_string("error", kAnyLength);
    r.exit_code = o.optional_exact_int("exit_code");
    auto ms = o.optional_exact_int("duration_ms");
    if (!ms) invalid("duration_ms", "duration_ms is required");
    r.duration_ms = *ms;
    give_task(c.tasks().report_result(node_id, task_id, r), out_json);
  });
}

}  // extern "C"

// ---- users and sessions, workflows, events ----

namespace {

void write_user(Writer& w, const lucid::User& u) {
  w.StartObject();
  put(w, "id", u.id);
  put(w, "email", u.email);
  put(w, "username", u.username);
  put(w, "first_name", u.first_name);
  put(w, "last_name", u.last_name);
  put(w, "role", lucid::role_name(u.role));
  w.Key("hardware_wallet_enabled");
  w.Bool(u.hardware_wallet_enabled);
  w.Key("totp_enabled");
  w.Bool(u.totp_enabled);
  put_time(w, "created_at", u.created_at);
  put_time(w, "updated_at", u.updated_at);
  put_time(w, "last_login", u.last_login);
  put_time(w, "locked_until", u.locked_until);
  w.EndObject();
}

void give_user(const lucid::User& u, char** out_json) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  write_user(w, u);
  give(sb, out_json);
}

void give_tokens(const lucid::AuthTokens& t, char** out_json) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  put(w, "access_token", t.access_token);
  put(w, "refresh_token", t.refresh_token);
  w.Key("expires_in");
  w.Int64(t.expires_in.count());
  put(w, "session_id", t.session_id);
  w.Key("user");
  write_user(w, t.user);
  w.EndObject();
  give(sb, out_json);
}

void write_execution(Writer& w, const lucid::ExecutionInstance& e) {
  w.Key("id");
  w.Int64(e.id);
  w.Key("workflow_id");
  w.Int64(e.workflow_id);
  put(w, "status", e.status);
  w.Key("progress");
  w.Int(e.progress());
  w.Key("jobs_total");
  w.Int64(e.jobs_total);
  w.Key("jobs_done");
  w.Int64(e.jobs_done);
  put_str_or_null(w, "error", e.error.value_or(""));
  put_time(w, "started_at", e.started_at);
  put_time(w, "completed_at", e.completed_at);
}

const char* event_kind_name(lucid::EventKind k) {
  switch (k) {
    case lucid::EventKind::node_joined: return "node_joined";
    case lucid::EventKind::node_approved: return "node_approved";
    case lucid::EventKind::node_updated: return "node_updated";
    case lucid::EventKind::node_stats: return "node_stats";
    case lucid::EventKind::network: return "network";
  }
  return "unknown";
}

}  // namespace

extern "C" {

lucid_status lucid_user_create(lucid_cluster* cluster, const char* user_json, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    const auto o = input(user_json, "user_json");
    o.reject_unknown({"email", "username", "password", "first_name", "last_name", "role"});
    lucid::UserCreate u;
    // Lengths are the capability's rules (users.cpp); these bounds only stop
    // a huge string before it is copied around.
    u.email = o.required_string("email", 1024);
    u.username = o.required_string("username", 1024);
    u.password = o.required_string("password", 1024);
    u.first_name = o.optional_string("first_name", 1024).value_or("");
    u.last_name = o.optional_string("last_name", 1024).value_or("");
    if (auto r = o.optional_string("role", 64)) {
      const auto role = lucid::parse_role(*r);
      if (!role) invalid("role", "role must be one of user, viewer, node_operator, admin, super_admin");
      u.role = *role;
    }
    give_user(c.users().create(u), out_json);
  });
}

lucid_status lucid_user_get(lucid_cluster* cluster, const char* user_id, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    need_ptr(user_id, "user_id");
    give_user(c.users().get(user_id), out_json);
  });
}

lucid_status lucid_login_start(lucid_cluster* cluster, const char* email, int64_t* expires_in) {
  if (expires_in != nullptr) *expires_in = 0;
  return guard([&] {
    auto& c = need(cluster);
    need_ptr(email, "email");
    const auto ttl = c.users().start_login(email);
    if (expires_in != nullptr) *expires_in = ttl.count();
  });
}

lucid_status lucid_login_verify(lucid_cluster* cluster, const char* email, const char* code, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    need_ptr(email, "email");
    need_ptr(code, "code");
    give_tokens(c.users().verify_code(email, code), out_json);
  });
}

lucid_status lucid_session_refresh(lucid_cluster* cluster, const char* refresh_token, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    need_ptr(refresh_token, "refresh_token");
    give_tokens(c.users().refresh(refresh_token), out_json);
  });
}

lucid_status lucid_session_logout(lucid_cluster* cluster, const char* session_id) {
  return guard([&] {
    auto& c = need(cluster);
    need_ptr(session_id, "session_id");
    c.users().logout(session_id);
  });
}

lucid_status lucid_token_verify(lucid_cluster* cluster, const char* access_token, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    need_ptr(access_token, "access_token");
    const auto claims = c.auth().verify_token(access_token);
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    put(w, "subject", claims.subject);
    put(w, "role", claims.role_label());
    put_str_or_null(w, "session_id", claims.session_id);
    put_time(w, "issued_at", claims.issued_at);
    put_time(w, "expires_at", claims.expires_at);
    w.EndObject();
    give(sb, out_json);
  });
}

lucid_status lucid_service_create_standalone(lucid_cluster* cluster, const char* service_json, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    const auto o = input(service_json, "service_json");
    o.reject_unknown({"name", "description", "executable_path", "arguments", "working_directory", "environment",
                      "timeout_seconds"});
    lucid::StandaloneCreate req;
    req.name = o.required_string("name", lucid::WorkflowLimits::name);
    req.description = o.optional_string("description", lucid::WorkflowLimits::text).value_or("");
    req.executable_path = o.required_string("executable_path", lucid::WorkflowLimits::text);
    if (const auto* v = o.member("arguments"))
      req.arguments = lucid::detail::string_array(*v, o.field_name("arguments"), lucid::WorkflowLimits::list);
    req.working_directory = o.optional_string("working_directory", lucid::WorkflowLimits::text).value_or("");
    if (const auto* ev = o.member("environment")) {
      if (!ev->IsObject()) invalid("environment", "environment must be an object of strings");
      const JsonObject env(*ev, "environment.");
      if (env.root().MemberCount() > lucid::WorkflowLimits::list)
        invalid("environment", "environment must have at most 256 variables");
      for (const auto& m : env.root().GetObject()) {
        const std::string name(m.name.GetString(), m.name.GetStringLength());
        req.environment.emplace_back(name, env.required_string(name.c_str(), lucid::WorkflowLimits::text));
      }
    }
    if (auto t = o.optional_exact_int("timeout_seconds")) req.timeout_seconds = *t;
    const auto svc = c.workflows().create_standalone(req);
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("id");
    w.Int64(svc.id);
    put(w, "name", svc.name);
    put(w, "service_type", svc.service_type);
    put(w, "status", svc.status);
    if (svc.standalone) {
      put(w, "executable_path", svc.standalone->executable_path);
      put_strings(w, "arguments", svc.standalone->arguments);
      w.Key("timeout_seconds");
      w.Int64(svc.standalone->timeout_seconds);
    }
    w.EndObject();
    give(sb, out_json);
  });
}

lucid_status lucid_workflow_define(lucid_cluster* cluster, const char* definition_json, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    auto& wf = c.workflows();
    const auto o = input(definition_json, "definition_json");
    o.reject_unknown({"name", "description", "nodes", "connections"});
    const std::string name = o.required_string("name", lucid::WorkflowLimits::name);
    const std::string description = o.optional_string("description", lucid::WorkflowLimits::text).value_or("");
    // Everything is read and checked first; only then is anything stored.
    const auto* nodes = o.member("nodes");
    if (nodes == nullptr || !nodes->IsArray() || nodes->Empty())
      invalid("nodes", "nodes must be a non-empty array");
    if (nodes->Size() > lucid::WorkflowLimits::nodes) invalid("nodes", "a workflow has at most 1000 nodes");
    std::vector<lucid::WorkflowNode> node_specs;
    for (rapidjson::SizeType i = 0; i < nodes->Size(); ++i) {
      const std::string field = "nodes." + std::to_string(i);
      if (!(*nodes)[i].IsObject()) invalid(field, field + " must be an object");
      const JsonObject n((*nodes)[i], field + ".");
      n.reject_unknown({"service_id", "config"});
      const auto service_id = n.optional_exact_int("service_id");
      if (!service_id) invalid(field + ".service_id", field + ".service_id is required");
      lucid::WorkflowNode spec;
      spec.service_id = *service_id;
      if (const auto* cfg = n.member("config")) {
        if (!cfg->IsObject()) invalid(field + ".config", field + ".config must be an object");
        spec.config_json = json_text(*cfg);
      }
      (void)wf.get_service(spec.service_id);  // not_found before anything is stored
      node_specs.push_back(std::move(spec));
    }
    std::vector<std::pair<std::size_t, std::size_t>> edges;
    if (const auto* conns = o.member("connections")) {
      if (!conns->IsArray()) invalid("connections", "connections must be an array");
      if (conns->Size() > lucid::WorkflowLimits::connections)
        invalid("connections", "a workflow has at most 10000 connections");
      for (rapidjson::SizeType i = 0; i < conns->Size(); ++i) {
        const std::string field = "connections." + std::to_string(i);
        if (!(*conns)[i].IsObject()) invalid(field, field + " must be an object");
        const JsonObject e((*conns)[i], field + ".");
        e.reject_unknown({"source", "target"});
        std::size_t ends[2];
        const char* keys[2] = {"source", "target"};
        for (int k = 0; k < 2; ++k) {
          const auto v = e.optional_exact_int(keys[k]);
          if (!v || *v < 0 || static_cast<std::uint64_t>(*v) >= node_specs.size())
            invalid(field + "." + keys[k], field + "." + keys[k] + " must be the index of a node");
          ends[k] = static_cast<std::size_t>(*v);
        }
        edges.emplace_back(ends[0], ends[1]);
      }
    }
    const auto workflow = wf.create_workflow(name, description, "{}");
    std::vector<std::int64_t> node_ids, connection_ids;
    try {
      for (auto& spec : node_specs) {
        spec.workflow_id = workflow.id;
        node_ids.push_back(wf.add_node(spec).id);
      }
      for (const auto& [from, to] : edges) {
        lucid::WorkflowConnection conn;
        conn.workflow_id = workflow.id;
        conn.source_node_id = node_ids[from];
        conn.target_node_id = node_ids[to];
        connection_ids.push_back(wf.add_connection(conn).id);
      }
    } catch (...) {
      // No half-defined workflow: removing it removes its nodes and connections.
      try {
        wf.delete_workflow(workflow.id);
      } catch (...) {
      }
      throw;
    }
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("workflow_id");
    w.Int64(workflow.id);
    w.Key("node_ids");
    w.StartArray();
    for (auto id : node_ids) w.Int64(id);
    w.EndArray();
    w.Key("connection_ids");
    w.StartArray();
    for (auto id : connection_ids) w.Int64(id);
    w.EndArray();
    w.EndObject();
    give(sb, out_json);
  });
}

lucid_status lucid_workflow_execute(lucid_cluster* cluster, int64_t workflow_id, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    const auto e = c.workflows().execute(workflow_id);
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    write_execution(w, e);
    w.Key("jobs");
    w.StartArray();
    w.EndArray();
    w.EndObject();
    give(sb, out_json);
  });
}

lucid_status lucid_workflow_execution(lucid_cluster* cluster, int64_t execution_id, char** out_json) {
  return guard_out(out_json, [&] {
    auto& c = need(cluster);
    auto& wf = c.workflows();
    const auto e = wf.execution(execution_id);
    const auto jobs = wf.execution_jobs(execution_id);
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    write_execution(w, e);
    w.Key("jobs");
    w.StartArray();
    for (const auto& j : jobs) {
      w.StartObject();
      w.Key("id");
      w.Int64(j.id);
      w.Key("node_id");
      w.Int64(j.node_id);
      w.Key("service_id");
      w.Int64(j.service_id);
      put(w, "status", j.status);
      put_opt(w, "exit_code", j.exit_code);
      put_str_or_null(w, "error", j.error.value_or(""));
      put_time(w, "started_at", j.started_at);
      put_time(w, "completed_at", j.completed_at);
      std::optional<std::string> out, err;
      for (const auto& io : wf.job_interfaces(j.id)) {
        if (io.interface_type == "STDOUT") out = io.value;
        if (io.interface_type == "STDERR") err = io.value;
      }
      w.Key("stdout");
      if (out) w.String(out->c_str(), static_cast<rapidjson::SizeType>(out->size()));
      else w.Null();
      w.Key("stderr");
      if (err) w.String(err->c_str(), static_cast<rapidjson::SizeType>(err->size()));
      else w.Null();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    give(sb, out_json);
  });
}

lucid_status lucid_events_subscribe(lucid_cluster* cluster, lucid_event_fn fn, void* user_data,
                                    lucid_subscription** out) {
  if (out != nullptr) *out = nullptr;
  return guard([&] {
    auto& c = need(cluster);
    need_ptr(out, "out");
    if (fn == nullptr) invalid("fn", "fn is NULL");
    auto handle = std::make_unique<lucid_subscription>();
    handle->subscription = c.events().subscribe([fn, user_data](const lucid::Event& e) {
      // The publisher is library code: nothing may escape into it.
      try {
        rapidjson::StringBuffer sb;
        Writer w(sb);
        w.StartObject();
        put(w, "kind", event_kind_name(e.kind));
        w.Key("node_id");
        w.Int64(e.node_id);
        put(w, "type", e.type);
        w.Key("payload");
        rapidjson::Document d;
        if (!e.payload.empty() && lucid::detail::parse_json(d, e.payload)) {
          d.Accept(w);
        } else {
          w.StartObject();
          w.EndObject();
        }
        w.EndObject();
        fn(user_data, sb.GetString());
      } catch (...) {
      }
    });
    *out = handle.release();
  });
}

void lucid_subscription_close(lucid_subscription* subscription) {
  // ~Subscription waits until the callback is not running (event_bus.cpp).
  delete subscription;
}

}  // extern "C"
