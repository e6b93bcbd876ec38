// Issue 15: node removal, cordon and drain. The scheduler's eligibility stage
// alone, then Nodes and Tasks over a real SQLite store with a fake clock.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "lucidnode/lucidnode.hpp"
#include "support.hpp"
#include "tasks/scheduler.hpp"

using namespace lucid;
using namespace lucid::detail::sched;
using testsupport::code_of;
using testsupport::field_of;
using testsupport::reason_of;

namespace {

ClassAttrs box() {
  return ClassAttrs::make("linux", "worker", {}, false, true, task_type_bit("echo"), 4, 8, 100);
}

Requirements echo_only() {
  Requirements r;
  r.type_bit = task_type_bit("echo");
  return r;
}

struct Fleet {
  testsupport::TempDir dir;
  std::shared_ptr<OffsetClock> clock = std::make_shared<OffsetClock>();
  std::unique_ptr<Cluster> cluster;
  Fleet() { open(); }
  void open() {
    Options o;
    o.database_path = dir.file("c.db");
    o.clock = clock;
    cluster = std::make_unique<Cluster>(o);
  }
  Nodes& nodes() { return cluster->nodes(); }
  Tasks& tasks() { return cluster->tasks(); }
  // An approved node with a collected key; its uid in `uid`.
  std::int64_t node(const std::string& host, std::string* uid = nullptr, std::string* key = nullptr) {
    auto j = nodes().request_join({host, "", "", ""});
    nodes().approve(j.request_id);
    auto code = j.registration_code;
    auto poll = nodes().poll_by_code(code, j.join_secret);
    if (key && poll.api_key) *key = *poll.api_key;
    if (uid) *uid = nodes().get(j.request_id, 0).uid;
    return j.request_id;
  }
  void device(std::int64_t node, int max_concurrent = 2) {
    DeviceReport r;
    r.platform = "linux";
    r.capabilities = {4, 8, 100, false, true};
    r.allowed_task_types = {"echo"};
    r.max_concurrent = max_concurrent;
    tasks().report_device(node, r);
  }
  std::string submit(std::int64_t max_retries = 0) {
    TaskSubmit t;
    t.task_type = "echo";
    t.requirements.max_retries = max_retries;
    return tasks().submit(t).task_id;
  }
  // The ids of the tasks node `n` is handed now.
  std::vector<std::string> work(std::int64_t n) {
    std::vector<std::string> ids;
    for (const auto& t : tasks().take_work(n).tasks) ids.push_back(t.task_id);
    return ids;
  }
};

}  // namespace

TEST_CASE("eligibility stage: an ineligible device is never selected and says why") {
  Placer p;
  p.upsert(1, box(), 2, true);
  const int sig = p.intern(echo_only());
  CHECK(p.eligible(1));
  p.set_eligible(1, false);
  CHECK_FALSE(p.eligible(1));
  std::string why;
  CHECK_FALSE(p.place(sig, &why).has_value());
  CHECK(why == "every matching online device is cordoned, draining or in maintenance");
  CHECK_FALSE(p.any_capacity());
  // Still a member: the task is satisfiable, only not now.
  CHECK(p.satisfiable(sig));
  // A second, eligible device of the same class takes the work.
  p.upsert(2, box(), 2, true);
  auto placed = p.place(sig);
  REQUIRE(placed.has_value());
  CHECK(*placed == 2);
  p.set_eligible(1, true);
  CHECK(p.explain(sig, &why));
  // Offline is reported before ineligible: it is the first thing to fix.
  p.set_eligible(1, false);
  p.set_eligible(2, false);
  p.set_online(1, false);
  p.set_online(2, false);
  CHECK_FALSE(p.explain(sig, &why));
  CHECK(why == "no matching device is online");
  // Running counts survive eligibility changes.
  p.set_online(2, true);
  p.set_eligible(2, true);
  CHECK(p.running(2) == 1);
}

TEST_CASE("cordon: a task submitted after cordon never lands on the node; uncordon places it") {
  Fleet f;
  std::string uid;
  const auto a = f.node("a.example.com", &uid);
  f.device(a);
  auto n = f.nodes().cordon(uid);
  CHECK(n.cordoned);
  CHECK_FALSE(n.schedulable());
  CHECK_FALSE(n.drain_deadline.has_value());
  const auto id = f.submit();
  f.tasks().schedule();
  CHECK(f.work(a).empty());
  auto t = f.tasks().get(id);
  CHECK(t.status == TaskStatus::queued);
  CHECK(t.status_reason.find("cordoned") != std::string::npos);
  // Idempotent.
  CHECK(f.nodes().cordon(uid).cordoned);
  n = f.nodes().uncordon(uid);
  CHECK(n.schedulable());
  f.tasks().schedule();
  CHECK(f.work(a) == std::vector<std::string>{id});
  CHECK(code_of([&] { f.nodes().cordon("node_0000000000000000"); }) == Errc::not_found);
  CHECK(reason_of([&] { f.nodes().uncordon("nonsense"); }) == Reason::node_not_found);
}

TEST_CASE("maintenance: no new work while the node is in maintenance") {
  Fleet f;
  std::string uid;
  const auto a = f.node("m.example.com", &uid);
  f.device(a);
  StatsSample s;
  f.nodes().report_stats(a, s);  // starting -> active: maintenance may be set from active
  NodeUpdate up;
  up.lifecycle = Lifecycle::maintenance;
  CHECK_FALSE(f.nodes().update(uid, up).schedulable());
  const auto id = f.submit();
  f.tasks().schedule();
  CHECK(f.work(a).empty());
  up.lifecycle = Lifecycle::inactive;
  f.nodes().update(uid, up);
  f.tasks().schedule();
  CHECK(f.work(a) == std::vector<std::string>{id});
}

TEST_CASE("drain: a running task may finish before the deadline; the drain is then complete") {
  Fleet f;
  std::string uid;
  const auto a = f.node("d.example.com", &uid);
  f.device(a);
  const auto id = f.submit();
  f.tasks().schedule();
  REQUIRE(f.work(a) == std::vector<std::string>{id});
  f.tasks().start_task(a, id);
  auto n = f.nodes().drain(uid, std::chrono::seconds(60));
  CHECK(n.cordoned);
  REQUIRE(n.drain_deadline.has_value());
  const auto off = *n.drain_deadline - (f.clock->now() + std::chrono::seconds(60));
  CHECK(std::chrono::abs(std::chrono::duration_cast<std::chrono::milliseconds>(off)).count() < 5);
  CHECK(f.tasks().tasks_on(a) == 1);
  // Before the deadline the sweep leaves it alone.
  f.clock->advance(std::chrono::seconds(30));
  f.tasks().heartbeat(a);
  f.tasks().sweep();
  CHECK(f.tasks().get(id).status == TaskStatus::running);
  f.tasks().report_result(a, id, {"completed", "{}", std::nullopt, 0, 5});
  CHECK(f.tasks().get(id).status == TaskStatus::success);
  CHECK(f.tasks().tasks_on(a) == 0);
  CHECK(field_of([&] { f.nodes().drain(uid, std::chrono::seconds(0)); }) == "deadline_seconds");
  CHECK(field_of([&] { f.nodes().drain(uid, std::chrono::seconds(86401)); }) == "deadline_seconds");
}

TEST_CASE("drain: past the deadline the sweep requeues without spending a retry and tells the agent") {
  Fleet f;
  std::string uid;
  const auto a = f.node("d1.example.com", &uid);
  const auto b = f.node("d2.example.com");
  f.device(a);
  const auto id = f.submit(/*max_retries=*/0);
  f.tasks().schedule();
  REQUIRE(f.work(a) == std::vector<std::string>{id});
  f.tasks().start_task(a, id);
  f.nodes().drain(uid, std::chrono::seconds(10));
  f.clock->advance(std::chrono::seconds(11));
  f.tasks().heartbeat(a);  // alive: this is the drain, not a stale device
  f.tasks().sweep();
  auto t = f.tasks().get(id);
  CHECK(t.status == TaskStatus::queued);  // max_retries 0, still requeued
  CHECK(t.retries == 0);
  CHECK(t.status_reason.find("drain deadline") != std::string::npos);
  CHECK(f.tasks().tasks_on(a) == 0);
  CHECK(f.tasks().take_work(a).cancel == std::vector<std::string>{id});
  // It goes to another node, never back to the drained one.
  f.tasks().schedule();
  CHECK(f.work(a).empty());
  f.device(b);
  f.tasks().schedule();
  CHECK(f.work(b) == std::vector<std::string>{id});
  // The drained node's late result is refused.
  CHECK(code_of([&] { f.tasks().report_result(a, id, {"completed", "{}", std::nullopt, 0, 1}); }) == Errc::conflict);
  // Uncordon ends the drain.
  auto n = f.nodes().uncordon(uid);
  CHECK_FALSE(n.cordoned);
  CHECK_FALSE(n.drain_deadline.has_value());
}

TEST_CASE("cordon and drain persist over a reopen") {
  Fleet f;
  std::string cu, du;
  const auto c = f.node("c.example.com", &cu);
  const auto d = f.node("e.example.com", &du);
  f.nodes().cordon(cu);
  const auto deadline = f.nodes().drain(du, std::chrono::seconds(120)).drain_deadline;
  f.cluster.reset();
  f.open();
  CHECK(f.nodes().get(cu).cordoned);
  CHECK_FALSE(f.nodes().get(cu).drain_deadline.has_value());
  CHECK(f.nodes().get(du).cordoned);
  REQUIRE(f.nodes().get(du).drain_deadline.has_value());
  CHECK(std::chrono::duration_cast<std::chrono::seconds>(*f.nodes().get(du).drain_deadline - *deadline).count() == 0);
  // The reopened scheduler honours them.
  f.device(c);
  f.device(d);
  const auto id = f.submit();
  f.tasks().schedule();
  CHECK(f.work(c).empty());
  CHECK(f.work(d).empty());
  CHECK(f.tasks().get(id).status == TaskStatus::queued);
  f.nodes().uncordon(cu);
  f.tasks().schedule();
  CHECK(f.work(c) == std::vector<std::string>{id});
}

TEST_CASE("remove_node: requeues its tasks, revokes its key, frees its hostname") {
  Fleet f;
  std::string uid, key;
  const auto a = f.node("gone.example.com", &uid, &key);
  const auto b = f.node("stays.example.com");
  f.device(a, 2);
  const auto running = f.submit(/*max_retries=*/0);
  const auto assigned = f.submit(/*max_retries=*/0);
  f.tasks().schedule();
  REQUIRE(f.work(a).size() == 2);
  f.tasks().start_task(a, running);
  CHECK(f.nodes().authenticate_key(key) == a);
  StatsSample s;
  s.cpu_usage = 1;
  f.nodes().report_stats(a, s);  // a queued sample of the node must not block the writer

  f.tasks().remove_node(uid);

  CHECK(code_of([&] { f.nodes().authenticate_key(key); }) == Errc::unauthenticated);
  CHECK(reason_of([&] { f.nodes().get(uid); }) == Reason::node_not_found);
  CHECK(code_of([&] { f.nodes().get(a, 0); }) == Errc::not_found);
  for (const auto& id : {running, assigned}) {
    auto t = f.tasks().get(id);
    CHECK(t.status == TaskStatus::queued);
    CHECK(t.retries == 0);
    CHECK(t.device_id.empty());
  }
  // The removed node's queued sample is dropped, not retried forever
  // against the foreign key: a later sample of another node is written.
  f.nodes().flush_stats();
  f.nodes().report_stats(b, s);
  f.nodes().flush_stats();
  CHECK(f.nodes().get(b, 5).recent_stats.size() == 1);
  // Another node takes the work.
  f.device(b, 2);
  f.tasks().schedule();
  CHECK(f.work(b).size() == 2);
  // A second removal is not_found; so is a malformed uid.
  CHECK(reason_of([&] { f.tasks().remove_node(uid); }) == Reason::node_not_found);
  CHECK(code_of([&] { f.tasks().remove_node("node_x"); }) == Errc::not_found);
  // The hostname joins again as a new pending request (not "ACTIVE").
  auto j = f.nodes().request_join({"gone.example.com", "", "", ""});
  CHECK_FALSE(j.already_active);
  CHECK(j.registration_code.size() == 5);
  CHECK(j.request_id != a);
}

TEST_CASE("remove_node: a node named by payouts is refused and nothing changes") {
  Fleet f;
  std::string uid, key;
  const auto a = f.node("paid.example.com", &uid, &key);
  f.device(a);
  const auto id = f.submit();
  f.tasks().schedule();
  REQUIRE(f.work(a).size() == 1);
  PayoutRequest pr;
  pr.node_uid = uid;
  pr.amount = "1.5";
  REQUIRE(f.cluster->payouts().submit({"b1", {pr}}).payout_count == 1);
  CHECK(code_of([&] { f.tasks().remove_node(uid); }) == Errc::conflict);
  CHECK(f.nodes().authenticate_key(key) == a);
  CHECK(f.tasks().get(id).status == TaskStatus::assigned);
  CHECK(f.tasks().tasks_on(a) == 1);
}

TEST_CASE("node names are free text, bounded, separate from the hostname") {
  Fleet f;
  NodeCreate c;
  c.name = "Rechner Küche — 東京 #1";
  auto n = f.nodes().create(c);
  CHECK(n.name == c.name);
  CHECK(n.hostname == n.uid);  // a name that is no hostname leaves the hostname to the uid
  c.name = "worker-7.example.com";
  auto h = f.nodes().create(c);
  CHECK(h.hostname == "worker-7.example.com");
  c.name = "";
  for (int i = 0; i < 100; ++i) c.name += "é";
  CHECK(f.nodes().create(c).name == c.name);
  c.name += "é";
  CHECK(field_of([&] { f.nodes().create(c); }) == "name");
  c.name = "bad\nname";
  CHECK(field_of([&] { f.nodes().create(c); }) == "name");
  c.name = "bad \xff utf8";
  CHECK(field_of([&] { f.nodes().create(c); }) == "name");
  NodeUpdate up;
  up.name = "ノード";
  CHECK(f.nodes().update(n.uid, up).name == "ノード");
}

TEST_CASE("approve_by_code records the approver's address, validated") {
  Fleet f;
  auto j = f.nodes().request_join({"ip.example.com", "", "", ""});
  CHECK(field_of([&] { f.nodes().approve_by_code(j.registration_code, "not-an-ip"); }) == "ip_address");
  CHECK(f.nodes().get(j.request_id, 0).status == NodeStatus::pending);
  auto n = f.nodes().approve_by_code(j.registration_code, "2001:db8::7");
  CHECK(n.status == NodeStatus::active);
  CHECK(n.ip_address == "2001:db8::7");
}
