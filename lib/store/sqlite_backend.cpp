#include "store/sqlite_backend.hpp"

#include <sqlite3.h>

namespace lucid::detail {

namespace {

[[noreturn]] void fail(sqlite3* db) { throw DatabaseError(sqlite3_errmsg(db)); }

class SqliteStatement final : public Statement {
 public:
  SqliteStatement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      sqlite3_finalize(stmt_);  // NULL-safe
      fail(db);
    }
    columns_ = sqlite3_column_count(stmt_);
  }
  ~SqliteStatement() override { sqlite3_finalize(stmt_); }
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  int column_count() const override { return columns_; }

 protected:
  void do_bind_null(int pos) override { check(sqlite3_bind_null(stmt_, pos)); }
  void do_bind_int64(int pos, std::int64_t v) override { check(sqlite3_bind_int64(stmt_, pos, v)); }
  void do_bind_double(int pos, double v) override { check(sqlite3_bind_double(stmt_, pos, v)); }
  void do_bind_text(int pos, std::string_view text) override {
    check(sqlite3_bind_text64(stmt_, pos, text.empty() ? "" : text.data(), text.size(), SQLITE_TRANSIENT,
                              SQLITE_UTF8));
  }
  void do_bind_blob(int pos, const void* data, std::size_t size) override {
    // A null pointer would bind NULL, not an empty blob.
    check(sqlite3_bind_blob64(stmt_, pos, size == 0 ? "" : data, size, SQLITE_TRANSIENT));
  }
  bool do_step() override {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_);
  }
  // sqlite3_reset returns the error of the last step again, which step()
  // has already reported; the statement is reset either way.
  void do_reset() override { sqlite3_reset(stmt_); }

 private:
  bool col_is_null(int i) const override { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }
  std::int64_t col_int64(int i) const override { return sqlite3_column_int64(stmt_, i); }
  int col_int(int i) const override { return sqlite3_column_int(stmt_, i); }
  double col_double(int i) const override { return sqlite3_column_double(stmt_, i); }
  std::string_view col_bytes(int i) const override {
    // blob before bytes: sqlite3_column_bytes reports the size of the form
    // sqlite3_column_blob converted the value to (the documented order).
    const void* p = sqlite3_column_blob(stmt_, i);
    const int n = sqlite3_column_bytes(stmt_, i);
    if (!p) return {};
    return std::string_view(static_cast<const char*>(p), static_cast<std::size_t>(n));
  }
  void clear_bindings() override { sqlite3_clear_bindings(stmt_); }

  void check(int rc) const {
    if (rc != SQLITE_OK) fail(db_);
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int columns_ = 0;
};

class SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  ~SqliteConnection() override { sqlite3_close_v2(db_); }
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  std::unique_ptr<Statement> prepare(const char* sql) override { return std::make_unique<SqliteStatement>(db_, sql); }
  void exec(const char* sql) override {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(db_);
  }
  int changes() const override { return sqlite3_changes(db_); }
  // IMMEDIATE: the write lock is taken at BEGIN (waiting up to the busy
  // timeout), so no statement of the transaction fails for lack of it.
  void begin(bool write) override { exec(write ? "BEGIN IMMEDIATE" : "BEGIN"); }
  void commit() override { exec("COMMIT"); }
  void rollback() noexcept override { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }
  // FULL in WAL mode: COMMIT fsyncs the WAL. NORMAL: a commit survives a
  // process crash; an OS crash or power loss may lose the last transactions.
  void set_durable(bool on) override { exec(on ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL"); }

 private:
  sqlite3* db_;
};

}  // namespace

std::unique_ptr<Connection> SqliteBackend::open(bool writable) {
  int flags = writable ? (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) : SQLITE_OPEN_READONLY;
  flags |= SQLITE_OPEN_NOMUTEX;  // each connection is used by one thread at a time
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path_.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    const std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    throw DatabaseError(message);
  }
  auto conn = std::make_unique<SqliteConnection>(db);  // closes db if what follows throws
  if (busy_timeout_ms_ > 0) sqlite3_busy_timeout(db, busy_timeout_ms_);
  conn->exec("PRAGMA foreign_keys = ON");
  if (writable) {
    conn->exec("PRAGMA journal_mode = WAL");
    // write_durable() raises it to FULL for the commits that move money or
    // extend the ledger.
    conn->set_durable(false);
  }
  return conn;
}

}  // namespace lucid::detail
