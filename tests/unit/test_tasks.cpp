// The scheduler's stages (feasibility, ranking, selection) alone, and the
// Tasks capability over a real SQLite store.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <stdexcept>

#include "lucidnode/lucidnode.hpp"
#include "support.hpp"
#include "tasks/scheduler.hpp"

using namespace lucid;
using namespace lucid::detail::sched;
using testsupport::code_of;
using testsupport::field_of;

namespace {

ClassAttrs linux_box(std::int64_t cpu = 4, double mem = 8, double disk = 100, bool gpu = false,
                     std::vector<std::string> tags = {}, std::string role = "worker") {
  return ClassAttrs::make("linux", role, std::move(tags), gpu, true, task_type_bit("echo") | task_type_bit("sleep"),
                          cpu, mem, disk);
}

Requirements echo_req() {
  Requirements r;
  r.type_bit = task_type_bit("echo");
  return r;
}

}  // namespace

TEST_CASE("feasibility: each filter accepts and rejects") {
  const ClassAttrs c = linux_box(8, 15.9, 500, true, {"fast", "eu"}, "compute");
  Requirements r = echo_req();
  CHECK(feasible(c, r));
  r.type_bit = task_type_bit("command");
  CHECK_FALSE(passes(Filter::task_type, c, r));
  r = echo_req();
  r.platform = "windows";
  CHECK_FALSE(passes(Filter::platform, c, r));
  r.platform = "linux";
  CHECK(passes(Filter::platform, c, r));
  r.role = "storage";
  CHECK_FALSE(passes(Filter::role, c, r));
  r.role = "compute";
  r.tags = {"eu", "fast"};
  CHECK(passes(Filter::tags, c, r));
  r.tags = {"eu", "gpu-x"};
  CHECK_FALSE(passes(Filter::tags, c, r));
  r.tags.clear();
  r.min_cpu = 9;
  CHECK_FALSE(passes(Filter::cpu, c, r));
  r.min_cpu = 8;
  CHECK(passes(Filter::cpu, c, r));
  // Memory is bucketed downwards to 0.25 GB: 15.9 counts as 15.75.
  r.min_memory_gb = 15.75;
  CHECK(passes(Filter::memory, c, r));
  r.min_memory_gb = 15.8;
  CHECK_FALSE(passes(Filter::memory, c, r));
  r.min_memory_gb = 0;
  r.min_storage_gb = 501;
  CHECK_FALSE(passes(Filter::storage, c, r));
  r.min_storage_gb = 0;
  r.gpu = true;
  CHECK(passes(Filter::gpu, c, r));
  CHECK_FALSE(passes(Filter::gpu, linux_box(), r));
  r.internet = true;
  CHECK(passes(Filter::internet, c, r));
  CHECK(feasible(c, r));
}

TEST_CASE("ranking: spread by load then running count then id") {
  CHECK(rank_of(5, 0, 4) < rank_of(1, 1, 4));      // idle beats busy
  CHECK(rank_of(1, 1, 8) < rank_of(2, 1, 4));      // 1/8 beats 1/4
  CHECK(rank_of(1, 2, 4) < rank_of(2, 2, 4));      // tie: lower id
  CHECK(rank_of(3, 1, 2) < rank_of(1, 2, 4));      // equal load: fewer running first
  CHECK(rank_of(1, 2, 4).load_ppm == rank_of(3, 1, 2).load_ppm);
}

TEST_CASE("selection: spreads respects capacity and online state explains") {
  Placer p;
  p.upsert(1, linux_box(), 2, true);
  p.upsert(2, linux_box(), 2, true);
  p.upsert(3, linux_box(16, 64, 1000, true), 1, false);  // offline GPU box
  CHECK(p.class_count() == 2);
  const int sig = p.intern(echo_req());
  std::map<std::int64_t, int> got;
  for (int i = 0; i < 4; ++i) got[*p.place(sig)]++;
  CHECK(got[1] == 2);
  CHECK(got[2] == 2);
  std::string why;
  CHECK_FALSE(p.place(sig, &why));
  CHECK(why == "waiting for a free matching device");
  CHECK_FALSE(p.any_capacity());
  p.add_load(1, -1);
  CHECK(*p.place(sig) == 1);

  Requirements g = echo_req();
  g.gpu = true;
  const int gsig = p.intern(g);
  CHECK_FALSE(p.place(gsig, &why));
  CHECK(why == "no matching device is online");
  p.set_online(3, true);
  CHECK(*p.place(gsig) == 3);

  Requirements w = echo_req();
  w.platform = "windows";
  const int wsig = p.intern(w);
  CHECK_FALSE(p.place(wsig, &why));
  CHECK(why == "no device has platform 'windows'");
  CHECK_FALSE(p.satisfiable(wsig));
  // A new class makes it satisfiable (the cached feasibility is refreshed).
  p.upsert(4, ClassAttrs::make("windows", "worker", {}, false, true, task_type_bit("echo"), 2, 4, 50), 1, true);
  CHECK(*p.place(wsig) == 4);

  // Both filters pass alone, not together.
  Requirements both = echo_req();
  both.gpu = true;
  both.platform = "windows";
  CHECK_FALSE(p.place(p.intern(both), &why));
  CHECK(why == "no device meets all requirements together");
  p.remove(4);
  CHECK_FALSE(p.has(4));
}

TEST_CASE("ranking: an extra stage ranks before load and a throwing stage ranks last") {
  Placer p;
  p.upsert(1, linux_box(), 4, true);
  p.upsert(2, linux_box(4, 8, 100, false, {"ssd"}), 1, true);
  p.upsert(3, linux_box(4, 8, 100, false, {"ssd"}), 1, true);
  const int sig = p.intern(echo_req());
  int calls = 0;
  p.set_extra_rank([&](std::uint32_t type_bit, const ClassAttrs& a, std::int64_t, std::int64_t, std::int64_t max) {
    ++calls;
    CHECK(type_bit == task_type_bit("echo"));
    CHECK(max >= 1);
    return a.tags.empty() ? 1 : 0;
  });
  // ssd class first (2 then 3 by load within the class), then the plain one.
  CHECK(*p.place(sig) == 2);
  CHECK(*p.place(sig) == 3);
  CHECK(*p.place(sig) == 1);
  CHECK(calls > 0);
  p.add_load(2, -1);
  p.set_extra_rank([](std::uint32_t, const ClassAttrs& a, std::int64_t, std::int64_t, std::int64_t) -> std::int64_t {
    if (!a.tags.empty()) throw std::runtime_error("stage failed");
    return 5;
  });
  CHECK(*p.place(sig) == 1);  // the throwing class ranks last
  p.set_extra_rank({});       // removed: built-in order again, least loaded first
  CHECK(p.running(1) == 2);   // 2 of 4 busy, device 2 idle
  CHECK(*p.place(sig) == 2);
}

TEST_CASE("selection: devices with equal attributes share one class") {
  Placer p;
  for (int i = 1; i <= 1000; ++i) p.upsert(i, linux_box(4, 8 + (i % 2) * 0.1, 100), 4, true);
  // 8.0 and 8.1 GB fall in the same 0.25 GB bucket.
  CHECK(p.class_count() == 1);
  CHECK(p.device_count() == 1000);
}

namespace {

struct Fixture {
  testsupport::TempDir dir;
  std::shared_ptr<OffsetClock> clock = std::make_shared<OffsetClock>();
  std::unique_ptr<Cluster> cluster;
  Fixture() { open(); }
  void open() {
    Options o;
    o.database_path = dir.file("c.db");
    o.clock = clock;
    cluster = std::make_unique<Cluster>(o);
  }
  Tasks& tasks() { return cluster->tasks(); }
  std::int64_t node(const std::string& host) {
    auto j = cluster->nodes().request_join({host, "", "", ""});
    cluster->nodes().approve(j.request_id);
    return j.request_id;
  }
  Device device(std::int64_t node, int max_concurrent = 2, std::string platform = "linux") {
    DeviceReport r;
    r.platform = std::move(platform);
    r.capabilities = {4, 8, 100, false, true};
    r.allowed_task_types = {"echo", "sleep"};
    r.max_concurrent = max_concurrent;
    return tasks().report_device(node, r);
  }
  std::string submit(TaskPriority p = TaskPriority::normal, std::string platform = "") {
    TaskSubmit t;
    t.task_type = "echo";
    t.priority = p;
    t.requirements.required_platform = std::move(platform);
    t.requirements.max_retries = 1;
    return tasks().submit(t).task_id;
  }
};

}  // namespace

TEST_CASE("tasks: validation names the field") {
  Fixture f;
  TaskSubmit t;
  CHECK(field_of([&] { f.tasks().submit(t); }) == "task_type");
  t.task_type = "rm-rf";
  CHECK(field_of([&] { f.tasks().submit(t); }) == "task_type");
  t.task_type = "echo";
  t.payload_json = "{oops";
  CHECK(field_of([&] { f.tasks().submit(t); }) == "payload");
  t.payload_json = "{}";
  t.requirements.timeout_seconds = 0;
  CHECK(field_of([&] { f.tasks().submit(t); }) == "requirements.timeout_seconds");
  t.requirements.timeout_seconds = 10;
  t.requirements.required_tags = {"bad tag"};
  CHECK(field_of([&] { f.tasks().submit(t); }) == "requirements.required_tags");
  CHECK(code_of([&] { f.tasks().get("nope"); }) == Errc::not_found);
}

TEST_CASE("tasks: priority order FIFO within a priority unplaceable waits with a reason") {
  Fixture f;
  const auto n = f.node("w1.example.com");
  const auto low = f.submit(TaskPriority::low);
  const auto n1 = f.submit(TaskPriority::normal);
  const auto n2 = f.submit(TaskPriority::normal);
  const auto urgent = f.submit(TaskPriority::urgent);
  const auto win = f.submit(TaskPriority::urgent, "windows");
  f.device(n, 1);
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) {
    f.tasks().schedule();
    auto w = f.tasks().take_work(n);
    REQUIRE(w.tasks.size() == 1);
    order.push_back(w.tasks[0].task_id);
    f.tasks().start_task(n, w.tasks[0].task_id);
    f.tasks().report_result(n, w.tasks[0].task_id, {"completed", "{\"ok\":true}", std::nullopt, 0, 3});
  }
  CHECK(order == std::vector<std::string>{urgent, n1, n2, low});
  auto t = f.tasks().get(win);
  CHECK(t.status == TaskStatus::queued);
  CHECK(t.status_reason.find("no device has platform 'windows'") != std::string::npos);
}

TEST_CASE("tasks: a result is stored once and foreign reports conflict") {
  Fixture f;
  const auto a = f.node("a.example.com");
  const auto b = f.node("b.example.com");
  f.device(a);
  const auto id = f.submit();
  f.tasks().schedule();
  auto w = f.tasks().take_work(a);
  REQUIRE(w.tasks.size() == 1);
  CHECK(code_of([&] { f.tasks().start_task(b, id); }) == Errc::conflict);
  f.tasks().start_task(a, id);
  auto first = f.tasks().report_result(a, id, {"completed", "{\"n\":1}", std::nullopt, 0, 7});
  auto again = f.tasks().report_result(a, id, {"failed", "{\"n\":2}", std::string("x"), 1, 9});
  CHECK(first.status == TaskStatus::success);
  CHECK(again.status == TaskStatus::success);
  CHECK(*again.result_json == "{\"n\":1}");
  CHECK(code_of([&] { f.tasks().report_result(b, id, {"completed", "null", std::nullopt, 0, 1}); }) == Errc::conflict);
  CHECK(code_of([&] { f.tasks().cancel(id); }) == Errc::conflict);
  CHECK(code_of([&] { f.tasks().retry(id); }) == Errc::conflict);
}

TEST_CASE("tasks: a stale device's tasks are requeued then failed when retries run out") {
  Fixture f;
  const auto a = f.node("a.example.com");
  const auto b = f.node("b.example.com");
  f.device(a);
  const auto id = f.submit();  // max_retries 1
  f.tasks().schedule();
  REQUIRE(f.tasks().take_work(a).tasks.size() == 1);
  f.tasks().start_task(a, id);
  f.clock->advance(std::chrono::seconds(181));  // offline after min(300, 60 x 3)
  f.tasks().sweep();
  auto t = f.tasks().get(id);
  CHECK(t.status == TaskStatus::queued);
  CHECK(t.retries == 1);
  f.device(b);
  f.tasks().schedule();
  REQUIRE(f.tasks().take_work(b).tasks.size() == 1);
  CHECK(f.tasks().device(f.tasks().get(id).device_id).node_id == b);
  // The old device's late report conflicts.
  CHECK(code_of([&] { f.tasks().start_task(a, id); }) == Errc::conflict);
  f.clock->advance(std::chrono::seconds(181));
  f.tasks().sweep();
  t = f.tasks().get(id);
  CHECK(t.status == TaskStatus::failed);
  CHECK(t.status_reason.find("retries exhausted") != std::string::npos);
}

TEST_CASE("tasks: queued tasks survive a restart and cancel of a running task reaches the agent") {
  Fixture f;
  const auto a = f.node("a.example.com");
  const auto q1 = f.submit();
  const auto q2 = f.submit(TaskPriority::high);
  f.cluster.reset();
  f.open();
  f.device(a, 4);
  f.tasks().schedule();
  auto w = f.tasks().take_work(a);
  REQUIRE(w.tasks.size() == 2);
  CHECK(w.tasks[0].task_id == q2);
  f.tasks().start_task(a, q1);
  auto c = f.tasks().cancel(q1);
  CHECK(c.status == TaskStatus::cancelled);
  CHECK(f.tasks().report_progress(a, q1, 50, std::nullopt));
  auto w2 = f.tasks().take_work(a);
  CHECK(w2.cancel == std::vector<std::string>{q1});
  CHECK(f.tasks().report_result(a, q1, {"cancelled", "null", std::nullopt, std::nullopt, 1}).status ==
        TaskStatus::cancelled);
  auto r = f.tasks().retry(q1);
  CHECK(r.status == TaskStatus::queued);
}

TEST_CASE("settings: validated persisted reset") {
  Fixture f;
  auto& s = f.cluster->settings();
  CHECK(field_of([&] { s.update_heartbeat(0, std::nullopt, std::nullopt); }) == "interval");
  CHECK(field_of([&] { s.update_server(0); }) == "max_connections");
  s.update_heartbeat(10, 20, 5);
  s.update_server(77);
  f.cluster.reset();
  f.open();
  auto& s2 = f.cluster->settings();
  CHECK(s2.heartbeat().interval == 10);
  CHECK(s2.heartbeat().offline_after() == std::chrono::seconds(20));
  CHECK(s2.server().max_connections == 77);
  s2.reset();
  CHECK(s2.heartbeat().interval == 60);
  CHECK(s2.server().max_connections == 10000);
}

TEST_CASE("tasks: set_ranking_stage steers placement and can be removed") {
  Fixture f;
  const auto a = f.node("a.example.com");
  const auto b = f.node("b.example.com");
  f.device(a, 4);
  DeviceReport r;
  r.platform = "linux";
  r.tags = std::vector<std::string>{"ssd"};
  r.capabilities = {4, 8, 100, false, true};
  r.allowed_task_types = {"echo"};
  r.max_concurrent = 2;
  const auto ssd = f.tasks().report_device(b, r);
  std::vector<std::string> seen_types;
  f.tasks().set_ranking_stage([&](std::string_view type, const RankCandidate& d) -> std::int64_t {
    seen_types.emplace_back(type);
    CHECK(d.cpu_count == 4);
    CHECK(d.memory_gb == doctest::Approx(8));
    CHECK(d.max_concurrent >= 2);
    return std::find(d.tags.begin(), d.tags.end(), "ssd") != d.tags.end() ? 0 : 10;
  });
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(f.submit());
  f.tasks().schedule();
  CHECK(f.tasks().get(ids[0]).device_id == ssd.device_id);
  CHECK(f.tasks().get(ids[1]).device_id == ssd.device_id);
  CHECK(f.tasks().get(ids[2]).device_id != ssd.device_id);  // ssd full: the other device
  CHECK_FALSE(f.tasks().get(ids[2]).device_id.empty());
  REQUIRE_FALSE(seen_types.empty());
  CHECK(seen_types[0] == "echo");
  // b's tasks finish: b is idle, a runs 1 of 4.
  auto w = f.tasks().take_work(b);
  REQUIRE(w.tasks.size() == 2);
  for (const auto& t : w.tasks) {
    f.tasks().start_task(b, t.task_id);
    f.tasks().report_result(b, t.task_id, {"completed", "null", std::nullopt, 0, 1});
  }
  // A stage that prefers untagged devices overrides the idle b ...
  f.tasks().set_ranking_stage([](std::string_view, const RankCandidate& d) -> std::int64_t { return d.tags.empty() ? 0 : 1; });
  const auto to_a = f.submit();
  f.tasks().schedule();
  CHECK(f.tasks().get(to_a).device_id != ssd.device_id);
  // ... and once removed, the least loaded device (idle b) wins again.
  f.tasks().set_ranking_stage({});
  const auto to_b = f.submit();
  f.tasks().schedule();
  CHECK(f.tasks().get(to_b).device_id == ssd.device_id);
}

// ---- issue 17: workflow jobs pinned to one node ----

TEST_CASE("selection: a pinned requirement places only its device and says why not") {
  Placer p;
  const auto types = task_type_bit("echo") | task_type_bit("workflow_job");
  p.upsert(1, ClassAttrs::make("linux", "worker", {}, false, true, types, 4, 8, 100), 1, true);
  p.upsert(2, ClassAttrs::make("linux", "worker", {}, false, true, types, 4, 8, 100), 1, true);
  p.upsert(3, linux_box(), 1, true);  // does not allow workflow_job
  Requirements r;
  r.type_bit = task_type_bit("workflow_job");
  r.device = 2;
  const int sig = p.intern(r);
  CHECK(sig != p.intern([&] { auto q = r; q.device = 1; return q; }()));  // the pin is part of the signature
  std::string why;
  CHECK(*p.place(sig) == 2);
  CHECK_FALSE(p.place(sig, &why));  // its one slot is taken; device 1 is free but not it
  CHECK(why == "waiting for a free slot on its node");
  CHECK(p.running(1) == 0);
  p.add_load(2, -1);
  p.set_online(2, false);
  CHECK_FALSE(p.place(sig, &why));
  CHECK(why == "its node is offline");
  p.set_online(2, true);
  p.set_eligible(2, false);
  CHECK_FALSE(p.place(sig, &why));
  CHECK(why == "its node is cordoned, draining or in maintenance");
  p.set_eligible(2, true);
  CHECK(p.satisfiable(sig));
  r.device = 3;
  const int not_allowed = p.intern(r);
  CHECK_FALSE(p.place(not_allowed, &why));
  CHECK(why == "its node's agent does not allow this task type");
  CHECK_FALSE(p.satisfiable(not_allowed));
  r.device = 99;
  const int absent = p.intern(r);
  CHECK_FALSE(p.place(absent, &why));
  CHECK(why.find("has not reported a device") != std::string::npos);
  CHECK_FALSE(p.satisfiable(absent));
}

TEST_CASE("tasks: workflow job types are pinned, not submittable, not retryable, cancelled at open") {
  Fixture f;
  const auto a = f.node("a.example.com");
  const auto b = f.node("b.example.com");
  for (auto n : {a, b}) {
    DeviceReport r;
    r.platform = "linux";
    r.capabilities = {4, 8, 100, false, true};
    r.allowed_task_types = {"echo", "workflow_job"};
    r.max_concurrent = 2;
    f.tasks().report_device(n, r);
  }
  TaskSubmit t;
  t.task_type = "workflow_job";
  t.payload_json = "{\"kind\":\"standalone\"}";
  CHECK(field_of([&] { f.tasks().submit(t); }) == "task_type");  // only the executor creates them
  TaskSubmit echo;
  echo.task_type = "echo";
  CHECK(field_of([&] { f.tasks().submit_pinned(echo, b); }) == "task_type");
  CHECK(code_of([&] { f.tasks().submit_pinned(t, 424242); }) == Errc::not_found);
  // Pinned to b: b gets it, a never does (though a is first and as free).
  const auto id = f.tasks().submit_pinned(t, b).task_id;
  f.tasks().schedule();
  CHECK(f.tasks().take_work(a).tasks.empty());
  auto w = f.tasks().take_work(b);
  REQUIRE(w.tasks.size() == 1);
  CHECK(w.tasks[0].task_id == id);
  f.tasks().start_task(b, id);
  CHECK(code_of([&] { f.tasks().report_result(a, id, {"completed", "{}", std::nullopt, 0, 1}); }) == Errc::conflict);
  f.tasks().report_result(b, id, {"failed", "{}", std::string("exited with status 1"), 1, 1});
  CHECK(code_of([&] { f.tasks().retry(id); }) == Errc::conflict);
  // One running and one not yet started when the process ends: both cancelled at open.
  const auto run = f.tasks().submit_pinned(t, a).task_id;
  f.tasks().schedule();
  REQUIRE(f.tasks().take_work(a).tasks.size() == 1);
  f.tasks().start_task(a, run);
  const auto queued = f.tasks().submit_pinned(t, a).task_id;
  const auto plain = f.submit();
  f.cluster.reset();
  f.open();
  for (const auto& tid : {run, queued}) {
    const auto got = f.tasks().get(tid);
    CHECK(got.status == TaskStatus::cancelled);
    CHECK(got.error.value_or("").find("server restarted") != std::string::npos);
  }
  CHECK(f.tasks().get(plain).status != TaskStatus::cancelled);  // other tasks survive as before
  CHECK(f.tasks().get(id).status == TaskStatus::failed);
}
