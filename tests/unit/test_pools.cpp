// Pools (include/lucidnode/pools.hpp): creation and its validation, listing,
// membership with max_nodes and resource limits, persistence, concurrency.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <regex>
#include <set>
#include <thread>

#include "lucidnode/lucidnode.hpp"
#include "support.hpp"

using namespace lucid;
using testsupport::code_of;
using testsupport::field_of;
using testsupport::reason_of;

namespace {

struct Fixture {
  testsupport::TempDir dir;
  std::shared_ptr<OffsetClock> clock = std::make_shared<OffsetClock>();
  std::unique_ptr<Cluster> cluster;
  Fixture() { open(); }
  void open() {
    cluster.reset();
    Options o;
    o.database_path = dir.file("pools.db");
    o.clock = clock;
    cluster = std::make_unique<Cluster>(o);
  }
  Pools& pools() { return cluster->pools(); }
  Pool pool(const std::string& name, std::optional<std::int64_t> max_nodes = {}, ResourceLimits limits = {}) {
    PoolCreate c;
    c.name = name;
    c.max_nodes = max_nodes;
    c.limits = limits;
    return pools().create(c);
  }
  std::string node(const std::string& name, HardwareInfo hw = {}) {
    NodeCreate c;
    c.name = name;
    c.hardware = hw;
    return cluster->nodes().create(c).uid;
  }
};

HardwareInfo hw(std::int64_t cpu, double mem, double sto) {
  HardwareInfo h;
  h.cpu_cores = cpu;
  h.memory_gb = mem;
  h.storage_gb = sto;
  return h;
}

}  // namespace

TEST_CASE("pools: create returns the stored pool with a pool_ uid and every field") {
  Fixture f;
  PoolCreate c;
  c.name = "gpu-east";
  c.description = "GPU boxes, east";
  c.max_nodes = 3;
  c.limits.max_cpu_cores = 64;
  c.limits.max_memory_gb = 256.5;
  c.limits.max_storage_gb = 4096;
  const auto before = f.clock->now();
  Pool p = f.pools().create(c);
  CHECK(std::regex_match(p.uid, std::regex("pool_[0-9a-f]{16}")));
  CHECK(p.name == "gpu-east");
  CHECK(p.description == "GPU boxes, east");
  CHECK(p.node_count == 0);
  CHECK(p.max_nodes == std::optional<std::int64_t>(3));
  CHECK(p.limits.max_cpu_cores == std::optional<std::int64_t>(64));
  CHECK(p.limits.max_memory_gb == std::optional<double>(256.5));
  CHECK(p.limits.max_storage_gb == std::optional<double>(4096.0));
  CHECK(p.created_at == p.updated_at);
  CHECK(std::chrono::abs(p.created_at - before) < std::chrono::seconds(5));
  // Absent bounds stay absent.
  Pool q = f.pool("plain");
  CHECK_FALSE(q.max_nodes.has_value());
  CHECK_FALSE(q.limits.max_cpu_cores.has_value());
  CHECK_FALSE(q.limits.max_memory_gb.has_value());
  CHECK_FALSE(q.limits.max_storage_gb.has_value());
  CHECK(q.description.empty());
  CHECK(q.uid != p.uid);
  // get returns the same record.
  Pool g = f.pools().get(p.uid);
  CHECK(g.name == p.name);
  CHECK(g.max_nodes == p.max_nodes);
  CHECK(g.limits.max_memory_gb == p.limits.max_memory_gb);
  CHECK(g.created_at == p.created_at);
}

TEST_CASE("pools: create validates each field - naming it - a refused create stores nothing") {
  Fixture f;
  auto bad = [&](PoolCreate c) {
    return std::make_pair(code_of([&] { f.pools().create(c); }), field_of([&] { f.pools().create(c); }));
  };
  PoolCreate c;
  c.name = "";
  CHECK(bad(c) == std::make_pair(Errc::invalid_argument, std::string("name")));
  c.name = std::string(101, 'n');
  CHECK(bad(c) == std::make_pair(Errc::invalid_argument, std::string("name")));
  c.name = "tab\there";
  CHECK(bad(c) == std::make_pair(Errc::invalid_argument, std::string("name")));
  c.name = "ok";
  c.description = std::string(501, 'd');
  CHECK(bad(c) == std::make_pair(Errc::invalid_argument, std::string("description")));
  c.description.clear();
  c.max_nodes = 0;
  CHECK(bad(c) == std::make_pair(Errc::invalid_argument, std::string("max_nodes")));
  c.max_nodes = -1;
  CHECK(bad(c).first == Errc::invalid_argument);
  c.max_nodes.reset();
  c.limits.max_cpu_cores = 0;
  CHECK(bad(c) == std::make_pair(Errc::invalid_argument, std::string("resource_limits.max_cpu_cores")));
  c.limits.max_cpu_cores.reset();
  c.limits.max_memory_gb = -0.5;
  CHECK(bad(c) == std::make_pair(Errc::invalid_argument, std::string("resource_limits.max_memory_gb")));
  c.limits.max_memory_gb = std::nan("");
  CHECK(bad(c).second == "resource_limits.max_memory_gb");
  c.limits.max_memory_gb.reset();
  c.limits.max_storage_gb = -1;
  CHECK(bad(c) == std::make_pair(Errc::invalid_argument, std::string("resource_limits.max_storage_gb")));
  c.limits.max_storage_gb = INFINITY;
  CHECK(bad(c).second == "resource_limits.max_storage_gb");
  std::int64_t total = -1;
  CHECK(f.pools().list(1, 100, &total).empty());
  CHECK(total == 0);

  // The boundaries are accepted: 100 characters (not bytes), 500 of description, max_nodes 1.
  PoolCreate ok;
  ok.name = std::string(99, 'x') + "\xc3\xa9";  // 100 characters, 101 bytes
  ok.description = std::string(500, 'd');
  ok.max_nodes = 1;
  ok.limits.max_memory_gb = 0;
  Pool p = f.pools().create(ok);
  CHECK(p.name == ok.name);
  CHECK(p.max_nodes == std::optional<std::int64_t>(1));
}

TEST_CASE("pools: a taken name is conflict + pool_exists") {
  Fixture f;
  f.pool("same");
  PoolCreate c;
  c.name = "same";
  CHECK(code_of([&] { f.pools().create(c); }) == Errc::conflict);
  CHECK(reason_of([&] { f.pools().create(c); }) == Reason::pool_exists);
  std::int64_t total = 0;
  f.pools().list(1, 10, &total);
  CHECK(total == 1);
}

TEST_CASE("pools: list pages in creation order and counts the total") {
  Fixture f;
  std::vector<std::string> uids;
  for (int i = 0; i < 7; ++i) uids.push_back(f.pool("p" + std::to_string(i)).uid);
  std::int64_t total = 0;
  auto page1 = f.pools().list(1, 3, &total);
  CHECK(total == 7);
  REQUIRE(page1.size() == 3);
  CHECK(page1[0].uid == uids[0]);
  CHECK(page1[2].uid == uids[2]);
  auto page3 = f.pools().list(3, 3, &total);
  REQUIRE(page3.size() == 1);
  CHECK(page3[0].uid == uids[6]);
  CHECK(f.pools().list(4, 3, nullptr).empty());  // past the end: empty, not an error
  CHECK(f.pools().list(1, 100, nullptr).size() == 7);

  CHECK(code_of([&] { f.pools().list(0, 10, nullptr); }) == Errc::invalid_argument);
  CHECK(code_of([&] { f.pools().list(-1, 10, nullptr); }) == Errc::invalid_argument);
  CHECK(code_of([&] { f.pools().list(1, 0, nullptr); }) == Errc::invalid_argument);
  CHECK(code_of([&] { f.pools().list(1, 101, nullptr); }) == Errc::invalid_argument);
}

TEST_CASE("pools: get of an unknown or malformed uid is not_found + pool_not_found") {
  Fixture f;
  for (const std::string& uid : std::vector<std::string>{"pool_0000000000000000", "", "pool_", "node_0123456789abcdef", "pool_../x",
                          "pool_" + std::string(100, 'a')}) {
    CAPTURE(uid);
    CHECK(code_of([&] { f.pools().get(uid); }) == Errc::not_found);
    CHECK(reason_of([&] { f.pools().get(uid); }) == Reason::pool_not_found);
  }
}

TEST_CASE("pools: add_node puts a node in the pool with its priority and moves it out of another") {
  Fixture f;
  Pool a = f.pool("a"), b = f.pool("b");
  const auto n = f.node("n1");
  f.clock->advance(std::chrono::seconds(10));
  Pool after = f.pools().add_node(a.uid, n, 7);
  CHECK(after.node_count == 1);
  CHECK(after.updated_at > a.updated_at);
  CHECK(after.created_at == a.created_at);
  Node node = f.cluster->nodes().get(n);
  CHECK(node.pool_uid == a.uid);
  CHECK(node.pool_priority == std::optional<std::int64_t>(7));

  f.pools().add_node(b.uid, n, 100);
  CHECK(f.pools().get(a.uid).node_count == 0);
  CHECK(f.pools().get(b.uid).node_count == 1);
  node = f.cluster->nodes().get(n);
  CHECK(node.pool_uid == b.uid);
  CHECK(node.pool_priority == std::optional<std::int64_t>(100));
  // Adding again to the same pool only changes the priority.
  CHECK(f.pools().add_node(b.uid, n, 1).node_count == 1);
  CHECK(f.cluster->nodes().get(n).pool_priority == std::optional<std::int64_t>(1));
}

TEST_CASE("pools: add_node errors: priority bounds - unknown pool - unknown node") {
  Fixture f;
  Pool p = f.pool("p");
  const auto n = f.node("n1");
  CHECK(code_of([&] { f.pools().add_node(p.uid, n, 0); }) == Errc::invalid_argument);
  CHECK(field_of([&] { f.pools().add_node(p.uid, n, 0); }) == "priority");
  CHECK(field_of([&] { f.pools().add_node(p.uid, n, 101); }) == "priority");
  CHECK(code_of([&] { f.pools().add_node("pool_ffffffffffffffff", n, 5); }) == Errc::not_found);
  CHECK(reason_of([&] { f.pools().add_node("pool_ffffffffffffffff", n, 5); }) == Reason::pool_not_found);
  CHECK(reason_of([&] { f.pools().add_node("bogus", n, 5); }) == Reason::pool_not_found);
  CHECK(code_of([&] { f.pools().add_node(p.uid, "node_ffffffffffffffff", 5); }) == Errc::not_found);
  CHECK(reason_of([&] { f.pools().add_node(p.uid, "node_ffffffffffffffff", 5); }) == Reason::node_not_found);
  CHECK(f.pools().get(p.uid).node_count == 0);
  CHECK(f.cluster->nodes().get(n).pool_uid.empty());
}

TEST_CASE("pools: max_nodes is enforced exactly - the refused move changes nothing") {
  Fixture f;
  Pool full = f.pool("full", 2);
  Pool home = f.pool("home");
  const auto n1 = f.node("n1"), n2 = f.node("n2"), n3 = f.node("n3");
  f.pools().add_node(full.uid, n1, 1);
  CHECK(f.pools().add_node(full.uid, n2, 1).node_count == 2);
  f.pools().add_node(home.uid, n3, 9);
  CHECK(code_of([&] { f.pools().add_node(full.uid, n3, 1); }) == Errc::resource_exhausted);
  CHECK(reason_of([&] { f.pools().add_node(full.uid, n3, 1); }) == Reason::resource_limit);
  // Nothing changed: n3 is still in its old pool with its old priority.
  Node node = f.cluster->nodes().get(n3);
  CHECK(node.pool_uid == home.uid);
  CHECK(node.pool_priority == std::optional<std::int64_t>(9));
  CHECK(f.pools().get(full.uid).node_count == 2);
  CHECK(f.pools().get(home.uid).node_count == 1);
  // A member re-added is not counted twice.
  CHECK(f.pools().add_node(full.uid, n1, 50).node_count == 2);
}

TEST_CASE("pools: resource limits bound the summed hardware of members - boundaries inclusive") {
  Fixture f;
  ResourceLimits lim;
  lim.max_cpu_cores = 8;
  lim.max_memory_gb = 16;
  lim.max_storage_gb = 100;
  Pool p = f.pool("res", std::nullopt, lim);
  const auto a = f.node("a", hw(4, 8, 50));
  const auto b = f.node("b", hw(4, 8, 50));  // exactly at every limit with a
  f.pools().add_node(p.uid, a, 1);
  CHECK(f.pools().add_node(p.uid, b, 1).node_count == 2);
  // One more core, GB of memory or GB of storage is refused, each alone.
  const auto cpu = f.node("cpu", hw(1, 0, 0));
  const auto mem = f.node("mem", hw(1, 0.5, 0));
  HardwareInfo only_sto;
  only_sto.storage_gb = 0.25;
  const auto sto = f.node("sto", only_sto);
  for (const auto& n : {cpu, mem, sto}) {
    CAPTURE(n);
    CHECK(code_of([&] { f.pools().add_node(p.uid, n, 1); }) == Errc::resource_exhausted);
    CHECK(reason_of([&] { f.pools().add_node(p.uid, n, 1); }) == Reason::resource_limit);
    CHECK(f.cluster->nodes().get(n).pool_uid.empty());
  }
  // A node without hardware figures adds nothing to the sums.
  const auto bare = f.node("bare");
  CHECK(f.pools().add_node(p.uid, bare, 1).node_count == 3);
  CHECK(f.pools().get(p.uid).node_count == 3);

  // Each limit alone.
  ResourceLimits cpu_only;
  cpu_only.max_cpu_cores = 2;
  Pool c = f.pool("cpu-only", std::nullopt, cpu_only);
  CHECK(reason_of([&] { f.pools().add_node(c.uid, f.node("big", hw(3, 0, 0)), 1); }) == Reason::resource_limit);
  CHECK(f.pools().add_node(c.uid, f.node("small", hw(2, 1e5, 1e8)), 1).node_count == 1);
}

TEST_CASE("pools: NodeCreate with pool_uid joins at once and obeys the limits") {
  Fixture f;
  Pool p = f.pool("one", 1);
  NodeCreate c;
  c.name = "first";
  c.pool_uid = p.uid;
  Node first = f.cluster->nodes().create(c);
  CHECK(first.pool_uid == p.uid);
  CHECK(f.pools().get(p.uid).node_count == 1);
  c.name = "second";
  CHECK(code_of([&] { f.cluster->nodes().create(c); }) == Errc::resource_exhausted);
  // The refused node was not created.
  std::int64_t total = 0;
  NodeQuery q;
  f.cluster->nodes().query(q, &total);
  CHECK(total == 1);
}

TEST_CASE("pools: pools and memberships persist across reopen") {
  Fixture f;
  PoolCreate c;
  c.name = "durable";
  c.description = "kept";
  c.max_nodes = 5;
  c.limits.max_memory_gb = 12.25;
  Pool p = f.pools().create(c);
  const auto n = f.node("n");
  f.pools().add_node(p.uid, n, 42);
  f.open();
  Pool g = f.pools().get(p.uid);
  CHECK(g.name == "durable");
  CHECK(g.description == "kept");
  CHECK(g.max_nodes == std::optional<std::int64_t>(5));
  CHECK(g.limits.max_memory_gb == std::optional<double>(12.25));
  CHECK_FALSE(g.limits.max_cpu_cores.has_value());
  CHECK(g.node_count == 1);
  CHECK(g.created_at == p.created_at);
  CHECK(f.cluster->nodes().get(n).pool_priority == std::optional<std::int64_t>(42));
  // The name is still taken after reopen.
  CHECK(reason_of([&] { f.pools().create(c); }) == Reason::pool_exists);
}

TEST_CASE("pools: concurrent creates of one name: exactly one wins") {
  Fixture f;
  constexpr int kThreads = 6;
  std::atomic<int> ok{0}, exists{0}, other{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&] {
      PoolCreate c;
      c.name = "race";
      try {
        f.pools().create(c);
        ++ok;
      } catch (const Error& e) {
        (e.reason() == Reason::pool_exists ? exists : other)++;
      }
    });
  for (auto& t : ts) t.join();
  CHECK(ok.load() == 1);
  CHECK(exists.load() == kThreads - 1);
  CHECK(other.load() == 0);
}

TEST_CASE("pools: concurrent add_node never exceeds max_nodes") {
  Fixture f;
  Pool p = f.pool("bounded", 3);
  constexpr int kNodes = 10;
  std::vector<std::string> nodes;
  for (int i = 0; i < kNodes; ++i) nodes.push_back(f.node("n" + std::to_string(i)));
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < kNodes; ++i)
    ts.emplace_back([&, i] {
      try {
        f.pools().add_node(p.uid, nodes[i], 1);
        ++ok;
      } catch (const Error& e) {
        (e.reason() == Reason::resource_limit ? refused : other)++;
      }
    });
  for (auto& t : ts) t.join();
  CHECK(ok.load() == 3);
  CHECK(refused.load() == kNodes - 3);
  CHECK(other.load() == 0);
  CHECK(f.pools().get(p.uid).node_count == 3);
  NodeQuery q;
  q.pool_uid = p.uid;
  std::int64_t total = 0;
  f.cluster->nodes().query(q, &total);
  CHECK(total == 3);
}

TEST_CASE("pools: a member's hardware change must still fit the pool's limits") {
  Fixture f;
  ResourceLimits lim;
  lim.max_cpu_cores = 8;
  Pool p = f.pool("fit", std::nullopt, lim);
  const auto a = f.node("a", hw(4, 1, 1));
  const auto b = f.node("b", hw(4, 1, 1));
  f.pools().add_node(p.uid, a, 1);
  f.pools().add_node(p.uid, b, 1);
  NodeUpdate u;
  u.hardware = hw(5, 1, 1);
  CHECK(code_of([&] { f.cluster->nodes().update(a, u); }) == Errc::resource_exhausted);
  CHECK(reason_of([&] { f.cluster->nodes().update(a, u); }) == Reason::resource_limit);
  CHECK(f.cluster->nodes().get(a).hardware.cpu_cores == std::optional<std::int64_t>(4));  // unchanged
  u.hardware = hw(3, 1, 1);
  CHECK_NOTHROW(f.cluster->nodes().update(a, u));
  // Outside any pool a node may grow freely.
  const auto free = f.node("free", hw(1, 1, 1));
  u.hardware = hw(4096, 1, 1);
  CHECK(f.cluster->nodes().update(free, u).hardware.cpu_cores == std::optional<std::int64_t>(4096));
}

TEST_CASE("pools: a node moved concurrently between pools is in exactly one") {
  Fixture f;
  Pool a = f.pool("a"), b = f.pool("b");
  const auto n = f.node("n");
  std::atomic<int> errors{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        try {
          f.pools().add_node((t + i) % 2 ? a.uid : b.uid, n, 1 + t);
        } catch (const Error&) {
          ++errors;
        }
      }
    });
  for (auto& t : ts) t.join();
  CHECK(errors.load() == 0);
  const auto in_a = f.pools().get(a.uid).node_count, in_b = f.pools().get(b.uid).node_count;
  CHECK(in_a + in_b == 1);
  CHECK(f.cluster->nodes().get(n).pool_uid == (in_a == 1 ? a.uid : b.uid));
}
