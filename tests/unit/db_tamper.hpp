// Direct SQL on a database file, as someone with file access could: for tests
// that damage or rewind stored state. Through the backend's own connection,
// not a Store: no transaction around it, foreign keys not enforced (as the
// database's own command-line shell would), no migration step.
#pragma once

#include <cstdint>
#include <string>

#include "store/sqlite_backend.hpp"

namespace testsupport {

// Runs `sql` (no parameters, no rows; may hold several statements, each
// committed on its own) on the database at `path`. Throws
// lucid::detail::DatabaseError on failure.
inline void db_exec(const std::string& path, const std::string& sql) {
  auto db = lucid::detail::SqliteBackend(path, 5000).open(true);
  db->exec("PRAGMA foreign_keys = OFF");
  db->exec(sql.c_str());
}

// The first column of the first row of `query` on `path`, as an integer (0
// when there is no row). Throws lucid::detail::DatabaseError on failure.
inline std::int64_t db_int(const std::string& path, const std::string& query) {
  auto db = lucid::detail::SqliteBackend(path, 5000).open(false);
  auto q = db->prepare(query.c_str());
  return q->step() ? q->column(0).as_int64() : 0;
}

}  // namespace testsupport
