// make_backend: the backend a database argument names.
#include <climits>

#include "lucidnode/database.hpp"
#include "store/backend.hpp"
#include "store/postgres_backend.hpp"
#include "store/sqlite_backend.hpp"

namespace lucid::detail {

std::unique_ptr<Backend> make_backend(const StoreConfig& cfg) {
  const DatabaseSpec spec = parse_database(cfg.path);
  if (spec.kind == DatabaseKind::postgres)
    return std::make_unique<PostgresBackend>(spec.target, cfg.password, spec.display, cfg.busy_timeout);
  const auto ms = cfg.busy_timeout.count();
  return std::make_unique<SqliteBackend>(spec.target, static_cast<int>(ms > INT_MAX ? INT_MAX : ms));
}

}  // namespace lucid::detail
