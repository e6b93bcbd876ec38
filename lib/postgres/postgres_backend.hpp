// The PostgreSQL backend of the store (libpq). Internal to
// liblucidnode_postgres, which registers it with the store through
// lucid::enable_postgres (provider.cpp): liblucidnode itself never loads libpq.
//
// This area (lib/postgres) is the only code that includes libpq's headers. The portable SQL of store/store.hpp is mapped once per prepared
// statement: `?N` / `?` become `$N` (outside string literals, quoted names
// and comments), the statement is prepared on the server under a name of its
// connection, and its parameter types are left to the server to infer from
// the SQL (as SQLite's loose typing lets a parameter take its column's type).
// Values travel as text (numbers) or raw bytes (BLOB binds, and TEXT binds
// to a BYTEA parameter); rows come back as text and are converted on read
// (BYTEA from its hex form, booleans 't'/'f' as 1/0).
//
// Transactions (docs/architecture.md, "PostgreSQL"):
// - write: BEGIN ISOLATION LEVEL READ COMMITTED, then
//   pg_advisory_xact_lock(kWriterLock). The store assumes one writer at a
//   time (SQLite's BEGIN IMMEDIATE); the transaction-level advisory lock
//   gives the same across every connection and every process on the
//   database, and is released by COMMIT/ROLLBACK or when the session dies.
//   READ COMMITTED, not REPEATABLE READ: a REPEATABLE READ snapshot would be
//   taken by the statement that waits for the lock, i.e. before the previous
//   writer committed, and the transaction would miss its writes. Under the
//   lock each later statement's snapshot sees every committed write and
//   nothing else can commit, so the transaction is as serial as SQLite's.
// - read: BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY, one snapshot.
// - durable: synchronous_commit on for write_durable()'s transactions, off
//   otherwise (a commit then survives a crash of lucid-server, which is
//   not the database, and an OS crash of the database host may lose the
//   last fraction of a second of commits; never a half transaction).
// Session settings: lock_timeout = the busy timeout (a writer waits that
// long for the writer lock, then fails as SQLite's busy handler does).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "store/backend.hpp"

struct pg_conn;
typedef struct pg_conn PGconn;  // libpq-fe.h's, without including it here

namespace lucid::detail {

class PostgresBackend final : public Backend {
 public:
  // `conninfo`: a libpq connection URI (postgresql://...). `password`: sent
  // as libpq's "password" keyword when not empty (else libpq's own sources:
  // the URI, PGPASSWORD, PGPASSFILE / ~/.pgpass). `display`: the URI without
  // its password, for messages. `busy_timeout`: lock_timeout of every session.
  PostgresBackend(std::string conninfo, std::string password, std::string display,
                  std::chrono::milliseconds busy_timeout)
      : conninfo_(std::move(conninfo)),
        password_(std::move(password)),
        display_(std::move(display)),
        busy_timeout_(busy_timeout) {}
  ~PostgresBackend() override;

  Dialect dialect() const override { return Dialect::postgres; }
  // Connects; `writable` false makes the session read-only
  // (default_transaction_read_only). Throws DatabaseError with libpq's
  // message (which never holds the password), or when the database's
  // encoding is not UTF8.
  std::unique_ptr<Connection> open(bool writable) override;
  // A session for replicas (postgres_backend.cpp, "coordination"): holds
  // the session-level advisory lock 7812726850731910258 while it leads, and
  // LISTENs on channel "lucid_events". Throws DatabaseError.
  std::unique_ptr<Coordinator> coordinate() override;

 private:
  // A new session with this backend's parameters; the caller owns it.
  // Throws DatabaseError (libpq's message) when it cannot connect.
  PGconn* connect() const;

  std::string conninfo_;
  std::string password_;
  std::string display_;
  std::chrono::milliseconds busy_timeout_;
};

// `sql` with SQLite's positional parameters (`?N`, and `?` meaning one more
// than the largest number so far) rewritten as PostgreSQL's `$N`; text in
// single-quoted literals, double-quoted names and comments is left alone.
// `params` receives the number of parameters (the largest N). Exposed for
// tests.
std::string postgres_placeholders(const char* sql, int& params);

}  // namespace lucid::detail
