// Links the optional PostgreSQL backend (lucidnode::lucidnode_postgres) and
// shows what lucid::enable_postgres() changes: without it a postgresql://
// database is refused as unsupported in this program; with it the store
// tries to connect (here to a port where nothing listens, so the open fails
// with a storage error instead). tests/package/deb.sh runs it.
#include <lucidnode/lucidnode.hpp>
#include <lucidnode/postgres.hpp>

#include <iostream>

namespace {
// The error code of opening `uri`, or "opened".
std::string try_open(const char* uri, const std::string& dir) {
  lucid::Options o;
  o.database_path = uri;
  o.key_file = dir + "/check.key";
  o.data_dir = dir + "/data";
  try {
    lucid::Cluster cluster(o);
    return "opened";
  } catch (const lucid::Error& e) {
    return lucid::errc_name(e.code());
  }
}
}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";
  const char* uri = "postgresql://lucid@127.0.0.1:1/none?connect_timeout=2";
  const std::string before = try_open(uri, dir);
  lucid::enable_postgres();
  const std::string after = try_open(uri, dir);
  std::cout << "without enable_postgres: " << before << "; with it: " << after << "\n";
  return before == "invalid_argument" && after == "storage" ? 0 : 1;
}
