#include "util/file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace lucid::detail {

bool write_new_file_synced(const std::string& path, std::string_view data, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return false;
  const char* p = data.data();
  std::size_t left = data.size();
  bool ok = true;
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      ok = false;
      break;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (ok && ::fdatasync(fd) != 0) ok = false;
  const int saved = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    errno = saved;
  }
  return ok;
}

bool write_file_atomically(const std::string& path, std::string_view data, StaleTemp stale, mode_t mode) {
  const std::string tmp = path + ".tmp";
  if (stale == StaleTemp::replace) ::unlink(tmp.c_str());
  if (!write_new_file_synced(tmp, data, mode)) return false;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    return false;
  }
  return true;
}

bool fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return rc == 0;
}

}  // namespace lucid::detail
