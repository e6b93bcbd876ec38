// lucid::Options grouped by capability (issue 20): every bound that
// options.hpp documents is checked when a Cluster opens, the error names the
// field by its path, and the defaults open.
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <limits>
#include <string>

#include "lucidnode/lucidnode.hpp"
#include "support.hpp"

using namespace lucid;
using namespace std::chrono_literals;

namespace {
// The field Cluster's constructor names when `tweak` is applied to default
// options ("<none>" when it opens).
std::string rejected_field(const testsupport::TempDir& dir, const std::function<void(Options&)>& tweak) {
  return testsupport::field_of([&] {
    Options o;
    o.database_path = dir.file("o.db");
    tweak(o);
    Cluster c(o);
  });
}
}  // namespace

TEST_CASE("options: the defaults open, and derived defaults are filled in") {
  testsupport::TempDir dir;
  Options o;
  o.database_path = dir.file("d.db");
  o.login.public_url = "https://lucid.example/app//";
  Cluster c(o);
  const Options& got = c.options();
  CHECK(got.key_file == dir.file("d.db") + ".key");
  CHECK(got.data_dir == dir.path.string() + "/data");
  CHECK(got.clock != nullptr);
  CHECK(got.login.public_url == "https://lucid.example/app");
  // The documented defaults.
  CHECK(got.nodes.stats_history == 720);
  CHECK(got.nodes.pending_join_ttl == 2h);
  CHECK(got.poot.window == 1h);
  CHECK(got.ledger.block_time == 5s);
  CHECK(got.payouts.max_batch == 10000);
  CHECK(got.tasks.max_connections == 10000);
  CHECK(got.gateway.wallet_key.empty());
  CHECK(got.login.code_ttl == 300s);
  CHECK(got.login.refresh_token_ttl == std::chrono::hours(24 * 30));
  CHECK_FALSE(got.network.relay_mode);
  CHECK_FALSE(got.network.nat_mode);
  CHECK(got.workflows.max_parallel == 16);
}

TEST_CASE("options: top-level and nodes bounds name the field") {
  testsupport::TempDir dir;
  auto field = [&](std::function<void(Options&)> t) { return rejected_field(dir, t); };
  CHECK(field([](Options& o) { o.database_path.clear(); }) == "database_path");
  CHECK(field([](Options& o) { o.executor_threads = 0; }) == "executor_threads");
  CHECK(field([](Options& o) { o.executor_threads = 65; }) == "executor_threads");
  CHECK(field([](Options& o) { o.nodes.stats_history = 0; }) == "nodes.stats_history");
  CHECK(field([](Options& o) { o.nodes.stats_history = 100001; }) == "nodes.stats_history");
  CHECK(field([](Options& o) { o.nodes.stats_flush_interval = 0ms; }) == "nodes.stats_flush_interval");
  CHECK(field([](Options& o) { o.nodes.stats_queue_limit = 0; }) == "nodes.stats_queue_limit");
  CHECK(field([](Options& o) { o.nodes.stats_queue_limit = 100000001; }) == "nodes.stats_queue_limit");
  CHECK(field([](Options& o) { o.nodes.max_pending_joins = 0; }) == "nodes.max_pending_joins");
  CHECK(field([](Options& o) { o.nodes.max_pending_joins = 10000001; }) == "nodes.max_pending_joins");
  CHECK(field([](Options& o) { o.nodes.stale_after = 0s; }) == "nodes.stale_after");
  CHECK(field([](Options& o) { o.nodes.start_timeout = 0s; }) == "nodes.start_timeout");
  CHECK(field([](Options& o) { o.nodes.lifecycle_sweep_interval = 0ms; }) == "nodes.lifecycle_sweep_interval");
  CHECK(field([](Options& o) { o.nodes.pending_join_ttl = 0s; }) == "nodes.pending_join_ttl");
  CHECK(field([](Options& o) { o.nodes.pending_join_ttl = 30 * 24h + 1s; }) == "nodes.pending_join_ttl");
  CHECK(field([](Options& o) { o.nodes.default_quota_gb = 0; }) == "nodes.default_quota_gb");
  CHECK(field([](Options& o) { o.nodes.default_quota_gb = std::numeric_limits<double>::quiet_NaN(); }) ==
        "nodes.default_quota_gb");
  CHECK(field([](Options& o) { o.nodes.pending_join_ttl = 30 * 24h; }) == "<none>");
}

TEST_CASE("options: tasks, login and network bounds name the field") {
  testsupport::TempDir dir;
  auto field = [&](std::function<void(Options&)> t) { return rejected_field(dir, t); };
  CHECK(field([](Options& o) { o.tasks.max_connections = 0; }) == "tasks.max_connections");
  CHECK(field([](Options& o) { o.tasks.max_connections = 1000001; }) == "tasks.max_connections");
  CHECK(field([](Options& o) { o.tasks.sweep_interval = 0ms; }) == "tasks.sweep_interval");
  CHECK(field([](Options& o) { o.login.code_ttl = 0s; }) == "login.code_ttl");
  CHECK(field([](Options& o) { o.login.code_ttl = 3601s; }) == "login.code_ttl");
  CHECK(field([](Options& o) { o.login.access_token_ttl = 86401s; }) == "login.access_token_ttl");
  CHECK(field([](Options& o) { o.login.refresh_token_ttl = 59s; }) == "login.refresh_token_ttl");
  CHECK(field([](Options& o) { o.login.refresh_token_ttl = std::chrono::hours(24 * 367); }) ==
        "login.refresh_token_ttl");
  CHECK(field([](Options& o) { o.login.public_url.clear(); }) == "login.public_url");
  CHECK(field([](Options& o) { o.login.public_url = std::string(513, 'u'); }) == "login.public_url");
  CHECK(field([](Options& o) { o.network.challenge_ttl = 0s; }) == "network.challenge_ttl");
  CHECK(field([](Options& o) { o.network.challenge_ttl = 3601s; }) == "network.challenge_ttl");
  CHECK(field([](Options& o) { o.network.max_challenges = 0; }) == "network.max_challenges");
  CHECK(field([](Options& o) { o.network.max_challenges = 10000001; }) == "network.max_challenges");
  CHECK(field([](Options& o) { o.network.max_challenges_per_client = 0; }) == "network.max_challenges_per_client");
  CHECK(field([](Options& o) { o.network.relay_price_per_gb = -0.01; }) == "network.relay_price_per_gb");
  CHECK(field([](Options& o) { o.network.relay_price_per_gb = 1e6 + 1; }) == "network.relay_price_per_gb");
  CHECK(field([](Options& o) { o.network.relay_price_per_gb = std::numeric_limits<double>::infinity(); }) ==
        "network.relay_price_per_gb");
}

TEST_CASE("options: the error message names the field by its path and its bound") {
  testsupport::TempDir dir;
  const auto msg = testsupport::message_of([&] {
    Options o;
    o.database_path = dir.file("m.db");
    o.ledger.block_time = 9ms;
    Cluster c(o);
  });
  CHECK(msg == "ledger.block_time must be 10 ms..1 hour");
}
