// lib/util: the helpers every area shares (one copy each): public-id shapes,
// UUIDs, base58, atomic file writes, host probing, enum name tables.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>

#include "lucidnode/lucidnode.hpp"
#include "support.hpp"
#include "util/encoding.hpp"
#include "util/file.hpp"
#include "util/enum_names.hpp"
#include "util/host.hpp"
#include "util/ids.hpp"

using namespace lucid;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

bool uuid_shaped(const std::string& u) {
  if (u.size() != 36) return false;
  for (std::size_t i = 0; i < u.size(); ++i) {
    const char c = u[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return u[14] == '4' && (u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b');
}
}  // namespace

TEST_CASE("util: valid_uid is the documents' ^prefix[a-zA-Z0-9_-]+$, at most 64 characters") {
  CHECK(detail::valid_node_uid("node_a"));
  CHECK(detail::valid_node_uid("node_0123456789abcdef"));
  CHECK(detail::valid_node_uid("node_A-b_C"));
  CHECK(detail::valid_node_uid("node_" + std::string(59, 'x')));        // 64 in all
  CHECK_FALSE(detail::valid_node_uid("node_" + std::string(60, 'x')));  // 65
  CHECK_FALSE(detail::valid_node_uid("node_"));                         // nothing after the prefix
  CHECK_FALSE(detail::valid_node_uid("node"));
  CHECK_FALSE(detail::valid_node_uid(""));
  CHECK_FALSE(detail::valid_node_uid("Node_abc"));
  CHECK_FALSE(detail::valid_node_uid("pool_abc"));
  CHECK_FALSE(detail::valid_node_uid("node_a.b"));
  CHECK_FALSE(detail::valid_node_uid("node_a b"));
  CHECK_FALSE(detail::valid_node_uid("node_a/"));
  CHECK_FALSE(detail::valid_node_uid(std::string("node_a\0b", 8)));
  CHECK_FALSE(detail::valid_node_uid("node_\xc3\xa9"));  // é: not ASCII alphanumeric
  CHECK(detail::valid_pool_uid("pool_x"));
  CHECK_FALSE(detail::valid_pool_uid("node_x"));
  CHECK(detail::valid_uid("wf_1", "wf_"));
}

TEST_CASE("util: UUIDs are version 4, lower-case 8-4-4-4-12, and differ") {
  std::set<std::string> seen;
  for (int i = 0; i < 64; ++i) {
    const std::string u = detail::random_uuid();
    CHECK(uuid_shaped(u));
    seen.insert(u);
  }
  CHECK(seen.size() == 64);
  // The formatter sets the version and variant bits whatever the bytes are.
  CHECK(detail::uuid_v4(std::string(16, '\xff')) == "ffffffff-ffff-4fff-bfff-ffffffffffff");
  CHECK(detail::uuid_v4(std::string(16, '\0')) == "00000000-0000-4000-8000-000000000000");
  CHECK(detail::uuid_v4("\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef") ==
        "01234567-89ab-4def-8123-456789abcdef");
  CHECK_THROWS_AS(detail::uuid_v4("short"), std::invalid_argument);
  CHECK_THROWS_AS(detail::uuid_v4(std::string(17, 'a')), std::invalid_argument);
}

TEST_CASE("util: base58 round-trips, keeps leading zeros and refuses other characters") {
  CHECK(detail::base58_encode("") == "");
  CHECK(detail::base58_decode("") == std::string());
  CHECK(detail::base58_encode(std::string("\0\0\x01", 3)) == "112");
  CHECK(detail::base58_decode("112") == std::string("\0\0\x01", 3));
  CHECK(detail::base58_encode("hello world") == "StV1DL6CwTryKyV");  // the Bitcoin alphabet's vector
  CHECK(detail::base58_decode("StV1DL6CwTryKyV") == std::string("hello world"));
  CHECK(detail::base58_encode(std::string(1, '\xff')) == "5Q");
  for (const char* bad : {"0", "O", "I", "l", "1+", " 2"}) CHECK_FALSE(detail::base58_decode(bad));
  CHECK_FALSE(detail::base58_decode(std::string("1\0" "2", 3)));
  CHECK_FALSE(detail::base58_decode(std::string(257, '2')));  // bounded
  CHECK(detail::base58_decode(std::string(256, '2')));
  for (int n = 0; n < 40; ++n) {
    const std::string bytes = std::string(static_cast<std::size_t>(n % 3), '\0') + detail::random_bytes(static_cast<std::size_t>(n));
    CHECK(detail::base58_decode(detail::base58_encode(bytes)) == bytes);
  }
}

TEST_CASE("util: write_file_atomically replaces the whole file, mode 0600, and leaves no temporary") {
  testsupport::TempDir dir;
  const std::string path = dir.file("f");
  REQUIRE(detail::write_file_atomically(path, "first"));
  CHECK(slurp(path) == "first");
  struct stat st{};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const std::string big(3 << 20, 'x');  // several write() calls' worth
  REQUIRE(detail::write_file_atomically(path, big));
  CHECK(slurp(path) == big);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  REQUIRE(detail::write_file_atomically(path, ""));
  CHECK(slurp(path).empty());
  CHECK(detail::fsync_dir(dir.path.string()));
}

TEST_CASE("util: a stale temporary is refused or replaced as asked; failures leave nothing") {
  testsupport::TempDir dir;
  const std::string path = dir.file("key");
  { std::ofstream(path + ".tmp") << "half"; }
  errno = 0;
  CHECK_FALSE(detail::write_file_atomically(path, "new"));
  CHECK(errno == EEXIST);
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK(slurp(path + ".tmp") == "half");  // someone else's: not touched
  REQUIRE(detail::write_file_atomically(path, "new", detail::StaleTemp::replace));
  CHECK(slurp(path) == "new");
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

  // No such directory: false with errno, nothing created.
  const std::string nowhere = dir.file("missing/f");
  errno = 0;
  CHECK_FALSE(detail::write_file_atomically(nowhere, "x"));
  CHECK(errno == ENOENT);
  CHECK_FALSE(detail::fsync_dir(dir.file("missing")));
  // The rename fails (the target is a non-empty directory): the temporary is removed.
  const std::string target = dir.file("d");
  std::filesystem::create_directories(target + "/inner");
  CHECK_FALSE(detail::write_file_atomically(target, "x"));
  CHECK_FALSE(std::filesystem::exists(target + ".tmp"));
  CHECK(std::filesystem::is_directory(target));
}

TEST_CASE("util: write_new_file_synced never overwrites") {
  testsupport::TempDir dir;
  const std::string path = dir.file("once");
  REQUIRE(detail::write_new_file_synced(path, "a"));
  errno = 0;
  CHECK_FALSE(detail::write_new_file_synced(path, "b"));
  CHECK(errno == EEXIST);
  CHECK(slurp(path) == "a");  // the failed call did not remove what it did not create
}

TEST_CASE("util: read_cpuinfo counts processors and (physical id, core id) pairs, keeps the first model") {
  testsupport::TempDir dir;
  const std::string path = dir.file("cpuinfo");
  {
    std::ofstream f(path);
    f << "processor\t: 0\nmodel name\t: Example CPU @ 3.0GHz  \nphysical id\t: 0\ncore id\t\t: 0\n\n"
         "processor\t: 1\nmodel name\t: Other\nphysical id\t: 0\ncore id\t\t: 0\n\n"
         "processor\t: 2\nphysical id\t: 1\ncore id\t\t: 0\n\nno colon here\n";
  }
  const auto c = detail::read_cpuinfo(path);
  REQUIRE(c);
  CHECK(c->processors == 3);
  CHECK(c->physical_cores == 2);  // (0,0) twice, (1,0)
  CHECK(c->model == "Example CPU @ 3.0GHz");
  { std::ofstream(dir.file("arm")) << "processor : 0\nBogoMIPS : 50\n"; }
  const auto arm = detail::read_cpuinfo(dir.file("arm"));
  REQUIRE(arm);
  CHECK(arm->processors == 1);
  CHECK(arm->physical_cores == 0);
  CHECK(arm->model.empty());
  CHECK_FALSE(detail::read_cpuinfo(dir.file("absent")));
  const auto real = detail::read_cpuinfo();  // this machine
  REQUIRE(real);
  CHECK(real->processors >= 1);
}

TEST_CASE("util: read_meminfo takes MemTotal and MemAvailable in kB; zeros when unreadable") {
  testsupport::TempDir dir;
  const std::string path = dir.file("meminfo");
  { std::ofstream(path) << "MemTotal:       16384000 kB\nMemFree:         1000 kB\nMemAvailable:    8192000 kB\n"; }
  const auto m = detail::read_meminfo(path);
  CHECK(m.total_kb == 16384000);
  CHECK(m.available_kb == 8192000);
  const auto none = detail::read_meminfo(dir.file("absent"));
  CHECK(none.total_kb == 0);
  CHECK(none.available_kb == 0);
  CHECK(detail::read_meminfo().total_kb > 0);  // this machine
}

TEST_CASE("util: read_disk is statvfs in blocks; nullopt for a path that does not exist") {
  testsupport::TempDir dir;
  const auto d = detail::read_disk(dir.path.string());
  REQUIRE(d);
  CHECK(d->blocks > 0);
  CHECK(d->block_size > 0);
  CHECK(d->available_blocks <= d->free_blocks);
  CHECK(d->free_blocks <= d->blocks);
  CHECK_FALSE(detail::read_disk(dir.file("absent")));
}

namespace {
enum class Shade { dark = 3, light = 7 };
constexpr detail::EnumNames<Shade, 2> kShadeNames{{{Shade::dark, "dark"}, {Shade::light, "light"}}};
static_assert(detail::parse_enum(kShadeNames, "light") == Shade::light);  // usable at compile time

// Every value's name parses back to it, and names are distinct.
template <class E, class Name, class Parse>
void round_trip(std::initializer_list<E> values, Name name, Parse parse) {
  std::set<std::string> names;
  for (E v : values) {
    CHECK(parse(name(v)) == v);
    names.insert(name(v));
  }
  CHECK(names.size() == values.size());
  CHECK_FALSE(parse("no-such-name"));
  CHECK_FALSE(parse(""));
}
}  // namespace

TEST_CASE("util: enum tables name and parse by value, not by position, with a fallback") {
  CHECK(std::string(detail::enum_name(kShadeNames, Shade::light, "?")) == "light");
  CHECK(std::string(detail::enum_name(kShadeNames, static_cast<Shade>(0), "?")) == "?");
  CHECK(detail::parse_enum(kShadeNames, "dark") == Shade::dark);
  CHECK_FALSE(detail::parse_enum(kShadeNames, "Dark"));  // case-sensitive
  CHECK_FALSE(detail::parse_enum(kShadeNames, "dar"));
}

TEST_CASE("util: the table-driven enum names round-trip and keep their out-of-range fallbacks") {
  round_trip({Role::user, Role::viewer, Role::node_operator, Role::admin, Role::super_admin}, role_name, parse_role);
  CHECK(std::string(role_name(Role::node_operator)) == "node_operator");
  CHECK(std::string(role_name(static_cast<Role>(99))) == "user");
  round_trip({TaskPriority::low, TaskPriority::normal, TaskPriority::high, TaskPriority::urgent}, task_priority_name,
             parse_task_priority);
  CHECK(std::string(task_priority_name(static_cast<TaskPriority>(99))) == "normal");
  round_trip({TaskStatus::pending, TaskStatus::queued, TaskStatus::assigned, TaskStatus::running, TaskStatus::success,
              TaskStatus::failed, TaskStatus::cancelled, TaskStatus::timeout},
             task_status_name, parse_task_status);
  CHECK(std::string(task_status_name(static_cast<TaskStatus>(99))) == "pending");
  round_trip({SessionStatus::active, SessionStatus::completed, SessionStatus::failed, SessionStatus::cancelled},
             session_status_name, parse_session_status);
  round_trip({Currency::usdt, Currency::lucid}, currency_name, parse_currency);
  CHECK(std::string(currency_name(Currency::lucid)) == "LUCID");
  round_trip({PayoutStatus::pending, PayoutStatus::processing, PayoutStatus::completed, PayoutStatus::failed},
             payout_status_name, parse_payout_status);
  round_trip({Lifecycle::inactive, Lifecycle::starting, Lifecycle::active, Lifecycle::stopping, Lifecycle::maintenance,
              Lifecycle::error},
             lifecycle_name, parse_lifecycle);
  round_trip({NodeType::worker, NodeType::validator, NodeType::storage, NodeType::compute}, node_type_name,
             parse_node_type);
  round_trip({MetricType::cpu, MetricType::memory, MetricType::disk, MetricType::network}, metric_type_name,
             parse_metric_type);
  CHECK(std::string(poot_status_name(PootStatus::invalid)) == "invalid");
  CHECK(std::string(poot_status_name(static_cast<PootStatus>(99))) == "pending");
  CHECK(std::string(poot_failure_name(PootFailure::none)).empty());
  CHECK(std::string(poot_failure_name(PootFailure::nonce_replayed)) == "nonce_replayed");
  CHECK(std::string(liveness_name(Liveness::stale)) == "stale");
  CHECK(std::string(liveness_name(static_cast<Liveness>(99))) == "offline");
  CHECK(std::string(errc_name(Errc::resource_exhausted)) == "resource_exhausted");
  CHECK(std::string(errc_name(Errc::invalid_argument)) == "invalid_argument");
  CHECK(std::string(errc_name(static_cast<Errc>(99))) == "internal");
}
