// enable_postgres (lucidnode/postgres.hpp): the PostgreSQL provider the store
// finds through lucid::register_database_provider.
#include <libpq-fe.h>

#include "lucidnode/error.hpp"
#include "lucidnode/postgres.hpp"
#include "postgres/postgres_backend.hpp"
#include "store/backend.hpp"

namespace lucid {

namespace {

class PostgresProvider final : public DatabaseProvider {
 public:
  void check(const DatabaseSpec& spec) const override {
    char* error = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(spec.target.c_str(), &error);
    if (parsed) {
      PQconninfoFree(parsed);
      return;
    }
    std::string message = error ? error : "out of memory";
    PQfreemem(error);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    // libpq's message may quote the part it could not parse, which may be
    // the password: it is shown only for a URI without one.
    throw Error(Errc::invalid_argument,
                "cannot parse the PostgreSQL URI " + spec.display +
                    (spec.display == spec.target ? " (" + message + ")" : std::string()) +
                    "; a database is a SQLite file path, sqlite:PATH, or a postgresql:// (postgres://) URI",
                "database_path");
  }

  std::unique_ptr<detail::Backend> make(const DatabaseSpec& spec, const detail::StoreConfig& cfg) const override {
    return std::make_unique<detail::PostgresBackend>(spec.target, cfg.password, spec.display, cfg.busy_timeout);
  }
};

}  // namespace

void enable_postgres() {
  static const PostgresProvider provider;  // lives until exit, past every Store
  register_database_provider(DatabaseKind::postgres, &provider);
}

}  // namespace lucid
