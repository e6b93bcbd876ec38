// network_bench: the Ed25519 challenge login end to end in-process (issue a
// challenge, verify the signature over its bytes, look the key up, sign a
// 24 h JWT) and bearer-token verification, on one thread. Prints figures;
// asserts nothing. Usage: network_bench [logins] [verifications]
#include <sodium.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lucidnode/lucidnode.hpp"

using namespace lucid;
using Steady = std::chrono::steady_clock;

namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.pop_back();
  return out;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

double seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  const int logins = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int verifications = argc > 2 ? std::atoi(argv[2]) : 200000;
  if (sodium_init() < 0 || logins < 1 || verifications < 1) return 2;
  utsname u{};
  uname(&u);
  std::printf("machine: %s, %ld cpus, %s %s\n", cpu_model().c_str(), sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release);
  std::printf("threads: 1\n");

  const auto dir = std::filesystem::temp_directory_path() / ("lucid-netbench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  {
    Options o;
    o.database_path = (dir / "bench.db").string();
    Cluster cluster(o);
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    cluster.network().add_key(hex(pk, sizeof pk), Role::admin, "bench");
    const std::string pk_hex = hex(pk, sizeof pk);

    // Logins: server-side time is challenge issue + login; the client's
    // signing is timed apart (it is not the server's work).
    Steady::duration server{}, client{};
    std::string token;
    for (int i = 0; i < logins; ++i) {
      auto t0 = Steady::now();
      // One client address, as GET /api/auth/challenge passes it: the
      // per-address bookkeeping (--max-challenges-per-client) is part of the cost.
      auto c = cluster.network().issue_challenge("127.0.0.1");
      auto t1 = Steady::now();
      unsigned char bytes[32], sig[crypto_sign_BYTES];
      sodium_hex2bin(bytes, sizeof bytes, c.challenge.data(), c.challenge.size(), nullptr, nullptr, nullptr);
      crypto_sign_detached(sig, nullptr, bytes, sizeof bytes, sk);
      const std::string sig_hex = hex(sig, sizeof sig);
      auto t2 = Steady::now();
      token = cluster.network().login(c.challenge, sig_hex, pk_hex).token;
      auto t3 = Steady::now();
      server += (t1 - t0) + (t3 - t2);
      client += t2 - t1;
    }
    std::printf("ed25519_logins: %d\n", logins);
    std::printf("ed25519_logins_per_second: %.0f (server side: challenge + verify + key lookup + JWT; target >= 10000)\n",
                logins / seconds(server));
    std::printf("ed25519_login_us: %.1f\n", seconds(server) * 1e6 / logins);
    std::printf("client_signing_us: %.1f (not counted)\n", seconds(client) * 1e6 / logins);

    // Issue 18: a login without public_key tries the registered keys (at
    // most 64, operators' first). With 64 keys: a valid signature stops at
    // its key; a bad one (what an anonymous caller can force per challenge)
    // checks all 64.
    {
      std::vector<std::string> sks;
      for (int i = 0; i < 63; ++i) {
        unsigned char opk[crypto_sign_PUBLICKEYBYTES], osk[crypto_sign_SECRETKEYBYTES];
        crypto_sign_keypair(opk, osk);
        cluster.network().add_key(hex(opk, sizeof opk), Role::admin, "bench-" + std::to_string(i));
        sks.emplace_back(reinterpret_cast<const char*>(osk), sizeof osk);
      }
      const int keyless = std::max(1, logins / 20);
      Steady::duration last{}, bad{};
      for (int i = 0; i < keyless; ++i) {
        auto c = cluster.network().issue_challenge("127.0.0.1");
        unsigned char bytes[32], sig[crypto_sign_BYTES];
        sodium_hex2bin(bytes, sizeof bytes, c.challenge.data(), c.challenge.size(), nullptr, nullptr, nullptr);
        crypto_sign_detached(sig, nullptr, bytes, sizeof bytes,
                             reinterpret_cast<const unsigned char*>(sks.back().data()));  // one of the 64
        auto t0 = Steady::now();
        (void)cluster.network().login(c.challenge, hex(sig, sizeof sig), "");
        last += Steady::now() - t0;
        auto c2 = cluster.network().issue_challenge("127.0.0.1");
        auto t1 = Steady::now();
        try {
          (void)cluster.network().login(c2.challenge, hex(sig, sizeof sig), "");
        } catch (const Error&) {
        }
        bad += Steady::now() - t1;
      }
      std::printf("keyless_login_64_keys_valid_us: %.1f (the signer among 64 admin keys)\n", seconds(last) * 1e6 / keyless);
      std::printf("keyless_login_64_keys_bad_signature_us: %.1f (the most an anonymous attempt costs)\n",
                  seconds(bad) * 1e6 / keyless);
    }

    // JWT verification: the login's token (peer subject: also checks the key
    // is registered and the peer not blacklisted), an admin token, and the
    // uncached signature check for reference.
    const std::string admin = cluster.auth().issue_token("bench", Role::admin, std::chrono::hours(1));
    auto time_verify = [&](const char* name, auto&& fn) {
      auto t0 = Steady::now();
      for (int i = 0; i < verifications; ++i) fn();
      const double s = seconds(Steady::now() - t0);
      std::printf("%s_per_second: %.0f\n", name, verifications / s);
    };
    time_verify("jwt_verify_admin_cached", [&] { (void)cluster.network().verify_token(admin); });
    time_verify("jwt_verify_login_token_cached", [&] { (void)cluster.network().verify_token(token); });
    const int uncached = std::min(verifications, 20000);
    auto t0 = Steady::now();
    for (int i = 0; i < uncached; ++i) (void)cluster.auth().verify_token(admin);
    std::printf("jwt_verify_uncached_signature_per_second: %.0f (target for the cached path: >= 50000)\n",
                uncached / seconds(Steady::now() - t0));
  }
  std::filesystem::remove_all(dir);
  return 0;
}
