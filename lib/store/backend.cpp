// make_backend: the backend a database argument names.
#include <array>
#include <atomic>
#include <climits>

#include "lucidnode/database.hpp"
#include "store/backend.hpp"
#include "store/sqlite_backend.hpp"

namespace lucid {

namespace {
// One provider per DatabaseKind (SQLite's slot stays empty: it is built in).
std::array<std::atomic<const DatabaseProvider*>, 2> g_providers{};
}  // namespace

void register_database_provider(DatabaseKind kind, const DatabaseProvider* provider) {
  g_providers[static_cast<std::size_t>(kind)].store(provider, std::memory_order_release);
}

namespace detail {

const DatabaseProvider* database_provider(DatabaseKind kind) {
  return g_providers[static_cast<std::size_t>(kind)].load(std::memory_order_acquire);
}

std::unique_ptr<Backend> make_backend(const StoreConfig& cfg) {
  const DatabaseSpec spec = parse_database(cfg.path);
  if (spec.kind == DatabaseKind::postgres) {
    const DatabaseProvider* provider = database_provider(DatabaseKind::postgres);
    if (!provider)
      throw Error(Errc::invalid_argument,
                  "PostgreSQL support is not in this program: " + spec.display +
                      " needs liblucidnode_postgres (link lucidnode::lucidnode_postgres and call "
                      "lucid::enable_postgres(), lucidnode/postgres.hpp); lucid-server and lucidctl have it",
                  "database_path");
    return provider->make(spec, cfg);
  }
  const auto ms = cfg.busy_timeout.count();
  return std::make_unique<SqliteBackend>(spec.target, static_cast<int>(ms > INT_MAX ? INT_MAX : ms));
}

}  // namespace detail
}  // namespace lucid
