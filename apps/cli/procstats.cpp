#include "procstats.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "util/host.hpp"

namespace lucidctl {

HostSampler::CpuTimes HostSampler::read_cpu() {
  std::ifstream f("/proc/stat");
  std::string label;
  unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(f >> label >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) || label != "cpu")
    throw std::runtime_error("cannot read /proc/stat");
  CpuTimes t;
  t.busy = user + nice + system + irq + softirq + steal;
  t.total = t.busy + idle + iowait;
  return t;
}

HostStats HostSampler::sample() {
  HostStats s;
  if (!last_) {
    last_ = read_cpu();
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  const CpuTimes now = read_cpu();
  const auto dt = now.total - last_->total;
  s.cpu_usage = dt ? 100.0 * static_cast<double>(now.busy - last_->busy) / static_cast<double>(dt) : 0.0;
  last_ = now;

  const auto mem = lucid::detail::read_meminfo();
  const auto total = mem.total_kb, available = mem.available_kb;
  if (total == 0) throw std::runtime_error("cannot read /proc/meminfo");
  s.memory_percent = 100.0 * static_cast<double>(total - std::min(available, total)) / static_cast<double>(total);

  const auto disk = lucid::detail::read_disk(disk_path_);
  if (!disk) throw std::runtime_error("cannot statvfs " + disk_path_);
  const double frsize = static_cast<double>(disk->block_size);
  const double used = static_cast<double>(disk->blocks - disk->free_blocks) * frsize;
  const double avail = static_cast<double>(disk->available_blocks) * frsize;
  s.disk_usage = used + avail > 0 ? 100.0 * used / (used + avail) : 0.0;
  s.disk_total_gb = static_cast<double>(disk->blocks) * frsize / (1024.0 * 1024 * 1024);

  std::ifstream up("/proc/uptime");
  double uptime = 0;
  if (!(up >> uptime)) throw std::runtime_error("cannot read /proc/uptime");
  s.uptime_seconds = static_cast<std::int64_t>(uptime);

  auto clamp = [](double v) { return v < 0 ? 0.0 : (v > 100 ? 100.0 : v); };
  s.cpu_usage = clamp(s.cpu_usage);
  s.memory_percent = clamp(s.memory_percent);
  s.disk_usage = clamp(s.disk_usage);
  return s;
}

}  // namespace lucidctl

namespace lucidctl {

namespace {

bool gpu_present() {
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/dev", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (n.size() > 6 && n.rfind("nvidia", 0) == 0 && std::isdigit(static_cast<unsigned char>(n[6]))) return true;
  }
  ec.clear();
  for (auto it = std::filesystem::directory_iterator("/sys/class/drm", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string n = it->path().filename().string();
    // card0, card1, ... (not the connectors card0-HDMI-A-1): a real DRM device.
    if (n.size() > 4 && n.rfind("card", 0) == 0 &&
        n.find_first_not_of("0123456789", 4) == std::string::npos && std::filesystem::exists(it->path() / "device"))
      return true;
  }
  return false;
}

}  // namespace

bool has_default_route() {
  std::ifstream v4("/proc/net/route");
  std::string line;
  std::getline(v4, line);  // header
  while (std::getline(v4, line)) {
    std::istringstream in(line);
    std::string iface, dest;
    if (in >> iface >> dest && dest == "00000000" && iface != "lo") return true;
  }
  std::ifstream v6("/proc/net/ipv6_route");
  while (std::getline(v6, line)) {
    std::istringstream in(line);
    std::string dest, plen, src, slen, next, metric, ref, use, flags, iface;
    if (in >> dest >> plen >> src >> slen >> next >> metric >> ref >> use >> flags >> iface && plen == "00" &&
        dest == std::string(32, '0') && iface != "lo")
      return true;
  }
  return false;
}

Capabilities detect_capabilities(const std::string& disk_path) {
  Capabilities c;
  const auto cpu = lucid::detail::read_cpuinfo();
  if (!cpu) throw std::runtime_error("cannot read /proc/cpuinfo");
  c.cpu_count = cpu->processors;
  c.cpu_model = cpu->model;
  if (c.cpu_count == 0) c.cpu_count = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));

  c.memory_total_gb = static_cast<double>(lucid::detail::read_meminfo().total_kb) / (1024.0 * 1024.0);
  if (c.memory_total_gb <= 0) throw std::runtime_error("cannot read /proc/meminfo");

  const auto disk = lucid::detail::read_disk(disk_path);
  if (!disk) throw std::runtime_error("cannot statvfs " + disk_path);
  c.storage_total_gb =
      static_cast<double>(disk->blocks) * static_cast<double>(disk->block_size) / (1024.0 * 1024 * 1024);
  // Two decimals: small fluctuations must not look like a change.
  c.memory_total_gb = std::round(c.memory_total_gb * 100) / 100;
  c.storage_total_gb = std::round(c.storage_total_gb * 100) / 100;
  c.has_gpu = gpu_present();
  c.internet = has_default_route();
  return c;
}

}  // namespace lucidctl
