// ws_fanout: WebSocket fan-out latency of a live lucid-server. Starts the
// server (next to this binary), mints an admin token with lucidctl, connects
// N clients to /api/ws?token=..., then repeatedly triggers one broadcast
// (POST /api/blacklist publishes BLACKLIST_UPDATED on the core's bus) and
// records when each client has the frame. Prints p50/p99; asserts nothing.
// Usage: ws_fanout [clients=1000] [broadcasts=20]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads until `marker` is in the buffer (blocking). False on EOF.
bool read_until(int fd, std::string& buf, const std::string& marker) {
  char tmp[4096];
  while (buf.find(marker) == std::string::npos) {
    auto n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
  }
  return true;
}

std::string run(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  auto nl = out.rfind('\n');
  return nl == std::string::npos ? out : out.substr(nl + 1);
}

double pct(std::vector<double>& v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  const int clients = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int broadcasts = argc > 2 ? std::atoi(argv[2]) : 20;
  if (clients < 1 || broadcasts < 1) return 2;
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  ::signal(SIGPIPE, SIG_IGN);
  utsname u{};
  uname(&u);
  std::printf("machine: %s, %ld cpus, %s %s\n", cpu_model().c_str(), sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release);

  // Every client is on 127.0.0.1: the per-address connection cap (256) would
  // close all but the first 256; the bench measures fan-out, not the cap.
  std::printf("server_limits_lifted: --max-connections=100000 --max-connections-per-address=0\n");
  const fs::path bin = fs::absolute(fs::path(argv[0])).parent_path();
  const fs::path dir = fs::temp_directory_path() / ("lucid-wsbench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string db = (dir / "b.db").string(), port_file = (dir / "port").string();
  const pid_t server = fork();
  if (server == 0) {
    const std::string s = (bin / "lucid-server").string();
    execl(s.c_str(), s.c_str(), "--listen", "127.0.0.1:0", "--db", db.c_str(), "--port-file", port_file.c_str(),
          "--quiet", "--max-connections", "100000", "--max-connections-per-address", "0", static_cast<char*>(nullptr));
    _exit(127);
  }
  int port = 0;
  for (int i = 0; i < 500 && !port; ++i) {
    std::ifstream f(port_file);
    f >> port;
    if (!port) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int rc = 1;
  if (port) {
    const std::string token =
        run((bin / "lucidctl").string() + " --db " + db + " admin create-token --role super_admin --ttl 1h");
    std::vector<int> fds;
    std::vector<std::string> bufs(static_cast<std::size_t>(clients));
    const std::string upgrade = "GET /api/ws?token=" + token +
                                " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    for (int i = 0; i < clients; ++i) {
      int fd = connect_to(port);
      if (fd < 0 || !send_all(fd, upgrade) || !read_until(fd, bufs[static_cast<std::size_t>(i)], "\r\n\r\n")) break;
      auto& b = bufs[static_cast<std::size_t>(i)];
      b.erase(0, b.find("\r\n\r\n") + 4);
      fds.push_back(fd);
    }
    std::printf("clients_connected: %zu of %d\n", fds.size(), clients);
    int http = connect_to(port);
    std::vector<double> lat_ms;
    std::vector<double> last_ms;
    for (int b = 0; b < broadcasts && http >= 0; ++b) {
      const std::string body = "{\"peer_id\":\"12D3KooWbench" + std::to_string(b) + "\"}";
      const std::string req = "POST /api/blacklist HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
                              "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                              "\r\n\r\n" + body;
      for (auto& s : bufs) s.clear();
      const auto t0 = Clock::now();
      send_all(http, req);
      std::vector<pollfd> pfds;
      for (int fd : fds) pfds.push_back({fd, POLLIN, 0});
      std::vector<bool> got(fds.size(), false);
      std::size_t have = 0;
      double slowest = 0;
      const std::string marker = "12D3KooWbench" + std::to_string(b) + "\"";
      while (have < fds.size()) {
        if (::poll(pfds.data(), pfds.size(), 10000) <= 0) break;
        for (std::size_t i = 0; i < pfds.size(); ++i) {
          if (!(pfds[i].revents & POLLIN) || got[i]) continue;
          char tmp[4096];
          auto n = ::recv(pfds[i].fd, tmp, sizeof tmp, 0);
          if (n <= 0) { got[i] = true; ++have; continue; }
          bufs[i].append(tmp, static_cast<std::size_t>(n));
          if (bufs[i].find(marker) != std::string::npos) {
            const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
            lat_ms.push_back(ms);
            slowest = std::max(slowest, ms);
            got[i] = true;
            ++have;
            pfds[i].events = 0;
          }
        }
      }
      last_ms.push_back(slowest);
      std::string resp;
      read_until(http, resp, "\r\n\r\n");
      if (resp.find("Content-Length: ") != std::string::npos) {
        auto len = std::stoul(resp.substr(resp.find("Content-Length: ") + 16));
        std::string rest = resp.substr(resp.find("\r\n\r\n") + 4);
        while (rest.size() < len) {
          char tmp[1024];
          auto n = ::recv(http, tmp, sizeof tmp, 0);
          if (n <= 0) break;
          rest.append(tmp, static_cast<std::size_t>(n));
        }
      }
    }
    std::printf("broadcasts: %d\n", broadcasts);
    std::printf("deliveries: %zu\n", lat_ms.size());
    std::printf("delivery_latency_p50_ms: %.2f (request sent -> frame at client; includes the POST's handling)\n",
                pct(lat_ms, 0.50));
    std::printf("delivery_latency_p99_ms: %.2f\n", pct(lat_ms, 0.99));
    std::printf("last_client_latency_p50_ms: %.2f\n", pct(last_ms, 0.50));
    for (int fd : fds) ::close(fd);
    if (http >= 0) ::close(http);
    rc = 0;
  } else {
    std::fprintf(stderr, "ws_fanout: lucid-server did not start\n");
  }
  ::kill(server, SIGTERM);
  ::waitpid(server, nullptr, 0);
  fs::remove_all(dir);
  return rc;
}
