// This machine's capabilities, measured (network-node.md "Get Node Capabilities").
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "lucidnode/network.hpp"
#include "util/host.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace lucid {

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

std::string read_small(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return trim(s);
}

// GET /version on the docker socket; the daemon's "Version", or nullopt when
// nothing answers within 1 s.
std::optional<std::string> docker_version(const char* socket_path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return std::nullopt;
  struct Closer { int fd; ~Closer() { ::close(fd); } } closer{fd};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path);
  if (std::strlen(socket_path) >= sizeof addr.sun_path) return std::nullopt;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  auto wait = [&](short ev) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, ev, 0};
    return ::poll(&p, 1, static_cast<int>(left.count())) == 1 && (p.revents & ev);
  };
  const std::string req = "GET /version HTTP/1.0\r\nHost: docker\r\n\r\n";
  std::size_t sent = 0;
  while (sent < req.size()) {
    if (!wait(POLLOUT)) return std::nullopt;
    auto n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return std::nullopt;
    sent += static_cast<std::size_t>(n);
  }
  std::string resp;
  char buf[4096];
  while (resp.size() < 65536) {
    if (!wait(POLLIN)) break;
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<std::size_t>(n));
  }
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.find(" 200 ") == std::string::npos) return std::nullopt;
  auto k = resp.find("\"Version\":\"");
  if (k == std::string::npos) return std::string();
  k += 11;
  auto e = resp.find('"', k);
  return e == std::string::npos || e - k > 64 ? std::string() : resp.substr(k, e - k);
}

// `python3 --version`, run once per process (the interpreter does not change
// under a running server often enough to pay a fork per request).
std::pair<bool, std::string> python_version() {
  static std::once_flag once;
  static std::pair<bool, std::string> result{false, ""};
  std::call_once(once, [] {
    FILE* p = ::popen("python3 --version 2>&1", "r");
    if (!p) return;
    char line[128] = {0};
    const bool got = std::fgets(line, sizeof line, p) != nullptr;
    const int rc = ::pclose(p);
    std::string s = trim(line);
    if (got && rc == 0 && s.rfind("Python ", 0) == 0) result = {true, s.substr(7)};
  });
  return result;
}

void probe_gpus(SystemCapabilities& c) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // NVIDIA's driver lists each GPU with its model and UUID.
  const fs::path nv = "/proc/driver/nvidia/gpus";
  if (fs::is_directory(nv, ec)) {
    const std::string driver = [] {
      std::string v = read_small("/proc/driver/nvidia/version");
      auto k = v.find("Kernel Module");
      if (k == std::string::npos) return std::string();
      std::istringstream in(v.substr(k + 13));
      std::string ver;
      in >> ver;
      return ver;
    }();
    for (const auto& e : fs::directory_iterator(nv, ec)) {
      std::ifstream f(e.path() / "information");
      Gpu g;
      g.index = static_cast<int>(c.gpus.size());
      g.vendor = "NVIDIA";
      g.driver_version = driver;
      std::string line;
      while (std::getline(f, line)) {
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto key = trim(line.substr(0, colon)), val = trim(line.substr(colon + 1));
        if (key == "Model") g.name = val;
        if (key == "GPU UUID") g.uuid = val;
      }
      c.gpus.push_back(std::move(g));
    }
    if (!c.gpus.empty()) return;
  }
  // Otherwise every DRM card with a PCI display vendor.
  for (const auto& e : fs::directory_iterator("/sys/class/drm", ec)) {
    const auto name = e.path().filename().string();
    if (name.rfind("card", 0) != 0 || name.find('-') != std::string::npos) continue;
    const std::string vendor_id = read_small((e.path() / "device/vendor").string());
    if (vendor_id.empty()) continue;
    Gpu g;
    g.index = static_cast<int>(c.gpus.size());
    g.vendor = vendor_id == "0x10de" ? "NVIDIA" : vendor_id == "0x1002" ? "AMD" : vendor_id == "0x8086" ? "Intel" : vendor_id;
    g.name = g.vendor + " " + read_small((e.path() / "device/device").string());
    const std::string vram = read_small((e.path() / "device/mem_info_vram_total").string());
    if (!vram.empty()) g.memory_mb = std::strtoll(vram.c_str(), nullptr, 10) / (1024 * 1024);
    c.gpus.push_back(std::move(g));
  }
}

}  // namespace

SystemCapabilities probe_system(const std::string& disk_path, const std::string& docker_socket) {
  SystemCapabilities c;
  utsname u{};
  if (::uname(&u) == 0) {
    c.platform = u.sysname;
    for (auto& ch : c.platform) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    c.architecture = u.machine;
    c.kernel_version = u.release;
  }
  const detail::CpuInfo cpu = detail::read_cpuinfo().value_or(detail::CpuInfo{});
  c.cpu_model = cpu.model;
  c.cpu_threads = cpu.processors > 0 ? cpu.processors : static_cast<int>(std::thread::hardware_concurrency());
  c.cpu_cores = cpu.physical_cores == 0 ? c.cpu_threads : cpu.physical_cores;
  const detail::MemInfo mem = detail::read_meminfo();
  c.total_memory_mb = static_cast<std::int64_t>(mem.total_kb / 1024);
  c.available_memory_mb = static_cast<std::int64_t>(mem.available_kb / 1024);
  if (const auto disk = detail::read_disk(disk_path.empty() ? "." : disk_path)) {
    c.total_disk_mb = static_cast<std::int64_t>(disk->blocks * disk->block_size / (1024 * 1024));
    c.available_disk_mb = static_cast<std::int64_t>(disk->available_blocks * disk->block_size / (1024 * 1024));
  }
  if (auto v = docker_socket.empty() ? std::nullopt : docker_version(docker_socket.c_str())) {
    c.has_docker = true;
    c.docker_version = *v;
  }
  auto [has_py, py] = python_version();
  c.has_python = has_py;
  c.python_version = py;
  probe_gpus(c);
  return c;
}

std::string capabilities_json(const SystemCapabilities& c) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto str = [&](const char* k, const std::string& v) {
    w.Key(k);
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  };
  w.StartObject();
  str("platform", c.platform);
  str("architecture", c.architecture);
  str("kernel_version", c.kernel_version);
  str("cpu_model", c.cpu_model);
  w.Key("cpu_cores"); w.Int(c.cpu_cores);
  w.Key("cpu_threads"); w.Int(c.cpu_threads);
  w.Key("total_memory_mb"); w.Int64(c.total_memory_mb);
  w.Key("available_memory_mb"); w.Int64(c.available_memory_mb);
  w.Key("total_disk_mb"); w.Int64(c.total_disk_mb);
  w.Key("available_disk_mb"); w.Int64(c.available_disk_mb);
  w.Key("has_docker"); w.Bool(c.has_docker);
  str("docker_version", c.docker_version);
  w.Key("has_python"); w.Bool(c.has_python);
  str("python_version", c.python_version);
  w.Key("gpus");
  w.StartArray();
  for (const auto& g : c.gpus) {
    w.StartObject();
    w.Key("index"); w.Int(g.index);
    str("name", g.name);
    str("vendor", g.vendor);
    w.Key("memory_mb"); w.Int64(g.memory_mb);
    str("uuid", g.uuid);
    str("driver_version", g.driver_version);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace lucid
