// The store: SQLite through SQLiteCpp. Internal to the library.
//
// Capabilities reach the database only through Store::read/write and Conn, so
// that a different backend can later replace this file without touching them.
// One writer connection (serialised by a mutex, BEGIN IMMEDIATE) and a small
// pool of reader connections (WAL lets readers run beside the writer).
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "lucidnode/error.hpp"

namespace lucid::detail {

// One database connection with a cache of prepared statements.
class Conn {
 public:
  explicit Conn(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}
  // A prepared statement for `sql`, reset and with bindings cleared. `sql`
  // must have static storage duration (it keys the cache by address).
  SQLite::Statement& stmt(const char* sql);
  // Runs a statement that returns no rows.
  void exec(const char* sql) { db_->exec(sql); }
  long long last_insert_id() const { return db_->getLastInsertRowid(); }
  int changes() const { return db_->getChanges(); }
  SQLite::Database& db() { return *db_; }
  // Resets every statement used since the last call: a statement left mid-
  // iteration would otherwise pin the transaction's snapshot past COMMIT.
  void reset_used();

 private:
  std::unique_ptr<SQLite::Database> db_;
  std::vector<SQLite::Statement*> used_;
  std::unordered_map<const char*, std::unique_ptr<SQLite::Statement>> cache_;
};

struct StoreConfig {
  std::string path;
  bool read_only = false;
  std::chrono::milliseconds busy_timeout{5000};
  std::size_t max_readers = 8;
};

class Store {
 public:
  // Opens the database, applies pending migrations (unless read_only).
  // Throws Error(storage) on failure or when the schema is newer than ours.
  explicit Store(StoreConfig cfg);
  ~Store();

  int schema_version() const { return schema_version_; }
  static int latest_schema_version();

  // Runs f(Conn&) inside one write transaction: committed if f returns,
  // rolled back if it throws. lucid::Error passes through; database errors
  // become Error(storage).
  template <class F>
  auto write(F&& f) -> decltype(f(std::declval<Conn&>())) {
    if (cfg_.read_only) throw Error(Errc::storage, "database is open read-only");
    std::lock_guard<std::mutex> lock(write_mu_);
    Txn txn(*writer_, "BEGIN IMMEDIATE", true);
    return finish(txn, std::forward<F>(f));
  }

  // Like write(), and durable once it returns: this transaction runs with
  // PRAGMA synchronous = FULL, so COMMIT fsyncs the WAL and the commit (with
  // every earlier one) survives power loss; the writer returns to NORMAL
  // afterwards, whatever happened. For commits that move money or extend the
  // ledger (payouts, wallets, chain transactions, sealed blocks). write()'s
  // commits survive a process crash but may be lost on an OS crash or power
  // loss (docs/decisions.md "Durability of money"). Costs one fsync per commit.
  // Errors: as write().
  template <class F>
  auto write_durable(F&& f) -> decltype(f(std::declval<Conn&>())) {
    if (cfg_.read_only) throw Error(Errc::storage, "database is open read-only");
    std::lock_guard<std::mutex> lock(write_mu_);
    Synchronous full(*writer_);  // outlives txn: the level may change only outside a transaction
    Txn txn(*writer_, "BEGIN IMMEDIATE", true);
    return finish(txn, std::forward<F>(f));
  }

  // For tests: when set, every write transaction calls hook(conn) inside the
  // transaction just before COMMIT (e.g. to read PRAGMA synchronous).
  // nullptr removes it. Process-wide; not for production use.
  using WriteHook = void (*)(Conn&);
  static void set_write_hook_for_test(WriteHook hook) noexcept;

  // Runs f(Conn&) inside one read transaction (a consistent snapshot).
  template <class F>
  auto read(F&& f) -> decltype(f(std::declval<Conn&>())) {
    Lease lease(*this);
    Txn txn(*lease.conn, "BEGIN", false);
    return finish(txn, std::forward<F>(f));
  }

 private:
  struct Txn {
    Txn(Conn& c, const char* begin, bool write);
    ~Txn();  // rolls back unless committed
    void commit();
    Conn& conn;
    bool write;
    bool open = false;
  };
  // PRAGMA synchronous = FULL for its lifetime (NORMAL again after).
  struct Synchronous {
    explicit Synchronous(Conn& c);
    ~Synchronous();
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
    } catch (const SQLite::Exception& e) {
      throw Error(Errc::storage, std::string("database error: ") + e.what());
    }
  }

  std::unique_ptr<Conn> open_conn(bool writable);
  void migrate();

  StoreConfig cfg_;
  int schema_version_ = 0;
  std::mutex write_mu_;
  std::unique_ptr<Conn> writer_;
  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Conn>> idle_readers_;
  std::size_t readers_open_ = 0;
};

}  // namespace lucid::detail
