// lucidctl nodes ... and pools ...: the registration document's numeric view
// (GET /api/v1/nodes/, health and stats), the node-management document's
// node_… view (lifecycle, pool, type) and the lifecycle routes of issue 15
// (cordon, uncordon, drain, remove; docs/decisions.md).
#include <rapidjson/document.h>

#include <iostream>
#include <map>

#include "commands.hpp"
#include "util/json_object.hpp"

namespace lucidctl {

void on_run(CLI::App* sub, Commands& c, std::function<int()> work) {
  sub->callback([&c, work = std::move(work)] { c.action = work; });
}

void examples(CLI::App* sub, const std::string& text) { sub->footer("Examples:\n" + text); }

namespace {

using lucid::detail::peek_member;
using lucid::detail::peek_string;

// The three ids of one machine (docs/decisions.md: the registration view's
// integer id and UUID, the management view's node_…), and its hostname.
struct NodeRef {
  std::int64_t id = 0;
  std::string node_id;
  std::string uuid;
  std::string hostname;
};

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos;
}

bool node_uid_form(const std::string& s) {
  return s.size() > 5 && s.size() <= 64 && s.rfind("node_", 0) == 0 &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == std::string::npos;
}

rapidjson::Document registration_list(const Remote& r) {
  Paging p;
  p.page_size = 1000;
  p.path = [](std::int64_t, std::int64_t offset) {
    return "/api/v1/nodes/?skip=" + std::to_string(offset) + "&limit=1000";
  };
  return list_all(r, p);
}

rapidjson::Document management_list(const Remote& r, const std::string& filter = {}) {
  Paging p;
  p.items = "nodes";
  p.path = [filter](std::int64_t page, std::int64_t) {
    return "/api/v1/nodes?page=" + std::to_string(page) + "&limit=100" + filter;
  };
  return list_all(r, p);
}

// Finds the management view's node_… of a hostname (one scan of the list).
std::string node_id_of(const Remote& r, const std::string& hostname) {
  const auto all = management_list(r);
  for (const auto& n : all.GetArray())
    if (text_at(n, "hostname") == hostname) return text_at(n, "node_id");
  return {};
}

// Accepts a numeric id, a node_… id, a UUID or a hostname; fills in the
// others. A reference that matches nothing is a Failure naming the forms.
NodeRef resolve(const Remote& r, const std::string& ref, bool need_node_id) {
  if (ref.empty() || ref.size() > 253) usage_error("a node is named by its id, node_… id, UUID or hostname");
  NodeRef out;
  if (node_uid_form(ref)) {
    out.node_id = ref;
    if (!need_node_id) {
      const auto d = request(r, "GET", "/api/v1/nodes/" + ref);
      out.hostname = text_at(d, "hostname");
    }
    return out;
  }
  if (all_digits(ref)) {
    const auto d = request(r, "GET", "/api/v1/nodes/" + ref);
    out.id = std::stoll(ref);
    out.uuid = text_at(d, "uuid");
    out.hostname = text_at(d, "hostname");
  } else {
    const auto all = registration_list(r);
    for (const auto& n : all.GetArray()) {
      if (text_at(n, "hostname") == ref || text_at(n, "uuid") == ref) {
        out.id = lucid::detail::peek_member(n, "id")->GetInt64();
        out.uuid = text_at(n, "uuid");
        out.hostname = text_at(n, "hostname");
        break;
      }
    }
    if (out.hostname.empty())
      throw Failure("no node with hostname or UUID '" + ref + "' (give an id, a node_… id, a UUID or a hostname)", 1);
  }
  if (need_node_id) {
    out.node_id = node_id_of(r, out.hostname);
    if (out.node_id.empty()) throw Failure("node " + ref + " has no node_… id in the management view", 1);
  }
  return out;
}

std::string health_of(const std::map<std::string, std::string>& health, const std::string& hostname) {
  auto it = health.find(hostname);
  return it == health.end() ? "-" : it->second;
}

// SCHEDULABLE column: the lifecycle routes' field; "draining" while a drain runs.
std::string schedulable(const rapidjson::Value& n) {
  const auto* drain = peek_member(n, "drain");
  if (drain && drain->IsObject()) return text_at(*drain, "complete") == "yes" ? "drained" : "draining";
  return text_at(n, "schedulable");
}

int nodes_list(const Remote& r, const std::string& status, const std::string& pool, bool watch, double interval) {
  std::string filter;
  if (!status.empty()) filter += "&status=" + url_encode(status);
  if (!pool.empty()) filter += "&pool_id=" + url_encode(pool);
  for (;;) {
    const auto nodes = management_list(r, filter);
    if (r.json()) {
      print_json(nodes);
    } else {
      // Health and the numeric id live in the registration view: joined by hostname.
      std::map<std::string, std::string> health, numeric, cpu;
      const auto reg = registration_list(r);
      for (const auto& n : reg.GetArray()) {
        const std::string h = text_at(n, "hostname");
        health[h] = text_at(n, "health");
        numeric[h] = text_at(n, "id");
        if (const auto* st = lucid::detail::peek_array(n, "stats"); st && !st->Empty())
          cpu[h] = text_at((*st)[0], "cpu_usage");
      }
      std::vector<Column> cols = {
          Column{"ID", [&](const rapidjson::Value& n) { return health_of(numeric, text_at(n, "hostname")); }},
          col("NODE_ID", "node_id"),
          col("HOSTNAME", "hostname"),
          // A join request not yet approved has no lifecycle worth showing.
          Column{"STATUS",
                 [](const rapidjson::Value& n) {
                   return text_at(n, "registration_status") == "pending" ? "pending" : text_at(n, "status");
                 }},
          Column{"HEALTH", [&](const rapidjson::Value& n) { return health_of(health, text_at(n, "hostname")); }},
          Column{"SCHEDULABLE", schedulable},
          col("POOL", "pool_id"),
          col("ROLE", "node_type"),
          Column{"AGE", [](const rapidjson::Value& n) { return age_at(n, "created_at"); }},
          col("NAME", "name", true),
          col("REGISTRATION", "registration_status", true),
          Column{"CPU%", [&](const rapidjson::Value& n) { return health_of(cpu, text_at(n, "hostname")); }, true},
          Column{"LAST_SEEN", [](const rapidjson::Value& n) { return age_at(n, "last_heartbeat"); }, true},
      };
      print_list(r, cols, nodes);
      std::cout << nodes.Size() << " node" << (nodes.Size() == 1 ? "" : "s") << "\n";
    }
    if (!watch || !watch_sleep(interval)) return 0;
    std::cout << "\n";
  }
}

int nodes_show(const Remote& r, const std::string& ref) {
  const NodeRef n = resolve(r, ref, false);
  rapidjson::Document reg, mgmt, dev, tasks;
  if (n.id) reg = request(r, "GET", "/api/v1/nodes/" + std::to_string(n.id));
  std::string node_id = n.node_id.empty() ? node_id_of(r, n.hostname) : n.node_id;
  if (!n.id && !n.hostname.empty()) {
    const auto all = registration_list(r);
    for (const auto& x : all.GetArray())
      if (text_at(x, "hostname") == n.hostname) {
        reg = request(r, "GET", "/api/v1/nodes/" + text_at(x, "id"));
        break;
      }
  }
  if (!node_id.empty()) {
    mgmt = request(r, "GET", "/api/v1/nodes/" + node_id);
    // A node that is not approved yet is no device (404): no capabilities to show.
    try {
      dev = request(r, "GET", "/api/v1/devices/" + node_id);
    } catch (const Failure& f) {
      if (std::string(f.what()).find("HTTP 404") == std::string::npos) throw;
    }
    Paging p;
    p.items = "data";
    p.path = [node_id](std::int64_t page, std::int64_t) {
      return "/api/v1/tasks?device_id=" + node_id + "&status=running&page_size=100&page=" + std::to_string(page);
    };
    tasks = list_all(r, p);
    Paging a = p;
    a.path = [node_id](std::int64_t page, std::int64_t) {
      return "/api/v1/tasks?device_id=" + node_id + "&status=assigned&page_size=100&page=" + std::to_string(page);
    };
    auto assigned = list_all(r, a);
    for (auto& t : assigned.GetArray()) tasks.PushBack(rapidjson::Value(t, tasks.GetAllocator()), tasks.GetAllocator());
  }
  if (r.json()) {
    // The servers' own objects, side by side (each view answers for its fields).
    rapidjson::Document out;
    out.SetObject();
    auto& al = out.GetAllocator();
    out.AddMember("registration", rapidjson::Value(reg, al), al);
    out.AddMember("management", rapidjson::Value(mgmt, al), al);
    out.AddMember("device", rapidjson::Value(dev, al), al);
    rapidjson::Value t(rapidjson::kArrayType);
    if (tasks.IsArray()) t.CopyFrom(tasks, al);
    out.AddMember("running_tasks", t, al);
    print_json(out);
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  auto add = [&](const std::string& k, const std::string& v) { rows.push_back({k, v}); };
  add("hostname", n.hostname.empty() ? text_at(mgmt, "hostname") : n.hostname);
  add("ids", "id " + (reg.IsObject() ? text_at(reg, "id") : std::string("-")) + " (registration view, /api/v1/nodes/{id})");
  add("", "node_id " + (node_id.empty() ? std::string("-") : node_id) +
              " (management view /api/v1/nodes/node_…; devices and tasks use it as device_id)");
  add("", "uuid " + (reg.IsObject() ? text_at(reg, "uuid") : std::string("-")) + " (the registration record's UUID)");
  if (mgmt.IsObject()) {
    add("name", text_at(mgmt, "name"));
    add("status", text_at(mgmt, "status"));
    add("schedulable", schedulable(mgmt));
    if (const auto* d = peek_member(mgmt, "drain"); d && d->IsObject())
      add("drain", "deadline " + text_at(*d, "deadline") + ", " + text_at(*d, "running_tasks") + " running, complete " +
                       text_at(*d, "complete"));
    add("role", text_at(mgmt, "node_type"));
    add("pool", text_at(mgmt, "pool_id"));
    add("created", text_at(mgmt, "created_at") + " (" + age_at(mgmt, "created_at") + " ago)");
  }
  if (reg.IsObject()) {
    add("registration", text_at(reg, "status"));
    add("health", text_at(reg, "health"));
    add("ip_address", text_at(reg, "ip_address"));
    add("last_seen", text_at(reg, "last_seen"));
    add("storage_quota_gb", text_at(reg, "storage_quota_gb"));
    add("storage_used_gb", text_at(reg, "storage_used_gb"));
    add("total_available_gb", text_at(reg, "total_available_gb"));
  }
  if (dev.IsObject()) {
    const auto& d = *peek_member(dev, "data");
    add("device", text_at(d, "status") + ", platform " + text_at(d, "platform") + ", agent " + text_at(d, "agent_version"));
    add("device role", text_at(d, "role"));
    add("tags", text_at(d, "tags"));
    add("capabilities", "cpu " + text_at(d, "capabilities.cpu_count") + ", memory " +
                            text_at(d, "capabilities.memory_total_gb") + " GB, storage " +
                            text_at(d, "capabilities.storage_total_gb") + " GB, gpu " + text_at(d, "capabilities.has_gpu") +
                            ", internet " + text_at(d, "capabilities.internet"));
    add("task types", text_at(d, "allowed_task_types"));
    add("tasks", text_at(d, "active_tasks") + " active of " + text_at(d, "max_concurrent"));
  } else {
    add("device", "- (not approved, or no agent report yet)");
  }
  std::size_t w = 0;
  for (const auto& row : rows) w = std::max(w, row[0].size());
  for (const auto& row : rows) std::cout << row[0] << std::string(w + 2 - row[0].size(), ' ') << row[1] << "\n";
  if (tasks.IsArray() && !tasks.Empty()) {
    std::cout << "\nrunning tasks\n";
    print_list(r, {col("TASK_ID", "task_id"), col("TYPE", "task_type"), col("STATUS", "status"),
                   col("PROGRESS", "progress"), Column{"AGE", [](const rapidjson::Value& t) { return age_at(t, "created_at"); }}},
               tasks);
  }
  if (reg.IsObject())
    if (const auto* stats = lucid::detail::peek_array(reg, "stats"); stats && !stats->Empty()) {
      std::cout << "\nrecent stats (newest first)\n";
      print_list(r, {col("TIME", "timestamp"), col("CPU%", "cpu_usage"), col("MEM%", "memory_percent"),
                     col("DISK%", "disk_usage"), col("UPTIME", "uptime_seconds"), col("BACKUPS", "active_backups")},
                 *stats);
    }
  return 0;
}

// The registration view's NodeResponse (approve, approve-code, quota).
int print_node_response(const Remote& r, const rapidjson::Value& d) {
  print_object(r, d);
  return 0;
}

// Prints a node after a lifecycle change: "node_x cordoned" and the state.
int lifecycle(const Remote& r, const std::string& ref, const std::string& action, const std::string& body,
              const std::string& done) {
  const NodeRef n = resolve(r, ref, true);
  const auto d = request(r, "POST", "/api/v1/nodes/" + n.node_id + "/" + action, body);
  if (r.json()) return print_json(d), 0;
  std::cout << "node " << n.node_id << " (" << text_at(d, "hostname") << ") " << done << ": status "
            << text_at(d, "status") << ", schedulable " << schedulable(d) << "\n";
  return 0;
}

// Polls the node until its drain completes (or is ended), printing progress.
int watch_drain(const Remote& r, const std::string& node_id, double interval) {
  std::string last;
  for (;;) {
    const auto d = request(r, "GET", "/api/v1/nodes/" + node_id);
    const auto* drain = peek_member(d, "drain");
    if (!drain || !drain->IsObject()) {
      std::cout << "node " << node_id << ": no drain in progress (uncordoned or removed)\n";
      return 1;
    }
    const std::string line = "node " + node_id + ": draining, " + text_at(*drain, "running_tasks") +
                             " running task(s), deadline " + text_at(*drain, "deadline");
    if (text_at(*drain, "complete") == "yes") {
      std::cout << "node " << node_id << ": drained (no running tasks)\n";
      return 0;
    }
    if (line != last) std::cout << line << std::endl;
    last = line;
    if (!watch_sleep(interval)) return 130;
  }
}

// Pools: GET/POST /api/v1/nodes/pools, POST /api/v1/nodes/pools/{id}/nodes.
void add_pool_commands(CLI::App& app, Commands& c) {
  auto* pools = app.add_subcommand("pools", "Node pools (node-management document)");
  pools->require_subcommand(1);
  auto* list = pools->add_subcommand("list", "List pools");
  on_run(list, c, [&c] {
    Paging p;
    p.items = "pools";
    p.path = [](std::int64_t page, std::int64_t) { return "/api/v1/nodes/pools?page=" + std::to_string(page) + "&limit=100"; };
    const auto all = list_all(c.remote, p);
    print_list(c.remote,
               {col("POOL_ID", "pool_id"), col("NAME", "name"), col("NODES", "node_count"), col("MAX_NODES", "max_nodes"),
                Column{"AGE", [](const rapidjson::Value& v) { return age_at(v, "created_at"); }},
                col("DESCRIPTION", "description", true), col("MAX_CPU", "resource_limits.max_cpu_cores", true),
                col("MAX_MEM_GB", "resource_limits.max_memory_gb", true),
                col("MAX_STORAGE_GB", "resource_limits.max_storage_gb", true)},
               all);
    return 0;
  });
  auto o = std::make_shared<std::map<std::string, std::string>>();
  auto* create = pools->add_subcommand("create", "Create a pool");
  create->add_option("NAME", (*o)["name"], "Pool name (up to 100 characters)")->required();
  create->add_option("--description", (*o)["description"], "Free text");
  auto max_nodes = std::make_shared<std::int64_t>(0);
  create->add_option("--max-nodes", *max_nodes, "Most nodes the pool may hold")->check(CLI::Range(1, 1000000));
  examples(create, "  lucidctl pools create gpu --description 'GPU workers' --max-nodes 10\n");
  on_run(create, c, [&c, o, max_nodes, create] {
    JsonBody b;
    b.str("name", (*o)["name"]);
    if (create->count("--description")) b.str("description", (*o)["description"]);
    if (*max_nodes) b.integer("max_nodes", *max_nodes);
    print_object(c.remote, request(c.remote, "POST", "/api/v1/nodes/pools", b.text()));
    return 0;
  });
  auto* add = pools->add_subcommand("add", "Add a node to a pool (moving it from another pool)");
  auto prio = std::make_shared<std::int64_t>(50);
  add->add_option("POOL_ID", (*o)["pool"], "pool_…")->required();
  add->add_option("NODE", (*o)["node"], "The node: id, node_… id, UUID or hostname")->required();
  add->add_option("--priority", *prio, "1..100")->check(CLI::Range(1, 100))->capture_default_str();
  examples(add, "  lucidctl pools add pool_0123456789abcdef worker-a\n");
  on_run(add, c, [&c, o, prio] {
    const NodeRef n = resolve(c.remote, (*o)["node"], true);
    JsonBody b;
    b.str("node_id", n.node_id).integer("priority", *prio);
    print_object(c.remote,
                 request(c.remote, "POST", "/api/v1/nodes/pools/" + url_encode((*o)["pool"]) + "/nodes", b.text()));
    return 0;
  });
}

}  // namespace

void add_node_commands(CLI::App& app, Commands& c) {
  auto* nodes = app.add_subcommand("nodes", "Nodes on a running server: list, show, approve, lifecycle");
  nodes->require_subcommand(1);
  struct Opts {
    std::string ref, code, status, pool, name, hostname, type;
    double quota_gb = 0;
    bool watch = false;
    double interval = 2;
    std::int64_t deadline = 300;
  };
  auto o = std::make_shared<Opts>();

  auto* list = nodes->add_subcommand("list", "List every node (all pages), with lifecycle, health, pool, role and age");
  list->add_option("--status", o->status, "Only this lifecycle: active, inactive, maintenance, error, starting, stopping");
  list->add_option("--pool", o->pool, "Only nodes of this pool (pool_…)");
  list->add_flag("-w,--watch", o->watch, "Print the list again every --interval seconds until interrupted");
  list->add_option("--interval", o->interval, "Seconds between --watch refreshes")->check(CLI::Range(0.2, 3600.0))->capture_default_str();
  examples(list, "  lucidctl nodes list\n  lucidctl nodes list -o wide --status active\n  lucidctl nodes list --json\n");
  on_run(list, c, [&c, o] {
    if (o->watch) install_watch_signals();
    return nodes_list(c.remote, o->status, o->pool, o->watch, o->interval);
  });

  auto* show = nodes->add_subcommand("show", "Show one node: its ids, lifecycle, health, capabilities, role, tags, running tasks");
  show->add_option("NODE", o->ref, "Numeric id, node_… id, UUID or hostname")->required();
  examples(show, "  lucidctl nodes show 1\n  lucidctl nodes show worker-a.example.com\n  lucidctl nodes show node_0123456789abcdef --json\n");
  on_run(show, c, [&c, o] { return nodes_show(c.remote, o->ref); });

  auto* approve = nodes->add_subcommand("approve", "Approve a pending node");
  approve->add_option("NODE", o->ref, "Numeric id (or hostname/UUID of a pending node)")->required();
  examples(approve, "  lucidctl nodes approve 3\n");
  on_run(approve, c, [&c, o] {
    const std::string id = all_digits(o->ref) ? o->ref : std::to_string(resolve(c.remote, o->ref, false).id);
    return print_node_response(c.remote, request(c.remote, "POST", "/api/v1/nodes/approve/" + id));
  });

  auto* code = nodes->add_subcommand("approve-code", "Approve a pending node by its registration code");
  code->add_option("CODE", o->code, "Registration code the agent printed")->required();
  examples(code, "  lucidctl nodes approve-code XK7M2\n");
  on_run(code, c, [&c, o] {
    return print_node_response(c.remote, request(c.remote, "POST", "/api/v1/nodes/register-by-code",
                                                 JsonBody().str("code", o->code).text()));
  });

  auto* quota = nodes->add_subcommand("quota", "Set a node's storage quota");
  quota->add_option("NODE", o->ref, "Numeric id, node_… id, UUID or hostname")->required();
  quota->add_option("--gb", o->quota_gb, "Quota in GB")->required();
  examples(quota, "  lucidctl nodes quota 3 --gb 250\n");
  on_run(quota, c, [&c, o] {
    const std::string id = all_digits(o->ref) ? o->ref : std::to_string(resolve(c.remote, o->ref, false).id);
    return print_node_response(c.remote, request(c.remote, "PUT", "/api/v1/nodes/" + id + "/quota",
                                                 JsonBody().num("storage_quota_gb", o->quota_gb).text()));
  });

  auto* create = nodes->add_subcommand(
      "create", "Create an approved node ahead of its machine; prints the registration code and join secret its agent needs");
  create->add_option("NAME", o->name, "Node name (free text, up to 100 characters)")->required();
  create->add_option("--hostname", o->hostname, "Host name (default: NAME)");
  create->add_option("--type", o->type, "worker, validator, storage or compute");
  create->add_option("--pool", o->pool, "Put it in this pool (pool_…)");
  examples(create, "  lucidctl nodes create worker-b --hostname worker-b.example.com --type compute\n");
  on_run(create, c, [&c, o, create] {
    JsonBody b;
    b.str("name", o->name);
    if (create->count("--hostname")) b.str("hostname", o->hostname);
    if (create->count("--type")) b.str("node_type", o->type);
    if (create->count("--pool")) b.str("pool_id", o->pool);
    print_object(c.remote, request(c.remote, "POST", "/api/v1/nodes", b.text()));
    return 0;
  });

  auto* update = nodes->add_subcommand("update", "Change a node's name, type or status (maintenance / inactive)");
  update->add_option("NODE", o->ref, "Numeric id, node_… id, UUID or hostname")->required();
  update->add_option("--name", o->name, "New name");
  update->add_option("--type", o->type, "worker, validator, storage or compute");
  update->add_option("--status", o->status, "maintenance (no new work) or inactive (from maintenance)");
  examples(update, "  lucidctl nodes update worker-a --status maintenance\n");
  on_run(update, c, [&c, o, update] {
    JsonBody b;
    if (update->count("--name")) b.str("name", o->name);
    if (update->count("--type")) b.str("node_type", o->type);
    if (update->count("--status")) b.str("status", o->status);
    if (b.empty()) usage_error("nodes update needs --name, --type or --status");
    const NodeRef n = resolve(c.remote, o->ref, true);
    print_object(c.remote, request(c.remote, "PUT", "/api/v1/nodes/" + n.node_id, b.text()));
    return 0;
  });

  for (const char* action : {"start", "stop"}) {
    auto* s = nodes->add_subcommand(action, std::string(action == std::string("start") ? "Start" : "Stop") +
                                                " a node (node-management lifecycle)");
    s->add_option("NODE", o->ref, "Numeric id, node_… id, UUID or hostname")->required();
    on_run(s, c, [&c, o, action] {
      const NodeRef n = resolve(c.remote, o->ref, true);
      print_object(c.remote, request(c.remote, "POST", "/api/v1/nodes/" + n.node_id + "/" + action));
      return 0;
    });
  }

  auto* resources = nodes->add_subcommand("resources", "A node's resource use: current, average and peak");
  resources->add_option("NODE", o->ref, "Numeric id, node_… id, UUID or hostname")->required();
  on_run(resources, c, [&c, o] {
    const NodeRef n = resolve(c.remote, o->ref, true);
    print_object(c.remote, request(c.remote, "GET", "/api/v1/nodes/" + n.node_id + "/resources"));
    return 0;
  });

  auto* cordon = nodes->add_subcommand("cordon", "Place no new work on a node (running tasks go on)");
  cordon->add_option("NODE", o->ref, "Numeric id, node_… id, UUID or hostname")->required();
  examples(cordon, "  lucidctl nodes cordon worker-a\n");
  on_run(cordon, c, [&c, o] { return lifecycle(c.remote, o->ref, "cordon", "", "cordoned"); });

  auto* uncordon = nodes->add_subcommand("uncordon", "Allow work on a node again (also ends a drain)");
  uncordon->add_option("NODE", o->ref, "Numeric id, node_… id, UUID or hostname")->required();
  examples(uncordon, "  lucidctl nodes uncordon worker-a\n");
  on_run(uncordon, c, [&c, o] { return lifecycle(c.remote, o->ref, "uncordon", "", "uncordoned"); });

  auto* drain = nodes->add_subcommand(
      "drain", "Cordon a node and let its running tasks finish until a deadline, then requeue the rest");
  drain->add_option("NODE", o->ref, "Numeric id, node_… id, UUID or hostname")->required();
  drain->add_option("--deadline", o->deadline, "Seconds running tasks may take (1..86400)")
      ->check(CLI::Range(1, 86400))->capture_default_str();
  drain->add_flag("-w,--watch", o->watch, "Follow the drain until it completes, printing progress");
  drain->add_option("--interval", o->interval, "Seconds between --watch polls")->check(CLI::Range(0.2, 3600.0))->capture_default_str();
  examples(drain, "  lucidctl nodes drain worker-a --deadline 600 --watch\n");
  on_run(drain, c, [&c, o] {
    const NodeRef n = resolve(c.remote, o->ref, true);
    const auto d = request(c.remote, "POST", "/api/v1/nodes/" + n.node_id + "/drain",
                           JsonBody().integer("deadline_seconds", o->deadline).text());
    if (c.remote.json()) print_json(d);
    else
      std::cout << "node " << n.node_id << " (" << text_at(d, "hostname") << ") draining: status "
                << text_at(d, "status") << ", " << text_at(d, "drain.running_tasks") << " running task(s), deadline "
                << text_at(d, "drain.deadline") << std::endl;
    if (!o->watch) return 0;
    install_watch_signals();
    return watch_drain(c.remote, n.node_id, o->interval);
  });

  auto* remove = nodes->add_subcommand(
      "remove", "Remove a node: revoke its key, requeue its tasks, free its hostname to join again");
  remove->add_option("NODE", o->ref, "Numeric id, node_… id, UUID or hostname")->required();
  examples(remove, "  lucidctl nodes remove worker-a\n");
  on_run(remove, c, [&c, o] {
    const NodeRef n = resolve(c.remote, o->ref, true);
    request(c.remote, "DELETE", "/api/v1/nodes/" + n.node_id);
    if (!c.remote.json()) std::cout << "node " << n.node_id << " removed\n";
    return 0;
  });

  add_pool_commands(app, c);
}

}  // namespace lucidctl
