// Direct SQL on a database file, as someone with file access could: for tests
// that damage or rewind stored state. Through the store API (a second Store
// on the same file; its migration step is a no-op on a current database).
#pragma once

#include <cstdint>
#include <string>

#include "store/store.hpp"

namespace testsupport {

// Runs `sql` (no parameters, no rows) in one write transaction on `path`.
// Throws lucid::Error(storage) on failure.
inline void db_exec(const std::string& path, const std::string& sql) {
  lucid::detail::Store s(lucid::detail::StoreConfig{path});
  s.write([&](lucid::detail::Conn& c) { c.exec(sql.c_str()); });
}

// The first column of the first row of `query` on `path`, as an integer.
// Throws lucid::Error(storage) on failure or when there is no row.
inline std::int64_t db_int(const std::string& path, const std::string& query) {
  lucid::detail::Store s(lucid::detail::StoreConfig{path});
  return s.read([&](lucid::detail::Conn& c) {
    auto q = c.prepare(query.c_str());
    q->step();
    return q->column(0).as_int64();
  });
}

}  // namespace testsupport
