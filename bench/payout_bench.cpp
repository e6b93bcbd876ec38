// payout_bench — payouts and ledger figures, on the library directly (no HTTP).
//
//   1. A batch of --payouts payouts (default 10,000) from submit() until every
//      payout is completed, with the Cluster's own executor doing the work
//      (target < 2 s).
//   2. Ledger::verify() over --ledger-tx transactions (default 1,000,000),
//      generated through Ledger::append/seal (target >= 1,000,000 tx/s).
//
// Prints `key: value` lines and the machine; never asserts on time. Exit 0
// unless setup fails, 2 on a bad command line.
#include <sys/utsname.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include "lucidnode/lucidnode.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void print_machine() {
  utsname u{};
  if (uname(&u) == 0) std::printf("machine: %s %s %s\n", u.sysname, u.release, u.machine);
  std::printf("nproc: %u\n", std::thread::hardware_concurrency());
  std::ifstream cpu("/proc/cpuinfo");
  for (std::string line; std::getline(cpu, line);) {
    if (line.rfind("model name", 0) == 0) {
      std::printf("cpu: %s\n", line.substr(line.find(':') + 2).c_str());
      break;
    }
  }
#ifdef NDEBUG
  std::printf("bench_build: optimized (NDEBUG)\n");
#else
  std::printf("bench_build: debug (assertions on)\n");
#endif
}

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& where) {
    std::random_device rd;
    path = std::filesystem::path(where.empty() ? std::filesystem::temp_directory_path().string() : where) /
           ("lucid-payout-bench-" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

const char* kWallet = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t";

int bench_payouts(const std::string& dir, std::size_t payouts, std::size_t chunk) {
  TempDir tmp(dir);
  lucid::Options o;
  o.database_path = (tmp.path / "payouts.db").string();
  o.payouts.chunk = chunk;
  o.payouts.max_batch = std::max<std::size_t>(payouts, 1);
  lucid::Cluster cluster(o);
  std::vector<std::string> nodes;
  for (int i = 0; i < 100; ++i) {
    lucid::NodeCreate c;
    c.name = "bench-node-" + std::to_string(i);
    nodes.push_back(cluster.nodes().create(c).uid);
  }
  lucid::PayoutBatchRequest batch;
  batch.batch_id = "bench-1";
  for (std::size_t i = 0; i < payouts; ++i) {
    lucid::PayoutRequest r;
    r.node_uid = nodes[i % nodes.size()];
    r.amount = std::to_string(1 + i % 1000) + "." + std::to_string(100000 + i % 900000);
    r.currency = i % 2 ? "LUCID" : "USDT";
    r.wallet_address = kWallet;
    batch.requests.push_back(std::move(r));
  }
  cluster.start();
  const auto t0 = Clock::now();
  const auto submitted = cluster.payouts().submit(batch);
  const double submit_s = seconds_since(t0);
  auto state = submitted;
  while (state.completed + state.failed < static_cast<std::int64_t>(payouts)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    state = cluster.payouts().batch("bench-1");
    if (seconds_since(t0) > 600) {
      std::fprintf(stderr, "payout_bench: batch did not complete within 10 minutes\n");
      return 1;
    }
  }
  const double total_s = seconds_since(t0);
  cluster.stop();
  std::printf("payouts: %zu\n", payouts);
  std::printf("payout_chunk: %zu\n", chunk);
  std::printf("payout_interval_ms: %lld\n", static_cast<long long>(o.payouts.interval.count()));
  std::printf("payout_submit_s: %.3f\n", submit_s);
  std::printf("payout_submit_to_all_completed_s: %.3f   (target < 2)\n", total_s);
  std::printf("payouts_per_s: %.0f\n", static_cast<double>(payouts) / total_s);
  std::printf("payouts_completed: %lld\n", static_cast<long long>(state.completed));
  std::printf("payouts_failed: %lld\n", static_cast<long long>(state.failed));
  return state.completed == static_cast<std::int64_t>(payouts) ? 0 : 1;
}

// `keep_db`: verify this database as it is when it exists (no generation),
// else generate into it and keep it for the next run.
int bench_verify(const std::string& dir, std::size_t txs, int rounds, const std::string& keep_db) {
  TempDir tmp(dir);
  const bool reuse = !keep_db.empty() && std::filesystem::exists(keep_db);
  lucid::Options o;
  o.database_path = keep_db.empty() ? (tmp.path / "ledger.db").string() : keep_db;
  lucid::Cluster cluster(o);
  auto& ledger = cluster.ledger();
  if (reuse) txs = static_cast<std::size_t>(ledger.info().transactions);
  // Payout-shaped transactions: the same sizes the payout processor writes.
  const auto t0 = Clock::now();
  const std::size_t per_call = static_cast<std::size_t>(lucid::Ledger::kMaxBlockTransactions);
  for (std::size_t done = reuse ? txs : 0; done < txs;) {
    std::vector<lucid::TransactionInput> in;
    const std::size_t n = std::min(per_call, txs - done);
    in.reserve(n);
    for (std::size_t i = 0; i < n; ++i, ++done) {
      char id[32];
      std::snprintf(id, sizeof id, "payout_%016zx", done);
      std::string payload = "{\"amount_micros\":" + std::to_string(1000000 + done) +
                            ",\"batch_id\":\"bench\",\"currency\":\"USDT\",\"node_id\":\"node_00000000000000aa\","
                            "\"payout_id\":\"" + id + "\",\"wallet_address\":\"" + kWallet + "\"}";
      in.push_back({"payout", id, std::move(payload)});
    }
    ledger.append(in);
    ledger.seal();
  }
  const double gen_s = seconds_since(t0);
  std::printf("ledger_transactions: %zu\n", txs);
  if (reuse)
    std::printf("ledger_db: %s (reused)\n", keep_db.c_str());
  else
    std::printf("ledger_generate_s: %.2f   (append + seal, not the measured figure)\n", gen_s);
  double best = 1e300;
  for (int r = 0; r < rounds; ++r) {
    const auto t1 = Clock::now();
    const auto rep = ledger.verify();
    const double s = seconds_since(t1);
    if (!rep.ok || rep.transactions != static_cast<std::int64_t>(txs)) {
      std::fprintf(stderr, "payout_bench: verify failed: %s\n", rep.problem.c_str());
      return 1;
    }
    std::printf("ledger_verify_round_%d_s: %.3f  (%lld blocks, %.0f tx/s)\n", r + 1, s,
                static_cast<long long>(rep.blocks), static_cast<double>(txs) / s);
    best = std::min(best, s);
  }
  std::printf("ledger_verify_tx_per_s: %.0f   (best of %d; target >= 1000000)\n", static_cast<double>(txs) / best,
              rounds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t payouts = 10000, ledger_tx = 1000000, chunk = 1000;
  int rounds = 3;
  std::string dir, keep_db;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "payout_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (a == "--payouts") payouts = std::stoul(next());
      else if (a == "--ledger-tx") ledger_tx = std::stoul(next());
      else if (a == "--chunk") chunk = std::stoul(next());
      else if (a == "--rounds") rounds = std::stoi(next());
      else if (a == "--dir") dir = next();
      else if (a == "--ledger-db") keep_db = next();
      else {
        std::fprintf(stderr,
                     "usage: payout_bench [--payouts N] [--chunk N] [--ledger-tx N] [--rounds N] [--dir DIR]"
                     " [--ledger-db PATH]\n");
        return 2;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "payout_bench: bad value for %s\n", a.c_str());
      return 2;
    }
  }
  if (rounds < 1) rounds = 1;
  print_machine();
  try {
    int rc = 0;
    if (payouts > 0) rc |= bench_payouts(dir, payouts, chunk);
    std::fflush(stdout);
    if (ledger_tx > 0) rc |= bench_verify(dir, ledger_tx, rounds, keep_db);
    return rc;
  } catch (const lucid::Error& e) {
    std::fprintf(stderr, "payout_bench: %s\n", e.what());
    return 1;
  }
}
