// lucidctl users (remote), services, workflows: the gateway document's user
// routes (with the admin CRUD of docs/decisions.md "Users") and the
// network-node document's services and workflows.
#include <rapidjson/document.h>

#include <iostream>

#include "commands.hpp"
#include "util/json_object.hpp"

namespace lucidctl {

namespace {

std::string uuid_path(const std::string& base, const std::string& id) {
  if (id != "me" && (id.size() != 36 || id.find_first_not_of("0123456789abcdefABCDEF-") != std::string::npos))
    usage_error("USER_ID is a UUID (or 'me')");
  return base + id;
}

std::string int_id(const std::string& id, const std::string& what) {
  if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos)
    usage_error(what + " is a number");
  return id;
}

// A network-node answer: {"service": {...}} / {"workflow": ...} or the object.
int print_member_or_all(const Remote& r, const rapidjson::Document& d, const char* member) {
  const auto* m = lucid::detail::peek_member(d, member);
  print_object(r, r.json() || !m || !m->IsObject() ? static_cast<const rapidjson::Value&>(d) : *m);
  return 0;
}

bool execution_running(const std::string& status) {
  return status == "PENDING" || status == "RUNNING" || status == "QUEUED" || status == "VALIDATING" ||
         status == "-";
}

// Polls an execution's status until it leaves the running states. Exit: 0
// COMPLETED, 1 any other end, 130 interrupted.
int watch_execution(const Remote& r, const std::string& exec_id, double interval) {
  install_watch_signals();
  std::string last;
  for (;;) {
    const auto d = request(r, "GET", "/api/workflow-executions/" + exec_id + "/status");
    const std::string status = text_at(d, "status");
    const std::string line = "execution " + exec_id + "  " + status + "  " + text_at(d, "progress") + "%" +
                             (text_at(d, "error") == "-" ? "" : "  error: " + text_at(d, "error"));
    if (line != last) {
      if (r.json()) print_json(d);
      else std::cout << line << std::endl;
    }
    last = line;
    if (!execution_running(status)) return status == "COMPLETED" ? 0 : 1;
    if (!watch_sleep(interval)) return 130;
  }
}

}  // namespace

void add_user_commands(CLI::App* users, Commands& c) {
  struct Opts {
    std::string id, role, email, username, first, last;
    bool password_stdin = false;
  };
  auto o = std::make_shared<Opts>();
  auto* list = users->add_subcommand("list", "List user accounts (admin; all pages)");
  list->add_option("--role", o->role, "Only this role");
  examples(list, "  lucidctl users list --role admin\n");
  on_run(list, c, [&c, o, list] {
    const std::string filter = list->count("--role") ? "&role=" + url_encode(o->role) : "";
    Paging p;
    p.items = "users";
    p.path = [filter](std::int64_t page, std::int64_t) {
      return "/api/v1/users?limit=100&page=" + std::to_string(page) + filter;
    };
    print_list(c.remote,
               {col("USER_ID", "user_id"), col("EMAIL", "email"), col("USERNAME", "username"), col("ROLE", "role"),
                col("TOTP", "totp_enabled"), Column{"AGE", [](const rapidjson::Value& v) { return age_at(v, "created_at"); }},
                col("NAME", "first_name", true), col("LAST_NAME", "last_name", true),
                col("LAST_LOGIN", "last_login", true)},
               list_all(c.remote, p));
    return 0;
  });
  auto* show = users->add_subcommand("show", "Show a user account ('me': the caller)");
  show->add_option("USER_ID", o->id, "The user's UUID, or 'me'")->required();
  examples(show, "  lucidctl users show me\n");
  on_run(show, c, [&c, o] {
    print_object(c.remote, request(c.remote, "GET", uuid_path("/api/v1/users/", o->id)));
    return 0;
  });
  auto* create = users->add_subcommand("create", "Create a user account; the password is read from stdin");
  create->add_option("--email", o->email, "Email address (login mail goes there)")->required();
  create->add_option("--username", o->username, "3..50 characters")->required();
  create->add_option("--role", o->role, "user, viewer (default with an admin token), node_operator, admin, super_admin");
  create->add_option("--first-name", o->first, "First name");
  create->add_option("--last-name", o->last, "Last name");
  examples(create, "  printf '%s' \"$PASSWORD\" | lucidctl users create --email ops@example.com --username ops --role admin\n");
  on_run(create, c, [&c, o, create] {
    std::string password;
    std::getline(std::cin, password);
    if (password.empty()) usage_error("users create reads the password from stdin (one line)");
    JsonBody b;
    b.str("email", o->email).str("username", o->username).str("password", password);
    if (create->count("--role")) b.str("role", o->role);
    if (create->count("--first-name")) b.str("first_name", o->first);
    if (create->count("--last-name")) b.str("last_name", o->last);
    print_object(c.remote, request(c.remote, "POST", "/api/v1/users", b.text()));
    return 0;
  });
  auto* update = users->add_subcommand("update", "Change a user's role or profile (admin)");
  update->add_option("USER_ID", o->id, "The user's UUID")->required();
  update->add_option("--role", o->role, "New role");
  update->add_option("--username", o->username, "New username");
  update->add_option("--first-name", o->first, "First name");
  update->add_option("--last-name", o->last, "Last name");
  examples(update, "  lucidctl users update 7d3f0c2e-1111-4222-8333-944445555666 --role node_operator\n");
  on_run(update, c, [&c, o, update] {
    JsonBody b;
    if (update->count("--role")) b.str("role", o->role);
    if (update->count("--username")) b.str("username", o->username);
    if (update->count("--first-name")) b.str("first_name", o->first);
    if (update->count("--last-name")) b.str("last_name", o->last);
    if (b.empty()) usage_error("users update needs --role, --username, --first-name or --last-name");
    print_object(c.remote, request(c.remote, "PUT", uuid_path("/api/v1/users/", o->id), b.text()));
    return 0;
  });
  auto* remove = users->add_subcommand("delete", "Delete a user account (admin)");
  remove->add_option("USER_ID", o->id, "The user's UUID")->required();
  on_run(remove, c, [&c, o] {
    if (o->id == "me") usage_error("users delete takes a UUID");
    request(c.remote, "DELETE", uuid_path("/api/v1/users/", o->id));
    if (!c.remote.json()) std::cout << "user " << o->id << " deleted\n";
    return 0;
  });
}

void add_network_commands(CLI::App& app, Commands& c) {
  struct Opts {
    std::string id, type, name, description, endpoint, status, capabilities;
    bool watch = false;
    double interval = 1;
  };
  auto o = std::make_shared<Opts>();

  // ---- services ----
  auto* services = app.add_subcommand("services", "Services this network node offers (network-node document)");
  services->require_subcommand(1);
  auto* slist = services->add_subcommand("list", "List services");
  on_run(slist, c, [&c] {
    Paging p;
    p.items = "services";
    p.page_size = 1000000;  // one answer holds them all
    p.path = [](std::int64_t, std::int64_t) { return std::string("/api/services"); };
    print_list(c.remote,
               {col("ID", "id"), col("NAME", "name"), col("TYPE", "type"), col("STATUS", "status"),
                col("ENDPOINT", "endpoint"), Column{"AGE", [](const rapidjson::Value& v) { return age_at(v, "created_at"); }},
                col("PRICING", "pricing_type", true), col("DESCRIPTION", "description", true)},
               list_all(c.remote, p));
    return 0;
  });
  auto* sshow = services->add_subcommand("show", "Show a service");
  sshow->add_option("ID", o->id, "Service id")->required();
  on_run(sshow, c, [&c, o] {
    return print_member_or_all(c.remote, request(c.remote, "GET", "/api/services/" + int_id(o->id, "ID")), "service");
  });
  auto* screate = services->add_subcommand("create", "Add a service");
  screate->add_option("--type", o->type, "storage, docker, standalone or relay")->required();
  screate->add_option("--name", o->name, "Service name")->required();
  screate->add_option("--description", o->description, "Free text");
  screate->add_option("--endpoint", o->endpoint, "Where it is reached (required for non-storage services)");
  screate->add_option("--capabilities", o->capabilities, "A JSON object");
  examples(screate, "  lucidctl services create --type relay --name relay-1 --endpoint 203.0.113.5:4001\n");
  on_run(screate, c, [&c, o, screate] {
    JsonBody b;
    b.str("type", o->type).str("name", o->name);
    if (screate->count("--description")) b.str("description", o->description);
    if (screate->count("--endpoint")) b.str("endpoint", o->endpoint);
    if (screate->count("--capabilities")) b.raw("capabilities", checked_json(o->capabilities, "--capabilities"));
    return print_member_or_all(c.remote, request(c.remote, "POST", "/api/services", b.text()), "service");
  });
  auto* sstatus = services->add_subcommand("set-status", "Change a service's status");
  sstatus->add_option("ID", o->id, "Service id")->required();
  sstatus->add_option("STATUS", o->status, "e.g. ACTIVE, INACTIVE")->required();
  on_run(sstatus, c, [&c, o] {
    return print_member_or_all(c.remote,
                               request(c.remote, "PUT", "/api/services/" + int_id(o->id, "ID") + "/status",
                                       JsonBody().str("status", o->status).text()),
                               "service");
  });
  auto* sdelete = services->add_subcommand("delete", "Delete a service");
  sdelete->add_option("ID", o->id, "Service id")->required();
  on_run(sdelete, c, [&c, o] {
    const auto d = request(c.remote, "DELETE", "/api/services/" + int_id(o->id, "ID"));
    if (c.remote.json() && !d.IsNull()) print_json(d);
    else if (!c.remote.json()) std::cout << "service " << o->id << " deleted\n";
    return 0;
  });

  // ---- workflows ----
  auto* workflows = app.add_subcommand("workflows", "Workflows: list, show, run, execution status");
  workflows->require_subcommand(1);
  auto* wlist = workflows->add_subcommand("list", "List workflows");
  on_run(wlist, c, [&c] {
    Paging p;
    p.items = "workflows";
    p.page_size = 1000000;
    p.path = [](std::int64_t, std::int64_t) { return std::string("/api/workflows"); };
    print_list(c.remote,
               {col("ID", "id"), col("NAME", "name"), Column{"AGE", [](const rapidjson::Value& v) { return age_at(v, "created_at"); }},
                col("UPDATED", "updated_at", true), col("DESCRIPTION", "description")},
               list_all(c.remote, p));
    return 0;
  });
  auto* wshow = workflows->add_subcommand("show", "Show a workflow");
  wshow->add_option("ID", o->id, "Workflow id")->required();
  on_run(wshow, c, [&c, o] {
    return print_member_or_all(c.remote, request(c.remote, "GET", "/api/workflows/" + int_id(o->id, "ID")), "workflow");
  });
  auto* run = workflows->add_subcommand("run", "Execute a workflow; --watch follows the execution to its end");
  run->add_option("ID", o->id, "Workflow id")->required();
  run->add_flag("-w,--watch", o->watch, "Follow the execution, printing its status and progress (exit 1 unless COMPLETED)");
  run->add_option("--interval", o->interval, "Seconds between --watch polls")->check(CLI::Range(0.2, 3600.0))->capture_default_str();
  examples(run, "  lucidctl workflows run 3 --watch\n");
  on_run(run, c, [&c, o] {
    const auto d = request(c.remote, "POST", "/api/workflows/" + int_id(o->id, "ID") + "/execute");
    const std::string exec = text_at(d, "execution_id");
    if (c.remote.json() && !o->watch) return print_json(d), 0;
    if (!c.remote.json()) std::cout << "workflow " << o->id << ": execution " << exec << " started" << std::endl;
    if (!o->watch) return 0;
    return watch_execution(c.remote, int_id(exec, "execution_id"), o->interval);
  });
  auto* wstatus = workflows->add_subcommand("status", "An execution's status and progress");
  wstatus->add_option("EXECUTION_ID", o->id, "Execution id (from run or executions)")->required();
  wstatus->add_flag("-w,--watch", o->watch, "Follow it until it ends");
  wstatus->add_option("--interval", o->interval, "Seconds between --watch polls")->check(CLI::Range(0.2, 3600.0))->capture_default_str();
  examples(wstatus, "  lucidctl workflows status 12 --watch\n");
  on_run(wstatus, c, [&c, o] {
    if (o->watch) return watch_execution(c.remote, int_id(o->id, "EXECUTION_ID"), o->interval);
    print_object(c.remote, request(c.remote, "GET", "/api/workflow-executions/" + int_id(o->id, "EXECUTION_ID") + "/status"));
    return 0;
  });
  auto* wexec = workflows->add_subcommand("executions", "A workflow's executions, newest last");
  wexec->add_option("ID", o->id, "Workflow id")->required();
  on_run(wexec, c, [&c, o] {
    const std::string id = int_id(o->id, "ID");
    Paging p;
    p.items = "executions";
    p.page_size = 1000000;
    p.path = [id](std::int64_t, std::int64_t) { return "/api/workflows/" + id + "/execution-instances"; };
    print_list(c.remote,
               {col("EXECUTION_ID", "id"), col("STATUS", "status"), col("STARTED", "started_at"),
                col("COMPLETED", "completed_at"), col("ERROR", "error")},
               list_all(c.remote, p));
    return 0;
  });
}

}  // namespace lucidctl
