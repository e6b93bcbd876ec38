// lucidctl tasks ...: the cluster document's task routes (/api/v1/tasks...).
#include <rapidjson/document.h>

#include <cstdio>
#include <iostream>

#include "commands.hpp"
#include "util/json_object.hpp"

namespace lucidctl {

namespace {

struct TaskOpts {
  std::string id, type, payload = "{}", priority, status, device, metadata, platform, role;
  std::vector<std::string> tags;
  std::int64_t timeout = 0, max_retries = -1, min_cpu = 0;
  double min_memory = 0, min_storage = 0;
  bool gpu = false, internet = false, watch = false;
  double interval = 1;
};

bool final_status(const std::string& s) {
  return s == "success" || s == "failed" || s == "cancelled" || s == "timeout";
}

std::string task_path(const std::string& id, const std::string& tail = {}) {
  if (id.empty() || id.size() > 64 || id.find_first_not_of("0123456789abcdefABCDEF-") != std::string::npos)
    usage_error("TASK_ID is the task's UUID");
  return "/api/v1/tasks/" + id + tail;
}

const rapidjson::Value& data_of(const rapidjson::Document& d) {
  const auto* v = lucid::detail::peek_member(d, "data");
  if (!v) throw Failure("server sent no 'data'", 1);
  return *v;
}

std::string progress_line(const rapidjson::Value& s) {
  char pct[32];
  const auto* p = lucid::detail::peek_member(s, "progress");
  std::snprintf(pct, sizeof pct, "%.0f%%", p && p->IsNumber() ? p->GetDouble() : 0.0);
  std::string line = text_at(s, "task_id") + "  " + text_at(s, "status") + "  " + pct;
  const std::string device = text_at(s, "device_id");
  if (device != "-") line += "  on " + device;
  const std::string msg = text_at(s, "progress_message");
  if (msg != "-" && !msg.empty()) line += "  " + msg;
  const std::string reason = text_at(s, "status_reason");
  if (reason != "-" && !reason.empty()) line += "  (" + reason + ")";
  return line;
}

// Polls the task's status, printing each change, until it is final; then
// prints its result. Exit code: 0 success, 1 any other end, 130 interrupted.
int watch_task(const Remote& r, const std::string& id, double interval) {
  install_watch_signals();
  std::string last, status;
  for (;;) {
    const auto d = request(r, "GET", task_path(id, "/status"));
    const auto& s = data_of(d);
    status = text_at(s, "status");
    const std::string line = progress_line(s);
    if (line != last && !r.json()) std::cout << line << std::endl;
    last = line;
    if (final_status(status)) break;
    if (!watch_sleep(interval)) return 130;
  }
  const auto res = request(r, "GET", task_path(id, "/result"));
  print_object(r, r.json() ? static_cast<const rapidjson::Value&>(res) : data_of(res));
  return status == "success" ? 0 : 1;
}

std::vector<Column> task_columns() {
  return {col("TASK_ID", "task_id"),
          col("TYPE", "task_type"),
          col("STATUS", "status"),
          col("PRIORITY", "priority"),
          col("DEVICE", "device_id"),
          col("PROGRESS", "progress"),
          Column{"AGE", [](const rapidjson::Value& t) { return age_at(t, "created_at"); }},
          col("ATTEMPT", "attempt", true),
          col("REASON", "status_reason", true),
          col("CREATED", "created_at", true),
          col("COMPLETED", "completed_at", true)};
}

}  // namespace

void add_task_commands(CLI::App& app, Commands& c) {
  auto* tasks = app.add_subcommand("tasks", "Cluster tasks: submit, list, show, result, cancel, retry, watch");
  tasks->require_subcommand(1);
  auto o = std::make_shared<TaskOpts>();

  auto* submit = tasks->add_subcommand("submit", "Submit a task; --watch follows it to its result");
  submit->add_option("TYPE", o->type, "echo, sleep, system_info, python_eval, http_request, command")->required();
  submit->add_option("--payload", o->payload, "The task's payload, a JSON object")->capture_default_str();
  submit->add_option("--priority", o->priority, "low, normal, high or urgent");
  submit->add_option("--timeout", o->timeout, "requirements.timeout_seconds")->check(CLI::Range(1, 86400 * 7));
  submit->add_option("--max-retries", o->max_retries, "requirements.max_retries")->check(CLI::Range(0, 100));
  submit->add_option("--min-cpu", o->min_cpu, "requirements.min_cpu_cores")->check(CLI::Range(1, 4096));
  submit->add_option("--min-memory-gb", o->min_memory, "requirements.min_memory_gb")->check(CLI::Range(0.0, 1e6));
  submit->add_option("--min-storage-gb", o->min_storage, "requirements.min_storage_gb")->check(CLI::Range(0.0, 1e9));
  submit->add_option("--platform", o->platform, "requirements.required_platform (linux, windows, android, darwin)");
  submit->add_option("--role", o->role, "requirements.required_role (e.g. compute)");
  submit->add_option("--tag", o->tags, "requirements.required_tags (repeatable)");
  submit->add_flag("--gpu", o->gpu, "requirements.gpu_required");
  submit->add_flag("--internet", o->internet, "requirements.internet_required");
  submit->add_option("--metadata", o->metadata, "metadata, a JSON object");
  submit->add_flag("-w,--watch", o->watch, "Follow the task's progress and print its result (exit 1 unless it succeeds)");
  submit->add_option("--interval", o->interval, "Seconds between --watch polls")->check(CLI::Range(0.2, 3600.0))->capture_default_str();
  examples(submit,
           "  lucidctl tasks submit echo --payload '{\"message\": \"hi\"}' --watch\n"
           "  lucidctl tasks submit sleep --payload '{\"seconds\": 30}' --priority high --role compute\n");
  on_run(submit, c, [&c, o, submit] {
    JsonBody req;
    if (submit->count("--timeout")) req.integer("timeout_seconds", o->timeout);
    if (submit->count("--max-retries")) req.integer("max_retries", o->max_retries);
    if (submit->count("--min-cpu")) req.integer("min_cpu_cores", o->min_cpu);
    if (submit->count("--min-memory-gb")) req.num("min_memory_gb", o->min_memory);
    if (submit->count("--min-storage-gb")) req.num("min_storage_gb", o->min_storage);
    if (submit->count("--platform")) req.str("required_platform", o->platform);
    if (submit->count("--role")) req.str("required_role", o->role);
    if (!o->tags.empty()) {
      std::string arr = "[";
      for (const auto& t : o->tags) arr += (arr.size() > 1 ? "," : "") + json_quote(t);
      req.raw("required_tags", arr + "]");
    }
    if (o->gpu) req.boolean("gpu_required", true);
    if (o->internet) req.boolean("internet_required", true);
    JsonBody b;
    b.str("task_type", o->type).raw("payload", checked_json(o->payload, "--payload"));
    if (submit->count("--priority")) b.str("priority", o->priority);
    if (!req.empty()) b.raw("requirements", req.text());
    if (submit->count("--metadata")) b.raw("metadata", checked_json(o->metadata, "--metadata"));
    const auto d = request(c.remote, "POST", "/api/v1/tasks", b.text());
    const std::string id = text_at(data_of(d), "task_id");
    if (!o->watch) {
      if (c.remote.json()) print_json(d);
      else std::cout << "task " << id << " " << text_at(data_of(d), "task.status") << "\n";
      return 0;
    }
    if (!c.remote.json()) std::cout << "task " << id << " submitted" << std::endl;
    return watch_task(c.remote, id, o->interval);
  });

  auto* list = tasks->add_subcommand("list", "List tasks (all pages), newest first");
  list->add_option("--status", o->status, "pending, queued, assigned, running, success, failed, cancelled, timeout");
  list->add_option("--type", o->type, "Only this task type");
  list->add_option("--priority", o->priority, "Only this priority");
  list->add_option("--device", o->device, "Only tasks of this device (node_…)");
  list->add_flag("-w,--watch", o->watch, "Print the list again every --interval seconds until interrupted");
  list->add_option("--interval", o->interval, "Seconds between --watch refreshes")->check(CLI::Range(0.2, 3600.0))->capture_default_str();
  examples(list, "  lucidctl tasks list --status running\n  lucidctl tasks list -o wide --device node_0123456789abcdef\n");
  on_run(list, c, [&c, o, list] {
    std::string filter;
    if (list->count("--status")) filter += "&status=" + url_encode(o->status);
    if (list->count("--type")) filter += "&task_type=" + url_encode(o->type);
    if (list->count("--priority")) filter += "&priority=" + url_encode(o->priority);
    if (list->count("--device")) filter += "&device_id=" + url_encode(o->device);
    Paging p;
    p.items = "data";
    p.path = [filter](std::int64_t page, std::int64_t) {
      return "/api/v1/tasks?page_size=100&page=" + std::to_string(page) + filter;
    };
    if (o->watch) install_watch_signals();
    for (;;) {
      const auto all = list_all(c.remote, p);
      print_list(c.remote, task_columns(), all);
      if (!o->watch || !watch_sleep(o->interval)) return 0;
      std::cout << "\n";
    }
  });

  auto* show = tasks->add_subcommand("show", "Show a task: payload, requirements, state; --watch follows it");
  show->add_option("TASK_ID", o->id, "The task's id")->required();
  show->add_flag("-w,--watch", o->watch, "Follow the task's progress until it ends, then print its result");
  show->add_option("--interval", o->interval, "Seconds between --watch polls")->check(CLI::Range(0.2, 3600.0))->capture_default_str();
  examples(show, "  lucidctl tasks show 550e8400-e29b-41d4-a716-446655440000 --watch\n");
  on_run(show, c, [&c, o] {
    if (o->watch) return watch_task(c.remote, o->id, o->interval);
    const auto d = request(c.remote, "GET", task_path(o->id));
    print_object(c.remote, c.remote.json() ? static_cast<const rapidjson::Value&>(d) : data_of(d));
    return 0;
  });

  struct Simple {
    const char* name;
    const char* method;
    const char* tail;
    const char* help;
  };
  for (const Simple& s : {Simple{"status", "GET", "/status", "A task's state and progress"},
                          Simple{"result", "GET", "/result", "A task's result (its output, timing and device)"},
                          Simple{"cancel", "POST", "/cancel", "Cancel a queued or running task"},
                          Simple{"retry", "POST", "/retry", "Queue a failed, cancelled or timed-out task again"}}) {
    auto* sub = tasks->add_subcommand(s.name, s.help);
    sub->add_option("TASK_ID", o->id, "The task's id")->required();
    examples(sub, std::string("  lucidctl tasks ") + s.name + " 550e8400-e29b-41d4-a716-446655440000\n");
    on_run(sub, c, [&c, o, s] {
      const auto d = request(c.remote, s.method, task_path(o->id, s.tail));
      print_object(c.remote, c.remote.json() ? static_cast<const rapidjson::Value&>(d) : data_of(d));
      return 0;
    });
  }

  auto* stats = tasks->add_subcommand("stats", "Task statistics (counts by state, durations)");
  on_run(stats, c, [&c] {
    const auto d = request(c.remote, "GET", "/api/v1/tasks/statistics");
    print_object(c.remote, c.remote.json() ? static_cast<const rapidjson::Value&>(d) : data_of(d));
    return 0;
  });
  auto* types = tasks->add_subcommand("types", "Task types the cluster's devices run");
  on_run(types, c, [&c] {
    const auto d = request(c.remote, "GET", "/api/v1/tasks/types");
    print_object(c.remote, c.remote.json() ? static_cast<const rapidjson::Value&>(d) : data_of(d));
    return 0;
  });
}

}  // namespace lucidctl
