// Workflow jobs on fleet nodes (issue 17): the payload and result codecs,
// every refusal of a hostile payload, and the runner the agent uses
// (lib/workflows/fleet_job.hpp, lib/workflows/process.hpp run_piped).
#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "lucidnode/error.hpp"
#include "support.hpp"
#include "workflows/fleet_job.hpp"
#include "workflows/process.hpp"

using namespace lucid;
using namespace lucid::detail;
using testsupport::field_of;

namespace {

FleetJob sh_job(const std::string& script) {
  FleetJob j;
  j.executable = "/bin/sh";
  j.arguments = {"-c", script};
  j.timeout_seconds = 10;
  j.job_id = 7;
  return j;
}

std::string with(const std::string& payload, const std::string& key, const std::string& value_json) {
  // Replaces or adds one member of a payload object (text level: enough here).
  auto body = payload.substr(0, payload.size() - 1);
  return body + ",\"" + key + "\":" + value_json + "}";
}

}  // namespace

TEST_CASE("fleet job: payload round trip, standalone and container") {
  FleetJob j = sh_job("cat");
  j.environment = {{"A", "1"}, {"B_2", "x y"}};
  j.input = std::string("bin\0ary\xff", 8);
  j.workflow_id = 1;
  j.execution_id = 2;
  auto back = parse_fleet_job(fleet_job_payload(j));
  CHECK_FALSE(back.container);
  CHECK(back.executable == "/bin/sh");
  CHECK(back.arguments == j.arguments);
  CHECK(back.environment == j.environment);
  CHECK(back.input == j.input);
  CHECK((back.timeout_seconds == 10 && back.workflow_id == 1 && back.execution_id == 2 && back.job_id == 7));
  FleetJob c;
  c.container = true;
  c.image = "127.0.0.1:5000/base:1";
  c.cmd = {"tr", "a-z", "A-Z"};
  c.memory_bytes = 64 << 20;
  c.pids_limit = 4;
  c.network = true;
  auto cb = parse_fleet_job(fleet_job_payload(c));
  CHECK(cb.container);
  CHECK(cb.image == c.image);
  CHECK(cb.cmd == c.cmd);
  CHECK((cb.memory_bytes == c.memory_bytes && cb.pids_limit == 4 && cb.network));
}

TEST_CASE("fleet job: hostile payloads are refused naming the field") {
  const std::string ok = fleet_job_payload(sh_job("true"));
  CHECK(field_of([&] { parse_fleet_job("{oops"); }) == "payload");
  CHECK(field_of([&] { parse_fleet_job("[1]"); }) == "body");
  CHECK(field_of([&] { parse_fleet_job(with(ok, "surprise", "1")); }) == "surprise");
  CHECK(field_of([&] { parse_fleet_job("{\"kind\":\"shell\"}"); }) == "kind");
  CHECK(field_of([&] { parse_fleet_job("{\"kind\":\"standalone\",\"executable\":\"sh\"}"); }) == "executable");
  CHECK(field_of([&] { parse_fleet_job("{\"kind\":\"docker\",\"image\":\"UPPER/case:1\"}"); }) == "image");
  CHECK(field_of([&] { parse_fleet_job("{\"kind\":\"docker\",\"image\":\"noTag\"}"); }) == "image");
  CHECK(field_of([&] { parse_fleet_job("{\"kind\":\"docker\",\"image\":\"a:1\",\"pids_limit\":-1}"); }) == "pids_limit");
  const std::string base = "{\"kind\":\"standalone\",\"executable\":\"/bin/true\"";
  CHECK(field_of([&] { parse_fleet_job(base + ",\"environment\":{\"LUCID_JOB_ID\":\"9\"}}"); }) == "environment");
  CHECK(field_of([&] { parse_fleet_job(base + ",\"environment\":{\"1X\":\"9\"}}"); }) == "environment");
  CHECK(field_of([&] { parse_fleet_job(base + ",\"environment\":{\"X\":1}}"); }) == "environment");
  CHECK(field_of([&] { parse_fleet_job(base + ",\"arguments\":[1]}"); }) == "arguments");
  std::string many = base + ",\"arguments\":[";
  for (int i = 0; i < 257; ++i) many += (i ? ",\"a\"" : "\"a\"");
  CHECK(field_of([&] { parse_fleet_job(many + "]}"); }) == "arguments");
  CHECK(field_of([&] { parse_fleet_job(base + ",\"stdin\":\"***\"}"); }) == "stdin");
  FleetJob big = sh_job("cat");
  big.input.assign(kFleetMaxInput + 1, 'x');
  CHECK(field_of([&] { parse_fleet_job(fleet_job_payload(big)); }) == "stdin");
  CHECK(field_of([&] { parse_fleet_job(base + ",\"timeout_seconds\":0}"); }) == "timeout_seconds");
  CHECK(field_of([&] { parse_fleet_job(base + ",\"max_stdout\":1000000000}"); }) == "max_stdout");
}

TEST_CASE("fleet job: the runner pipes, confines, scrubs, bounds, times out and cancels") {
  testsupport::TempDir dir;
  FleetJobHost host;
  host.allow_standalone = true;
  host.work_root = dir.file("jobs");
  ::setenv("FLEET_UNIT_CANARY", "leak", 1);
  FleetJob j = sh_job("tr a-z A-Z; echo \"$(pwd) ${FLEET_UNIT_CANARY:-clean} $LUCID_JOB_ID\" >&2; exit 4");
  j.input = "piped\n";
  auto r = run_fleet_job(j, host, {});
  ::unsetenv("FLEET_UNIT_CANARY");
  CHECK(r.out == "PIPED\n");
  CHECK(r.exit_code == 4);
  CHECK_FALSE(r.failure);
  const auto root = std::filesystem::canonical(host.work_root).string();
  CHECK(r.err.rfind(root + "/job-7-", 0) == 0);
  CHECK(r.err.find(" clean 7\n") != std::string::npos);
  CHECK(std::filesystem::is_empty(host.work_root));  // its directory is gone

  auto bytes = run_fleet_job(sh_job("head -c 5000 /dev/zero"), host, {});
  CHECK(bytes.out.size() == 5000);
  FleetJob loud = sh_job("head -c 300000 /dev/zero");
  auto l = run_fleet_job(loud, host, {});
  CHECK(l.failure == "output exceeds " + std::to_string(kFleetMaxStdout) + " bytes");
  CHECK(l.out.size() == kFleetMaxStdout);
  FleetJob slow = sh_job("sleep 30");
  slow.timeout_seconds = 1;
  const auto t0 = std::chrono::steady_clock::now();
  auto s = run_fleet_job(slow, host, {});
  CHECK(s.failure == "timed out after 1 s");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  std::atomic<bool> stop{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    stop = true;
  });
  auto c = run_fleet_job(sh_job("sleep 30"), host, [&] { return stop.load(); });
  canceller.join();
  CHECK(c.cancelled);
  CHECK(c.failure == "cancelled");
  // A child that does not read its input is no error (SIGPIPE is blocked).
  FleetJob deaf = sh_job("exit 0");
  deaf.input.assign(kFleetMaxInput, 'x');
  auto d = run_fleet_job(deaf, host, {});
  CHECK(d.exit_code == 0);
  CHECK_FALSE(d.failure);
  // Refusals: a program that is not there, opt-ins not given.
  FleetJob missing = sh_job("");
  missing.executable = "/nonexistent/prog";
  CHECK(run_fleet_job(missing, host, {}).failure.value_or("").find("cannot start /nonexistent/prog on this node") == 0);
  FleetJobHost closed = host;
  closed.allow_standalone = false;
  CHECK(run_fleet_job(j, closed, {}).failure.value_or("").find("--allow-workflow-jobs") != std::string::npos);
  FleetJob box;
  box.container = true;
  box.image = "a:1";
  CHECK(run_fleet_job(box, host, {}).failure.value_or("").find("--allow-docker") != std::string::npos);
}

TEST_CASE("fleet job: the result codec round trips binary output and refuses garbage") {
  FleetJobResult r;
  r.exit_code = 2;
  r.out = std::string("\0\xff out", 6);
  r.err = "err";
  r.failure = "x";
  auto o = parse_fleet_result(fleet_result_json(r));
  REQUIRE(o);
  CHECK(o->out == r.out);
  CHECK(o->err == "err");
  CHECK(o->exit_code == 2);
  CHECK_FALSE(parse_fleet_result("null"));
  CHECK_FALSE(parse_fleet_result("{\"stdout\":\"***\",\"stderr\":\"\"}"));
  CHECK_FALSE(parse_fleet_result("{\"stdout\":\"\"}"));
}
