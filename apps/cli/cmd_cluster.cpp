// lucidctl devices / config / cluster / apikeys: the cluster document's
// device, configuration and status routes, and the cluster API keys
// (POST /api/v1/cluster/api-keys, docs/decisions.md).
#include <rapidjson/document.h>

#include <iostream>

#include "commands.hpp"
#include "util/json.hpp"
#include "util/json_object.hpp"

namespace lucidctl {

namespace {

// The cluster envelope's "data", or the whole body with --json.
int print_data(const Remote& r, const rapidjson::Document& d) {
  const auto* data = lucid::detail::peek_member(d, "data");
  print_object(r, r.json() || !data ? static_cast<const rapidjson::Value&>(d) : *data);
  return 0;
}

std::string device_path(const std::string& id, const std::string& tail = {}) {
  if (id.empty() || id.size() > 64 ||
      id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != std::string::npos)
    usage_error("DEVICE_ID is a device id (node_…)");
  return "/api/v1/devices/" + id + tail;
}

// KEY=VALUE words as a JSON object: a VALUE that is JSON (60, true, "x")
// stays so, anything else is a string.
std::string assignments(const std::vector<std::string>& words) {
  JsonBody b;
  for (const auto& w : words) {
    const auto eq = w.find('=');
    if (eq == std::string::npos || eq == 0) usage_error("expected KEY=VALUE, got '" + w + "'");
    const std::string key = w.substr(0, eq), value = w.substr(eq + 1);
    rapidjson::Document d;
    if (!value.empty() && lucid::detail::parse_json(d, value, lucid::detail::kJsonStrict, lucid::detail::kJsonMaxDepth))
      b.raw(key, value);
    else
      b.str(key, value);
  }
  return b.text();
}

}  // namespace

void add_cluster_commands(CLI::App& app, Commands& c) {
  struct Opts {
    std::string id, status, role, platform, section, name;
    std::vector<std::string> tags, words;
    std::int64_t timeout = 10;
  };
  auto o = std::make_shared<Opts>();

  // ---- devices ----
  auto* devices = app.add_subcommand("devices", "Cluster devices (approved nodes that run tasks)");
  devices->require_subcommand(1);
  auto* list = devices->add_subcommand("list", "List devices (all pages)");
  list->add_option("--status", o->status, "online, offline or all");
  list->add_option("--role", o->role, "Only this role");
  list->add_option("--platform", o->platform, "Only this platform");
  list->add_option("--tag", o->tags, "Only devices with this tag (repeatable)");
  examples(list, "  lucidctl devices list --status online\n  lucidctl devices list -o wide --role compute\n");
  on_run(list, c, [&c, o, list] {
    std::string filter;
    if (list->count("--status")) filter += "&status=" + url_encode(o->status);
    if (list->count("--role")) filter += "&role=" + url_encode(o->role);
    if (list->count("--platform")) filter += "&platform=" + url_encode(o->platform);
    if (!o->tags.empty()) {
      std::string t;
      for (const auto& x : o->tags) t += (t.empty() ? "" : ",") + x;
      filter += "&tags=" + url_encode(t);
    }
    Paging p;
    p.items = "data";
    p.path = [filter](std::int64_t page, std::int64_t) {
      return "/api/v1/devices?page_size=100&page=" + std::to_string(page) + filter;
    };
    const auto all = list_all(c.remote, p);
    print_list(c.remote,
               {col("DEVICE_ID", "device_id"), col("HOSTNAME", "hostname"), col("STATUS", "status"), col("ROLE", "role"),
                col("PLATFORM", "platform"), col("CPUS", "capabilities.cpu_count"),
                col("MEM_GB", "capabilities.memory_total_gb"), col("TASKS", "active_tasks"), col("TAGS", "tags"),
                Column{"LAST_SEEN", [](const rapidjson::Value& v) { return age_at(v, "last_heartbeat"); }},
                col("IP", "ip_address", true), col("UPTIME", "uptime", true),
                col("STORAGE_GB", "capabilities.storage_total_gb", true), col("GPU", "capabilities.has_gpu", true),
                col("INTERNET", "capabilities.internet", true), col("MAX_TASKS", "max_concurrent", true),
                col("TYPES", "allowed_task_types", true), col("AGENT", "agent_version", true)},
               all);
    return 0;
  });
  struct Simple {
    const char* name;
    const char* method;
    const char* tail;
    const char* help;
  };
  for (const Simple& s : {Simple{"show", "GET", "", "Show a device: capabilities, role, tags, tasks"},
                          Simple{"status", "GET", "/status", "A device's status and heartbeat"},
                          Simple{"remove", "DELETE", "", "Remove a device: revokes its key, requeues its tasks"}}) {
    auto* sub = devices->add_subcommand(s.name, s.help);
    sub->add_option("DEVICE_ID", o->id, "The device's id (its node_… id)")->required();
    examples(sub, std::string("  lucidctl devices ") + s.name + " node_0123456789abcdef\n");
    on_run(sub, c, [&c, o, s] { return print_data(c.remote, request(c.remote, s.method, device_path(o->id, s.tail))); });
  }
  auto* ping = devices->add_subcommand("ping", "Round trip to a device's agent");
  ping->add_option("DEVICE_ID", o->id, "The device's id (its node_… id)")->required();
  ping->add_option("--timeout", o->timeout, "Seconds to wait for the agent (1..30)")->check(CLI::Range(1, 30))->capture_default_str();
  examples(ping, "  lucidctl devices ping node_0123456789abcdef --timeout 5\n");
  on_run(ping, c, [&c, o] {
    return print_data(c.remote,
                      request(c.remote, "POST", device_path(o->id, "/ping?timeout=" + std::to_string(o->timeout))));
  });
  auto* update = devices->add_subcommand("update", "Set a device's role and/or tags");
  update->add_option("DEVICE_ID", o->id, "The device's id (its node_… id)")->required();
  update->add_option("--role", o->role, "New role ([a-z0-9_-], up to 32)");
  update->add_option("--tag", o->tags, "Tag (repeatable; replaces all tags)");
  examples(update, "  lucidctl devices update node_0123456789abcdef --role compute --tag gpu --tag eu\n");
  on_run(update, c, [&c, o, update] {
    JsonBody b;
    if (update->count("--role")) b.str("role", o->role);
    if (update->count("--tag")) {
      std::string arr = "[";
      for (const auto& t : o->tags) arr += (arr.size() > 1 ? "," : "") + json_quote(t);
      b.raw("tags", arr + "]");
    }
    if (b.empty()) usage_error("devices update needs --role or --tag");
    return print_data(c.remote, request(c.remote, "PUT", device_path(o->id), b.text()));
  });
  auto* summary = devices->add_subcommand("summary", "Device counts by status, role and platform");
  on_run(summary, c, [&c] { return print_data(c.remote, request(c.remote, "GET", "/api/v1/devices/summary")); });

  // ---- config ----
  auto* config = app.add_subcommand("config", "Cluster configuration (server, heartbeat)");
  config->require_subcommand(1);
  auto* get = config->add_subcommand("get", "Print the configuration, or one section of it");
  get->add_option("SECTION", o->section, "server or heartbeat (default: everything)")
      ->check(CLI::IsMember({"server", "heartbeat"}));
  examples(get, "  lucidctl config get\n  lucidctl config get heartbeat --json\n");
  on_run(get, c, [&c, o] {
    return print_data(c.remote, request(c.remote, "GET", o->section.empty() ? "/api/v1/config" : "/api/v1/config/" + o->section));
  });
  auto* set = config->add_subcommand("set", "Change settings of a section");
  set->add_option("SECTION", o->section, "server or heartbeat")->required()->check(CLI::IsMember({"server", "heartbeat"}));
  set->add_option("KEY=VALUE", o->words, "Settings, e.g. interval=60 (server: max_connections; heartbeat: interval, "
                                         "timeout, max_missed)")
      ->required();
  examples(set, "  lucidctl config set heartbeat interval=60 timeout=300 max_missed=3\n"
                "  lucidctl config set server max_connections=200\n");
  on_run(set, c, [&c, o] {
    return print_data(c.remote, request(c.remote, "PUT", "/api/v1/config/" + o->section, assignments(o->words)));
  });
  auto* reset = config->add_subcommand("reset", "Reset every setting to its default");
  on_run(reset, c, [&c] { return print_data(c.remote, request(c.remote, "POST", "/api/v1/config/reset")); });

  // ---- cluster ----
  auto* cluster = app.add_subcommand("cluster", "Cluster status, metrics and health");
  cluster->require_subcommand(1);
  struct Read {
    const char* name;
    const char* path;
    const char* help;
  };
  for (const Read& x : {Read{"status", "/api/v1/cluster/status", "Cluster status: devices, tasks, uptime"},
                        Read{"metrics", "/api/v1/cluster/metrics", "Cluster metrics"},
                        Read{"health", "/health", "The server's health check"}}) {
    auto* sub = cluster->add_subcommand(x.name, x.help);
    const std::string p = x.path;
    on_run(sub, c, [&c, p] { return print_data(c.remote, request(c.remote, "GET", p)); });
  }

  // ---- apikeys ----
  auto* apikeys = app.add_subcommand("apikeys", "Cluster API keys (super_admin): a secret for scripts, shown once");
  apikeys->require_subcommand(1);
  auto* create = apikeys->add_subcommand("create", "Create an API key; prints it once");
  create->add_option("NAME", o->name, "What the key is for (up to 100 characters)")->required();
  create->add_option("--role", o->role, "user, viewer, node_operator, admin (default) or super_admin");
  examples(create, "  lucidctl apikeys create ci-pipeline --role node_operator\n");
  on_run(create, c, [&c, o, create] {
    JsonBody b;
    b.str("name", o->name);
    if (create->count("--role")) b.str("role", o->role);
    return print_data(c.remote, request(c.remote, "POST", "/api/v1/cluster/api-keys", b.text()));
  });
}

}  // namespace lucidctl
