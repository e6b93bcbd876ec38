#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "lucidnode/database.hpp"
#include "lucidnode/postgres.hpp"
#include "store/backend.hpp"
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

// ------------------------------------------------------------ the store API

namespace {
// A table of every column type the store binds and reads.
void make_values(Store& s) {
  s.write([](Conn& c) {
    c.exec("CREATE TABLE vals(id INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT UNIQUE, i INTEGER, d REAL, t TEXT, b BLOB)");
  });
}
}  // namespace

TEST_CASE("store api: every bind type reads back through its getter") {
  testsupport::TempDir dir;
  Store s(StoreConfig{dir.file("a.db")});
  make_values(s);
  const std::string blob("\x00\x01\xff\x00z", 5);  // NUL bytes inside and at the start
  const std::string text_with_nul("a\0b", 3);
  const std::int64_t big = std::numeric_limits<std::int64_t>::min();
  s.write([&](Conn& c) {
    auto& q = c.stmt("INSERT INTO vals(k, i, d, t, b) VALUES (?1, ?2, ?3, ?4, ?5)");
    q.bind(1, "int64");
    q.bind(2, big);
    q.bind(3, 2.5);
    q.bind(4, std::string_view("view"));
    q.bind_blob(5, blob);
    q.run();
    q.reset();
    q.bind(1, std::string("int"));
    q.bind(2, -7);
    q.bind(3, 1e300);
    q.bind(4, text_with_nul);
    q.bind_blob(5, std::string());
    q.run();
    q.reset();
    q.bind(1, "null");
    q.bind(2, nullptr);
    q.bind(3, nullptr);
    q.bind(4, static_cast<const char*>(nullptr));  // a null C string binds NULL
    q.bind(5, nullptr);
    q.run();
  });
  s.read([&](Conn& c) {
    auto& q = c.stmt("SELECT i, d, t, b FROM vals WHERE k = ?1");
    q.bind(1, "int64");
    REQUIRE(q.step());
    CHECK(q.column(0).as_int64() == big);
    CHECK(q.column(1).as_double() == 2.5);
    CHECK(q.column(2).as_text() == "view");
    CHECK(q.column(3).as_blob() == blob);
    CHECK(q.column(3).as_blob().size() == 5);
    CHECK_FALSE(q.column(3).is_null());
    CHECK_FALSE(q.step());
    q.reset();
    q.bind(1, "int");
    REQUIRE(q.step());
    CHECK(q.column(0).as_int() == -7);
    CHECK(q.column(1).as_double() == 1e300);
    CHECK(q.column(2).as_text() == text_with_nul);
    CHECK(q.column(3).as_blob().empty());
    CHECK_FALSE(q.column(3).is_null());  // an empty blob is not NULL
    q.reset();
    q.bind(1, "null");
    REQUIRE(q.step());
    for (int i = 0; i < 4; ++i) CHECK(q.column(i).is_null());
    CHECK(q.column(0).as_int64() == 0);
    CHECK(q.column(1).as_double() == 0.0);
    CHECK(q.column(2).as_text().empty());
    CHECK(q.column(3).as_blob().empty());
  });
}

TEST_CASE("store api: stmt() hands out a cached statement reset, with bindings cleared") {
  testsupport::TempDir dir;
  Store s(StoreConfig{dir.file("a.db")});
  s.read([](Conn& c) {
    static const char* const kSql = "SELECT ?1 IS NULL, ?1";
    auto& q = c.stmt(kSql);
    q.bind(1, 42);
    REQUIRE(q.step());
    CHECK(q.column(0).as_int() == 0);
    CHECK(q.column(1).as_int() == 42);
    auto& again = c.stmt(kSql);  // mid-iteration before: must start over, unbound
    CHECK(&again == &q);
    REQUIRE(again.step());
    CHECK(again.column(0).as_int() == 1);
  });
}

TEST_CASE("store api: RETURNING gives generated ids; ON CONFLICT upserts") {
  testsupport::TempDir dir;
  Store s(StoreConfig{dir.file("a.db")});
  make_values(s);
  const auto ids = s.write([](Conn& c) {
    auto& ins = c.stmt("INSERT INTO vals(k, i) VALUES (?1, ?2) RETURNING id");
    ins.bind(1, "a");
    ins.bind(2, 1);
    const std::int64_t a = ins.run_returning_id();
    ins.bind(1, "b");
    ins.bind(2, 2);
    const std::int64_t b = ins.run_returning_id();
    return std::make_pair(a, b);
  });
  CHECK(ids.first >= 1);
  CHECK(ids.second == ids.first + 1);
  const auto upserted = s.write([](Conn& c) {
    auto& up = c.stmt(
        "INSERT INTO vals(k, i) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET i = excluded.i RETURNING id");
    up.bind(1, "a");
    up.bind(2, 10);
    const std::int64_t id = up.run_returning_id();  // the existing row's id, not a new one
    auto& none = c.stmt("INSERT INTO vals(k, i) VALUES (?1, ?2) ON CONFLICT (k) DO NOTHING");
    none.bind(1, "b");
    none.bind(2, 20);
    none.run();
    CHECK(c.changes() == 0);
    none.reset();
    none.bind(1, "c");
    none.bind(2, 30);
    none.run();
    CHECK(c.changes() == 1);
    return id;
  });
  CHECK(upserted == ids.first);
  s.read([](Conn& c) {
    auto& q = c.stmt("SELECT k, i FROM vals ORDER BY k");
    std::string seen;
    while (q.step()) seen += q.column(0).as_text() + "=" + std::to_string(q.column(1).as_int64()) + " ";
    CHECK(seen == "a=10 b=2 c=30 ");
  });
  // A RETURNING statement that inserts nothing has no id to give.
  CHECK_THROWS_AS(s.write([](Conn& c) {
    auto& none = c.stmt("INSERT INTO vals(k) VALUES ('a') ON CONFLICT (k) DO NOTHING RETURNING id");
    return none.run_returning_id();
  }), Error);
}

TEST_CASE("store api: a read transaction is one snapshot") {
  testsupport::TempDir dir;
  Store s(StoreConfig{dir.file("a.db")});
  make_values(s);
  s.read([&](Conn& c) {
    auto& q = c.stmt("SELECT COUNT(*) FROM vals");
    REQUIRE(q.step());
    CHECK(q.column(0).as_int() == 0);
    q.reset();
    s.write([](Conn& w) { w.exec("INSERT INTO vals(k) VALUES ('late')"); });  // commits beside the reader
    REQUIRE(q.step());
    CHECK(q.column(0).as_int() == 0);
  });
  CHECK(s.read([](Conn& c) {
    auto& q = c.stmt("SELECT COUNT(*) FROM vals");
    q.step();
    return q.column(0).as_int();
  }) == 1);
}

TEST_CASE("store api: misuse and SQL errors become Error(storage, \"database error: ...\")") {
  testsupport::TempDir dir;
  Store s(StoreConfig{dir.file("a.db")});
  make_values(s);
  auto storage_error = [&](auto&& f) -> std::string {
    try {
      s.write(f);
    } catch (const Error& e) {
      CHECK(e.code() == Errc::storage);
      return e.message();
    }
    FAIL("expected Error(storage)");
    return {};
  };
  CHECK(storage_error([](Conn& c) { c.stmt("SELECT nope FROM vals"); }).find("database error: no such column") == 0);
  CHECK(storage_error([](Conn& c) {
          auto& q = c.stmt("SELECT 1 WHERE 0");
          q.step();
          q.column(0);  // no row
        }).find("database error: ") == 0);
  CHECK(storage_error([](Conn& c) {
          auto& q = c.stmt("SELECT 1");
          q.step();
          q.column(1);  // no such column
        }).find("database error: ") == 0);
  CHECK(storage_error([](Conn& c) { c.stmt("SELECT ?1").bind(2, 1); }).find("database error: ") == 0);
  CHECK(storage_error([](Conn& c) {
          c.exec("INSERT INTO vals(k) VALUES ('x')");
          c.exec("INSERT INTO vals(k) VALUES ('x')");
        }) == "database error: UNIQUE constraint failed: vals.k");
  // Nothing of the failed transactions stayed.
  CHECK(s.read([](Conn& c) {
    auto& q = c.stmt("SELECT COUNT(*) FROM vals");
    q.step();
    return q.column(0).as_int();
  }) == 0);
}

TEST_CASE("store api: an uncached statement for SQL built at run time") {
  testsupport::TempDir dir;
  Store s(StoreConfig{dir.file("a.db")});
  for (int n : {3, 5}) {
    const std::string sql = "SELECT " + std::to_string(n) + " * ?1";
    CHECK(s.read([&](Conn& c) {
      auto q = c.prepare(sql.c_str());
      q->bind(1, 2);
      q->step();
      return q->column(0).as_int();
    }) == 2 * n);
  }
}

TEST_CASE("store: the database argument is a path, sqlite:PATH or a PostgreSQL URI; anything else is refused") {
  using lucid::DatabaseKind;
  using lucid::parse_database;
  lucid::enable_postgres();  // libpq checks the URIs' syntax (the last bad one below)
  auto spec = parse_database("./var/lucid.db");
  CHECK((spec.kind == DatabaseKind::sqlite && spec.target == "./var/lucid.db"));
  CHECK(parse_database(":memory:").kind == DatabaseKind::sqlite);
  CHECK(parse_database("/srv/a:b.db").target == "/srv/a:b.db");  // a colon after a slash is a path
  spec = parse_database("sqlite:/srv/lucid.db");
  CHECK((spec.kind == DatabaseKind::sqlite && spec.target == "/srv/lucid.db"));
  spec = parse_database("postgresql://lucid@db.example.com:5433/fleet?sslmode=require");
  CHECK((spec.kind == DatabaseKind::postgres && spec.display == spec.target));
  CHECK(parse_database("postgres:///fleet?host=/run/postgresql").kind == DatabaseKind::postgres);
  // The password never reaches `display`, in the user part or as a parameter.
  spec = parse_database("postgresql://lucid:s3cr%40t@db/fleet?password=other&sslmode=require");
  CHECK(spec.display == "postgresql://lucid:***@db/fleet?password=***&sslmode=require");
  CHECK(spec.target.find("s3cr%40t") != std::string::npos);
  // Refused with a message that says what is accepted (and never the password).
  for (const char* bad : {"", "mysql://root@db/x", "postgresql:fleet", "postgresql:/fleet", "sqlite:",
                          "sqlite://x.db", "file:lucid.db", "http://example.com/db", "lucid.db:",
                          "postgresql://u:hunter2@db/x?port=notaport&x"}) {
    try {
      parse_database(bad);
      FAIL("accepted: " << bad);
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_argument);
      CHECK(e.field() == "database_path");
      CHECK(e.message().find("postgresql://") != std::string::npos);
      CHECK(e.message().find("hunter2") == std::string::npos);
    }
  }
  CHECK_THROWS_AS(parse_database(std::string(5000, 'a')), Error);
  CHECK_THROWS_AS(parse_database(std::string("a\0b", 3)), Error);
}

TEST_CASE("store: without liblucidnode_postgres a PostgreSQL database is refused, saying what to link") {
  lucid::enable_postgres();
  const lucid::DatabaseProvider* provider = lucid::detail::database_provider(lucid::DatabaseKind::postgres);
  REQUIRE(provider != nullptr);
  lucid::register_database_provider(lucid::DatabaseKind::postgres, nullptr);  // a program that did not link it
  // The syntax libpq would refuse is not checked without libpq...
  CHECK(lucid::parse_database("postgresql://u:hunter2@db/x?port=notaport&x").kind == lucid::DatabaseKind::postgres);
  // ...and opening the database says what is missing (never the password).
  try {
    Store s(StoreConfig{"postgresql://u:hunter2@db.invalid/x", false, std::chrono::milliseconds(100), 1, {}});
    FAIL("opened without the PostgreSQL backend");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_argument);
    CHECK(e.field() == "database_path");
    CHECK(e.message().find("liblucidnode_postgres") != std::string::npos);
    CHECK(e.message().find("lucid::enable_postgres()") != std::string::npos);
    CHECK(e.message().find("hunter2") == std::string::npos);
  }
  // SQLite needs nothing.
  CHECK_NOTHROW(Store(StoreConfig{":memory:", false, std::chrono::milliseconds(100), 1, {}}));
  lucid::register_database_provider(lucid::DatabaseKind::postgres, provider);
  CHECK_THROWS_AS(lucid::parse_database("postgresql://u:hunter2@db/x?port=notaport&x"), Error);
}
