// Numbered schema migrations. Append only: never edit a released migration.
//
// Each backend dialect has its own list (its DDL may differ), numbered alike:
// schema_migrations.version means the same schema on every backend.
#pragma once

#include <vector>

namespace lucid::detail {

// The SQL dialects a Backend may speak. Issue 14 adds PostgreSQL.
enum class Dialect { sqlite };

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

// The migrations for `dialect`, in version order 1, 2, ...
const std::vector<Migration>& migrations_for(Dialect dialect);

}  // namespace lucid::detail
