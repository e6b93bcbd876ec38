#include "workflows/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lucidnode/error.hpp"

namespace lucid::detail {

namespace fs = std::filesystem;

fs::path confine(const fs::path& root, const std::string& path, const std::string& field) {
  if (path.empty()) throw Error(Errc::invalid_argument, field + " is required", field);
  if (path.size() > 4096 || path.find('\0') != std::string::npos)
    throw Error(Errc::invalid_argument, field + " is not a valid path", field);
  const fs::path p(path);
  for (const auto& part : p)
    if (part == "..") throw Error(Errc::invalid_argument, field + " must not contain '..'", field);
  std::error_code ec;
  const fs::path base = fs::canonical(root, ec);
  if (ec) throw Error(Errc::internal, "data directory " + root.string() + " is not usable: " + ec.message());
  const fs::path full = fs::canonical(p.is_absolute() ? p : base / p, ec);
  if (ec) throw Error(Errc::invalid_argument, field + " does not exist: " + path, field);
  const std::string b = base.string(), f = full.string();
  if (f != b && (f.size() <= b.size() || f.compare(0, b.size(), b) != 0 || (b != "/" && f[b.size()] != '/')))
    throw Error(Errc::invalid_argument, field + " must be inside the server's data directory", field);
  return full;
}

namespace {
std::string errno_text(const char* what, int err) { return std::string(what) + ": " + std::strerror(err); }

struct SpawnAttrs {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  SpawnAttrs() {
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
  }
  ~SpawnAttrs() {
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
  }
};
}  // namespace

pid_t spawn_process(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& cwd,
                    int in_fd, int out_fd, int err_fd) {
  SpawnAttrs a;
  const int fds[3] = {in_fd, out_fd, err_fd};
  for (int target = 0; target < 3; ++target) {
    if (fds[target] < 0)
      posix_spawn_file_actions_addopen(&a.fa, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0);
    else
      posix_spawn_file_actions_adddup2(&a.fa, fds[target], target);
  }
  // Nothing else crosses over: the server's sockets (Asio does not open them
  // O_CLOEXEC) must not outlive it in a job, nor be reachable from one.
  posix_spawn_file_actions_addclosefrom_np(&a.fa, 3);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&a.fa, cwd.c_str());
  // Its own process group (so a timeout kills everything it started), default
  // signal handling and an empty mask whatever the server's threads block.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&a.at, &none);
  posix_spawnattr_setsigdefault(&a.at, &all);
  posix_spawnattr_setpgroup(&a.at, 0);
  posix_spawnattr_setflags(&a.at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> av, ev;
  for (const auto& s : argv) av.push_back(const_cast<char*>(s.c_str()));
  av.push_back(nullptr);
  for (const auto& s : env) ev.push_back(const_cast<char*>(s.c_str()));
  ev.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv.at(0).c_str(), &a.fa, &a.at, av.data(), ev.data());
  if (rc != 0) throw Error(Errc::internal, errno_text(("cannot start " + argv[0]).c_str(), rc));
  return pid;
}

std::vector<std::string> base_environment() {
  std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"};
  if (const char* home = std::getenv("HOME")) env.push_back(std::string("HOME=") + home);
  return env;
}

SyncResult run_sync(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& cwd,
                    std::chrono::seconds timeout, std::size_t max_output) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw Error(Errc::internal, errno_text("pipe", errno));
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    throw Error(Errc::internal, errno_text("pipe", errno));
  }
  pid_t pid;
  try {
    pid = spawn_process(argv, env, cwd, -1, out[1], err[1]);
  } catch (...) {
    for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
    throw;
  }
  close(out[1]);
  close(err[1]);
  SyncResult r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd pfd[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* dest[2] = {&r.out, &r.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      kill(-pid, SIGKILL);
      break;
    }
    const int n = poll(pfd, 2, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t got = read(pfd[i].fd, buf, sizeof buf);
      if (got > 0) {
        const std::size_t room = max_output > dest[i]->size() ? max_output - dest[i]->size() : 0;
        dest[i]->append(buf, std::min<std::size_t>(room, static_cast<std::size_t>(got)));
        if (static_cast<std::size_t>(got) > room) r.output_truncated = true;
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(pfd[i].fd);
        pfd[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& p : pfd)
    if (p.fd >= 0) close(p.fd);
  // The tool closed its output or was killed: a grandchild that kept the
  // pipes open is killed with its group, so this wait is short.
  if (!r.timed_out) {
    int st = 0;
    while (true) {
      if (waitpid(pid, &st, WNOHANG) == pid) {
        r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        return r;
      }
      if (std::chrono::steady_clock::now() > deadline) break;
      usleep(10000);
    }
    r.timed_out = true;
    kill(-pid, SIGKILL);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return r;
}

}  // namespace lucid::detail
