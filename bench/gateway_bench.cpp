// gateway_bench — authenticated GET /api/v1/users/me against a live
// lucid-server it starts itself (see bench/README.md): creates a user, logs in
// through the mail outbox (code from the message), then --clients keep-alive
// connections each send requests back to back for --seconds. Prints
// requests/s, p50, p90, p99, max and errors as "key: value" lines; never
// asserts on timing. Plain blocking sockets, one thread per client.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

class Conn {
 public:
  explicit Conn(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect");
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Conn() { ::close(fd_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  int request(const std::string& method, const std::string& path, const std::string& token, const std::string& body,
              std::string* out) {
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: bench\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    if (method == "POST" || method == "PUT")
      req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    send_all(req);
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) fill();
    const int status = std::atoi(buf_.c_str() + 9);
    std::size_t length = 0;
    std::string head = buf_.substr(0, end);
    for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (auto p = head.find("content-length:"); p != std::string::npos) length = std::strtoul(head.c_str() + p + 15, nullptr, 10);
    buf_.erase(0, end + 4);
    while (buf_.size() < length) fill();
    if (out) *out = buf_.substr(0, length);
    buf_.erase(0, length);
    return status;
  }

 private:
  void send_all(const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send");
      off += static_cast<std::size_t>(n);
    }
  }
  void fill() {
    char tmp[65536];
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) throw std::runtime_error("connection closed");
    buf_.append(tmp, static_cast<std::size_t>(n));
  }
  int fd_ = -1;
  std::string buf_;
};

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string json_field(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\":\"([^\"]*)\""))) return {};
  return m[1];
}

void machine() {
  utsname u{};
  ::uname(&u);
  std::cout << "machine: " << u.sysname << " " << u.release << " " << u.machine << "\n";
  std::cout << "nproc: " << std::thread::hardware_concurrency() << "\n";
  std::ifstream cpu("/proc/cpuinfo");
  for (std::string line; std::getline(cpu, line);)
    if (line.rfind("model name", 0) == 0) {
      std::cout << "cpu: " << line.substr(line.find(':') + 2) << "\n";
      break;
    }
  std::cout << "loadavg_before: " << read_file("/proc/loadavg");
}

}  // namespace

int main(int argc, char** argv) {
  std::string bin_dir = std::filesystem::path(argv[0]).parent_path().string();
  int clients = 64;
  double seconds = 10;
  int workers = 4;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--clients") clients = std::atoi(next().c_str());
    else if (a == "--seconds") seconds = std::atof(next().c_str());
    else if (a == "--workers") workers = std::atoi(next().c_str());
    else if (a == "--bin-dir") bin_dir = next();
    else {
      std::cerr << "usage: gateway_bench [--clients 64] [--seconds 10] [--workers 4] [--bin-dir DIR]\n";
      return 2;
    }
  }
  if (clients < 1 || clients > 4096 || seconds <= 0 || workers < 1) {
    std::cerr << "gateway_bench: bad arguments\n";
    return 2;
  }
  std::cout << "command:";
  for (int i = 0; i < argc; ++i) std::cout << " " << argv[i];
  std::cout << "\n";
  machine();
  // All clients are on 127.0.0.1: the per-address connection cap (256) would
  // refuse --clients beyond it; the bench measures the server, not the cap.
  std::cout << "server_limits_lifted: --rate-gateway-user(-burst) --rate-gateway-public(-burst)=100000000 "
               "--max-connections-per-address=0\n";

  const auto dir = std::filesystem::temp_directory_path() / ("gateway-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string db = (dir / "lucid.db").string(), port_file = (dir / "port").string();
  const std::string workers_s = std::to_string(workers);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string server = bin_dir + "/lucid-server";
    ::execl(server.c_str(), server.c_str(), "--listen", "127.0.0.1:0", "--db", db.c_str(), "--port-file",
            port_file.c_str(), "--quiet", "--workers", workers_s.c_str(), "--rate-gateway-user", "100000000",
            "--rate-gateway-user-burst", "100000000", "--rate-gateway-public", "100000000", "--rate-gateway-public-burst",
            "100000000", "--max-connections-per-address", "0", static_cast<char*>(nullptr));
    std::perror("exec lucid-server");
    std::_Exit(127);
  }
  int rc = 1;
  try {
    int port = 0;
    for (int i = 0; i < 1000 && port == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (std::filesystem::exists(port_file)) port = std::atoi(read_file(port_file).c_str());
    }
    if (port == 0) throw std::runtime_error("lucid-server did not start");

    // Sign up, log in through the outbox.
    Conn setup(port);
    std::string body;
    int st = setup.request("POST", "/api/v1/users", "",
                           R"({"email":"bench@example.com","username":"bench","password":"bench pass 1"})", &body);
    if (st != 201) throw std::runtime_error("create user: " + std::to_string(st) + " " + body);
    st = setup.request("POST", "/api/v1/auth/login", "", R"({"email":"bench@example.com"})", &body);
    if (st != 200) throw std::runtime_error("login: " + body);
    std::string code;
    for (int i = 0; i < 500 && code.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (!std::filesystem::exists(dir / "outbox")) continue;
      for (const auto& e : std::filesystem::directory_iterator(dir / "outbox")) {
        std::smatch m;
        const std::string text = read_file(e.path());
        if (std::regex_search(text, m, std::regex("sign-in code is ([0-9]{6})"))) code = m[1];
      }
    }
    if (code.empty()) throw std::runtime_error("no login mail in the outbox");
    st = setup.request("POST", "/api/v1/auth/verify", "", R"({"email":"bench@example.com","code":")" + code + "\"}", &body);
    if (st != 200) throw std::runtime_error("verify: " + body);
    const std::string token = json_field(body, "access_token");

    std::atomic<bool> go{false}, stop{false};
    std::atomic<std::int64_t> errors{0};
    std::vector<std::vector<std::int64_t>> lat(static_cast<std::size_t>(clients));
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        try {
          Conn conn(port);
          auto& mine = lat[static_cast<std::size_t>(c)];
          mine.reserve(1 << 16);
          while (!go.load()) std::this_thread::yield();
          while (!stop.load()) {
            const auto t0 = Clock::now();
            const int s = conn.request("GET", "/api/v1/users/me", token, "", nullptr);
            mine.push_back(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
            if (s != 200) errors.fetch_add(1);
          }
        } catch (const std::exception&) {
          errors.fetch_add(1);
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // connections open
    const auto t0 = Clock::now();
    go = true;
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& t : threads) t.join();
    const double took = std::chrono::duration<double>(Clock::now() - t0).count();
    std::vector<std::int64_t> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) {
      return all.empty() ? 0.0 : static_cast<double>(all[std::min(all.size() - 1, static_cast<std::size_t>(p * static_cast<double>(all.size())))]) / 1000.0;
    };
    std::printf("endpoint: GET /api/v1/users/me (bearer JWT with session, keep-alive)\n");
    std::printf("clients: %d\nserver_workers: %d\nseconds: %.2f\n", clients, workers, took);
    std::printf("requests: %zu\nerrors: %lld\n", all.size(), static_cast<long long>(errors.load()));
    std::printf("requests_per_second: %.0f\n", static_cast<double>(all.size()) / took);
    std::printf("p50_ms: %.3f\np90_ms: %.3f\np99_ms: %.3f\nmax_ms: %.3f\n", pct(0.50), pct(0.90), pct(0.99),
                all.empty() ? 0.0 : static_cast<double>(all.back()) / 1000.0);
    std::cout << "loadavg_after: " << read_file("/proc/loadavg");
    rc = 0;
  } catch (const std::exception& e) {
    std::cerr << "gateway_bench: " << e.what() << "\n";
  }
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rc;
}
