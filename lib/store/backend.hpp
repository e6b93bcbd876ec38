// The interface a database backend implements for Store. Internal.
//
// A Backend opens Connections; a Connection prepares Statements
// (store/store.hpp), runs parameterless SQL and brackets transactions. SQLite
// (store/sqlite_backend.hpp) and PostgreSQL (postgres/postgres_backend.hpp,
// in liblucidnode_postgres, through a DatabaseProvider) implement it; the server database maps `?N` parameters to its own form,
// BEGIN kinds to isolation levels and a writer lock, and durable mode to its
// commit-flush setting.
#pragma once

#include <memory>
#include <vector>

#include "lucidnode/database.hpp"
#include "store/migrations.hpp"
#include "store/store.hpp"

namespace lucid::detail {

// One connection to the database. Used by one thread at a time. Every method
// throws DatabaseError on failure unless it says otherwise.
class Connection {
 public:
  virtual ~Connection() = default;

  // Prepares one SQL statement with `?`/`?N` parameters.
  virtual std::unique_ptr<Statement> prepare(const char* sql) = 0;
  // Runs SQL without parameters or result rows (may hold several statements).
  virtual void exec(const char* sql) = 0;
  // Rows changed by the last INSERT/UPDATE/DELETE that completed.
  virtual int changes() const = 0;

  // Starts a transaction. A write transaction takes the database's write lock
  // up front (SQLite: BEGIN IMMEDIATE) so that it cannot fail half-way for
  // lack of it; a read transaction is one consistent snapshot.
  virtual void begin(bool write) = 0;
  virtual void commit() = 0;
  // Must not throw: called from destructors. A failed rollback leaves the
  // backend to roll back by itself (SQLite: on the next statement).
  virtual void rollback() noexcept = 0;
  // Durable mode on: every later COMMIT reaches stable storage before it
  // returns. Off: commits survive a process crash, not necessarily an OS
  // crash. Called only outside a transaction.
  virtual void set_durable(bool on) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Which SQL dialect this backend speaks; selects its migrations.
  virtual Dialect dialect() const = 0;
  // Opens a connection: writable ones may create the database. Throws
  // DatabaseError when the database cannot be opened.
  virtual std::unique_ptr<Connection> open(bool writable) = 0;
  // A new coordination session (store/store.hpp Coordinator), or null when
  // the database serves one process only (SQLite, the default). Throws
  // DatabaseError when it cannot connect.
  virtual std::unique_ptr<Coordinator> coordinate() { return nullptr; }
};

// The backend cfg.path names (lucidnode/database.hpp): SQLite for a path or
// sqlite:PATH, PostgreSQL (its registered provider's) for a postgresql://
// URI. Does not open anything yet. Throws Error(invalid_argument, field
// "database_path") when cfg.path names no supported database, or a
// PostgreSQL one in a program that did not link and enable
// liblucidnode_postgres.
std::unique_ptr<Backend> make_backend(const StoreConfig& cfg);

}  // namespace lucid::detail

namespace lucid {

// A backend that lives outside liblucidnode (liblucidnode_postgres keeps libpq
// out of the core), found through register_database_provider
// (lucidnode/database.hpp) — as LevelDB's Env: the core knows this interface,
// the provider knows the database's client library. Its methods may be
// called from any thread at once.
class DatabaseProvider {
 public:
  virtual ~DatabaseProvider() = default;
  // Throws Error(invalid_argument, field "database_path") when `spec` (as
  // parse_database made it) is no database this provider can open (a URI
  // its client library cannot parse); the message never holds a password.
  virtual void check(const DatabaseSpec& spec) const = 0;
  // The backend for `spec`; opens nothing yet.
  virtual std::unique_ptr<detail::Backend> make(const DatabaseSpec& spec, const detail::StoreConfig& cfg) const = 0;
};

namespace detail {
// The provider registered for `kind`, or null. Thread-safe.
const DatabaseProvider* database_provider(DatabaseKind kind);
}  // namespace detail

}  // namespace lucid
