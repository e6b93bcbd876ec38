// lib/core: failures of background work (ClusterCore::every / post /
// post_or_run) reach Options::info_log instead of vanishing.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/cluster_core.hpp"
#include "support.hpp"

using namespace lucid;
using namespace std::chrono_literals;

namespace {

// An Options::info_log that keeps its lines.
struct Lines {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<LogLevel, std::string>> lines;

  InfoLog hook() {
    return [this](LogLevel level, std::string_view message) {
      std::lock_guard lock(mu);
      lines.emplace_back(level, std::string(message));
      cv.notify_all();
    };
  }
  // Waits (at most 10 s) for a line equal to `text`; its level, or nullopt.
  std::optional<LogLevel> wait_for(const std::string& text) {
    std::unique_lock lock(mu);
    std::optional<LogLevel> found;
    cv.wait_for(lock, 10s, [&] {
      for (const auto& [level, line] : lines)
        if (line == text) found = level;
      return found.has_value();
    });
    return found;
  }
};

}  // namespace

TEST_CASE("background: a throwing periodic or posted job reaches Options::info_log") {
  testsupport::TempDir dir;
  Lines log;
  Options o;
  o.database_path = dir.file("lucid.db");
  o.info_log = log.hook();
  detail::ClusterCore core(std::move(o));
  std::atomic<int> ticks{0};
  core.every(5ms, [&] {
    ++ticks;
    throw Error(Errc::storage, "tick failed");
  });
  core.post([] { throw std::runtime_error("posted job failed"); });
  core.start();
  CHECK(log.wait_for("background job failed: posted job failed") == LogLevel::error);
  CHECK(log.wait_for("periodic job failed: tick failed") == LogLevel::error);
  // A failed round does not stop the periodic job.
  for (int i = 0; i < 1000 && ticks.load() < 3; ++i) std::this_thread::sleep_for(5ms);
  CHECK(ticks.load() >= 3);
  core.stop();
}

TEST_CASE("background: post_or_run without the executor reports on the calling thread; a throwing hook is contained") {
  testsupport::TempDir dir;
  Lines log;
  Options o;
  o.database_path = dir.file("lucid.db");
  o.info_log = log.hook();
  {
    detail::ClusterCore core(o);
    core.post_or_run([] { throw Error(Errc::unavailable, "mail relay down"); });
    CHECK(log.wait_for("background job failed: mail relay down") == LogLevel::error);
  }
  o.info_log = [](LogLevel, std::string_view) { throw std::runtime_error("the log itself failed"); };
  detail::ClusterCore core(o);
  CHECK_NOTHROW(core.post_or_run([] { throw std::runtime_error("job failed"); }));
  // No hook at all: dropped, as before there was one.
  o.info_log = nullptr;
  testsupport::TempDir dir2;
  o.database_path = dir2.file("lucid.db");
  detail::ClusterCore quiet(o);
  CHECK_NOTHROW(quiet.post_or_run([] { throw std::runtime_error("job failed"); }));
}

TEST_CASE("core: the hooks between areas (lib/cluster wires them; a bare core has none)") {
  testsupport::TempDir dir;
  Options o;
  o.database_path = dir.file("lucid.db");
  detail::ClusterCore core(std::move(o));
  // No Nodes built on it: no cache to hand out, and nobody to tell.
  try {
    (void)core.node_cache();
    FAIL("node_cache() without a Nodes must throw");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::internal);
  }
  CHECK_NOTHROW(core.principals_changed());
  // The signing key is lib/cluster's to load: until then there is none.
  CHECK_FALSE(core.has_key);
  CHECK_THROWS_AS(core.require_auth(), Error);
  CHECK_THROWS_AS(core.require_code_key(), Error);

  int told = 0;
  core.on_principals_changed([&] { ++told; });
  core.principals_changed();
  core.principals_changed();
  CHECK(told == 2);

  // Start hooks run on every start before the threads; stop hooks in
  // registration order before the threads are joined, and what they post
  // still runs (the task engine answers its waiters that way).
  std::vector<std::string> order;
  std::mutex mu;
  auto note = [&](const char* what) {
    std::lock_guard lock(mu);
    order.emplace_back(what);
  };
  core.on_start([&] { note("start"); });
  core.on_stop([&] { note("stop 1"); });
  core.on_stop([&] { core.post([&] { note("posted by stop 2"); }); });
  core.start();
  core.start();  // idempotent: no second start hook
  core.stop();
  core.stop();  // idempotent: no second stop hook
  CHECK(order == std::vector<std::string>{"start", "stop 1", "posted by stop 2"});
  core.start();
  core.stop();
  CHECK(order.size() == 6);
}
