#include "exec.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace lucidctl {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

bool is_executable_file(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

struct Sink {
  int fd = -1;
  std::string* text;
  std::size_t max;
  bool* truncated;
  std::size_t* total;
  // Reads what is there; returns false at EOF or on error (fd closed).
  bool pump() {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        *total += static_cast<std::size_t>(n);
        const std::size_t room = max > text->size() ? max - text->size() : 0;
        const std::size_t keep = std::min(room, static_cast<std::size_t>(n));
        text->append(buf, keep);
        if (keep < static_cast<std::size_t>(n)) *truncated = true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      close_fd(fd);
      return false;
    }
  }
};

// Blocks SIGPIPE on this thread while a child's stdin is written; a SIGPIPE
// raised meanwhile is consumed before the old mask comes back.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeGuard() {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t pipe_{}, old_{};
};

}  // namespace

std::string find_program(const std::string& name) {
  if (name.empty()) return {};
  if (name.find('/') != std::string::npos) return is_executable_file(name) ? name : std::string();
  const char* path = std::getenv("PATH");
  std::string dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (dir.empty()) dir = ".";
    const std::string cand = dir + "/" + name;
    if (is_executable_file(cand)) return cand;
    start = end + 1;
  }
  return {};
}

std::string valid_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    std::size_t len = 0;
    unsigned cp = 0;
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07;
    }
    bool ok = len > 0 && i + len <= n;
    for (std::size_t k = 1; ok && k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) ok = false;
      else cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // No overlong forms, no surrogates, nothing past U+10FFFF.
    if (ok && ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
               (cp >= 0xD800 && cp <= 0xDFFF)))
      ok = false;
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

ExecResult run_process(const ExecSpec& spec, const std::atomic<bool>& cancel, const ExecTick& on_tick,
                       milliseconds tick) {
  ExecResult r;
  const auto t0 = Clock::now();
  if (spec.argv.empty()) {
    r.error = "empty argv";
    return r;
  }
  const std::string path = find_program(spec.argv[0]);
  if (path.empty()) {
    r.error = "no such program: " + spec.argv[0];
    return r;
  }

  // Everything the child needs is built before fork: between fork and exec it
  // calls async-signal-safe functions only.
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    const auto eq = kv.find('=');
    bool replaced = false;
    for (const auto& [k, v] : spec.env)
      if (eq != std::string::npos && kv.compare(0, eq, k) == 0 && eq == k.size()) replaced = true;
    if (!replaced) env_store.push_back(kv);
  }
  for (const auto& [k, v] : spec.env) env_store.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1};
  auto close_all = [&] {
    for (int* p : {in, out, err, report}) {
      close_fd(p[0]);
      close_fd(p[1]);
    }
  };
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 ||
      ::pipe2(report, O_CLOEXEC) != 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    close_all();
    return r;
  }

  SigpipeGuard sigpipe_guard;
  const pid_t parent = ::getpid();
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  const pid_t pid = ::fork();
  if (pid < 0) {
    r.error = std::string("fork: ") + std::strerror(errno);
    close_all();
    return r;
  }
  if (pid == 0) {
    // Child. Own process group, so a timeout kills everything it started.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) ::sigaction(s, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    // Any descriptor the agent has open (sockets, key file) is not inherited.
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    int e = 0;
    if (cwd && ::chdir(cwd) != 0) e = errno;
    if (!e) {
      ::execve(path.c_str(), argv.data(), envp.data());
      e = errno;
    }
    ssize_t ignored = ::write(report[1], &e, sizeof e);
    (void)ignored;
    ::_exit(127);
  }
  r.pid = pid;
  ::setpgid(pid, pid);  // also from here: no race with an early kill(-pid)
  close_fd(in[0]);
  close_fd(out[1]);
  close_fd(err[1]);
  close_fd(report[1]);

  // exec succeeded iff the report pipe closes without data.
  int child_errno = 0;
  ssize_t got;
  do got = ::read(report[0], &child_errno, sizeof child_errno);
  while (got < 0 && errno == EINTR);
  close_fd(report[0]);
  if (got == static_cast<ssize_t>(sizeof child_errno)) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    r.error = std::string(cwd && child_errno == ENOENT ? "cannot run in " + spec.cwd : "cannot execute " + path) +
              ": " + std::strerror(child_errno);
    close_all();
    r.duration = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
    return r;
  }

  for (int fd : {in[1], out[0], err[0]}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  Sink so{out[0], &r.out, spec.max_stdout, &r.out_truncated, &r.out_total};
  Sink se{err[0], &r.err, spec.max_stderr, &r.err_truncated, &r.err_total};
  out[0] = err[0] = -1;  // owned by the sinks now
  std::size_t written = 0;
  if (spec.stdin_data.empty()) close_fd(in[1]);

  // The child's exit wakes the poll below through a pidfd: without it, a
  // child that closed its pipes before exiting left poll() with nothing to
  // watch, and every task paid the whole 50 ms wait (issue 19: a real agent
  // spent ~59 ms per echo task). Without pidfd support (Linux < 5.3) the
  // 50 ms wait stays the bound.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));

  const auto deadline = spec.timeout.count() > 0 ? t0 + spec.timeout : Clock::time_point::max();
  auto next_tick = t0 + tick;
  bool exited = false;
  int status = 0;
  ExecEnd forced = ExecEnd::exited;
  Clock::time_point drain_until{};
  for (;;) {
    if (!exited) {
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) {
        // Gone, not yet reaped (so its pid and group id cannot be reused):
        // kill whatever it left behind in its group, then reap it.
        ::kill(-pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        exited = true;
        drain_until = Clock::now() + milliseconds(200);
      }
    }
    const auto now = Clock::now();
    if (!exited && forced == ExecEnd::exited && (cancel.load() || now >= deadline)) {
      forced = cancel.load() ? ExecEnd::cancelled : ExecEnd::timeout;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      continue;  // the next waitid sees it gone
    }
    if (exited && ((so.fd < 0 && se.fd < 0) || now >= drain_until)) break;
    if (on_tick && !exited && now >= next_tick) {
      on_tick(std::chrono::duration_cast<milliseconds>(now - t0));
      next_tick = now + tick;
    }

    pollfd fds[4];
    nfds_t n = 0;
    if (so.fd >= 0) fds[n++] = {so.fd, POLLIN, 0};
    if (se.fd >= 0) fds[n++] = {se.fd, POLLIN, 0};
    if (in[1] >= 0) fds[n++] = {in[1], POLLOUT, 0};
    if (pidfd >= 0 && !exited) fds[n++] = {pidfd, POLLIN, 0};
    int wait_ms = 50;
    if (deadline != Clock::time_point::max() && !exited) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - now).count();
      wait_ms = static_cast<int>(std::max<long long>(1, std::min<long long>(wait_ms, left)));
    }
    ::poll(fds, n, wait_ms);
    for (nfds_t i = 0; i < n; ++i) {
      if (!fds[i].revents || fds[i].fd == pidfd) continue;  // an exit: the next waitid sees it
      if (fds[i].fd == so.fd) so.pump();
      else if (fds[i].fd == se.fd) se.pump();
      else if (fds[i].fd == in[1]) {
        const ssize_t w = ::write(in[1], spec.stdin_data.data() + written, spec.stdin_data.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == spec.stdin_data.size()) close_fd(in[1]);
      }
    }
  }
  close_fd(in[1]);
  close_fd(pidfd);
  if (so.fd >= 0) so.pump();
  if (se.fd >= 0) se.pump();
  close_fd(so.fd);
  close_fd(se.fd);

  r.duration = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
  if (forced != ExecEnd::exited) {
    r.end = forced;
  } else if (WIFEXITED(status)) {
    r.end = ExecEnd::exited;
    r.exit_code = WEXITSTATUS(status);
  } else {
    r.end = ExecEnd::signaled;
    r.term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  }
  return r;
}

}  // namespace lucidctl
