// The agent's task executor (apps/cli/exec.cpp, task_exec.cpp): child
// processes with a deadline, cancel, bounded output, argv passed verbatim;
// payload validation; result mapping.
#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "exec.hpp"
#include "procstats.hpp"
#include "task_exec.hpp"
#include "worker.hpp"

using namespace lucidctl;
using namespace std::chrono_literals;

namespace {

bool process_alive(pid_t pid) { return ::kill(pid, 0) == 0; }

// Reads a pid the test's shell wrote, waiting for the file to appear.
pid_t read_pid(const std::string& path) {
  for (int i = 0; i < 200; ++i) {
    std::ifstream f(path);
    pid_t p = 0;
    if (f >> p && p > 0) return p;
    std::this_thread::sleep_for(10ms);
  }
  return 0;
}

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() / (std::string("lucid-exec-") + std::to_string(::getpid()) + "-" + name))
      .string();
}

rapidjson::Document parse(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

std::atomic<bool> no_cancel{false};

}  // namespace

TEST_CASE("exec: argv is passed verbatim, no shell") {
  ExecSpec s;
  s.argv = {"printf", "%s|", "a b", "$HOME", "'q'", "*", ""};
  auto r = run_process(s, no_cancel);
  REQUIRE(r.end == ExecEnd::exited);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "a b|$HOME|'q'|*||");
  CHECK(r.pid > 0);
}

TEST_CASE("exec: exit code, stderr, stdin and environment") {
  ExecSpec s;
  s.argv = {"/bin/sh", "-c", "read line; echo \"got $line $LUCID_X\"; echo oops >&2; exit 7"};
  s.stdin_data = "hello\n";
  s.env = {{"LUCID_X", "from-env"}};
  auto r = run_process(s, no_cancel);
  REQUIRE(r.end == ExecEnd::exited);
  CHECK(r.exit_code == 7);
  CHECK(r.out == "got hello from-env\n");
  CHECK(r.err == "oops\n");
}

TEST_CASE("exec: a missing program or directory is a spawn failure") {
  ExecSpec s;
  s.argv = {"no-such-program-lucid"};
  auto r = run_process(s, no_cancel);
  CHECK(r.end == ExecEnd::spawn_failed);
  CHECK(r.error.find("no such program") != std::string::npos);

  ExecSpec c;
  c.argv = {"true"};
  c.cwd = "/nonexistent-dir-lucid";
  r = run_process(c, no_cancel);
  CHECK(r.end == ExecEnd::spawn_failed);
  CHECK(r.error.find("/nonexistent-dir-lucid") != std::string::npos);

  ExecSpec e;
  r = run_process(e, no_cancel);
  CHECK(r.end == ExecEnd::spawn_failed);
}

TEST_CASE("exec: the timeout kills the whole process group") {
  const std::string pidfile = temp_path("grandchild");
  std::filesystem::remove(pidfile);
  ExecSpec s;
  // The shell starts a grandchild and waits: both must die at the deadline.
  s.argv = {"/bin/sh", "-c", "sleep 30 & echo $! > " + pidfile + "; wait"};
  s.timeout = 300ms;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_process(s, no_cancel);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(r.end == ExecEnd::timeout);
  CHECK(took < 3s);
  CHECK(r.duration >= 300ms);
  const pid_t grandchild = read_pid(pidfile);
  REQUIRE(grandchild > 0);
  // Killed (and, its parent gone, reaped by init) promptly.
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = !process_alive(grandchild);
    if (!gone) std::this_thread::sleep_for(20ms);
  }
  CHECK(gone);
  CHECK_FALSE(process_alive(r.pid));
  std::filesystem::remove(pidfile);
}

TEST_CASE("exec: a grandchild left behind after a normal exit is killed too") {
  const std::string pidfile = temp_path("leftover");
  std::filesystem::remove(pidfile);
  ExecSpec s;
  s.argv = {"/bin/sh", "-c", "sleep 30 & echo $! > " + pidfile + "; echo done"};
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_process(s, no_cancel);
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);  // not held by the grandchild's open stdout
  REQUIRE(r.end == ExecEnd::exited);
  CHECK(r.out == "done\n");
  const pid_t grandchild = read_pid(pidfile);
  REQUIRE(grandchild > 0);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = !process_alive(grandchild);
    if (!gone) std::this_thread::sleep_for(20ms);
  }
  CHECK(gone);
  std::filesystem::remove(pidfile);
}

TEST_CASE("exec: cancel stops a running child within a tick") {
  std::atomic<bool> cancel{false};
  ExecSpec s;
  s.argv = {"sleep", "30"};
  int ticks = 0;
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    cancel.store(true);
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_process(s, cancel, [&](std::chrono::milliseconds) { ++ticks; }, 50ms);
  canceller.join();
  CHECK(r.end == ExecEnd::cancelled);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  CHECK(ticks >= 1);
  CHECK_FALSE(process_alive(r.pid));
}

TEST_CASE("exec: output is bounded and the rest is drained") {
  ExecSpec s;
  // 3 MiB on stdout, 100 KiB on stderr: the child is never blocked on a full pipe.
  s.argv = {"/bin/sh", "-c", "head -c 3145728 /dev/zero | tr '\\0' x; head -c 102400 /dev/zero | tr '\\0' y >&2"};
  s.max_stdout = 1000;
  s.max_stderr = 10;
  s.timeout = 20s;
  auto r = run_process(s, no_cancel);
  REQUIRE(r.end == ExecEnd::exited);
  CHECK(r.exit_code == 0);
  CHECK(r.out == std::string(1000, 'x'));
  CHECK(r.out_truncated);
  CHECK(r.out_total == 3145728);
  CHECK(r.err == std::string(10, 'y'));
  CHECK(r.err_truncated);
  CHECK(r.err_total == 102400);

  ExecSpec small;
  small.argv = {"echo", "hi"};
  r = run_process(small, no_cancel);
  CHECK_FALSE(r.out_truncated);
}

TEST_CASE("exec: a child killed by a signal it raised itself") {
  ExecSpec s;
  s.argv = {"/bin/sh", "-c", "kill -TERM $$"};
  auto r = run_process(s, no_cancel);
  CHECK(r.end == ExecEnd::signaled);
  CHECK(r.term_signal == SIGTERM);
}

TEST_CASE("valid_utf8 replaces invalid and truncated sequences") {
  CHECK(valid_utf8("plain") == "plain");
  CHECK(valid_utf8("caf\xC3\xA9") == "caf\xC3\xA9");
  CHECK(valid_utf8("bad\xFF") == "bad\xEF\xBF\xBD");
  CHECK(valid_utf8("cut\xE2\x82") == "cut\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(valid_utf8("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");          // overlong
  CHECK(valid_utf8("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  CHECK(valid_utf8("\xF0\x9F\x98\x80") == "\xF0\x9F\x98\x80");
}

TEST_CASE("find_program looks in PATH") {
  CHECK_FALSE(find_program("sh").empty());
  CHECK(find_program("/bin/sh") == "/bin/sh");
  CHECK(find_program("no-such-program-lucid").empty());
  CHECK(find_program("/etc/passwd").empty());  // not executable
  CHECK(find_program("").empty());
}

TEST_CASE("build_exec: command payloads") {
  ExecLimits lim;
  lim.self_exe = "/usr/bin/lucidctl";
  TaskAssignment t;
  t.task_id = "t1";
  t.task_type = "command";
  t.timeout_seconds = 7;

  t.payload_json = R"({"argv": ["ls", "-l", "a b"], "cwd": "/tmp", "env": {"A": "1"}, "stdin": "in"})";
  auto s = build_exec(t, lim);
  CHECK(s.argv == std::vector<std::string>{"ls", "-l", "a b"});
  CHECK(s.cwd == "/tmp");
  CHECK(s.stdin_data == "in");
  CHECK(s.env.size() == 1);
  CHECK(s.timeout == std::chrono::seconds(7));

  t.payload_json = R"({"command": "echo $HOME | wc -c", "shell": true})";
  s = build_exec(t, lim);
  CHECK(s.argv == std::vector<std::string>{"/bin/sh", "-c", "echo $HOME | wc -c"});

  t.payload_json = R"({"command": ["echo", "x"]})";
  s = build_exec(t, lim);
  CHECK(s.argv == std::vector<std::string>{"echo", "x"});

  for (const char* bad : {R"({"command": "echo hi"})", R"({"argv": []})", R"({"argv": "ls"})", R"({"argv": [1]})",
                          R"({"argv": ["ls"], "command": "ls", "shell": true})", R"({"argv": ["ls"], "shell": true})",
                          R"({"argv": [""]})", R"({"argv": ["ls"], "env": {"A=B": "1"}})", R"({"argv": ["ls"], "env": []})",
                          R"({"argv": ["ls"], "shell": "yes"})", R"({})", R"([1])", R"(not json)"}) {
    t.payload_json = bad;
    CHECK_THROWS_AS(build_exec(t, lim), PayloadError);
  }
}

TEST_CASE("build_exec: built-in types re-execute the agent, sleep and python are validated") {
  ExecLimits lim;
  lim.self_exe = "/opt/lucidctl";
  TaskAssignment t;
  t.task_type = "echo";
  t.payload_json = R"({"message": "hi"})";
  auto s = build_exec(t, lim);
  CHECK(s.argv == std::vector<std::string>{"/opt/lucidctl", "__task", "echo"});
  CHECK(s.stdin_data == t.payload_json);

  t.task_type = "sleep";
  t.payload_json = R"({"seconds": 1.5})";
  s = build_exec(t, lim);
  CHECK(s.argv == std::vector<std::string>{"/opt/lucidctl", "__task", "sleep"});
  CHECK(std::stod(s.stdin_data) == 1.5);
  for (const char* bad : {R"({"seconds": -1})", R"({"seconds": 90000})", R"({"seconds": "5"})", R"({})"}) {
    t.payload_json = bad;
    CHECK_THROWS_AS(build_exec(t, lim), PayloadError);
  }

  t.task_type = "python_eval";
  t.payload_json = R"({"expression": "1+1"})";
  s = build_exec(t, lim);
  CHECK(s.argv[0] == "python3");
  CHECK(s.argv.back() == "expression");
  CHECK(s.stdin_data == "1+1");
  t.payload_json = R"({"code": "result = 3"})";
  CHECK(build_exec(t, lim).argv.back() == "code");
  t.payload_json = R"({"expr": "1"})";
  CHECK_THROWS_AS(build_exec(t, lim), PayloadError);

  t.task_type = "rm_rf";
  t.payload_json = "{}";
  CHECK_THROWS_AS(build_exec(t, lim), PayloadError);
}

TEST_CASE("outcome_of maps a child's end to the reported status") {
  TaskAssignment t;
  t.task_type = "command";
  t.timeout_seconds = 5;
  ExecResult r;
  r.end = ExecEnd::exited;
  r.exit_code = 0;
  r.out = "hello\n";
  r.err = "";
  auto o = outcome_of(t, r);
  CHECK(o.status == "completed");
  CHECK(o.exit_code == 0);
  auto d = parse(o.result_json);
  CHECK(std::string(d["stdout"].GetString()) == "hello\n");
  CHECK(d["exit_code"].GetInt() == 0);

  r.exit_code = 3;
  o = outcome_of(t, r);
  CHECK(o.status == "failed");
  CHECK(o.error == "exited with status 3");

  r.end = ExecEnd::timeout;
  o = outcome_of(t, r);
  CHECK(o.status == "timeout");
  CHECK_FALSE(o.exit_code);
  r.end = ExecEnd::cancelled;
  CHECK(outcome_of(t, r).status == "cancelled");
  r.end = ExecEnd::spawn_failed;
  r.error = "no such program: x";
  o = outcome_of(t, r);
  CHECK(o.status == "failed");
  CHECK(o.error == "no such program: x");

  // A built-in prints JSON; anything else is a failure.
  t.task_type = "echo";
  r = {};
  r.end = ExecEnd::exited;
  r.exit_code = 0;
  r.out = R"({"echo":{"a":1}})";
  o = outcome_of(t, r);
  CHECK(o.status == "completed");
  CHECK(parse(o.result_json)["echo"]["a"].GetInt() == 1);
  r.out = "{broken";
  CHECK(outcome_of(t, r).status == "failed");
  r.exit_code = 1;
  r.err = "payload is not valid JSON\n";
  o = outcome_of(t, r);
  CHECK(o.status == "failed");
  CHECK(o.error == "payload is not valid JSON");

  // python_eval's driver answer.
  t.task_type = "python_eval";
  r = {};
  r.end = ExecEnd::exited;
  r.exit_code = 0;
  r.out = R"({"ok": false, "error": "NameError: name 'x' is not defined"})";
  o = outcome_of(t, r);
  CHECK(o.status == "failed");
  CHECK(o.error.find("NameError") != std::string::npos);
  r.out = R"({"ok": true, "result": 4, "stdout": ""})";
  o = outcome_of(t, r);
  CHECK(o.status == "completed");
  d = parse(o.result_json);
  CHECK(d["result"].GetInt() == 4);
  CHECK_FALSE(d.HasMember("ok"));
}

TEST_CASE("results stay within the server's bound") {
  TaskAssignment t;
  t.task_type = "command";
  ExecResult r;
  r.end = ExecEnd::exited;
  r.exit_code = 0;
  r.out = std::string(200 * 1024, '\x01');  // 6 bytes each once escaped
  r.out_total = r.out.size();
  r.err = std::string(1000, 'e');
  auto o = outcome_of(t, r);
  CHECK(o.result_json.size() <= kMaxResultBytes);
  auto d = parse(o.result_json);
  CHECK(d["stdout_truncated"].GetBool());
  CHECK(d["stdout_bytes"].GetUint64() == 200 * 1024);

  t.task_type = "echo";
  r.out = "{\"echo\":\"" + std::string(300 * 1024, 'a') + "\"}";
  o = outcome_of(t, r);
  CHECK(o.status == "completed");
  CHECK(parse(o.result_json)["result_truncated"].GetBool());

  const auto body = result_body(o);
  auto b = parse(body);
  CHECK(std::string(b["status"].GetString()) == "completed");
  CHECK(b["result"].IsObject());
  CHECK(b.HasMember("duration_ms"));
}

TEST_CASE("capabilities are real figures") {
  const auto c = detect_capabilities("/");
  CHECK(c.platform == "linux");
  CHECK(c.cpu_count >= 1);
  CHECK(c.memory_total_gb > 0);
  CHECK(c.storage_total_gb > 0);
  CHECK_THROWS(detect_capabilities("/nonexistent-dir-lucid"));
}

TEST_CASE("the device report names the allowed task types and the overrides") {
  WorkOptions o;
  o.allow = {"command"};
  o.max_tasks = 3;
  o.role = "compute";
  o.tags = {"a", "b"};
  o.tags_given = true;
  Capabilities c;
  c.cpu_count = 16;
  c.memory_total_gb = 8;
  c.storage_total_gb = 100;
  auto d = parse(TaskAgent::device_body(o, c));
  CHECK(std::string(d["platform"].GetString()) == "linux");
  CHECK(std::string(d["role"].GetString()) == "compute");
  CHECK(d["tags"].Size() == 2);
  CHECK(d["capabilities"]["cpu_count"].GetInt() == 16);
  CHECK(d["max_concurrent"].GetInt() == 3);
  std::vector<std::string> types;
  for (const auto& v : d["allowed_task_types"].GetArray()) types.emplace_back(v.GetString());
  CHECK(types == std::vector<std::string>{"echo", "sleep", "system_info", "command"});

  WorkOptions plain;
  auto p = parse(TaskAgent::device_body(plain, c));
  CHECK_FALSE(p.HasMember("role"));  // the admin's role and tags are kept
  CHECK_FALSE(p.HasMember("tags"));
}

TEST_CASE("agent: the task runner is lucid-task beside lucidctl or in libexec, else lucidctl itself") {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("lucid-runner-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "bin");
  const auto self = (root / "bin" / "lucidctl").string();
  CHECK(lucidctl::task_runner_for(self) == self);  // neither: lucidctl runs `__task` itself
  auto touch = [](const fs::path& p, bool executable) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "#!/bin/sh\n";
    fs::permissions(p, executable ? fs::perms::owner_all : fs::perms::owner_read);
  };
  const auto installed = root / "libexec" / "lucidnode" / "lucid-task";
  touch(installed, false);
  CHECK(lucidctl::task_runner_for(self) == self);  // not executable: not used
  touch(installed, true);
  CHECK(lucidctl::task_runner_for(self) == installed.string());
  touch(root / "bin" / "lucid-task", true);
  CHECK(lucidctl::task_runner_for(self) == (root / "bin" / "lucid-task").string());  // the build tree first
  fs::remove_all(root);
}
