// parse_database (lucidnode/database.hpp).
#include "lucidnode/database.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lucidnode/error.hpp"
#include "store/backend.hpp"
#include "store/store.hpp"

namespace lucid {

namespace {

constexpr std::size_t kMaxDatabaseArgument = 4096;

[[noreturn]] void refuse(const std::string& why) {
  throw Error(Errc::invalid_argument,
              why + "; a database is a SQLite file path, sqlite:PATH, or a postgresql:// (postgres://) URI",
              "database_path");
}

// The scheme of `arg` when it starts with one ("name:" with name as RFC 3986
// allows: a letter, then letters, digits, '+', '-', '.'), else empty.
std::string_view scheme_of(std::string_view arg) {
  if (arg.empty() || !((arg[0] >= 'a' && arg[0] <= 'z') || (arg[0] >= 'A' && arg[0] <= 'Z'))) return {};
  for (std::size_t i = 1; i < arg.size(); ++i) {
    const char c = arg[i];
    if (c == ':') return arg.substr(0, i);
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
                    c == '-' || c == '.';
    if (!ok) return {};
  }
  return {};
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// `uri` with the password of its user part ("user:secret@") and of any
// password= query parameter replaced by "***".
std::string without_password(std::string_view uri) {
  std::string out(uri);
  const auto start = out.find("://");
  if (start == std::string::npos) return out;
  const std::size_t auth = start + 3;
  std::size_t auth_end = out.find_first_of("/?", auth);
  if (auth_end == std::string::npos) auth_end = out.size();
  const auto at = out.rfind('@', auth_end);
  if (at != std::string::npos && at >= auth) {
    const auto colon = out.find(':', auth);
    if (colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, "***");
      auth_end = out.find_first_of("/?", auth);
      if (auth_end == std::string::npos) auth_end = out.size();
    }
  }
  const auto query = out.find('?', auth_end);
  if (query == std::string::npos) return out;
  for (std::size_t p = query + 1; p < out.size();) {
    std::size_t end = out.find('&', p);
    if (end == std::string::npos) end = out.size();
    const std::string_view param(out.data() + p, end - p);
    if (param.size() >= 9 && iequals(param.substr(0, 9), "password=")) {
      out.replace(p + 9, end - p - 9, "***");
      end = p + 12;
    }
    p = end + 1;
  }
  return out;
}

}  // namespace

DatabaseSpec parse_database(std::string_view arg) {
  if (arg.empty()) refuse("the database argument is empty");
  if (arg.size() > kMaxDatabaseArgument) refuse("the database argument is longer than 4096 characters");
  if (arg.find('\0') != std::string_view::npos) refuse("the database argument holds a NUL byte");
  const std::string_view scheme = scheme_of(arg);
  DatabaseSpec spec;
  if (scheme.empty()) {
    spec.kind = DatabaseKind::sqlite;
    spec.target = std::string(arg);
    spec.display = spec.target;
    return spec;
  }
  if (iequals(scheme, "sqlite")) {
    const std::string_view path = arg.substr(scheme.size() + 1);
    if (path.empty()) refuse("sqlite: needs a path (sqlite:PATH)");
    if (path.substr(0, 2) == "//") refuse("sqlite: takes a path, not a URL (sqlite:PATH, e.g. sqlite:/var/lib/lucid.db)");
    spec.kind = DatabaseKind::sqlite;
    spec.target = std::string(path);
    spec.display = spec.target;
    return spec;
  }
  if (iequals(scheme, "postgresql") || iequals(scheme, "postgres")) {
    if (arg.substr(scheme.size() + 1, 2) != "//")
      refuse("'" + std::string(scheme) + ":' without '//' is not a PostgreSQL URI (postgresql://[user@]host/dbname)");
    spec.kind = DatabaseKind::postgres;
    spec.target = std::string(arg);
    spec.display = without_password(arg);
    // Its client library checks the URI's syntax, when it is linked in; a
    // program without it refuses the URI when it opens it (make_backend).
    if (const DatabaseProvider* provider = detail::database_provider(DatabaseKind::postgres)) provider->check(spec);
    return spec;
  }
  refuse("unsupported database '" + std::string(scheme.substr(0, 32)) + ":...'");
}

}  // namespace lucid

namespace lucid::detail {

std::string read_password_file(const std::string& path) {
  auto fail = [&](const std::string& why) -> std::string {
    throw Error(Errc::storage, "database password file " + path + ": " + why);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("not a regular file");
  }
  if (st.st_mode & 077) {
    ::close(fd);
    return fail("permissions are too open (must be 0600 or stricter)");
  }
  std::string text(4097, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (got > 4096) return fail("larger than 4 KiB");
  text.resize(got);
  const auto eol = text.find_first_of("\r\n");
  if (eol != std::string::npos) text.resize(eol);
  if (text.empty()) return fail("empty first line");
  return text;
}

}  // namespace lucid::detail
