// Group commit (lib/tasks/group_commit.hpp) and the task submits that use it:
// concurrent writes share transactions, a failing write is undone alone, and
// a batch whose commit fails answers every caller with the error and keeps
// nothing (issue 19).
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "lucidnode/lucidnode.hpp"
#include "support.hpp"
#include "tasks/group_commit.hpp"

using namespace lucid;
using lucid::detail::Conn;
using lucid::detail::GroupCommit;
using lucid::detail::Store;
using lucid::detail::StoreConfig;
using testsupport::code_of;

namespace {

// While set, every write transaction fails just before its COMMIT.
std::atomic<bool> g_fail_commits{false};

struct FailCommits {
  FailCommits() {
    g_fail_commits.store(true);
    Store::set_write_hook_for_test([](Conn&) {
      if (g_fail_commits.load()) throw Error(Errc::storage, "injected commit failure");
    });
  }
  ~FailCommits() {
    g_fail_commits.store(false);
    Store::set_write_hook_for_test(nullptr);
  }
};

std::int64_t count_rows(Store& s, const char* sql) {
  return s.read([&](Conn& c) {
    auto& q = c.stmt(sql);
    q.step();
    return q.column(0).as_int64();
  });
}

// Runs `n` threads, each calling f(thread index), started together.
template <class F>
void together(int n, F f) {
  std::atomic<int> ready{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i)
    ts.emplace_back([&, i] {
      ++ready;
      while (ready.load() < n) std::this_thread::yield();
      f(i);
    });
  for (auto& t : ts) t.join();
}

}  // namespace

TEST_CASE("group commit: concurrent writes all land, in fewer transactions when they overlap") {
  testsupport::TempDir dir;
  Store store(StoreConfig{dir.file("g.db")});
  store.write([](Conn& c) { c.exec("CREATE TABLE gc_rows (v INTEGER PRIMARY KEY)"); });
  GroupCommit g(store);
  constexpr int kThreads = 8, kEach = 200;
  together(kThreads, [&](int t) {
    for (int i = 0; i < kEach; ++i)
      g.run([&](Conn& c) {
        auto& q = c.stmt("INSERT INTO gc_rows (v) VALUES (?)");
        q.bind(1, static_cast<std::int64_t>(t * kEach + i));
        q.run();
      });
  });
  CHECK(count_rows(store, "SELECT COUNT(*) FROM gc_rows") == kThreads * kEach);
  CHECK(g.writes() == static_cast<std::size_t>(kThreads * kEach));
  CHECK(g.batches() >= 1);
  CHECK(g.batches() <= g.writes());
}

TEST_CASE("group commit: a failing write is undone alone and its caller gets the error") {
  testsupport::TempDir dir;
  Store store(StoreConfig{dir.file("g.db")});
  store.write([](Conn& c) { c.exec("CREATE TABLE gc_rows (v INTEGER PRIMARY KEY)"); });
  GroupCommit g(store);
  std::atomic<int> failed{0}, ok{0};
  together(8, [&](int t) {
    try {
      g.run([&](Conn& c) {
        auto& q = c.stmt("INSERT INTO gc_rows (v) VALUES (?)");
        q.bind(1, static_cast<std::int64_t>(100 + t));
        q.run();
        if (t % 2 == 0) {
          // Its first row is written, then a duplicate key fails it: neither stays.
          auto& d = c.stmt("INSERT INTO gc_rows (v) VALUES (?)");
          d.bind(1, static_cast<std::int64_t>(100 + t));
          d.run();
        }
      });
      ++ok;
    } catch (const Error& e) {
      CHECK(e.code() == Errc::storage);
      ++failed;
    }
  });
  CHECK(failed.load() == 4);
  CHECK(ok.load() == 4);
  CHECK(count_rows(store, "SELECT COUNT(*) FROM gc_rows") == 4);
  CHECK(count_rows(store, "SELECT COUNT(*) FROM gc_rows WHERE v % 2 = 0") == 0);
  // A thrown lucid::Error passes through as it is.
  CHECK(code_of([&] { g.run([](Conn&) { throw Error(Errc::conflict, "no"); }); }) == Errc::conflict);
}

TEST_CASE("group commit: a batch whose commit fails answers every caller and keeps nothing") {
  testsupport::TempDir dir;
  Store store(StoreConfig{dir.file("g.db")});
  store.write([](Conn& c) { c.exec("CREATE TABLE gc_rows (v INTEGER PRIMARY KEY)"); });
  GroupCommit g(store);
  std::atomic<int> failed{0};
  {
    FailCommits fail;
    together(8, [&](int t) {
      try {
        g.run([&](Conn& c) {
          auto& q = c.stmt("INSERT INTO gc_rows (v) VALUES (?)");
          q.bind(1, static_cast<std::int64_t>(t));
          q.run();
        });
      } catch (const Error& e) {
        if (e.code() == Errc::storage) ++failed;
      }
    });
  }
  CHECK(failed.load() == 8);
  CHECK(count_rows(store, "SELECT COUNT(*) FROM gc_rows") == 0);
  g.run([](Conn& c) { c.exec("INSERT INTO gc_rows (v) VALUES (1)"); });  // works again
  CHECK(count_rows(store, "SELECT COUNT(*) FROM gc_rows") == 1);
}

TEST_CASE("tasks: concurrent submits are all queued; a failed commit leaves no task behind") {
  testsupport::TempDir dir;
  Options o;
  o.database_path = dir.file("c.db");
  Cluster cluster(o);
  TaskSubmit t;
  t.task_type = "echo";
  std::atomic<int> failed{0};
  {
    FailCommits fail;
    together(6, [&](int) {
      if (code_of([&] { cluster.tasks().submit(t); }) == Errc::storage) ++failed;
    });
  }
  CHECK(failed.load() == 6);
  CHECK(cluster.tasks().statistics().total == 0);
  std::int64_t total = 0;
  CHECK(cluster.tasks().list(TaskQuery{}, &total).empty());
  CHECK(total == 0);

  std::vector<std::string> ids(6 * 50);
  together(6, [&](int i) {
    for (int k = 0; k < 50; ++k) ids[static_cast<std::size_t>(i * 50 + k)] = cluster.tasks().submit(t).task_id;
  });
  CHECK(cluster.tasks().statistics().by_status["queued"] == 300);
  for (const auto& id : ids) CHECK(cluster.tasks().get(id).status == TaskStatus::queued);
  // The engine knows each of them: a device with room takes them.
  auto j = cluster.nodes().request_join({"gc.example.com", "", "", ""});
  cluster.nodes().approve(j.request_id);
  DeviceReport r;
  r.platform = "linux";
  r.capabilities = {4, 8, 100, false, true};
  r.allowed_task_types = {"echo"};
  r.max_concurrent = 256;
  cluster.tasks().report_device(j.request_id, r);
  cluster.tasks().schedule();
  CHECK(cluster.tasks().statistics().by_status["assigned"] == 256);
  CHECK(cluster.tasks().take_work(j.request_id).tasks.size() == 256);
}
