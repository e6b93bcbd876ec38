// Numbered schema migrations. Append only: never edit a released migration.
//
// Each backend dialect has its own list (its DDL may differ), numbered alike:
// schema_migrations.version means the same schema on every backend.
#pragma once

#include <vector>

namespace lucid::detail {

// The SQL dialects a Backend may speak.
enum class Dialect { sqlite, postgres };

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

// The migrations for `dialect`, in version order 1, 2, ... Every dialect's
// list has the same versions.
const std::vector<Migration>& migrations_for(Dialect dialect);

// PostgreSQL's list (store/migrations_postgres.cpp).
const std::vector<Migration>& postgres_migrations();

}  // namespace lucid::detail
