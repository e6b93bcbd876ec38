// What a database argument (Options::database_path, lucid-server --db) names.
#pragma once

#include <string>
#include <string_view>

#include "lucidnode/export.hpp"

namespace lucid {
LUCID_PUBLIC_BEGIN

enum class DatabaseKind { sqlite, postgres };

struct DatabaseSpec {
  DatabaseKind kind = DatabaseKind::sqlite;
  // kind sqlite: the database file. kind postgres: the libpq connection URI
  // as given (it may hold a password: never print it; print `display`).
  std::string target;
  // For messages and logs: the file, or the URI with any password replaced
  // by "***" (in the user part and in a password= query parameter).
  std::string display;
};

// Parses a database argument:
//   PATH                          a SQLite file (as before; ":memory:" too)
//   sqlite:PATH                   a SQLite file, said explicitly
//   postgresql://... postgres://  a PostgreSQL database (libpq connection URI)
// Anything else that starts with a URL scheme ("mysql://...", "postgresql:db"
// without "//", "file:..."), an empty argument, or a PostgreSQL URI libpq
// cannot parse (checked when liblucidnode_postgres is enabled,
// lucidnode/postgres.hpp) is refused: throws Error(invalid_argument, field
// "database_path") saying what is accepted; the message never holds a
// password. Thread-safe.
DatabaseSpec parse_database(std::string_view arg);

// The backend of one database kind that lives outside liblucidnode
// (store/backend.hpp defines it; liblucidnode_postgres implements the
// PostgreSQL one). Embedders do not call this: they call the optional
// library's own function (lucid::enable_postgres()).
class DatabaseProvider;
// Registers `provider` for `kind` (null: none, which makes databases of that
// kind refused again). `provider` must outlive every Cluster opened with it.
// Thread-safe; never throws.
void register_database_provider(DatabaseKind kind, const DatabaseProvider* provider);

LUCID_PUBLIC_END
}  // namespace lucid
