#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>

#include "lucidnode/lucidnode.hpp"
#include "support.hpp"

using namespace lucid;
using testsupport::code_of;
using testsupport::field_of;

namespace {

struct Fixture {
  testsupport::TempDir dir;
  std::shared_ptr<OffsetClock> clock = std::make_shared<OffsetClock>();
  std::unique_ptr<Cluster> cluster;
  explicit Fixture(std::function<void(Options&)> tweak = {}) { open(tweak); }
  void open(std::function<void(Options&)> tweak = {}) {
    Options o;
    o.database_path = dir.file("c.db");
    o.clock = clock;
    if (tweak) tweak(o);
    cluster = std::make_unique<Cluster>(o);
  }
  Nodes& nodes() { return cluster->nodes(); }
  // join -> approve -> collect key
  std::pair<std::int64_t, std::string> active_node(const std::string& host) {
    auto j = nodes().request_join({host, "", "", ""});
    nodes().approve(j.request_id);
    auto p = nodes().poll_by_code(j.registration_code, j.join_secret);
    return {j.request_id, *p.api_key};
  }
};



StatsSample sample(double cpu) {
  StatsSample s;
  s.cpu_usage = cpu;
  s.disk_usage = 50;
  s.active_backups = 1;
  return s;
}

}  // namespace

TEST_CASE("nodes: join gives a 5-character code, same pending hostname gets it back with its secret") {
  Fixture f;
  auto a = f.nodes().request_join({"a.example.com", "10.0.0.1", "Debian", ""});
  CHECK(a.registration_code.size() == 5);
  for (char c : a.registration_code) CHECK(((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')));
  CHECK(a.join_secret.rfind("ljs_", 0) == 0);
  CHECK(a.join_secret.size() == 4 + 43);  // 32 random bytes, base64url
  auto again = f.nodes().request_join({"a.example.com", "", "", a.join_secret});
  CHECK(again.request_id == a.request_id);
  CHECK(again.registration_code == a.registration_code);
  CHECK(again.join_secret.empty());  // shown once
  auto b = f.nodes().request_join({"b.example.com", "", "", ""});
  CHECK(b.request_id != a.request_id);
  CHECK(f.nodes().status_of_request(a.request_id) == NodeStatus::pending);
}

TEST_CASE("nodes: a re-join of a pending hostname without its secret learns no code") {
  Fixture f;
  auto a = f.nodes().request_join({"victim.example", "", "", ""});
  CHECK(code_of([&] { f.nodes().request_join({"victim.example", "", "", ""}); }) == Errc::conflict);
  CHECK(code_of([&] { f.nodes().request_join({"VICTIM.example", "", "", "ljs_guess"}); }) == Errc::conflict);
  CHECK(code_of([&] { f.nodes().request_join({"victim.example", "", "", a.join_secret + "x"}); }) == Errc::conflict);
  CHECK(field_of([&] { f.nodes().request_join({"victim.example", "", "", std::string(129, 'a')}); }) == "join_secret");
  CHECK(f.nodes().count() == 1);
}

TEST_CASE("nodes: a poll without the join secret never takes the key") {
  Fixture f;
  auto j = f.nodes().request_join({"n1", "", "", ""});
  f.nodes().approve(j.request_id);
  // An attacker who knows the code: status only, and nothing is consumed.
  auto spy = f.nodes().poll_by_code(j.registration_code);
  CHECK(spy.status == NodeStatus::active);
  CHECK_FALSE(spy.api_key);
  CHECK(code_of([&] { f.nodes().poll_by_code(j.registration_code, "ljs_wrong"); }) == Errc::permission_denied);
  CHECK(field_of([&] { f.nodes().poll_by_code(j.registration_code, std::string(200, 'a')); }) == "join_secret");
  auto real = f.nodes().poll_by_code(j.registration_code, j.join_secret);
  REQUIRE(real.api_key);
  CHECK(f.nodes().authenticate_key(*real.api_key) == j.request_id);
}

TEST_CASE("nodes: an admin-created node's key needs the join secret that came with its code") {
  Fixture f;
  NodeCreate c;
  c.name = "made.example";
  std::string code, secret;
  auto n = f.nodes().create(c, &code, &secret);
  CHECK(secret.rfind("ljs_", 0) == 0);
  auto spy = f.nodes().poll_by_code(code);
  CHECK(spy.status == NodeStatus::active);
  CHECK_FALSE(spy.api_key);
  auto real = f.nodes().poll_by_code(code, secret);
  REQUIRE(real.api_key);
  CHECK(f.nodes().authenticate_key(*real.api_key) == n.id);
}

TEST_CASE("nodes: pending join requests expire after pending_join_ttl") {
  Fixture f([](Options& o) { o.nodes.pending_join_ttl = std::chrono::seconds(600); });
  auto j = f.nodes().request_join({"slow.example", "", "", ""});
  auto kept = f.nodes().request_join({"kept.example", "", "", ""});
  f.nodes().approve(kept.request_id);
  f.clock->advance(std::chrono::seconds(599));
  f.nodes().sweep_lifecycle();
  CHECK(f.nodes().status_of_request(j.request_id) == NodeStatus::pending);
  f.clock->advance(std::chrono::seconds(2));
  // Before any sweep: an expired code is unknown and cannot be approved.
  CHECK(code_of([&] { f.nodes().poll_by_code(j.registration_code, j.join_secret); }) == Errc::not_found);
  CHECK(code_of([&] { f.nodes().approve(j.request_id); }) == Errc::not_found);
  f.nodes().sweep_lifecycle();
  CHECK(code_of([&] { f.nodes().status_of_request(j.request_id); }) == Errc::not_found);
  CHECK(code_of([&] { f.nodes().live_view(j.request_id); }) == Errc::not_found);
  CHECK(code_of([&] { f.nodes().approve_by_code(j.registration_code); }) == Errc::not_found);
  // The hostname is free: anyone may join it anew (a new request, code and secret).
  auto fresh = f.nodes().request_join({"slow.example", "", "", ""});
  CHECK(fresh.request_id != j.request_id);
  CHECK(fresh.join_secret != j.join_secret);
  // Approved nodes never expire.
  CHECK(f.nodes().status_of_request(kept.request_id) == NodeStatus::active);
  CHECK(code_of([&] {
          Options o;
          o.database_path = f.dir.file("x.db");
          o.nodes.pending_join_ttl = std::chrono::seconds(0);
          Cluster bad(o);
        }) == Errc::invalid_argument);
}

TEST_CASE("nodes: codes are unique among many pending requests and are not stored") {
  Fixture f;
  std::set<std::string> codes;
  for (int i = 0; i < 300; ++i) codes.insert(f.nodes().request_join({"h" + std::to_string(i), "", "", ""}).registration_code);
  CHECK(codes.size() == 300);
}

TEST_CASE("nodes: the full registration flow issues the key exactly once") {
  Fixture f;
  auto j = f.nodes().request_join({"n1", "", "", ""});
  auto p = f.nodes().poll_by_code(j.registration_code, j.join_secret);
  CHECK(p.status == NodeStatus::pending);
  CHECK_FALSE(p.api_key);
  auto n = f.nodes().approve_by_code(j.registration_code);
  CHECK(n.status == NodeStatus::active);
  CHECK(n.approved_at.has_value());
  // lower case is accepted too
  std::string lower = j.registration_code;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto got = f.nodes().poll_by_code(lower, j.join_secret);
  CHECK(got.status == NodeStatus::active);
  REQUIRE(got.api_key);
  CHECK(got.api_key->rfind("lnk_", 0) == 0);
  CHECK(f.nodes().authenticate_key(*got.api_key) == j.request_id);
  CHECK(code_of([&] { f.nodes().poll_by_code(j.registration_code, j.join_secret); }) == Errc::not_found);
  // the same hostname now reports ACTIVE
  auto again = f.nodes().request_join({"n1", "", "", ""});
  CHECK(again.registration_code == "ACTIVE");
  CHECK(again.already_active);
  CHECK(again.request_id == j.request_id);
}

TEST_CASE("nodes: approval errors") {
  Fixture f;
  CHECK(code_of([&] { f.nodes().approve(999); }) == Errc::not_found);
  auto j = f.nodes().request_join({"n1", "", "", ""});
  f.nodes().approve(j.request_id);
  CHECK(code_of([&] { f.nodes().approve(j.request_id); }) == Errc::conflict);
  CHECK(code_of([&] { f.nodes().approve_by_code("ZZZZZ"); }) == Errc::not_found);
  CHECK(code_of([&] { f.nodes().approve_by_code("abc"); }) == Errc::invalid_argument);
  CHECK(code_of([&] { f.nodes().approve_by_code("AB-CD"); }) == Errc::invalid_argument);
  CHECK(code_of([&] { f.nodes().status_of_request(12345); }) == Errc::not_found);
}

TEST_CASE("nodes: join input is validated, naming the field") {
  Fixture f;
  CHECK(field_of([&] { f.nodes().request_join({"", "", "", ""}); }) == "hostname");
  CHECK(field_of([&] { f.nodes().request_join({"bad host", "", "", ""}); }) == "hostname");
  CHECK(field_of([&] { f.nodes().request_join({std::string(254, 'a'), "", "", ""}); }) == "hostname");
  CHECK(field_of([&] { f.nodes().request_join({"ok", "300.1.1.1", "", ""}); }) == "ip_address");
  CHECK(field_of([&] { f.nodes().request_join({"ok", "", std::string(1025, 'x'), ""}); }) == "system_info");
  CHECK(field_of([&] { f.nodes().request_join({"ok", "", "a\nb", ""}); }) == "system_info");
  CHECK_NOTHROW(f.nodes().request_join({"ok6", "::1", "", ""}));
  CHECK(f.nodes().count() == 1);
}

TEST_CASE("nodes: pending join requests are bounded") {
  Fixture f([](Options& o) { o.nodes.max_pending_joins = 3; });
  std::vector<JoinResult> joins;
  for (int i = 0; i < 3; ++i) joins.push_back(f.nodes().request_join({"h" + std::to_string(i), "", "", ""}));
  CHECK(code_of([&] { f.nodes().request_join({"h9", "", "", ""}); }) == Errc::resource_exhausted);
  // re-joining an existing pending hostname (with its secret) still works
  CHECK_NOTHROW(f.nodes().request_join({"h1", "", "", joins[1].join_secret}));
}

TEST_CASE("nodes: liveness is offline, online, then stale as the clock moves") {
  Fixture f;
  auto [id, key] = f.active_node("n1");
  CHECK(f.nodes().get(id).liveness == Liveness::offline);
  f.nodes().report_stats(f.nodes().authenticate_key(key), sample(12));
  CHECK(f.nodes().get(id).liveness == Liveness::online);
  f.clock->advance(std::chrono::minutes(4));
  CHECK(f.nodes().live_view(id).liveness == Liveness::online);
  f.clock->advance(std::chrono::minutes(2));
  CHECK(f.nodes().get(id).liveness == Liveness::stale);
  CHECK(f.nodes().list({0, 10})[0].liveness == Liveness::stale);
}

TEST_CASE("nodes: stats are validated, kept newest first, bounded, and survive a restart") {
  Fixture f([](Options& o) { o.nodes.stats_history = 5; });
  auto [id, key] = f.active_node("n1");
  auto bad = [&](StatsSample s) { return field_of([&] { f.nodes().report_stats(id, s); }); };
  StatsSample s = sample(1);
  s.cpu_usage = 101;
  CHECK(bad(s) == "cpu_usage");
  s = sample(1);
  s.disk_usage = -1;
  CHECK(bad(s) == "disk_usage");
  s = sample(1);
  s.active_backups = -1;
  CHECK(bad(s) == "active_backups");
  s = sample(1);
  s.memory_percent = std::nan("");
  CHECK(bad(s) == "memory_percent");
  for (int i = 1; i <= 8; ++i) f.nodes().report_stats(id, sample(i));
  auto n = f.nodes().get(id, 100);
  REQUIRE(n.recent_stats.size() == 5);  // ring of 5
  CHECK(n.recent_stats[0].cpu_usage == 8);
  CHECK(n.recent_stats[4].cpu_usage == 4);
  CHECK(f.nodes().list({0, 10})[0].recent_stats.at(0).cpu_usage == 8);

  f.cluster->stop();
  f.cluster.reset();
  f.open([](Options& o) { o.nodes.stats_history = 5; });
  CHECK(f.nodes().authenticate_key(key) == id);
  auto live = f.nodes().live_view(id);
  REQUIRE(live.latest);
  CHECK(live.latest->cpu_usage == 8);
  CHECK(live.liveness == Liveness::online);
  f.nodes().report_stats(id, sample(9));
  CHECK(f.nodes().get(id, 1).recent_stats.at(0).cpu_usage == 9);
}

TEST_CASE("nodes: api keys are checked") {
  Fixture f;
  auto [id, key] = f.active_node("n1");
  CHECK(f.nodes().authenticate_key(key) == id);
  CHECK(code_of([&] { f.nodes().authenticate_key(key + "x"); }) == Errc::unauthenticated);
  CHECK(code_of([&] { f.nodes().authenticate_key(""); }) == Errc::unauthenticated);
  CHECK(code_of([&] { f.nodes().authenticate_key(std::string(1000, 'k')); }) == Errc::unauthenticated);
}

TEST_CASE("nodes: quota status with sites, warnings and over-quota") {
  Fixture f;
  auto [id, key] = f.active_node("n1");
  const std::int64_t gib = 1024LL * 1024 * 1024;
  f.nodes().report_sites(id, {{"a.com", 5 * gib + gib / 5, 15.0}, {"b.com", gib * 32 / 10, 4.0}, {"c.com", 5 * gib, 4.0}});
  f.nodes().set_quota(id, 20);
  auto q = f.nodes().quota_status(id);
  CHECK(q.quota_gb == 20);
  CHECK(q.used_gb == doctest::Approx(13.4));
  CHECK(q.usage_percent == doctest::Approx(67.0));
  CHECK_FALSE(q.is_over_quota);
  REQUIRE(q.sites.size() == 3);
  CHECK(q.sites[1].usage_percent.value() == doctest::Approx(80.0));
  CHECK(q.sites[1].is_warning);
  CHECK(q.sites[2].is_over_quota);
  CHECK(q.sites_warning == 1);
  CHECK(q.sites_over_quota == 1);
  f.nodes().set_quota(id, 10);
  CHECK(f.nodes().quota_status(id).is_over_quota);
  CHECK(field_of([&] { f.nodes().set_quota(id, 0); }) == "storage_quota_gb");
  CHECK(code_of([&] { f.nodes().set_quota(999, 10); }) == Errc::not_found);
  CHECK(code_of([&] { f.nodes().quota_status(999); }) == Errc::not_found);
  // upsert keeps the quota when a report omits it
  f.nodes().report_sites(id, {{"a.com", gib, std::nullopt}});
  std::int64_t total = 0;
  auto sites = f.nodes().sites(id, {0, 50}, &total);
  CHECK(total == 3);
  CHECK(sites[0].used_bytes == gib);
  CHECK(sites[0].quota_gb.value() == 15.0);
  CHECK(field_of([&] { f.nodes().report_sites(id, {{"x", -1, std::nullopt}}); }) == "sites.0.used_bytes");
  CHECK(field_of([&] { f.nodes().report_sites(id, {{"x", 1, std::nullopt}, {"x", 2, std::nullopt}}); }) ==
        "sites.1.site_name");
}

TEST_CASE("nodes: backups are recorded, filtered by site and paged newest first") {
  Fixture f;
  auto [id, key] = f.active_node("n1");
  auto sites = f.nodes().report_sites(id, {{"a.com", 1, std::nullopt}, {"b.com", 1, std::nullopt}});
  for (int i = 0; i < 5; ++i) {
    BackupReport r;
    r.site_name = i % 2 ? "a.com" : "b.com";
    r.filename = "f" + std::to_string(i) + ".tar.zst";
    r.size_bytes = 3612358215;
    f.nodes().report_backup(id, r);
  }
  std::int64_t total = 0;
  auto all = f.nodes().backups(id, {0, 2}, std::nullopt, &total);
  CHECK(total == 5);
  REQUIRE(all.size() == 2);
  CHECK(all[0].filename == "f4.tar.zst");
  auto a = f.nodes().backups(id, {0, 50}, sites[0].id, &total);
  CHECK(total == 2);
  CHECK(a[0].site_name == "a.com");
  BackupReport r;
  r.filename = "x";
  r.site_name = "nope.com";
  CHECK(field_of([&] { f.nodes().report_backup(id, r); }) == "site_name");
  r.site_name.clear();
  r.backup_type = "weird";
  CHECK(field_of([&] { f.nodes().report_backup(id, r); }) == "backup_type");
  r.backup_type = "full";
  r.status = "ok";
  CHECK(field_of([&] { f.nodes().report_backup(id, r); }) == "status");
  CHECK(field_of([&] { f.nodes().backups(id, {-1, 10}, std::nullopt); }) == "skip");
  CHECK(field_of([&] { f.nodes().backups(id, {0, 501}, std::nullopt); }) == "limit");
  CHECK(f.nodes().get(id).backups_count == 5);
}

TEST_CASE("nodes: concurrent joins, approvals and stats keep every row consistent") {
  Fixture f;
  f.cluster->start();
  std::vector<std::thread> ts;
  std::atomic<int> errors{0};
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      try {
        for (int i = 0; i < 25; ++i) {
          auto [id, key] = f.active_node("t" + std::to_string(t) + "-" + std::to_string(i));
          for (int k = 0; k < 20; ++k) f.nodes().report_stats(f.nodes().authenticate_key(key), sample(k));
        }
      } catch (...) {
        ++errors;
      }
    });
  for (auto& t : ts) t.join();
  CHECK(errors == 0);
  CHECK(f.nodes().count() == 100);
  f.nodes().flush_stats();
  for (const auto& n : f.nodes().list({0, 1000})) {
    CHECK(n.status == NodeStatus::active);
    REQUIRE(n.recent_stats.size() == 1);
    CHECK(n.recent_stats[0].cpu_usage == 19);
  }
  CHECK(f.nodes().get(50, 100).recent_stats.size() == 20);
}

TEST_CASE("events: subscribers receive node events and unsubscribe cleanly") {
  Fixture f;
  std::atomic<int> joined{0}, approved{0}, stats{0};
  {
    auto sub = f.cluster->events().subscribe([&](const Event& e) {
      if (e.kind == EventKind::node_joined) ++joined;
      if (e.kind == EventKind::node_approved) ++approved;
      if (e.kind == EventKind::node_stats) ++stats;
    });
    CHECK(f.cluster->events().subscriber_count() == 1);
    auto [id, key] = f.active_node("n1");
    f.nodes().report_stats(id, sample(1));
    f.nodes().request_join({"n1", "", "", ""});  // already active: no event
  }
  CHECK(f.cluster->events().subscriber_count() == 0);
  f.nodes().request_join({"n2", "", "", ""});
  CHECK(joined == 1);
  CHECK(approved == 1);
  CHECK(stats == 1);
}

TEST_CASE("cluster: options are validated") {
  testsupport::TempDir dir;
  Options o;
  o.database_path = "";
  CHECK_THROWS_AS(Cluster{o}, Error);
  o.database_path = dir.file("x.db");
  o.nodes.stats_history = 0;
  CHECK_THROWS_AS(Cluster{o}, Error);
  o.nodes.stats_history = 10;
  o.database_path = dir.file("no/such/dir/x.db");
  CHECK_THROWS_AS(Cluster{o}, Error);
}
