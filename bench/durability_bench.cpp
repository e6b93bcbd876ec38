// durability_bench — what a durable commit costs (issue 12 item 8).
//
//   1. The store alone: --commits transactions (default 200) each inserting one
//      payout-sized row, first with Store::write (synchronous = NORMAL), then
//      with Store::write_durable (synchronous = FULL: the WAL is fsynced at
//      every COMMIT).
//   2. The real path: --commits single-payout batches through
//      Payouts::submit, each one durable commit.
//
// The database lives in --dir (default: the current directory; put it on the
// disk you care about: on tmpfs an fsync costs nothing). Prints `key: value`
// lines (mean and p50/p99 per commit, in microseconds); never asserts on
// time. Exit 0 unless setup fails, 2 on a bad command line.
#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "lucidnode/lucidnode.hpp"
#include "store/store.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using lucid::detail::Conn;
using lucid::detail::Store;

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& where) {
    std::random_device rd;
    path = std::filesystem::absolute(where) / ("lucid-durability-bench-" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

void report(const char* name, std::vector<double> us) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  std::printf("%s_mean_us: %.1f\n%s_p50_us: %.1f\n%s_p99_us: %.1f\n", name, sum / static_cast<double>(us.size()),
              name, us[us.size() / 2], name, us[std::min(us.size() - 1, us.size() * 99 / 100)]);
}

template <class F>
std::vector<double> time_each(int n, F&& f) {
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    f(i);
    out.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int commits = 200;
  std::string dir = ".";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--commits" && i + 1 < argc) {
      commits = std::atoi(argv[++i]);
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: durability_bench [--commits N] [--dir DIR]\n");
      return 2;
    }
  }
  if (commits < 1 || commits > 1000000) {
    std::fprintf(stderr, "durability_bench: --commits must be 1..1000000\n");
    return 2;
  }
  utsname u{};
  if (uname(&u) == 0) std::printf("machine: %s %s %s\n", u.sysname, u.release, u.machine);
  std::printf("commits: %d\n", commits);
  try {
    TempDir tmp(dir);
    std::printf("dir: %s\n", tmp.path.string().c_str());
    {
      Store s(lucid::detail::StoreConfig{(tmp.path / "store.db").string()});
      s.write([](Conn& c) { c.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, uid TEXT, amount INTEGER, wallet TEXT)"); });
      auto insert = [](Conn& c, int i) {
        auto& q = c.stmt("INSERT INTO t(uid, amount, wallet) VALUES (?, ?, ?)");
        q.bind(1, "payout_" + std::to_string(i));
        q.bind(2, static_cast<std::int64_t>(i) * 1000);
        q.bind(3, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t");
        q.run();
      };
      report("store_write_normal", time_each(commits, [&](int i) { s.write([&](Conn& c) { insert(c, i); }); }));
      report("store_write_durable",
             time_each(commits, [&](int i) { s.write_durable([&](Conn& c) { insert(c, commits + i); }); }));
    }
    {
      lucid::Options o;
      o.database_path = (tmp.path / "cluster.db").string();
      lucid::Cluster cluster(o);  // not started: only the submit commits are timed
      lucid::NodeCreate nc;
      nc.name = "bench-node";
      const std::string node = cluster.nodes().create(nc).uid;
      report("payout_submit_durable", time_each(commits, [&](int i) {
               lucid::PayoutRequest r;
               r.node_uid = node;
               r.amount = "1.5";
               r.currency = "USDT";
               r.wallet_address = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t";
               cluster.payouts().submit({"bench-" + std::to_string(i), {r}});
             }));
    }
  } catch (const lucid::Error& e) {
    std::fprintf(stderr, "durability_bench: %s\n", e.message().c_str());
    return 1;
  }
  return 0;
}
