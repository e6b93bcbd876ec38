// Helpers shared by the benchmarks that drive a live lucid-server
// (ingest.cpp, tasks_e2e.cpp): "key: value" output, a latency histogram,
// machine and process figures, starting the server and lucidctl.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace benchutil {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// Output

inline void kv(std::string_view key, const std::string& value) {
  std::printf("%.*s: %s\n", static_cast<int>(key.size()), key.data(), value.c_str());
}

inline std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
inline std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

inline std::string num(double v, int decimals = 1) { return fmt("%.*f", decimals, v); }
inline std::string num(std::uint64_t v) { return std::to_string(v); }

inline void section(std::string_view name) {
  std::printf("\n== %.*s\n", static_cast<int>(name.size()), name.data());
  std::fflush(stdout);
}

inline double secs_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// ---------------------------------------------------------------------------
// Log-linear latency histogram (HdrHistogram-like): exact below 256 µs, then
// 128 sub-buckets per power of two (relative error < 0.8%).

class Histo {
 public:
  static constexpr std::uint64_t kSub = 256;
  static constexpr std::uint64_t kHalf = kSub / 2;

  Histo() : counts_(kSub + 57 * kHalf, 0) {}

  void add(std::uint64_t us) {
    ++counts_[index(us)];
    ++n_;
    sum_ += us;
    if (us > max_) max_ = us;
  }
  void merge(const Histo& o) {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    n_ += o.n_;
    sum_ += o.sum_;
    max_ = std::max(max_, o.max_);
  }
  std::uint64_t count() const { return n_; }
  std::uint64_t max() const { return max_; }
  double mean() const { return n_ ? static_cast<double>(sum_) / static_cast<double>(n_) : 0; }
  // Value (µs) at quantile q in [0,1]: the midpoint of its bucket, capped at max.
  double quantile(double q) const {
    if (!n_) return 0;
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(n_)));
    if (rank < 1) rank = 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        auto [lo, hi] = bounds(i);
        return std::min(static_cast<double>(lo + hi) / 2.0, static_cast<double>(max_));
      }
    }
    return static_cast<double>(max_);
  }

 private:
  static std::size_t index(std::uint64_t v) {
    if (v < kSub) return static_cast<std::size_t>(v);
    const int msb = 63 - __builtin_clzll(v);
    const int shift = msb - 7;  // v >> shift in [128, 255]
    return static_cast<std::size_t>(kSub + static_cast<std::uint64_t>(shift - 1) * kHalf + ((v >> shift) - kHalf));
  }
  static std::pair<std::uint64_t, std::uint64_t> bounds(std::size_t i) {
    if (i < kSub) return {i, i};
    const std::uint64_t k = i - kSub;
    const std::uint64_t shift = k / kHalf + 1;
    const std::uint64_t lo = (k % kHalf + kHalf) << shift;
    return {lo, lo + (std::uint64_t{1} << shift) - 1};
  }

  std::vector<std::uint64_t> counts_;
  std::uint64_t n_ = 0, sum_ = 0, max_ = 0;
};

inline void print_latency(std::string_view prefix, const Histo& h) {
  const std::string p(prefix);
  kv(p + "_p50_ms", num(h.quantile(0.50) / 1000.0, 3));
  kv(p + "_p90_ms", num(h.quantile(0.90) / 1000.0, 3));
  kv(p + "_p99_ms", num(h.quantile(0.99) / 1000.0, 3));
  kv(p + "_p999_ms", num(h.quantile(0.999) / 1000.0, 3));
  kv(p + "_max_ms", num(static_cast<double>(h.max()) / 1000.0, 3));
  kv(p + "_mean_ms", num(h.mean() / 1000.0, 3));
}

inline std::string_view trim(std::string_view s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

// ---------------------------------------------------------------------------
// Machine and process information

inline std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::string proc_field(const std::string& text, std::string_view key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return std::string(trim(line.substr(colon + 1)));
    }
  return "";
}

struct ProcSample {
  double rss_mb = -1;
  double cpu_seconds = -1;
  int threads = -1;
  int fds = -1;
};

inline ProcSample sample_proc(int pid) {
  ProcSample s;
  if (pid <= 0) return s;
  const std::string base = "/proc/" + std::to_string(pid);
  const std::string status = read_file(base + "/status");
  if (auto v = proc_field(status, "VmRSS"); !v.empty()) s.rss_mb = std::atof(v.c_str()) / 1024.0;
  if (auto v = proc_field(status, "Threads"); !v.empty()) s.threads = std::atoi(v.c_str());
  const std::string stat = read_file(base + "/stat");
  if (auto rp = stat.rfind(')'); rp != std::string::npos) {
    std::istringstream in(stat.substr(rp + 2));
    std::vector<std::string> f;
    std::string t;
    while (in >> t) f.push_back(t);
    if (f.size() > 12) {
      const double tck = static_cast<double>(sysconf(_SC_CLK_TCK));
      s.cpu_seconds = (std::atof(f[11].c_str()) + std::atof(f[12].c_str())) / tck;
    }
  }
  std::error_code ec;
  int n = 0;
  for (auto it = fs::directory_iterator(base + "/fd", ec); !ec && it != fs::directory_iterator(); it.increment(ec)) ++n;
  if (!ec) s.fds = n;
  return s;
}

inline double self_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

inline double file_mb(const std::string& path) {
  std::error_code ec;
  auto n = fs::file_size(path, ec);
  return ec ? 0.0 : static_cast<double>(n) / (1024.0 * 1024.0);
}

inline std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,@+%") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The server's per-client-address limits (joins, connections, sign-ups, ...)
// are there against abuse; a bench that starts its own server from one
// address measures throughput, not them. Appends each {flag, value} of `lifted`
// to `args` unless `user_args` (the bench's --server-arg) already sets that
// flag, and prints what was lifted as `server_limits_lifted`.
inline void lift_server_limits(std::vector<std::string>& args, const std::vector<std::string>& user_args,
                               const std::vector<std::pair<std::string, std::string>>& lifted) {
  std::string shown;
  for (const auto& [flag, value] : lifted) {
    bool given = false;
    for (const auto& a : user_args) given |= a == flag || a.rfind(flag + "=", 0) == 0;
    if (given) continue;
    args.push_back(flag);
    args.push_back(value);
    shown += (shown.empty() ? "" : " ") + flag + "=" + value;
  }
  kv("server_limits_lifted", shown.empty() ? "none (set by --server-arg)" : shown);
}

// ---------------------------------------------------------------------------
// Child processes

// Runs argv, returns its stdout (stderr passes through), or nullopt on failure.
inline std::optional<std::string> run_capture(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) return std::nullopt;
  pid_t pid = fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    signal(SIGPIPE, SIG_DFL);
    std::vector<char*> av;
    for (const auto& a : args) av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    execv(av[0], av.data());
    std::fprintf(stderr, "%s: cannot exec %s: %s\n", program_invocation_short_name, av[0], std::strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return std::nullopt;
  return out;
}

inline std::string last_line(const std::string& s) {
  std::istringstream in(s);
  std::string line, last;
  while (std::getline(in, line))
    if (!trim(line).empty()) last = std::string(trim(line));
  return last;
}

// The started server, killed if the bench is interrupted.
inline volatile sig_atomic_t g_child_pid = 0;

// Kills the started server, then dies of the same signal.
inline void on_fatal_signal(int sig) {
  if (g_child_pid > 0) kill(g_child_pid, SIGTERM);
  signal(sig, SIG_DFL);
  raise(sig);
}

struct ServerProcess {
  pid_t pid = 0;
  std::string log_path;

  ~ServerProcess() { stop(false); }

  bool start(const std::string& bin, std::vector<std::string> args, const std::string& log) {
    log_path = log;
    args.insert(args.begin(), bin);
    pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the bench
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
      signal(SIGPIPE, SIG_DFL);
      std::vector<char*> av;
      for (const auto& a : args) av.push_back(const_cast<char*>(a.c_str()));
      av.push_back(nullptr);
      execv(av[0], av.data());
      std::fprintf(stderr, "%s: cannot exec %s: %s\n", program_invocation_short_name, av[0], std::strerror(errno));
      _exit(127);
    }
    g_child_pid = pid;
    return true;
  }

  bool running() {
    if (pid <= 0) return false;
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      pid = 0;
      g_child_pid = 0;
      return false;
    }
    return true;
  }

  // SIGTERM, wait (up to 30 s), SIGKILL. Prints the outcome when `report`.
  void stop(bool report) {
    if (pid <= 0) return;
    const auto t0 = Clock::now();
    kill(pid, SIGTERM);
    int st = 0;
    bool exited = false;
    while (secs_since(t0) < 30) {
      if (waitpid(pid, &st, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!exited) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
    }
    if (report) {
      kv("server_shutdown_seconds", num(secs_since(t0), 2));
      if (!exited) kv("server_exit", "did not exit within 30 s of SIGTERM; killed");
      else if (WIFEXITED(st)) kv("server_exit", "status " + std::to_string(WEXITSTATUS(st)));
      else if (WIFSIGNALED(st)) kv("server_exit", "signal " + std::to_string(WTERMSIG(st)));
    }
    pid = 0;
    g_child_pid = 0;
  }
};

inline void print_log_tail(const std::string& path, std::size_t max_lines) {
  std::istringstream in(read_file(path));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  kv("server_log_lines", std::to_string(lines.size()));
  const std::size_t from = lines.size() > max_lines ? lines.size() - max_lines : 0;
  for (std::size_t i = from; i < lines.size(); ++i) std::printf("  | %s\n", lines[i].c_str());
}

// Busy CPU seconds of the whole machine (all CPUs), from /proc/stat.
inline double machine_busy_seconds() {
  std::istringstream in(read_file("/proc/stat"));
  std::string cpu;
  double v[10] = {};
  in >> cpu;
  for (double& x : v) in >> x;
  // user nice system idle iowait irq softirq steal guest guest_nice
  const double busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return busy / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Prints the machine: kernel, CPUs, memory, limits, build, and the command line.
inline void print_machine(int argc, char** argv, int client_threads) {
  section("machine");
  utsname u{};
  if (uname(&u) == 0) kv("uname", fmt("%s %s %s %s %s", u.sysname, u.nodename, u.release, u.version, u.machine));
  kv("nproc", std::to_string(sysconf(_SC_NPROCESSORS_ONLN)));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) kv("cpus_allowed", std::to_string(CPU_COUNT(&set)));
  kv("cpu_model", proc_field(read_file("/proc/cpuinfo"), "model name"));
  const auto mem = proc_field(read_file("/proc/meminfo"), "MemTotal");
  kv("mem_total_mb", num(std::atof(mem.c_str()) / 1024.0, 0));
  kv("loadavg_at_start", std::string(trim(read_file("/proc/loadavg"))));
  kv("somaxconn", std::string(trim(read_file("/proc/sys/net/core/somaxconn"))));
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  kv("rlimit_nofile", fmt("%llu (hard %llu)", static_cast<unsigned long long>(rl.rlim_cur),
                          static_cast<unsigned long long>(rl.rlim_max)));
#ifdef NDEBUG
  kv("bench_build", "optimized (NDEBUG)");
#else
  kv("bench_build", "debug (no NDEBUG)");
#endif
  kv("bench_client_threads", std::to_string(client_threads));
  kv("note", "the bench client and the server share these CPUs");
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + shell_quote(argv[i]);
  kv("command", cmd);
  std::fflush(stdout);
}

}  // namespace benchutil
