// The embedding surface: version, and read-only opens without the key file.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdio>
#include <functional>
#include <string>

#include "lucidnode/lucidnode.hpp"
#include "support.hpp"

using lucid::Errc;
using lucid::Error;

namespace {
Errc code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  FAIL("no lucid::Error thrown");
  return Errc::internal;
}
bool exists(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0;
}
}  // namespace

TEST_CASE("embedding: version macros match the library") {
  const std::string v = std::to_string(LUCIDNODE_VERSION_MAJOR) + "." + std::to_string(LUCIDNODE_VERSION_MINOR) + "." +
                        std::to_string(LUCIDNODE_VERSION_PATCH);
  CHECK(v == LUCIDNODE_VERSION_STRING);
  CHECK(v == lucid::version());
  CHECK(LUCIDNODE_VERSION == LUCIDNODE_VERSION_MAJOR * 10000 + LUCIDNODE_VERSION_MINOR * 100 + LUCIDNODE_VERSION_PATCH);
}

TEST_CASE("embedding: a read-only open needs no key file and refuses what needs one") {
  testsupport::TempDir dir;
  lucid::Options o;
  o.database_path = dir.file("ro.db");
  std::string code;
  {
    lucid::Cluster c(o);
    code = c.nodes().request_join({"ro.example", "", "", ""}).registration_code;
  }
  REQUIRE(std::remove((o.database_path + ".key").c_str()) == 0);
  o.read_only = true;
  lucid::Cluster c(o);
  CHECK(c.nodes().count() == 1);
  CHECK(c.ledger().verify().ok);
  CHECK(code_of([&] { c.auth(); }) == Errc::unavailable);
  CHECK(code_of([&] { c.nodes().poll_by_code(code); }) == Errc::storage);  // a write (it issues the key)
  CHECK(code_of([&] { c.nodes().approve_by_code(code); }) == Errc::unavailable);
  lucid::StatsSample s;
  CHECK(code_of([&] { c.nodes().report_stats(1, s); }) == Errc::storage);
  CHECK_FALSE(exists(o.database_path + ".key"));
}

TEST_CASE("embedding: a read-only open still checks a key file that is there") {
  testsupport::TempDir dir;
  lucid::Options o;
  o.database_path = dir.file("ro.db");
  { lucid::Cluster c(o); }
  REQUIRE(::chmod((o.database_path + ".key").c_str(), 0644) == 0);
  o.read_only = true;
  CHECK(code_of([&] { lucid::Cluster c(o); }) == Errc::storage);
}
