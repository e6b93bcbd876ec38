#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "lucidnode/error.hpp"
#include "store/migrations.hpp"
#include "store/sqlite_backend.hpp"
#include "store/store.hpp"
#include "support.hpp"

using lucid::Errc;
using lucid::Error;
using lucid::detail::Conn;
using lucid::detail::DatabaseError;
using lucid::detail::Dialect;
using lucid::detail::SqliteBackend;
using lucid::detail::Statement;
using lucid::detail::Store;
using lucid::detail::StoreConfig;

TEST_CASE("store: creates, migrates and records the schema version") {
  testsupport::TempDir dir;
  Store s(StoreConfig{dir.file("a.db")});
  CHECK(s.schema_version() == Store::latest_schema_version());
  auto n = s.read([](Conn& c) {
    auto& q = c.stmt("SELECT COUNT(*) FROM schema_migrations");
    q.step();
    return q.column(0).as_int();
  });
  // One row per applied migration, and the versions are exactly 1..N in order
  // (a merge that misorders or drops one must fail here, not in production).
  CHECK(n == static_cast<int>(lucid::detail::migrations_for(Dialect::sqlite).size()));
  int expected = 1;
  for (const auto& m : lucid::detail::migrations_for(Dialect::sqlite)) CHECK(m.version == expected++);
  auto mode = s.read([](Conn& c) {
    auto& q = c.stmt("PRAGMA journal_mode");
    q.step();
    return q.column(0).as_text();
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
    Store s(StoreConfig{dir.file("a.db")});
    s.write([](Conn& c) { c.exec("INSERT INTO schema_migrations(version, name, applied_at) VALUES (999, 'future', 'x')"); });
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
    q.step();
    return q.column(0).as_int();
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
    q.step();
    return q.column(0).as_int();
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
  SqliteBackend(dir.file("empty.db"), 5000).open(true)->exec("CREATE TABLE x(a)");
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
      q.step();
      return q.column(0).as_int();
    });
  };
  CHECK(count() == 0);
  s.write([](Conn& c) {
    c.exec("INSERT INTO probe(v) VALUES ('u1')");
  });
  CHECK(count() == 1);
}

TEST_CASE("store: migration 9 admits the viewer role and keeps users' sessions") {
  testsupport::TempDir dir;
  {
    // A database as migration 8 left it, with a user, a session and its refresh token.
    // (opened raw: a Store would migrate it to the latest version)
    auto db = SqliteBackend(dir.file("a.db"), 5000).open(true);
    db->exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)");
    for (const auto& m : lucid::detail::migrations_for(Dialect::sqlite)) {
      if (m.version > 8) break;
      db->exec(m.sql);
      auto q = db->prepare("INSERT INTO schema_migrations VALUES (?, ?, 'x')");
      q->bind(1, m.version);
      q->bind(2, m.name);
      q->run();
    }
    CHECK_THROWS_AS(db->exec("INSERT INTO users (id, email, username, role, password_hash, created_at, updated_at) "
                         "VALUES ('v', 'v@x', 'v', 'viewer', 'h', 't', 't')"), DatabaseError);
    db->exec("INSERT INTO users (id, email, username, role, password_hash, created_at, updated_at) "
            "VALUES ('u1', 'a@x', 'alice', 'admin', 'h', 't', 't')");
    db->exec("INSERT INTO auth_sessions (id, user_id, created_at_us, expires_at_us) VALUES ('s1', 'u1', 1, 2)");
    db->exec("INSERT INTO refresh_tokens (token_hash, session_id, expires_at_us) VALUES (x'01', 's1', 2)");
    db->exec("INSERT INTO login_attempts (user_id, code_hash, token_hash, expires_at_us) VALUES ('u1', x'02', x'03', 2)");
    db->exec("INSERT INTO network_keys (public_key, peer_id, role, created_at) VALUES (x'04', 'p', 'admin', 't')");
  }
  Store s(StoreConfig{dir.file("a.db")});
  CHECK(s.schema_version() == Store::latest_schema_version());
  auto count = [&](const char* sql) {
    return s.read([&](Conn& c) {
      auto& q = c.stmt(sql);
      q.step();
      return q.column(0).as_int();
    });
  };
  CHECK(count("SELECT COUNT(*) FROM users WHERE id = 'u1' AND role = 'admin'") == 1);
  CHECK(count("SELECT COUNT(*) FROM auth_sessions WHERE user_id = 'u1'") == 1);
  CHECK(count("SELECT COUNT(*) FROM refresh_tokens WHERE session_id = 's1'") == 1);
  CHECK(count("SELECT COUNT(*) FROM login_attempts WHERE user_id = 'u1'") == 1);
  CHECK(count("SELECT COUNT(*) FROM network_keys WHERE peer_id = 'p'") == 1);
  s.write([](Conn& c) {
    c.exec("INSERT INTO users (id, email, username, role, password_hash, created_at, updated_at) "
           "VALUES ('v', 'v@x', 'v', 'viewer', 'h', 't', 't')");
    c.exec("INSERT INTO network_keys (public_key, peer_id, role, created_at) VALUES (x'05', 'q', 'viewer', 't')");
  });
  CHECK(count("SELECT COUNT(*) FROM users WHERE role = 'viewer'") == 1);
  // the foreign keys still point at the rebuilt users table: deleting cascades
  s.write([](Conn& c) { c.exec("DELETE FROM users WHERE id = 'u1'"); });
  CHECK(count("SELECT COUNT(*) FROM auth_sessions") == 0);
  CHECK(count("SELECT COUNT(*) FROM refresh_tokens") == 0);
  CHECK(count("SELECT COUNT(*) FROM pragma_foreign_key_check") == 0);
  CHECK(count("SELECT COUNT(*) FROM tasks WHERE submitter <> ''") == 0);
}
