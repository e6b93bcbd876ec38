// poot_bench — PoOT batch validation throughput of the core (no HTTP).
//
// Opens a Cluster on a fresh temporary database, makes --nodes active nodes,
// prepares --batches batches of 1000 proofs (round-robin over the nodes, each
// with --bytes of output and a fresh nonce; Ed25519-signed with --signed),
// then times Poot::validate_batch over them. Prints `key: value` lines; never
// asserts on timing (exit 0 unless setup failed, 2 on a bad command line).
//
//   build/bin/poot_bench --batches 50 --nodes 1000 --bytes 256 [--signed] [--threads 2]
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "lucidnode/lucidnode.hpp"

namespace {

using namespace lucid;
using Steady = std::chrono::steady_clock;

struct Args {
  int batches = 50;
  int nodes = 1000;
  int bytes = 256;
  int threads = 1;
  bool sign = false;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: poot_bench [--batches N (1..100000)] [--nodes N (1..100000)] [--bytes N (1..65536)]"
               " [--threads N (1..16)] [--signed]\n");
  std::exit(2);
}

int int_arg(int& i, int argc, char** argv, int lo, int hi) {
  if (i + 1 >= argc) usage();
  char* end = nullptr;
  const long v = std::strtol(argv[++i], &end, 10);
  if (*end != '\0' || v < lo || v > hi) usage();
  return static_cast<int>(v);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--batches") a.batches = int_arg(i, argc, argv, 1, 100000);
    else if (k == "--nodes") a.nodes = int_arg(i, argc, argv, 1, 100000);
    else if (k == "--bytes") a.bytes = int_arg(i, argc, argv, 1, 65536);
    else if (k == "--threads") a.threads = int_arg(i, argc, argv, 1, 16);
    else if (k == "--signed") a.sign = true;
    else usage();
  }
  return a;
}

std::string b64(const std::string& bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.pop_back();
  return out;
}

std::string hex(const unsigned char* p, std::size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.pop_back();
  return out;
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  if (sodium_init() < 0) return 1;
  const auto dir = std::filesystem::temp_directory_path() / ("poot-bench-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  int rc = 0;
  try {
    Options o;
    o.database_path = (dir / "bench.db").string();
    Cluster cluster(o);

    struct NodeKeys {
      std::string uid;
      unsigned char sk[crypto_sign_SECRETKEYBYTES];
    };
    std::vector<NodeKeys> nodes(static_cast<std::size_t>(args.nodes));
    for (int i = 0; i < args.nodes; ++i) {
      NodeCreate c;
      c.name = "bench-" + std::to_string(i);
      auto n = cluster.nodes().create(c);
      cluster.nodes().start(n.uid);
      StatsSample s;
      s.cpu_usage = 1;
      s.disk_usage = 1;
      cluster.nodes().report_stats(n.id, s);
      nodes[static_cast<std::size_t>(i)].uid = n.uid;
      if (args.sign) {
        unsigned char pk[crypto_sign_PUBLICKEYBYTES];
        crypto_sign_keypair(pk, nodes[static_cast<std::size_t>(i)].sk);
        cluster.poot().register_public_key(n.id, hex(pk, sizeof pk));
      }
    }
    cluster.nodes().flush_stats();

    // Prepared before timing: the bench measures validation, not proof making.
    std::mt19937_64 rng(42);
    std::vector<std::vector<PootProof>> batches(static_cast<std::size_t>(args.batches));
    std::size_t next = 0;
    for (int b = 0; b < args.batches; ++b) {
      auto& batch = batches[static_cast<std::size_t>(b)];
      batch.resize(1000);
      const std::string ts = format_rfc3339(cluster.clock().now(), true);
      for (int i = 0; i < 1000; ++i) {
        auto& p = batch[static_cast<std::size_t>(i)];
        auto& node = nodes[next++ % nodes.size()];
        std::string data(static_cast<std::size_t>(args.bytes), '\0');
        for (auto& ch : data) ch = static_cast<char>(rng());
        p.node_uid = node.uid;
        p.output_data = b64(data);
        p.timestamp = ts;
        p.nonce = "b" + std::to_string(b) + "-" + std::to_string(i);
        if (args.sign) {
          unsigned char d[crypto_hash_sha256_BYTES];
          crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(data.data()), data.size());
          const std::string msg = Poot::signed_message(p.node_uid, hex(d, sizeof d), p.timestamp, p.nonce);
          unsigned char sig[crypto_sign_BYTES];
          crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), node.sk);
          p.signature = hex(sig, sizeof sig);
        }
      }
    }

    std::atomic<int> cursor{0};
    std::atomic<std::int64_t> valid{0}, other{0};
    std::vector<std::vector<double>> lat(static_cast<std::size_t>(args.threads));
    const auto t0 = Steady::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < args.threads; ++t)
      workers.emplace_back([&, t] {
        for (int b; (b = cursor.fetch_add(1)) < args.batches;) {
          const auto s = Steady::now();
          auto r = cluster.poot().validate_batch(batches[static_cast<std::size_t>(b)]);
          lat[static_cast<std::size_t>(t)].push_back(std::chrono::duration<double, std::milli>(Steady::now() - s).count());
          valid += r.valid;
          other += r.invalid + r.errors;
        }
      });
    for (auto& w : workers) w.join();
    const double secs = std::chrono::duration<double>(Steady::now() - t0).count();
    std::vector<double> all;
    for (const auto& l : lat) all.insert(all.end(), l.begin(), l.end());
    const double proofs = static_cast<double>(args.batches) * 1000.0;
#ifdef NDEBUG
    std::printf("bench_build: optimized\n");
#else
    std::printf("bench_build: debug (assertions on)\n");
#endif
    std::printf("batches: %d\nbatch_size: 1000\nnodes: %d\noutput_bytes: %d\nsigned: %s\nthreads: %d\n", args.batches,
                args.nodes, args.bytes, args.sign ? "yes" : "no", args.threads);
    std::printf("valid: %lld\nnot_valid: %lld\n", static_cast<long long>(valid.load()),
                static_cast<long long>(other.load()));
    std::printf("seconds: %.3f\nproofs_per_s: %.0f\n", secs, proofs / secs);
    std::printf("batch_ms_p50: %.2f\nbatch_ms_p99: %.2f\n", pct(all, 50), pct(all, 99));
    if (valid.load() != static_cast<std::int64_t>(proofs)) {
      std::fprintf(stderr, "poot_bench: %lld proofs were not valid\n", static_cast<long long>(other.load()));
      rc = 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "poot_bench: %s\n", e.what());
    rc = 1;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rc;
}
