#include "workflows/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
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

namespace {
// spawn_process with die_with_parent: fork, then in the child only
// async-signal-safe calls before execve (the process has other threads).
pid_t fork_exec(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& cwd,
                int in_fd, int out_fd, int err_fd) {
  std::vector<char*> av, ev;
  for (const auto& s : argv) av.push_back(const_cast<char*>(s.c_str()));
  av.push_back(nullptr);
  for (const auto& s : env) ev.push_back(const_cast<char*>(s.c_str()));
  ev.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw Error(Errc::internal, errno_text("fork", errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent is already gone
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const int fds[3] = {in_fd, out_fd, err_fd};
    for (int target = 0; target < 3; ++target) {
      const int fd = fds[target] >= 0 ? fds[target] : open("/dev/null", target == 0 ? O_RDONLY : O_WRONLY);
      if (fd < 0 || dup2(fd, target) < 0) _exit(127);
    }
    syscall(SYS_close_range, 3U, ~0U, 0U);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
    execve(av[0], av.data(), ev.data());
    _exit(127);
  }
  return pid;
}
}  // namespace

pid_t spawn_process(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& cwd,
                    int in_fd, int out_fd, int err_fd, bool die_with_parent) {
  if (die_with_parent) return fork_exec(argv, env, cwd, in_fd, out_fd, err_fd);
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

namespace {
// Blocks SIGPIPE on this thread for its life; one raised meanwhile is
// consumed before the old mask comes back.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlock() {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_{}, old_{};
};
}  // namespace

PipedResult run_piped(const PipedRun& run) {
  SigpipeBlock sigpipe;
  int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  auto close_fd = [](int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  };
  auto close_all = [&] {
    for (auto& p : fds)
      for (int& fd : p) close_fd(fd);
  };
  for (auto& p : fds)
    if (pipe2(p, O_CLOEXEC) != 0) {
      const int err = errno;
      close_all();
      throw Error(Errc::internal, errno_text("pipe", err));
    }
  pid_t pid;
  try {
    pid = spawn_process(run.argv, run.env, run.cwd, fds[0][0], fds[1][1], fds[2][1], run.die_with_parent);
  } catch (...) {
    close_all();
    throw;
  }
  close_fd(fds[0][0]);
  close_fd(fds[1][1]);
  close_fd(fds[2][1]);
  int& in = fds[0][1];
  int& out = fds[1][0];
  int& err = fds[2][0];
  for (int fd : {in, out, err}) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (run.input.empty()) close_fd(in);

  PipedResult r;
  const auto deadline = std::chrono::steady_clock::now() + run.timeout;
  std::size_t written = 0;
  bool exited = false;
  int status = 0;
  auto kill_it = [&](std::string why) {
    if (!r.killed) r.killed = std::move(why);
    ::kill(-pid, SIGKILL);
  };
  char buf[65536];
  while (true) {
    if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      // Whatever it left in its group must not hold the pipes open.
      ::kill(-pid, SIGKILL);
    }
    if (out < 0 && err < 0 && exited) break;
    const auto now = std::chrono::steady_clock::now();
    if (!r.killed && now >= deadline) kill_it("timed out after " + std::to_string(run.timeout.count()) + " s");
    if (!r.killed && run.cancelled && run.cancelled()) kill_it("cancelled");
    if (r.killed && exited) break;  // output after our kill is of no use
    pollfd pfd[3] = {{in, POLLOUT, 0}, {out, POLLIN, 0}, {err, POLLIN, 0}};
    const int n = poll(pfd, 3, 100);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (in >= 0 && (pfd[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t w = ::write(in, run.input.data() + written, run.input.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == run.input.size()) close_fd(in);
    }
    struct Stream {
      int& fd;
      std::string& dest;
      std::size_t max;
      short revents;
    } streams[2] = {{out, r.out, run.max_out, pfd[1].revents}, {err, r.err, run.max_err, pfd[2].revents}};
    for (auto& st : streams) {
      if (st.fd < 0 || !(st.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t got = ::read(st.fd, buf, sizeof buf);
      if (got > 0) {
        const std::size_t room = st.max > st.dest.size() ? st.max - st.dest.size() : 0;
        st.dest.append(buf, std::min(room, static_cast<std::size_t>(got)));
        if (static_cast<std::size_t>(got) > room) kill_it("output exceeds " + std::to_string(st.max) + " bytes");
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        close_fd(st.fd);
      }
    }
  }
  close_all();
  if (!exited) {
    ::kill(-pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  if (!r.killed) {
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  }
  return r;
}

}  // namespace lucid::detail
