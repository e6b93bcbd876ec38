// The SQLite backend of the store. Internal.
//
// This file and sqlite_backend.cpp are the only code that includes SQLite's
// headers (SQLiteCpp is no longer used by the library). Statements wrap
// sqlite3_stmt directly: a column read is one sqlite3_column_* call.
#pragma once

#include <memory>
#include <string>

#include "store/backend.hpp"

namespace lucid::detail {

class SqliteBackend final : public Backend {
 public:
  // `path`: the database file. `busy_timeout_ms`: how long a connection waits
  // for another's lock before failing with "database is locked".
  SqliteBackend(std::string path, int busy_timeout_ms) : path_(std::move(path)), busy_timeout_ms_(busy_timeout_ms) {}

  Dialect dialect() const override { return Dialect::sqlite; }
  // Opens path_ (creating it when `writable`), with foreign keys on; a
  // writable connection also switches the file to WAL, synchronous = NORMAL.
  // Throws DatabaseError with SQLite's message.
  std::unique_ptr<Connection> open(bool writable) override;

 private:
  std::string path_;
  int busy_timeout_ms_;
};

}  // namespace lucid::detail
