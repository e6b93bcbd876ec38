#include "auth/key_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "lucidnode/auth.hpp"
#include "lucidnode/error.hpp"
#include "util/encoding.hpp"
#include "util/file.hpp"

namespace lucid::detail {

namespace {
constexpr const char* kPrefix = "ed25519-secret-key:";

// Creates `path` holding `text` (0600) atomically: written and fsynced under
// a temporary name (exclusive), then linked to `path`, which fails if another
// process created it first. Returns false with errno EEXIST in that case;
// throws through `fail` for any other error. A crash never leaves a partial
// file at `path`.
bool create_exclusive(const std::string& path, const std::string& text,
                      const std::function<void(const std::string&)>& fail) {
  const std::string tmp = path + ".tmp-" + to_hex(random_bytes(8));
  if (!write_new_file_synced(tmp, text)) fail(std::strerror(errno));
  const int linked = ::link(tmp.c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  if (linked == 0) return true;
  if (link_errno != EEXIST) fail(std::strerror(link_errno));
  return false;
}

// Opens `path` read-only (no symlink) and reads at most `max` bytes, after
// checking it is a regular file that only its owner may read or write.
// `fail` throws.
std::string read_private(const std::string& path, std::size_t max, const std::function<void(const std::string&)>& fail) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) fail(std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("not a regular file");
  }
  if (st.st_mode & 077) {
    ::close(fd);
    fail("permissions are too open: it must not be readable by others (mode 0600, chmod 600)");
  }
  std::string text(max, '\0');
  const ssize_t n = ::read(fd, text.data(), max);
  ::close(fd);
  if (n <= 0) fail("empty or unreadable");
  text.resize(static_cast<std::size_t>(n));
  return text;
}

std::string first_line(std::string text) {
  const auto nl = text.find('\n');
  if (nl != std::string::npos) text.resize(nl);
  while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

std::string load_or_create_signing_key(const std::string& path, bool create) {
  auto fail = [&](const std::string& what) { throw Error(Errc::storage, "signing key " + path + ": " + what); };
  struct stat st{};
  if (create && ::lstat(path.c_str(), &st) != 0 && errno == ENOENT) {
    const std::string sk = Auth::generate_secret_key();
    if (create_exclusive(path, std::string(kPrefix) + to_hex(sk) + "\n", fail)) return sk;
    // Another process created it first: read theirs.
  }
  const std::string text = first_line(read_private(path, 256, fail));
  if (text.rfind(kPrefix, 0) != 0) fail("unrecognised format");
  auto sk = from_hex(std::string_view(text).substr(std::strlen(kPrefix)));
  if (!sk || sk->size() != 64) fail("unrecognised format");
  return *sk;
}

std::string load_or_create_hex_key(const std::string& path, std::size_t bytes, bool create, const std::string& what) {
  auto fail = [&](const std::string& why) { throw Error(Errc::storage, what + " " + path + ": " + why); };
  struct stat st{};
  if (create && ::lstat(path.c_str(), &st) != 0 && errno == ENOENT) {
    const std::string key = random_bytes(bytes);
    if (create_exclusive(path, to_hex(key) + "\n", fail)) return key;
  }
  auto key = from_hex(first_line(read_private(path, 4096, fail)));
  if (!key || key->size() != bytes)
    fail("must hold " + std::to_string(bytes * 2) + " hex characters (" + std::to_string(bytes) + " bytes)");
  return *key;
}

std::string read_secret_file(const std::string& path, const std::string& what, const char* field) {
  auto fail = [&](const std::string& why) {
    throw Error(Errc::invalid_argument, "the " + what + " file " + path + ": " + why, field);
  };
  return first_line(read_private(path, 4096, fail));
}

}  // namespace lucid::detail
