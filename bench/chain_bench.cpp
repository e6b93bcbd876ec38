// chain_bench — the gateway's data endpoints against a live lucid-server it
// starts itself (see bench/README.md):
//   blocks   GET /api/v1/chain/blocks (cached reads) from --clients keep-alive
//            connections for --seconds: requests/s, p50, p99
//   upload   one session of --upload-mib MiB in --chunk-kib KiB chunks over
//            --upload-connections connections (bandwidth limit lifted): MB/s;
//            then completing it, building its manifest, and GET of the
//            manifest with presence and content verification (timings)
// Plain blocking sockets, one thread per client. Prints "key: value" lines;
// never asserts on timing.
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
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string bin_dir;
  int clients = 64;
  double seconds = 10;
  int upload_mib = 1024;
  int chunk_kib = 1024;
  int upload_connections = 4;
  int blocks = 200;  // ledger blocks to create before the read benchmark
  std::string mode = "all";
  int workers = 4;
};

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

  // Returns the status; the body in *body.
  int request(const std::string& method, const std::string& path, const std::string& token, const std::string& body,
              std::string* out, const char* content_type = "application/json") {
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer " + token + "\r\n";
    if (!body.empty() || method == "POST" || method == "PUT")
      req += std::string("Content-Type: ") + content_type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n";
    send_all(req);
    if (!body.empty()) send_all(body);
    // head
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) fill();
    const std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    const int status = std::atoi(head.c_str() + 9);
    std::size_t len = 0;
    const auto cl = head.find("Content-Length: ");
    if (cl != std::string::npos) len = std::strtoull(head.c_str() + cl + 16, nullptr, 10);
    while (buf_.size() < len) fill();
    if (out) out->assign(buf_, 0, len);
    buf_.erase(0, len);
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

std::string json_field(const std::string& body, const std::string& key) {
  const auto k = body.find("\"" + key + "\":\"");
  if (k == std::string::npos) return {};
  const auto start = k + key.size() + 4;
  return body.substr(start, body.find('"', start) - start);
}

std::string run_capture(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char b[4096];
    while (std::fgets(b, sizeof b, p)) out += b;
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  const auto nl = out.rfind('\n');
  return nl == std::string::npos ? out : out.substr(nl + 1);
}

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

void print_machine() {
  utsname u{};
  ::uname(&u);
  std::ifstream cpu("/proc/cpuinfo");
  std::string line, model;
  while (std::getline(cpu, line))
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  std::printf("machine: %s %s, %s, %u cpus\n", u.sysname, u.release, model.c_str(), std::thread::hardware_concurrency());
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.bin_dir = std::filesystem::absolute(argv[0]).parent_path().string();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value for " + a);
      return argv[++i];
    };
    if (a == "--clients") o.clients = std::stoi(next());
    else if (a == "--seconds") o.seconds = std::stod(next());
    else if (a == "--upload-mib") o.upload_mib = std::stoi(next());
    else if (a == "--chunk-kib") o.chunk_kib = std::stoi(next());
    else if (a == "--upload-connections") o.upload_connections = std::stoi(next());
    else if (a == "--blocks") o.blocks = std::stoi(next());
    else if (a == "--mode") o.mode = next();
    else if (a == "--workers") o.workers = std::stoi(next());
    else if (a == "--bin-dir") o.bin_dir = next();
    else {
      std::fprintf(stderr,
                   "usage: chain_bench [--mode all|blocks|upload] [--clients 64] [--seconds 10] [--blocks 200]\n"
                   "                   [--upload-mib 1024] [--chunk-kib 1024] [--upload-connections 4] [--workers 4]\n");
      return 2;
    }
  }
  print_machine();
  std::string cmdline;
  for (int i = 0; i < argc; ++i) cmdline += (i ? " " : "") + std::string(argv[i]);
  std::printf("command: %s\n", cmdline.c_str());
  // All connections come from 127.0.0.1: --clients beyond the per-address
  // connection cap (256) would be refused; lifted with the gateway's rates.
  std::printf("server_limits_lifted: --rate-gateway-user/admin/chain(-burst)=100000000 --chunk-bandwidth=0 "
              "--max-connections-per-address=0\n");

  const auto dir = std::filesystem::temp_directory_path() / ("chain_bench." + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string db = (dir / "lucid.db").string(), port_file = (dir / "port").string();
  const pid_t server = ::fork();
  if (server == 0) {
    const std::string bin = o.bin_dir + "/lucid-server";
    const std::string workers = std::to_string(o.workers);
    const std::string chunk = std::to_string(std::min(1024, o.chunk_kib) * 1024);
    ::execl(bin.c_str(), bin.c_str(), "--listen", "127.0.0.1:0", "--db", db.c_str(), "--port-file", port_file.c_str(),
            "--quiet", "--workers", workers.c_str(), "--block-time", "0.05", "--chunk-bandwidth", "0",
            "--max-chunk-bytes", chunk.c_str(), "--max-session-bytes", "1099511627776", "--rate-gateway-user",
            "100000000", "--rate-gateway-user-burst", "100000000", "--rate-gateway-admin", "100000000",
            "--rate-gateway-admin-burst", "100000000", "--rate-gateway-chain", "100000000",
            "--rate-gateway-chain-burst", "100000000", "--max-connections-per-address", "0", static_cast<char*>(nullptr));
    std::perror("exec lucid-server");
    std::_Exit(127);
  }
  int port = 0;
  for (int i = 0; i < 400 && port == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ifstream pf(port_file);
    pf >> port;
  }
  auto finish = [&](int rc) {
    ::kill(server, SIGTERM);
    ::waitpid(server, nullptr, 0);
    std::filesystem::remove_all(dir);
    return rc;
  };
  if (port == 0) {
    std::fprintf(stderr, "lucid-server did not start\n");
    return finish(1);
  }
  const std::string token = run_capture(o.bin_dir + "/lucidctl --db " + db +
                                        " admin create-token --role super_admin --ttl 2h --sub "
                                        "00000000-0000-4000-8000-000000000001");
  try {
    if (o.mode == "all" || o.mode == "blocks") {
      // Blocks with content: one transaction per block-time tick.
      {
        Conn c(port);
        std::string body;
        for (int i = 0; i < o.blocks; ++i) {
          c.request("POST", "/api/v1/chain/transactions", token,
                    "{\"type\":\"session_anchor\",\"data\":{\"i\":" + std::to_string(i) + "}}", nullptr);
          std::this_thread::sleep_for(std::chrono::milliseconds(60));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        c.request("GET", "/api/v1/chain/info", token, "", &body);
        std::printf("chain: %s\n", body.c_str());
      }
      std::atomic<bool> stop{false};
      std::vector<std::vector<double>> lat(static_cast<std::size_t>(o.clients));
      std::vector<std::uint64_t> errors(static_cast<std::size_t>(o.clients));
      std::vector<std::thread> threads;
      const auto t0 = Clock::now();
      for (int k = 0; k < o.clients; ++k)
        threads.emplace_back([&, k] {
          Conn c(port);
          std::string body;
          const std::string path = "/api/v1/chain/blocks?page=" + std::to_string(1 + k % 3) + "&limit=20";
          while (!stop.load(std::memory_order_relaxed)) {
            const auto s = Clock::now();
            const int st = c.request("GET", path, token, "", &body);
            lat[static_cast<std::size_t>(k)].push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
            if (st != 200) ++errors[static_cast<std::size_t>(k)];
          }
        });
      std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
      stop = true;
      for (auto& t : threads) t.join();
      const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
      std::vector<double> all;
      std::uint64_t errs = 0;
      for (std::size_t k = 0; k < lat.size(); ++k) {
        all.insert(all.end(), lat[k].begin(), lat[k].end());
        errs += errors[k];
      }
      std::printf("blocks_clients: %d\nblocks_requests: %zu\nblocks_errors: %llu\nblocks_req_per_s: %.0f\n", o.clients,
                  all.size(), static_cast<unsigned long long>(errs), static_cast<double>(all.size()) / elapsed);
      std::printf("blocks_p50_ms: %.2f\nblocks_p99_ms: %.2f\n", pct(all, 0.5), pct(all, 0.99));
    }
    if (o.mode == "all" || o.mode == "upload") {
      Conn c(port);
      std::string body;
      c.request("POST", "/api/v1/sessions", token, "{\"name\":\"bench\"}", &body);
      const std::string sid = json_field(body, "session_id");
      const std::size_t chunk = static_cast<std::size_t>(o.chunk_kib) * 1024;
      const int chunks = static_cast<int>((static_cast<std::int64_t>(o.upload_mib) << 20) / static_cast<std::int64_t>(chunk));
      std::string data(chunk, '\0');
      std::mt19937_64 rng(42);
      for (std::size_t i = 0; i + 8 <= data.size(); i += 8) {
        const auto v = rng();
        std::memcpy(&data[i], &v, 8);
      }
      std::atomic<int> next{0};
      std::atomic<std::uint64_t> errs{0};
      std::vector<std::thread> threads;
      const auto t0 = Clock::now();
      for (int k = 0; k < o.upload_connections; ++k)
        threads.emplace_back([&] {
          Conn u(port);
          std::string chunk_data = data;
          for (int i = next++; i < chunks; i = next++) {
            std::memcpy(chunk_data.data(), &i, sizeof i);  // every chunk differs
            const int st = u.request("POST", "/api/v1/sessions/" + sid + "/chunks?index=" + std::to_string(i), token,
                                     chunk_data, nullptr, "application/octet-stream");
            if (st != 201) ++errs;
          }
        });
      for (auto& t : threads) t.join();
      const double up = std::chrono::duration<double>(Clock::now() - t0).count();
      const double mb = static_cast<double>(chunks) * static_cast<double>(chunk) / 1e6;
      std::printf("upload_bytes: %.0f\nupload_chunks: %d\nupload_errors: %llu\nupload_seconds: %.2f\nupload_MB_per_s: %.1f\n",
                  mb * 1e6, chunks, static_cast<unsigned long long>(errs.load()), up, mb / up);
      auto timed = [&](const char* name, const std::string& method, const std::string& path, const std::string& b) {
        const auto s = Clock::now();
        const int st = c.request(method, path, token, b, &body);
        std::printf("%s_ms: %.1f (status %d)\n", name, std::chrono::duration<double, std::milli>(Clock::now() - s).count(), st);
      };
      timed("complete", "PUT", "/api/v1/sessions/" + sid, "{\"status\":\"completed\"}");
      timed("manifest_build", "POST", "/api/v1/manifests", "{\"session_id\":\"" + sid + "\"}");
      const std::string mid = json_field(body, "manifest_id");
      std::printf("manifest_root: %s\n", json_field(body, "merkle_root").c_str());
      timed("manifest_get_presence", "GET", "/api/v1/manifests/" + mid, "");
      timed("manifest_get_content", "GET", "/api/v1/manifests/" + mid + "?verify=content", "");
      std::printf("manifest_ok: %s\n", body.find("\"ok\":true") != std::string::npos ? "true" : "false");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chain_bench: %s\n", e.what());
    return finish(1);
  }
  return finish(0);
}
