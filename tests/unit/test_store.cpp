#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include "lucidnode/error.hpp"
#include "store/migrations.hpp"
#include "store/store.hpp"
#include "support.hpp"

using lucid::Errc;
using lucid::Error;
using lucid::detail::Conn;
using lucid::detail::Store;
using lucid::detail::StoreConfig;

TEST_CASE("store: creates, migrates and records the schema version") {
  testsupport::TempDir dir;
  Store s(StoreConfig{dir.file("a.db")});
  CHECK(s.schema_version() == Store::latest_schema_version());
  auto n = s.read([](Conn& c) {
    auto& q = c.stmt("SELECT COUNT(*) FROM schema_migrations");
    q.executeStep();
    return q.getColumn(0).getInt();
  });
  // One row per applied migration, and the versions are exactly 1..N in order
  // (a merge that misorders or drops one must fail here, not in production).
  CHECK(n == static_cast<int>(lucid::detail::migrations().size()));
  int expected = 1;
  for (const auto& m : lucid::detail::migrations()) CHECK(m.version == expected++);
  auto mode = s.read([](Conn& c) {
    auto& q = c.stmt("PRAGMA journal_mode");
    q.executeStep();
    return q.getColumn(0).getString();
  });
  CHECK(mode == "wal");
}

TEST_CASE("store: reopening does not migrate twice") {
  testsupport::TempDir dir;
  { Store s(StoreConfig{dir.file("a.db")}); }
  Store again(StoreConfig{dir.file("a.db")});
  CHECK(again.schema_version() == Store::latest_schema_version());
}

TEST_CASE("store: a database from a newer version is refused with a clear message") {
  testsupport::TempDir dir;
  { Store s(StoreConfig{dir.file("a.db")}); }
  {
    SQLite::Database db(dir.file("a.db"), SQLite::OPEN_READWRITE);
    db.exec("INSERT INTO schema_migrations(version, name, applied_at) VALUES (999, 'future', 'x')");
  }
  try {
    Store s(StoreConfig{dir.file("a.db")});
    FAIL("a newer schema must be refused");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::storage);
    CHECK(e.message().find("newer") != std::string::npos);
    CHECK(e.message().find("999") != std::string::npos);
  }
}

namespace {
// A table of the tests' own, so they do not depend on the product schema.
void make_probe(Store& s) {
  s.write([](Conn& c) { c.exec("CREATE TABLE probe(id INTEGER PRIMARY KEY, v TEXT UNIQUE)"); });
}
}  // namespace

TEST_CASE("store: a failed write transaction leaves nothing behind") {
  testsupport::TempDir dir;
  Store s(StoreConfig{dir.file("a.db")});
  make_probe(s);
  CHECK_THROWS_AS(s.write([](Conn& c) {
    c.exec("INSERT INTO probe(v) VALUES ('u1')");
    throw Error(Errc::conflict, "boom");
  }), Error);
  auto n = s.read([](Conn& c) {
    auto& q = c.stmt("SELECT COUNT(*) FROM probe");
    q.executeStep();
    return q.getColumn(0).getInt();
  });
  CHECK(n == 0);
}

TEST_CASE("store: database errors become Error(storage) and roll back") {
  testsupport::TempDir dir;
  Store s(StoreConfig{dir.file("a.db")});
  make_probe(s);
  try {
    s.write([](Conn& c) {
      c.exec("INSERT INTO probe(v) VALUES ('u1')");
      c.exec("INSERT INTO probe(v) VALUES ('u1')");
    });
    FAIL("duplicate uuid must fail");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::storage);
  }
  auto n = s.read([](Conn& c) {
    auto& q = c.stmt("SELECT COUNT(*) FROM probe");
    q.executeStep();
    return q.getColumn(0).getInt();
  });
  CHECK(n == 0);
}

TEST_CASE("store: read-only open refuses writes and unmigrated files") {
  testsupport::TempDir dir;
  { Store s(StoreConfig{dir.file("a.db")}); }
  StoreConfig ro{dir.file("a.db")};
  ro.read_only = true;
  Store s(ro);
  CHECK_THROWS_AS(s.write([](Conn&) {}), Error);
  {
    SQLite::Database db(dir.file("empty.db"), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE x(a)");
  }
  StoreConfig bad{dir.file("empty.db")};
  bad.read_only = true;
  CHECK_THROWS_AS(Store{bad}, Error);
}

TEST_CASE("store: a reader sees a committed write at once") {
  testsupport::TempDir dir;
  Store s(StoreConfig{dir.file("a.db")});
  make_probe(s);
  auto count = [&] {
    return s.read([](Conn& c) {
      auto& q = c.stmt("SELECT COUNT(*) FROM probe");
      q.executeStep();
      return q.getColumn(0).getInt();
    });
  };
  CHECK(count() == 0);
  s.write([](Conn& c) {
    c.exec("INSERT INTO probe(v) VALUES ('u1')");
  });
  CHECK(count() == 1);
}
