#include "auth/key_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lucidnode/auth.hpp"
#include "lucidnode/error.hpp"
#include "util/encoding.hpp"
#include "util/file.hpp"

namespace lucid::detail {

namespace {
constexpr const char* kPrefix = "ed25519-secret-key:";

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(Errc::storage, "signing key " + path + ": " + what);
}
}  // namespace

std::string load_or_create_signing_key(const std::string& path, bool create) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT && create) {
    // Atomic: written and fsynced under a temporary name (0600, exclusive),
    // then linked to `path`, which fails if another process created it
    // first. A crash never leaves a partial key at `path`.
    const std::string sk = Auth::generate_secret_key();
    const std::string text = std::string(kPrefix) + to_hex(sk) + "\n";
    const std::string tmp = path + ".tmp-" + to_hex(random_bytes(8));
    if (!write_new_file_synced(tmp, text)) fail(path, std::strerror(errno));
    const int linked = ::link(tmp.c_str(), path.c_str());
    const int link_errno = errno;
    ::unlink(tmp.c_str());
    if (linked == 0) return sk;
    if (link_errno != EEXIST) fail(path, std::strerror(link_errno));
    // Another process created it first: read theirs.
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  }
  if (fd < 0) fail(path, std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  if (st.st_mode & 077) {
    ::close(fd);
    fail(path, "permissions are too open (must be 0600)");
  }
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) fail(path, "empty or unreadable");
  std::string text(buf, static_cast<size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.rfind(kPrefix, 0) != 0) fail(path, "unrecognised format");
  auto sk = from_hex(std::string_view(text).substr(std::strlen(kPrefix)));
  if (!sk || sk->size() != 64) fail(path, "unrecognised format");
  return *sk;
}

}  // namespace lucid::detail
