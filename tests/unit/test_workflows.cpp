// Services and workflows (include/lucidnode/workflows.hpp): CRUD with its
// validation and limits, the graph (nodes, connections, UI state), DATA
// files and passphrases, standalone services confined to the data directory,
// and the executor: a piped chain runs, a bad graph fails its instance.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "lucidnode/lucidnode.hpp"
#include "db_tamper.hpp"
#include "support.hpp"

using namespace lucid;
using testsupport::code_of;
using testsupport::field_of;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  testsupport::TempDir dir;
  std::shared_ptr<OffsetClock> clock = std::make_shared<OffsetClock>();
  std::unique_ptr<Cluster> cluster;
  Fixture() {
    fs::create_directories(dir.path / "data");
    open();
  }
  void open() {
    cluster.reset();
    Options o;
    o.database_path = dir.file("wf.db");
    o.data_dir = dir.file("data");
    o.clock = clock;
    cluster = std::make_unique<Cluster>(o);
  }
  Workflows& wf() { return cluster->workflows(); }
  Service service(const std::string& name, const std::string& type = "relay") {
    ServiceCreate c;
    c.type = type;
    c.name = name;
    return wf().create_service(c);
  }
  // An executable shell script at data/<rel>.
  std::string script(const std::string& rel, const std::string& body) {
    const fs::path p = dir.path / "data" / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
    ::chmod(p.c_str(), 0755);
    return rel;
  }
  Service standalone(const std::string& name, const std::string& rel) {
    StandaloneCreate c;
    c.name = name;
    c.executable_path = rel;
    return wf().create_standalone(c);
  }
  WorkflowNode node(std::int64_t workflow, std::int64_t service) {
    WorkflowNode n;
    n.workflow_id = workflow;
    n.service_id = service;
    return wf().add_node(n);
  }
  WorkflowConnection connect(std::int64_t workflow, std::int64_t from, std::int64_t to) {
    WorkflowConnection c;
    c.workflow_id = workflow;
    c.source_node_id = from;
    c.target_node_id = to;
    return wf().add_connection(c);
  }
  // Polls until the instance leaves RUNNING (at most ~20 s).
  ExecutionInstance wait(std::int64_t execution_id) {
    for (int i = 0; i < 2000; ++i) {
      auto e = wf().execution(execution_id);
      if (e.status != "RUNNING") return e;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return wf().execution(execution_id);
  }
};

}  // namespace

TEST_CASE("workflows: services are created - listed - updated - status-set and deleted") {
  Fixture f;
  ServiceCreate c;
  c.type = "storage";
  c.name = "blob";
  c.description = "files";
  c.endpoint = "http://x";
  c.status = "available";
  c.capabilities_json = R"({"a":1})";
  Service s = f.wf().create_service(c);
  CHECK(s.id > 0);
  CHECK(s.service_type == "DATA");
  CHECK(s.status == "ACTIVE");
  CHECK(s.name == "blob");
  CHECK(s.description == "files");
  CHECK(s.endpoint == "http://x");
  CHECK(s.capabilities_json == R"({"a":1})");
  CHECK(s.pricing_type == "FREE");
  c.type = "Relay";
  c.status = "unavailable";
  Service r = f.wf().create_service(c);
  CHECK(r.service_type == "RELAY");
  CHECK(r.status == "INACTIVE");
  auto all = f.wf().list_services();
  REQUIRE(all.size() == 2);
  CHECK(all[0].id == s.id);
  CHECK(all[1].id == r.id);

  f.clock->advance(std::chrono::seconds(2));
  ServiceUpdate u;
  u.description = "changed";
  u.status = "INACTIVE";
  Service up = f.wf().update_service(s.id, u);
  CHECK(up.name == "blob");
  CHECK(up.description == "changed");
  CHECK(up.status == "INACTIVE");
  CHECK(up.updated_at > s.updated_at);
  f.wf().set_service_status(s.id, "ACTIVE");
  CHECK(f.wf().get_service(s.id).status == "ACTIVE");
  // set_service_status takes ACTIVE/INACTIVE only: no aliases, no other case.
  CHECK(field_of([&] { f.wf().set_service_status(s.id, "active"); }) == "status");
  CHECK(field_of([&] { f.wf().set_service_status(s.id, "available"); }) == "status");
  CHECK(code_of([&] { f.wf().set_service_status(9999, "ACTIVE"); }) == Errc::not_found);

  f.wf().delete_service(r.id);
  CHECK(code_of([&] { f.wf().get_service(r.id); }) == Errc::not_found);
  CHECK(code_of([&] { f.wf().delete_service(r.id); }) == Errc::not_found);
  CHECK(f.wf().list_services().size() == 1);
}

TEST_CASE("workflows: service validation names the field and stores nothing") {
  Fixture f;
  auto err = [&](ServiceCreate c) {
    return std::make_pair(code_of([&] { f.wf().create_service(c); }), field_of([&] { f.wf().create_service(c); }));
  };
  using P = std::pair<Errc, std::string>;
  ServiceCreate c;
  c.type = "relay";
  c.name = "ok";
  ServiceCreate b = c;
  b.type = "vm";
  CHECK(err(b) == P{Errc::invalid_argument, "type"});
  b = c;
  b.name = "";
  CHECK(err(b) == P{Errc::invalid_argument, "name"});
  b.name = std::string(WorkflowLimits::name + 1, 'n');
  CHECK(err(b) == P{Errc::invalid_argument, "name"});
  b = c;
  b.description = std::string(WorkflowLimits::text + 1, 'd');
  CHECK(err(b) == P{Errc::invalid_argument, "description"});
  b = c;
  b.endpoint = std::string(WorkflowLimits::text + 1, 'e');
  CHECK(err(b) == P{Errc::invalid_argument, "endpoint"});
  b = c;
  b.status = "DOWN";
  CHECK(err(b) == P{Errc::invalid_argument, "status"});
  b = c;
  b.capabilities_json = std::string(WorkflowLimits::json + 1, ' ');
  CHECK(err(b) == P{Errc::invalid_argument, "capabilities"});
  CHECK(f.wf().list_services().empty());
  // The bounds themselves are accepted.
  b = c;
  b.name = std::string(WorkflowLimits::name, 'n');
  b.capabilities_json = std::string(WorkflowLimits::json, ' ');
  CHECK(f.wf().create_service(b).name.size() == WorkflowLimits::name);

  CHECK(code_of([&] { f.wf().get_service(424242); }) == Errc::not_found);
  CHECK(code_of([&] { f.wf().update_service(424242, ServiceUpdate{}); }) == Errc::not_found);
  CHECK(code_of([&] { f.wf().service_interfaces(424242); }) == Errc::not_found);
  ServiceUpdate u;
  u.status = "maybe";
  CHECK(field_of([&] { f.wf().update_service(1, u); }) == "status");
}

TEST_CASE("workflows: DATA files are hashed and their passphrase sealed - type errors are named") {
  Fixture f;
  Service data = f.service("d", "storage");
  Service relay = f.service("r", "relay");
  std::ofstream(f.dir.path / "data" / "file.bin") << "hello";
  CHECK(code_of([&] { f.wf().service_passphrase(data.id); }) == Errc::not_found);  // no file yet
  DataDetails d = f.wf().attach_data_file(data.id, "file.bin");
  CHECK(d.service_id == data.id);
  CHECK(d.file_size == 5);
  CHECK(d.file_hash == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  CHECK(d.file_path == fs::canonical(f.dir.path / "data" / "file.bin").string());
  auto [pass, rec] = f.wf().service_passphrase(data.id);
  CHECK(pass.size() == 64);
  CHECK(rec.file_hash == d.file_hash);
  // The passphrase survives a reopen (sealed with a key derived from the server key).
  f.open();
  CHECK(f.wf().service_passphrase(data.id).first == pass);
  CHECK(field_of([&] { f.wf().service_passphrase(relay.id); }) == "service_type");
  CHECK(field_of([&] { f.wf().attach_data_file(relay.id, "file.bin"); }) == "service_type");
  CHECK(code_of([&] { f.wf().service_passphrase(9999); }) == Errc::not_found);
  // Confined to the data directory.
  std::ofstream(f.dir.path / "outside.bin") << "x";
  CHECK(field_of([&] { f.wf().attach_data_file(data.id, (f.dir.path / "outside.bin").string()); }) == "file_path");
  CHECK(field_of([&] { f.wf().attach_data_file(data.id, "../outside.bin"); }) == "file_path");
  CHECK(field_of([&] { f.wf().attach_data_file(data.id, "missing.bin"); }) == "file_path");
  CHECK(field_of([&] { f.wf().attach_data_file(data.id, "."); }) == "file_path");  // a directory
}

TEST_CASE("workflows: standalone services are confined to the data directory and validated") {
  Fixture f;
  f.script("bin/tool.sh", "echo hi");
  StandaloneCreate c;
  c.name = "tool";
  c.executable_path = "bin/tool.sh";
  c.arguments = {"-v"};
  c.environment = {{"B", "2"}, {"A", "1"}};
  c.timeout_seconds = 30;
  Service s = f.wf().create_standalone(c);
  CHECK(s.service_type == "STANDALONE");
  REQUIRE(s.standalone.has_value());
  CHECK(s.standalone->executable_path == fs::canonical(f.dir.path / "data/bin/tool.sh").string());
  CHECK(s.standalone->working_directory == fs::canonical(f.dir.path / "data/bin").string());
  CHECK(s.standalone->arguments == std::vector<std::string>{"-v"});
  REQUIRE(s.standalone->environment.size() == 2);
  CHECK(s.standalone->environment[0].first == "A");  // sorted by name
  CHECK(s.standalone->timeout_seconds == 30);
  CHECK(s.standalone->source == "local");
  // Default interfaces: STDIN, STDOUT, STDERR.
  auto ifs = f.wf().service_interfaces(s.id);
  REQUIRE(ifs.size() >= 3);
  CHECK(ifs[0].interface_type == "STDIN");

  auto field = [&](StandaloneCreate b) { return field_of([&] { f.wf().create_standalone(b); }); };
  StandaloneCreate b = c;
  b.name = "";
  CHECK(field(b) == "service_name");
  b = c;
  b.executable_path = "../wf.db";
  CHECK(field(b) == "executable_path");
  b.executable_path = "/bin/sh";  // exists, but outside
  CHECK(field(b) == "executable_path");
  std::ofstream(f.dir.path / "data/plain.txt") << "not executable";
  b.executable_path = "plain.txt";
  CHECK(field(b) == "executable_path");
  fs::create_symlink("/bin/sh", f.dir.path / "data/escape");
  b.executable_path = "escape";  // a symlink out of the data directory
  CHECK(field(b) == "executable_path");
  b = c;
  b.working_directory = "nope";
  CHECK(field(b) == "working_directory");
  b = c;
  b.timeout_seconds = 0;
  CHECK(field(b) == "timeout_seconds");
  b.timeout_seconds = 86401;
  CHECK(field(b) == "timeout_seconds");
  b = c;
  b.environment = {{"1BAD", "x"}};
  CHECK(field(b) == "environment_variables");
  b.environment = {{"OK", std::string("a\0b", 3)}};
  CHECK(field(b) == "environment_variables");
  b = c;
  b.arguments = std::vector<std::string>(WorkflowLimits::list + 1, "a");
  CHECK(field(b) == "arguments");
  b = c;
  b.run_as_user = "definitely-not-this-user";
  CHECK(field(b) == "run_as_user");
  b = c;
  b.interfaces = {ServiceInterface{0, 0, "PIPE", "", "", ""}};
  CHECK(field(b) == "interface_type");
  CHECK(f.wf().list_services().size() == 1);
  // delete_standalone_service refuses another type.
  Service relay = f.service("r");
  CHECK(field_of([&] { f.wf().delete_standalone_service(relay.id); }) == "service_type");
  f.wf().delete_standalone_service(s.id);
  CHECK(code_of([&] { f.wf().get_service(s.id); }) == Errc::not_found);
}

TEST_CASE("workflows: workflow CRUD - validation - and persistence across reopen") {
  Fixture f;
  Workflow w = f.wf().create_workflow("pipeline", "desc", R"({"v":1})");
  CHECK(w.id > 0);
  CHECK(w.name == "pipeline");
  CHECK(w.definition_json == R"({"v":1})");
  CHECK(f.wf().ui_state(w.id) == "{}");
  f.clock->advance(std::chrono::seconds(2));
  Workflow u = f.wf().update_workflow(w.id, "renamed", std::nullopt, std::nullopt);
  CHECK(u.name == "renamed");
  CHECK(u.description == "desc");
  CHECK(u.definition_json == R"({"v":1})");
  CHECK(u.updated_at > w.updated_at);
  f.wf().set_ui_state(w.id, R"({"zoom":2})");

  CHECK(field_of([&] { f.wf().create_workflow("", "", "{}"); }) == "name");
  CHECK(field_of([&] { f.wf().create_workflow(std::string(256, 'n'), "", "{}"); }) == "name");
  CHECK(field_of([&] { f.wf().create_workflow("n", std::string(4097, 'd'), "{}"); }) == "description");
  CHECK(field_of([&] { f.wf().create_workflow("n", "", std::string(WorkflowLimits::json + 1, ' ')); }) ==
        "definition");
  CHECK(field_of([&] { f.wf().update_workflow(w.id, "", std::nullopt, std::nullopt); }) == "name");
  CHECK(field_of([&] { f.wf().set_ui_state(w.id, std::string(WorkflowLimits::json + 1, ' ')); }) == "ui_state");
  CHECK(f.wf().list_workflows().size() == 1);
  for (std::int64_t bad : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{9999}}) {
    CHECK(code_of([&] { f.wf().get_workflow(bad); }) == Errc::not_found);
    CHECK(code_of([&] { f.wf().update_workflow(bad, "x", std::nullopt, std::nullopt); }) == Errc::not_found);
    CHECK(code_of([&] { f.wf().delete_workflow(bad); }) == Errc::not_found);
    CHECK(code_of([&] { f.wf().nodes(bad); }) == Errc::not_found);
    CHECK(code_of([&] { f.wf().connections(bad); }) == Errc::not_found);
    CHECK(code_of([&] { f.wf().ui_state(bad); }) == Errc::not_found);
    CHECK(code_of([&] { f.wf().set_ui_state(bad, "{}"); }) == Errc::not_found);
    CHECK(code_of([&] { f.wf().execute(bad); }) == Errc::not_found);
  }

  f.open();
  Workflow g = f.wf().get_workflow(w.id);
  CHECK(g.name == "renamed");
  CHECK(g.created_at == w.created_at);
  CHECK(f.wf().ui_state(w.id) == R"({"zoom":2})");
  f.wf().delete_workflow(w.id);
  CHECK(f.wf().list_workflows().empty());
}

TEST_CASE("workflows: nodes and connections: membership rules - not_found - dangling after delete") {
  Fixture f;
  Workflow w = f.wf().create_workflow("g", "", "{}");
  Workflow other = f.wf().create_workflow("other", "", "{}");
  Service s = f.service("svc");
  WorkflowNode a = f.node(w.id, s.id);
  WorkflowNode b = f.node(w.id, s.id);
  WorkflowNode o = f.node(other.id, s.id);
  CHECK(a.node_type == "SERVICE");
  CHECK(a.id != b.id);
  REQUIRE(f.wf().nodes(w.id).size() == 2);

  WorkflowNode bad;
  bad.workflow_id = w.id;
  bad.service_id = 9999;
  CHECK(field_of([&] { f.wf().add_node(bad); }) == "service_id");
  bad.service_id = s.id;
  bad.node_type = "SCRIPT";
  CHECK(field_of([&] { f.wf().add_node(bad); }) == "node_type");
  bad.node_type = "service";  // case-insensitive
  CHECK(f.wf().add_node(bad).node_type == "SERVICE");
  bad.config_json = std::string(WorkflowLimits::json + 1, ' ');
  CHECK(field_of([&] { f.wf().add_node(bad); }) == "config");
  bad.config_json = "{}";
  bad.workflow_id = 9999;
  CHECK(code_of([&] { f.wf().add_node(bad); }) == Errc::not_found);

  f.wf().set_node_config(w.id, a.id, R"({"k":"v"})");
  f.wf().set_node_gui_props(w.id, a.id, R"({"x":10})");
  auto ns = f.wf().nodes(w.id);
  CHECK(ns[0].config_json == R"({"k":"v"})");
  CHECK(ns[0].gui_props_json == R"({"x":10})");
  CHECK(code_of([&] { f.wf().set_node_config(w.id, o.id, "{}"); }) == Errc::not_found);  // another workflow's
  CHECK(code_of([&] { f.wf().set_node_gui_props(w.id, 9999, "{}"); }) == Errc::not_found);
  CHECK(field_of([&] { f.wf().set_node_gui_props(w.id, a.id, std::string(WorkflowLimits::json + 1, ' ')); }) ==
        "gui_props");

  WorkflowConnection c = f.connect(w.id, a.id, b.id);
  CHECK(c.id > 0);
  auto cs = f.wf().connections(w.id);
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].source_node_id == a.id);
  CHECK(cs[0].target_node_id == b.id);
  CHECK_FALSE(cs[0].source_interface_id.has_value());
  CHECK(field_of([&] { f.connect(w.id, a.id, o.id); }) == "target_node_id");
  CHECK(field_of([&] { f.connect(w.id, o.id, a.id); }) == "source_node_id");
  CHECK(code_of([&] { f.connect(9999, a.id, b.id); }) == Errc::not_found);
  // update: reverse it, with interfaces.
  WorkflowConnection rev = c;
  rev.source_node_id = b.id;
  rev.target_node_id = a.id;
  rev.source_interface_id = 2;
  f.wf().update_connection(rev);
  cs = f.wf().connections(w.id);
  CHECK(cs[0].source_node_id == b.id);
  CHECK(cs[0].source_interface_id == std::optional<std::int64_t>(2));
  rev.target_node_id = o.id;
  CHECK(field_of([&] { f.wf().update_connection(rev); }) == "target_node_id");
  rev.id = 9999;
  CHECK(code_of([&] { f.wf().update_connection(rev); }) == Errc::not_found);
  rev = c;
  rev.workflow_id = other.id;  // exists, but in another workflow
  CHECK(code_of([&] { f.wf().update_connection(rev); }) == Errc::not_found);

  // Deleting a node leaves its connections (dangling).
  f.wf().delete_node(w.id, a.id);
  CHECK(f.wf().nodes(w.id).size() == 2);
  CHECK(f.wf().connections(w.id).size() == 1);
  CHECK(code_of([&] { f.wf().delete_node(w.id, a.id); }) == Errc::not_found);
  CHECK(code_of([&] { f.wf().delete_node(w.id, o.id); }) == Errc::not_found);
  CHECK(code_of([&] { f.wf().delete_connection(other.id, c.id); }) == Errc::not_found);
  f.wf().delete_connection(w.id, c.id);
  CHECK(f.wf().connections(w.id).empty());
  CHECK(code_of([&] { f.wf().delete_connection(w.id, c.id); }) == Errc::not_found);
  // Deleting the workflow removes its nodes; the other workflow keeps its own.
  f.wf().delete_workflow(w.id);
  CHECK(f.wf().nodes(other.id).size() == 1);
}

TEST_CASE("workflows: execute runs a piped chain in order - jobs record exit codes and I/O") {
  Fixture f;
  f.cluster->start();
  Service hello = f.standalone("hello", f.script("bin/hello.sh", "echo hello; echo warn >&2"));
  Service upper = f.standalone("upper", f.script("bin/upper.sh", "tr a-z A-Z"));
  Workflow w = f.wf().create_workflow("chain", "", "{}");
  WorkflowNode a = f.node(w.id, hello.id);
  WorkflowNode b = f.node(w.id, upper.id);
  f.connect(w.id, a.id, b.id);
  ExecutionInstance inst = f.wf().execute(w.id);
  CHECK(inst.status == "RUNNING");
  CHECK(inst.workflow_id == w.id);
  ExecutionInstance done = f.wait(inst.id);
  CHECK(done.status == "COMPLETED");
  CHECK_FALSE(done.error.has_value());
  CHECK(done.jobs_total == 2);
  CHECK(done.jobs_done == 2);
  CHECK(done.progress() == 100);
  REQUIRE(done.completed_at.has_value());
  auto jobs = f.wf().execution_jobs(inst.id);
  REQUIRE(jobs.size() == 2);
  for (const auto& j : jobs) {
    CHECK(j.status == "COMPLETED");
    CHECK(j.exit_code == std::optional<int>(0));
    CHECK(j.workflow_execution_id == inst.id);
  }
  auto output = [&](std::int64_t node, const std::string& type) {
    for (const auto& j : jobs)
      if (j.node_id == node)
        for (const auto& i : f.wf().job_interfaces(j.id))
          if (i.interface_type == type) return i.value;
    return std::string("<none>");
  };
  CHECK(output(a.id, "STDOUT") == "hello\n");
  CHECK(output(a.id, "STDERR") == "warn\n");
  CHECK(output(b.id, "STDIN") == "hello\n");
  CHECK(output(b.id, "STDOUT") == "HELLO\n");
  CHECK(f.wf().executions(w.id).size() == 1);
  CHECK(f.wf().workflow_jobs(w.id).size() == 2);
  CHECK(code_of([&] { f.wf().execution(9999); }) == Errc::not_found);
  CHECK(code_of([&] { f.wf().execution_jobs(9999); }) == Errc::not_found);
  CHECK(code_of([&] { f.wf().job_interfaces(9999); }) == Errc::not_found);
}

TEST_CASE("workflows: a failing job fails the instance with its exit code") {
  Fixture f;
  f.cluster->start();
  Service bad = f.standalone("bad", f.script("bin/bad.sh", "exit 3"));
  Workflow w = f.wf().create_workflow("fails", "", "{}");
  f.node(w.id, bad.id);
  ExecutionInstance done = f.wait(f.wf().execute(w.id).id);
  CHECK(done.status == "FAILED");
  REQUIRE(done.error.has_value());
  auto jobs = f.wf().execution_jobs(done.id);
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].status == "FAILED");
  CHECK(jobs[0].exit_code == std::optional<int>(3));
}

TEST_CASE("workflows: an invalid graph fails the instance saying why - running nothing") {
  Fixture f;
  f.cluster->start();
  const std::string marker = (f.dir.path / "data" / "ran").string();
  Service ok = f.standalone("touch", f.script("bin/touch.sh", "touch '" + marker + "'"));
  Service relay = f.service("relay");
  auto failed_with = [&](std::int64_t workflow, const std::string& needle) {
    ExecutionInstance done = f.wait(f.wf().execute(workflow).id);
    CHECK(done.status == "FAILED");
    REQUIRE(done.error.has_value());
    CAPTURE(*done.error);
    CHECK(done.error->find(needle) != std::string::npos);
    CHECK(f.wf().execution_jobs(done.id).empty());
  };
  Workflow empty = f.wf().create_workflow("empty", "", "{}");
  failed_with(empty.id, "no nodes");

  Workflow cyc = f.wf().create_workflow("cycle", "", "{}");
  auto x = f.node(cyc.id, ok.id), y = f.node(cyc.id, ok.id), z = f.node(cyc.id, ok.id);
  f.connect(cyc.id, x.id, y.id);
  f.connect(cyc.id, y.id, x.id);
  f.connect(cyc.id, z.id, x.id);
  failed_with(cyc.id, "cycle");

  Workflow dangling = f.wf().create_workflow("dangling", "", "{}");
  auto p = f.node(dangling.id, ok.id), q = f.node(dangling.id, ok.id);
  f.connect(dangling.id, p.id, q.id);
  f.wf().delete_node(dangling.id, q.id);
  failed_with(dangling.id, "dangling");

  Workflow wrong = f.wf().create_workflow("relay", "", "{}");
  f.node(wrong.id, relay.id);
  failed_with(wrong.id, "without an executable or image");

  Workflow inactive = f.wf().create_workflow("inactive", "", "{}");
  Service off = f.standalone("off", "bin/touch.sh");
  f.wf().set_service_status(off.id, "INACTIVE");
  f.node(inactive.id, off.id);
  failed_with(inactive.id, "INACTIVE");

  Workflow orphan = f.wf().create_workflow("orphan", "", "{}");
  Service gone = f.standalone("gone", "bin/touch.sh");
  f.node(orphan.id, gone.id);
  f.wf().delete_service(gone.id);  // the node stays, naming a service that no longer exists
  failed_with(orphan.id, "does not exist");

  CHECK_FALSE(fs::exists(marker));

  // delete_workflow removes its executions and their jobs too.
  const auto execs = f.wf().executions(cyc.id);
  REQUIRE(execs.size() == 1);
  f.wf().delete_workflow(cyc.id);
  CHECK(code_of([&] { f.wf().execution(execs[0].id); }) == Errc::not_found);
  CHECK(f.wf().executions(cyc.id).empty());
}

TEST_CASE("workflows: docker details and config - interfaces are replaced and validated") {
  Fixture f;
  ServiceCreate c;
  c.type = "docker";
  c.name = "web";
  c.capabilities_json = R"({"image_name":"nginx","image_tag":"1.25"})";
  Service d = f.wf().create_service(c);
  CHECK(d.service_type == "DOCKER");
  DockerDetails dd = f.wf().docker_details(d.id);
  CHECK(dd.image_name == "nginx");
  CHECK(dd.image_tag == "1.25");
  CHECK(dd.source == "registry");
  c.capabilities_json = "{}";
  c.name = "bare";
  CHECK(f.wf().docker_details(f.wf().create_service(c).id).image_tag == "latest");

  f.wf().set_docker_config(d.id, std::vector<std::string>{"/bin/sh", "-c"}, std::vector<std::string>{"echo \"hi\""});
  dd = f.wf().docker_details(d.id);
  CHECK(dd.entrypoint == R"(["/bin/sh","-c"])");
  CHECK(dd.cmd == R"(["echo \"hi\""])");
  f.wf().set_docker_config(d.id, std::nullopt, std::vector<std::string>{});  // leave one, clear the other
  dd = f.wf().docker_details(d.id);
  CHECK(dd.entrypoint == R"(["/bin/sh","-c"])");
  CHECK(dd.cmd.empty());
  CHECK(field_of([&] { f.wf().set_docker_config(d.id, std::vector<std::string>(257, "w"), std::nullopt); }) ==
        "entrypoint");
  CHECK(field_of([&] { f.wf().set_docker_config(d.id, std::nullopt, std::vector<std::string>{std::string(4097, 'w')}); }) ==
        "cmd");
  CHECK(f.wf().docker_details(d.id).entrypoint == R"(["/bin/sh","-c"])");
  Service relay = f.service("relay");
  CHECK(code_of([&] { f.wf().docker_details(relay.id); }) == Errc::not_found);
  CHECK(code_of([&] { f.wf().set_docker_config(relay.id, std::nullopt, std::nullopt); }) == Errc::not_found);

  std::vector<ServiceInterface> v = {{0, 0, "MOUNT", "/data", "ro", "input"}, {0, 0, "ENV", "", "", ""}};
  f.wf().replace_interfaces(relay.id, v);
  auto got = f.wf().service_interfaces(relay.id);
  REQUIRE(got.size() == 2);
  CHECK(got[0].interface_type == "MOUNT");
  CHECK(got[0].path == "/data");
  CHECK(got[0].mount_function == "ro");
  CHECK(got[0].service_id == relay.id);
  CHECK(field_of([&] { f.wf().replace_interfaces(relay.id, {{0, 0, "stdout", "", "", ""}}); }) == "interface_type");
  CHECK(field_of([&] { f.wf().replace_interfaces(relay.id, std::vector<ServiceInterface>(257, v[1])); }) ==
        "interfaces");
  CHECK(f.wf().service_interfaces(relay.id).size() == 2);  // a refused replace keeps the old ones
  CHECK(code_of([&] { f.wf().replace_interfaces(9999, v); }) == Errc::not_found);
  f.wf().replace_interfaces(relay.id, {});
  CHECK(f.wf().service_interfaces(relay.id).empty());
}

TEST_CASE("workflows: finalize_standalone takes paths inside the service's upload directory") {
  Fixture f;
  ServiceCreate c;
  c.type = "standalone";
  c.name = "uploaded";
  c.status = "INACTIVE";
  Service s = f.wf().create_service(c);
  StandaloneCreate r;
  r.executable_path = "run.sh";
  CHECK(field_of([&] { f.wf().finalize_standalone(s.id, r); }) == "executable_path");  // nothing uploaded yet
  const std::string up = "uploads/" + std::to_string(s.id);
  f.script(up + "/run.sh", "echo up");
  f.script("bin/elsewhere.sh", "echo no");
  r.executable_path = "../../bin/elsewhere.sh";
  CHECK(field_of([&] { f.wf().finalize_standalone(s.id, r); }) == "executable_path");
  r.executable_path = (f.dir.path / "data/bin/elsewhere.sh").string();  // inside data, outside the upload dir
  CHECK(field_of([&] { f.wf().finalize_standalone(s.id, r); }) == "executable_path");
  r.executable_path = "run.sh";
  Service done = f.wf().finalize_standalone(s.id, r);
  CHECK(done.name == "uploaded");
  CHECK(done.status == "ACTIVE");
  REQUIRE(done.standalone.has_value());
  CHECK(done.standalone->source == "upload");
  CHECK(done.standalone->executable_path == fs::canonical(f.dir.path / "data" / up / "run.sh").string());
  Service relay = f.service("relay");
  CHECK(field_of([&] { f.wf().finalize_standalone(relay.id, r); }) == "service_type");
  CHECK(code_of([&] { f.wf().finalize_standalone(9999, r); }) == Errc::not_found);
}

TEST_CASE("workflows: git services: URL validation - a local clone and build - and a failed build leaves nothing") {
  Fixture f;
  StandaloneGitCreate g;
  g.service.name = "from-git";
  g.service.executable_path = "tool.sh";
  for (std::string url : {"", "-upload-pack=evil", "ftp://example.com/r.git", "https://a b/r.git",
                          "file:///etc", "ssh://-oProxyCommand=x/r"}) {
    CAPTURE(url);
    g.repo_url = url;
    CHECK(field_of([&] { f.wf().create_standalone_from_git(g); }) == "repo_url");
    CHECK(field_of([&] { f.wf().validate_git(url, "", ""); }) == "repo_url");
  }
  g.repo_url = "https://example.invalid/r.git";
  g.branch = "-b";
  CHECK(field_of([&] { f.wf().create_standalone_from_git(g); }) == "branch");
  g.branch.clear();
  g.service.name = "";
  CHECK(field_of([&] { f.wf().create_standalone_from_git(g); }) == "service_name");

  // A repository inside the data directory, cloned with file://.
  const fs::path repo = f.dir.path / "data" / "repo";
  fs::create_directories(repo);
  std::ofstream(repo / "build.sh") << "#!/bin/sh\nprintf '#!/bin/sh\\necho built\\n' > tool.sh && chmod +x tool.sh\n";
  const std::string git = "cd '" + repo.string() + "' && git init -q -b main . && git add build.sh && "
                          "git -c user.name=t -c user.email=t@t commit -q -m init";
  REQUIRE(std::system(git.c_str()) == 0);
  const std::string url = "file://" + repo.string();
  CHECK_FALSE(f.wf().validate_git(url, "", "").has_value());
  CHECK(f.wf().validate_git("file://" + (f.dir.path / "data").string(), "", "").has_value());  // not a repository

  g.service.name = "from-git";
  g.repo_url = url;
  g.build_command = "exit 7";
  CHECK(code_of([&] { f.wf().create_standalone_from_git(g); }) == Errc::invalid_argument);
  CHECK(f.wf().list_services().empty());
  auto clones = [&] {
    std::size_t n = 0;
    std::error_code ec;
    if (fs::exists(f.dir.path / "data" / "services", ec))
      for (const auto& e : fs::directory_iterator(f.dir.path / "data" / "services"))
        n += e.path().filename().string().rfind("git-", 0) == 0;
    return n;
  };
  CHECK(clones() == 0);

  g.build_command = "sh build.sh";
  Service s = f.wf().create_standalone_from_git(g);
  REQUIRE(s.standalone.has_value());
  CHECK(s.standalone->source == "git");
  CHECK(fs::exists(s.standalone->executable_path));
  CHECK(clones() == 1);
  // It runs.
  f.cluster->start();
  Workflow w = f.wf().create_workflow("git", "", "{}");
  WorkflowNode n = f.node(w.id, s.id);
  ExecutionInstance done = f.wait(f.wf().execute(w.id).id);
  CHECK(done.status == "COMPLETED");
  auto jobs = f.wf().execution_jobs(done.id);
  REQUIRE(jobs.size() == 1);
  std::string out;
  for (const auto& i : f.wf().job_interfaces(jobs[0].id))
    if (i.interface_type == "STDOUT") out = i.value;
  CHECK(out == "built\n");
  CHECK(jobs[0].node_id == n.id);
}

TEST_CASE("workflows: a job past its timeout or output limit is killed and fails the instance") {
  Fixture f;
  f.cluster.reset();
  Options o;
  o.database_path = f.dir.file("wf.db");
  o.data_dir = f.dir.file("data");
  o.clock = f.clock;
  o.workflows.max_output_bytes = 1024;
  f.cluster = std::make_unique<Cluster>(o);
  f.cluster->start();
  f.script("bin/slow.sh", "sleep 30");
  StandaloneCreate c;
  c.name = "slow";
  c.executable_path = "bin/slow.sh";
  c.timeout_seconds = 1;
  Service slow = f.wf().create_standalone(c);
  Service loud = f.standalone("loud", f.script("bin/loud.sh", "head -c 5000 /dev/zero; sleep 30"));

  Workflow w = f.wf().create_workflow("slow", "", "{}");
  f.node(w.id, slow.id);
  const auto t0 = std::chrono::steady_clock::now();
  ExecutionInstance done = f.wait(f.wf().execute(w.id).id);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(15));
  CHECK(done.status == "FAILED");
  auto jobs = f.wf().execution_jobs(done.id);
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].status == "FAILED");
  REQUIRE(jobs[0].error.has_value());
  CHECK(jobs[0].error->find("timed out") != std::string::npos);

  Workflow w2 = f.wf().create_workflow("loud", "", "{}");
  f.node(w2.id, loud.id);
  done = f.wait(f.wf().execute(w2.id).id);
  CHECK(done.status == "FAILED");
  jobs = f.wf().execution_jobs(done.id);
  REQUIRE(jobs.size() == 1);
  REQUIRE(jobs[0].error.has_value());
  CHECK(jobs[0].error->find("output exceeds 1024 bytes") != std::string::npos);
  for (const auto& i : f.wf().job_interfaces(jobs[0].id))
    if (i.interface_type == "STDOUT") CHECK(i.value.size() <= 1024);
}

TEST_CASE("workflows: closing the cluster fails a running execution - it stays failed after reopen") {
  Fixture f;
  f.cluster->start();
  Service slow = f.standalone("slow", f.script("bin/slow.sh", "sleep 60"));
  Workflow w = f.wf().create_workflow("w", "", "{}");
  f.node(w.id, slow.id);
  ExecutionInstance inst = f.wf().execute(w.id);
  // Wait until the job runs.
  for (int i = 0; i < 1000; ++i) {
    auto jobs = f.wf().execution_jobs(inst.id);
    if (!jobs.empty() && jobs[0].status == "RUNNING") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(f.wf().execution_jobs(inst.id).at(0).status == "RUNNING");
  const auto t0 = std::chrono::steady_clock::now();
  f.open();  // destroys the running cluster
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));  // the child was killed, not awaited
  ExecutionInstance e = f.wf().execution(inst.id);
  CHECK(e.status == "FAILED");
  REQUIRE(e.error.has_value());
  CHECK((e.error->find("server stopping") != std::string::npos || e.error->find("restarted") != std::string::npos));
  auto jobs = f.wf().execution_jobs(inst.id);
  CHECK(jobs.at(0).status != "RUNNING");
  CHECK(jobs.at(0).status != "PENDING");
}

TEST_CASE("workflows: a workflow holds at most 1000 nodes") {
  Fixture f;
  Service s = f.service("svc");
  Workflow w = f.wf().create_workflow("big", "", "{}");
  for (std::size_t i = 0; i < WorkflowLimits::nodes; ++i) f.node(w.id, s.id);
  CHECK(f.wf().nodes(w.id).size() == WorkflowLimits::nodes);
  WorkflowNode n;
  n.workflow_id = w.id;
  n.service_id = s.id;
  CHECK(code_of([&] { f.wf().add_node(n); }) == Errc::invalid_argument);
  CHECK(f.wf().nodes(w.id).size() == WorkflowLimits::nodes);
  // Another workflow is not affected.
  Workflow other = f.wf().create_workflow("small", "", "{}");
  CHECK_NOTHROW(f.node(other.id, s.id));
}

TEST_CASE("workflows: executor Options are bounded - max_parallel 1 runs independent jobs one at a time") {
  testsupport::TempDir dir;
  auto open_with = [&](std::size_t parallel, std::size_t output) {
    Options o;
    o.database_path = dir.file("o.db");
    o.workflows.max_parallel = parallel;
    o.workflows.max_output_bytes = output;
    return field_of([&] { Cluster c(o); });
  };
  CHECK(open_with(0, 1024) == "workflows.max_parallel");
  CHECK(open_with(1025, 1024) == "workflows.max_parallel");
  CHECK(open_with(1, 1023) == "workflows.max_output_bytes");
  CHECK(open_with(1, 64 * 1024 * 1024 + 1) == "workflows.max_output_bytes");
  CHECK(open_with(1024, 64 * 1024 * 1024) == "<none>");

  Fixture f;
  f.cluster.reset();
  Options o;
  o.database_path = f.dir.file("wf.db");
  o.data_dir = f.dir.file("data");
  o.workflows.max_parallel = 1;
  f.cluster = std::make_unique<Cluster>(o);
  f.cluster->start();
  // Each job holds a lock directory for 0.3 s; two at once would collide (exit 9).
  const std::string lock = (f.dir.path / "data" / "lock").string();
  Service s = f.standalone("excl", f.script("bin/excl.sh", "mkdir '" + lock + "' || exit 9; sleep 0.3; rmdir '" + lock + "'"));
  Workflow w = f.wf().create_workflow("par", "", "{}");
  for (int i = 0; i < 3; ++i) f.node(w.id, s.id);
  ExecutionInstance done = f.wait(f.wf().execute(w.id).id);
  CHECK(done.status == "COMPLETED");
  CHECK(done.jobs_done == 3);
  for (const auto& j : f.wf().execution_jobs(done.id)) CHECK(j.exit_code == std::optional<int>(0));
}

TEST_CASE("workflows: at open - executions a crashed process left RUNNING fail with the reason") {
  Fixture f;
  f.cluster->start();
  Service ok = f.standalone("ok", f.script("bin/ok.sh", "true"));
  Workflow w = f.wf().create_workflow("w", "", "{}");
  f.node(w.id, ok.id);
  f.node(w.id, ok.id);
  ExecutionInstance done = f.wait(f.wf().execute(w.id).id);
  REQUIRE(done.status == "COMPLETED");
  f.cluster.reset();
  {
    // What a process killed mid-run leaves behind: the instance RUNNING,
    // one job RUNNING and one PENDING.
    testsupport::db_exec(f.dir.file("wf.db"),
                         "UPDATE workflow_executions SET status = 'RUNNING', completed_at = NULL, jobs_done = 0;"
                         "UPDATE job_executions SET status = 'RUNNING', completed_at = NULL, exit_code = NULL"
                         " WHERE id = (SELECT MIN(id) FROM job_executions);"
                         "UPDATE job_executions SET status = 'PENDING', completed_at = NULL, exit_code = NULL"
                         " WHERE id = (SELECT MAX(id) FROM job_executions)");
  }
  f.open();
  ExecutionInstance e = f.wf().execution(done.id);
  CHECK(e.status == "FAILED");
  REQUIRE(e.error.has_value());
  CHECK(*e.error == "server restarted while the execution was running");
  CHECK(e.completed_at.has_value());
  CHECK(e.jobs_done == e.jobs_total);
  auto jobs = f.wf().execution_jobs(done.id);
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].status == "FAILED");
  CHECK(jobs[1].status == "CANCELLED");
  CHECK(jobs[1].error == std::optional<std::string>("server restarted while the job was pending or running"));
}

TEST_CASE("workflows: fail_abandoned fails only executions whose server process is gone") {
  Fixture f;
  f.cluster->start();
  Service ok = f.standalone("ok", f.script("bin/ok.sh", "true"));
  Service slow = f.standalone("slow", f.script("bin/slow.sh", "sleep 30"));
  Workflow done_wf = f.wf().create_workflow("done", "", "{}");
  f.node(done_wf.id, ok.id);
  ExecutionInstance done = f.wait(f.wf().execute(done_wf.id).id);
  REQUIRE(done.status == "COMPLETED");
  Workflow live_wf = f.wf().create_workflow("live", "", "{}");
  f.node(live_wf.id, slow.id);
  ExecutionInstance live = f.wf().execute(live_wf.id);
  // Nothing is abandoned: the running execution is this process's.
  CHECK(f.wf().fail_abandoned() == 0);
  CHECK(f.wf().execution(live.id).status == "RUNNING");
  // A row a process before this one left RUNNING (owner 0: from before the
  // owner column; any other id: not this process, and on SQLite no other
  // process serves the file).
  testsupport::db_exec(f.dir.file("wf.db"),
                       "UPDATE workflow_executions SET status = 'RUNNING', completed_at = NULL, owner = 12345"
                       " WHERE id = " + std::to_string(done.id));
  CHECK(f.wf().fail_abandoned() == 1);
  ExecutionInstance e = f.wf().execution(done.id);
  CHECK(e.status == "FAILED");
  CHECK(e.error == std::optional<std::string>("server restarted while the execution was running"));
  CHECK(f.wf().execution(live.id).status == "RUNNING");
  CHECK(f.wf().fail_abandoned() == 0);
}

TEST_CASE("workflows: connections to this node's own side, interface types, file names (issue 18)") {
  Fixture f;
  auto s = f.standalone("echo", f.script("bin/echo.sh", "echo hi"));
  auto w = f.wf().create_workflow("ui", "", "{}");
  auto a = f.node(w.id, s.id);
  WorkflowConnection in;
  in.workflow_id = w.id;
  in.source_node_id = WorkflowConnection::kThisNode;
  in.target_node_id = a.id;
  in.source_interface_type = "STDOUT";
  in.target_interface_type = "STDIN";
  in.destination_file_name = "in.txt";
  auto stored = f.wf().add_connection(in);
  auto cs = f.wf().connections(w.id);
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].id == stored.id);
  CHECK(cs[0].source_node_id == WorkflowConnection::kThisNode);
  CHECK(cs[0].source_interface_type == "STDOUT");
  CHECK(cs[0].target_interface_type == "STDIN");
  CHECK(cs[0].destination_file_name == "in.txt");
  auto bad = in;
  bad.target_node_id = WorkflowConnection::kThisNode;
  CHECK(field_of([&] { f.wf().add_connection(bad); }) == "source_node_id");
  bad = in;
  bad.source_interface_type = "PIPE";
  CHECK(field_of([&] { f.wf().add_connection(bad); }) == "source_interface_type");
  for (const char* name : {"..", ".", "a/b", "x\n"}) {
    bad = in;
    bad.destination_file_name = name;
    CHECK(field_of([&] { f.wf().add_connection(bad); }) == "destination_file_name");
  }
  bad = in;
  bad.destination_file_name = std::string(256, 'x');
  CHECK(field_of([&] { f.wf().add_connection(bad); }) == "destination_file_name");
  CHECK(f.wf().connections(w.id).size() == 1);
  // an execution does not wait on this node's side: the node runs
  f.cluster->start();
  auto inst = f.wf().execute(w.id);
  CHECK(f.wait(inst.id).status == "COMPLETED");
}

TEST_CASE("workflows: the local peer rule decides which peer ids run here (issue 18)") {
  Fixture f;
  auto s = f.standalone("echo", f.script("bin/echo.sh", "echo hi"));
  auto w = f.wf().create_workflow("peers", "", "{}");
  WorkflowNode n;
  n.workflow_id = w.id;
  n.service_id = s.id;
  n.peer_id = "12D3KooWsomewhereelse";
  f.wf().add_node(n);
  f.cluster->start();
  auto failed = f.wait(f.wf().execute(w.id).id);
  CHECK(failed.status == "FAILED");
  // Not local, and no fleet node has that peer id (issue 17: fleet peers run on their agents).
  CHECK(failed.error.value_or("").find("peer 12D3KooWsomewhereelse is neither this server nor an active fleet node") !=
        std::string::npos);
  n.peer_id = f.cluster->network().self_peer_id();
  auto w2 = f.wf().create_workflow("self", "", "{}");
  n.workflow_id = w2.id;
  f.wf().add_node(n);
  CHECK(f.wait(f.wf().execute(w2.id).id).status == "COMPLETED");
  n.peer_id = "local";
  auto w3 = f.wf().create_workflow("local", "", "{}");
  n.workflow_id = w3.id;
  f.wf().add_node(n);
  CHECK(f.wait(f.wf().execute(w3.id).id).status == "COMPLETED");
}
