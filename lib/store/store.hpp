// The store: a backend-neutral database API. Internal to the library.
//
// Capabilities reach the database only through Store::read/write and Conn,
// Statement and Column below; none of them names a database library. The
// Backend (store/backend.hpp) supplies connections; SQLite
// (store/sqlite_backend.*) is the first and only one, and the only code that
// includes SQLite headers. One writer connection (serialised by a mutex) and
// a small pool of reader connections (the backend lets readers run beside the
// writer: SQLite's WAL).
//
// SQL written against this API is the portable subset every backend runs:
// positional parameters `?` / `?N` (SQLite numbering: a bare `?` takes one
// more than the largest number so far), upserts with `ON CONFLICT (...) DO
// UPDATE/NOTHING`, generated ids through `RETURNING id`, and no functions of
// one engine (timestamps are computed in C++). See docs/architecture.md.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "lucidnode/error.hpp"
#include "store/migrations.hpp"

namespace lucid::detail {

// Thrown by backends for every database failure (cannot open, SQL error,
// constraint violation, busy). what() is the backend's message. Store turns it
// into Error(Errc::storage, "database error: " + what()) at the edge of
// read/write, so capabilities see only lucid::Error.
class DatabaseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Statement;

// One column of a statement's current row: a view, valid until the statement
// steps again, is reset or destroyed. Conversions follow the backend's rules
// (SQLite: NULL reads as 0, 0.0, "" or an empty blob).
// Throws DatabaseError when the statement has no current row or `index` is
// out of range (checked when the Column is made by Statement::column()).
class Column {
 public:
  Column(const Statement& s, int index) : s_(&s), i_(index) {}
  bool is_null() const;
  std::int64_t as_int64() const;
  int as_int() const;
  double as_double() const;
  // The value's bytes (a TEXT or BLOB may hold NUL bytes).
  std::string as_text() const;
  // The value's bytes without copying; valid as long as the Column is.
  std::string_view as_blob() const;

 private:
  const Statement* s_;
  int i_;
};

// A prepared statement. Parameters are 1-based (`?1` is position 1); columns
// are 0-based. Not thread-safe: a statement belongs to its connection, which
// one thread uses at a time. Every failure throws DatabaseError.
class Statement {
 public:
  virtual ~Statement() = default;

  void bind(int pos, std::nullptr_t) { do_bind_null(pos); }
  void bind(int pos, int v) { do_bind_int64(pos, v); }
  void bind(int pos, unsigned v) { do_bind_int64(pos, static_cast<std::int64_t>(v)); }
  void bind(int pos, long v) { do_bind_int64(pos, static_cast<std::int64_t>(v)); }
  void bind(int pos, long long v) { do_bind_int64(pos, static_cast<std::int64_t>(v)); }
  void bind(int pos, double v) { do_bind_double(pos, v); }
  void bind(int pos, std::string_view text) { do_bind_text(pos, text); }
  void bind(int pos, const std::string& text) { do_bind_text(pos, text); }
  // A null pointer binds NULL.
  void bind(int pos, const char* text) {
    if (text) do_bind_text(pos, text);
    else do_bind_null(pos);
  }
  // Binds bytes as a BLOB (not TEXT): for hashes, salts, sealed secrets.
  // `bytes`: any contiguous container of bytes (std::string, string_view,
  // std::array<unsigned char, N>, std::vector<unsigned char>).
  template <class Bytes>
  auto bind_blob(int pos, const Bytes& bytes) -> decltype(bytes.data(), bytes.size(), void()) {
    static_assert(sizeof(*bytes.data()) == 1, "bind_blob binds bytes");
    do_bind_blob(pos, bytes.data(), bytes.size());
  }
  void bind_blob(int pos, const void* data, std::size_t size) { do_bind_blob(pos, data, size); }

  // Runs the statement up to its next row: true when a row is available
  // (read it with column()), false when the statement is done.
  bool step() {
    has_row_ = do_step();
    return has_row_;
  }
  // Runs the statement to completion, discarding any rows. For statements
  // executed for their effect (INSERT/UPDATE/DELETE without RETURNING).
  void run() {
    while (step()) {
    }
  }
  // Runs an `INSERT ... RETURNING <id>` and returns the id of the row (the
  // portable way to learn a generated key). Throws DatabaseError if the
  // statement returns no row.
  std::int64_t run_returning_id() {
    if (!step()) throw DatabaseError("no row returned by an INSERT ... RETURNING");
    const std::int64_t id = column(0).as_int64();
    reset();
    return id;
  }
  // Makes the statement runnable again from the start; bindings are kept.
  void reset() {
    has_row_ = false;
    do_reset();
  }
  // Column `index` of the current row. Throws DatabaseError when there is no
  // current row or no such column.
  Column column(int index) const {
    if (!has_row_) throw DatabaseError("no row to read a column from: step() was not called or returned false");
    if (index < 0 || index >= column_count()) throw DatabaseError("column index out of range");
    return Column(*this, index);
  }
  virtual int column_count() const = 0;

 protected:
  virtual void do_bind_null(int pos) = 0;
  virtual void do_bind_int64(int pos, std::int64_t v) = 0;
  virtual void do_bind_double(int pos, double v) = 0;
  virtual void do_bind_text(int pos, std::string_view text) = 0;
  virtual void do_bind_blob(int pos, const void* data, std::size_t size) = 0;
  virtual bool do_step() = 0;
  virtual void do_reset() = 0;

 private:
  friend class Column;
  friend class Conn;
  virtual bool col_is_null(int i) const = 0;
  virtual std::int64_t col_int64(int i) const = 0;
  virtual int col_int(int i) const = 0;
  virtual double col_double(int i) const = 0;
  virtual std::string_view col_bytes(int i) const = 0;
  // Clears all bindings to NULL (Conn::stmt hands statements out clean).
  virtual void clear_bindings() = 0;

  bool has_row_ = false;
};

inline bool Column::is_null() const { return s_->col_is_null(i_); }
inline std::int64_t Column::as_int64() const { return s_->col_int64(i_); }
inline int Column::as_int() const { return s_->col_int(i_); }
inline double Column::as_double() const { return s_->col_double(i_); }
inline std::string Column::as_text() const { return std::string(s_->col_bytes(i_)); }
inline std::string_view Column::as_blob() const { return s_->col_bytes(i_); }

class Connection;  // store/backend.hpp
class Backend;     // store/backend.hpp

// One database connection with a cache of prepared statements. Used by one
// thread at a time (Store hands it to one transaction).
class Conn {
 public:
  explicit Conn(std::unique_ptr<Connection> raw);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // A prepared statement for `sql`, reset and with bindings cleared. `sql`
  // must have static storage duration (it keys the cache by address).
  // Throws DatabaseError if `sql` does not prepare.
  Statement& stmt(const char* sql);
  // A statement for SQL built at run time: not cached, owned by the caller,
  // who must destroy it before the transaction ends. Throws DatabaseError.
  std::unique_ptr<Statement> prepare(const char* sql);
  // Runs SQL without parameters that returns no rows (may hold several
  // statements). Throws DatabaseError.
  void exec(const char* sql);
  // Rows inserted, updated or deleted by the last statement that completed.
  int changes() const;
  // Resets every statement used since the last call: a statement left mid-
  // iteration would otherwise pin the transaction's snapshot past COMMIT.
  void reset_used();
  Connection& raw() { return *raw_; }

 private:
  std::unique_ptr<Connection> raw_;
  std::vector<Statement*> used_;
  std::unordered_map<const char*, std::unique_ptr<Statement>> cache_;
};

// Coordination of the servers that share one database (replicas,
// docs/architecture.md "Replicas"): a dedicated session that holds the
// leadership lock and carries messages between them (PostgreSQL: a
// session-level advisory lock, LISTEN/NOTIFY). Used by one thread, except
// interrupt(). Every other method throws DatabaseError when the session is
// lost (and with it the lock); the caller drops it and makes a new one.
// The first key of the two-key advisory locks that say a server instance is
// alive ("luci"); the second is its instance id (PostgreSQL only).
constexpr std::int32_t kInstanceLockClass = 0x6c756369;

class Coordinator {
 public:
  virtual ~Coordinator() = default;
  // Takes the leadership lock if free, or proves the session (and so the
  // lock) is still held: true while this session is the leader.
  virtual bool hold_leadership() = 0;
  // Takes this server's instance lock (kInstanceLockClass, `id`) if it is not
  // held yet; it lives as long as the session. While it is held, other
  // servers see the instance alive (ClusterCore::instance_alive). True when held.
  virtual bool hold_instance(std::int32_t id) = 0;
  // Sends `payload` (at most ~7900 bytes) to every other server's session.
  virtual void notify(const std::string& payload) = 0;
  // The other servers' payloads that arrived, waiting up to `timeout` for
  // the first (or until interrupt()); may be empty.
  virtual std::vector<std::string> wait(std::chrono::milliseconds timeout) = 0;
  // Makes a wait() in progress (or the next one) return at once. Any thread.
  virtual void interrupt() noexcept = 0;
};

struct StoreConfig {
  // A database argument (lucidnode/database.hpp): a SQLite path, sqlite:PATH,
  // or a postgresql:// URI.
  std::string path;
  bool read_only = false;
  std::chrono::milliseconds busy_timeout{5000};
  std::size_t max_readers = 8;
  // PostgreSQL: the password, when not in the URI or libpq's own sources.
  std::string password = {};
};

// The first line of the password file at `path` (without its line end):
// the PostgreSQL password of Options::database_password_file. Throws
// Error(storage) naming the file (never its content) when it cannot be read,
// is not a regular file, is readable by group or others, is empty, or is
// larger than 4 KiB.
std::string read_password_file(const std::string& path);

class Store {
 public:
  // Opens the database, applies pending migrations (unless read_only).
  // Throws Error(storage) on failure or when the schema is newer than ours,
  // Error(invalid_argument) when cfg.path names no supported database.
  explicit Store(StoreConfig cfg);
  ~Store();

  int schema_version() const { return schema_version_; }
  // The SQL dialect of the database (which migrations it runs).
  Dialect dialect() const;
  // A new coordination session (Coordinator above), or null when the
  // database serves one process (SQLite). Throws Error(storage) when it
  // cannot connect.
  std::unique_ptr<Coordinator> coordinate();
  static int latest_schema_version();

  // Runs f(Conn&) inside one write transaction: committed if f returns,
  // rolled back if it throws. lucid::Error passes through; database errors
  // become Error(storage, "database error: ...").
  template <class F>
  auto write(F&& f) -> decltype(f(std::declval<Conn&>())) {
    if (cfg_.read_only) throw Error(Errc::storage, "database is open read-only");
    std::lock_guard<std::mutex> lock(write_mu_);
    Txn txn(*writer_, true, true);
    return finish(txn, std::forward<F>(f));
  }

  // Like write(), and durable once it returns: this transaction's COMMIT
  // reaches stable storage (SQLite: PRAGMA synchronous = FULL, so COMMIT
  // fsyncs the WAL) and the commit (with every earlier one) survives power
  // loss; the writer returns to its normal mode afterwards, whatever happened.
  // For commits that move money or extend the ledger (payouts, wallets, chain
  // transactions, sealed blocks). write()'s commits survive a process crash
  // but may be lost on an OS crash or power loss (docs/decisions.md
  // "Durability of money"). Costs one fsync per commit. Errors: as write().
  template <class F>
  auto write_durable(F&& f) -> decltype(f(std::declval<Conn&>())) {
    if (cfg_.read_only) throw Error(Errc::storage, "database is open read-only");
    std::lock_guard<std::mutex> lock(write_mu_);
    Durable full(*writer_);  // outlives txn: the mode may change only outside a transaction
    Txn txn(*writer_, true, true);
    return finish(txn, std::forward<F>(f));
  }

  // For tests: when set, every write transaction calls hook(conn) inside the
  // transaction just before COMMIT (e.g. to read PRAGMA synchronous).
  // nullptr removes it. Process-wide; not for production use.
  using WriteHook = void (*)(Conn&);
  static void set_write_hook_for_test(WriteHook hook) noexcept;

  // Runs f(Conn&) inside one read transaction (a consistent snapshot).
  // Errors: as write().
  template <class F>
  auto read(F&& f) -> decltype(f(std::declval<Conn&>())) {
    Lease lease(*this);
    Txn txn(*lease.conn, false, false);
    return finish(txn, std::forward<F>(f));
  }

 private:
  struct Txn {
    // `write`: a write transaction (takes the write lock at BEGIN).
    // `hook`: its commit runs the test write hook (capability writes only).
    Txn(Conn& c, bool write, bool hook);
    ~Txn();  // rolls back unless committed
    void commit();
    Conn& conn;
    bool hook;
    bool open = false;
  };
  // The connection in durable-commit mode for its lifetime (normal after).
  struct Durable {
    explicit Durable(Conn& c);
    ~Durable();
    Conn& conn;
  };
  struct Lease {
    explicit Lease(Store& s);
    ~Lease();
    Store& store;
    std::unique_ptr<Conn> conn;
  };
  template <class F>
  static auto finish(Txn& txn, F&& f) -> decltype(f(std::declval<Conn&>())) {
    try {
      if constexpr (std::is_void_v<decltype(f(txn.conn))>) {
        f(txn.conn);
        txn.commit();
      } else {
        auto result = f(txn.conn);
        txn.commit();
        return result;
      }
    } catch (const DatabaseError& e) {
      throw Error(Errc::storage, std::string("database error: ") + e.what());
    }
  }

  std::unique_ptr<Conn> open_conn(bool writable);
  void migrate();

  StoreConfig cfg_;
  std::string display_;  // cfg_.path without a password, for messages
  std::unique_ptr<Backend> backend_;
  int schema_version_ = 0;
  std::mutex write_mu_;
  std::unique_ptr<Conn> writer_;
  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Conn>> idle_readers_;
  std::size_t readers_open_ = 0;
};

}  // namespace lucid::detail
