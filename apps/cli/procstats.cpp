#include "procstats.hpp"

#include <sys/statvfs.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

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

  std::ifstream mem("/proc/meminfo");
  std::string key;
  unsigned long long value = 0, total = 0, available = 0;
  std::string unit;
  while (mem >> key >> value >> unit) {
    if (key == "MemTotal:") total = value;
    if (key == "MemAvailable:") available = value;
  }
  if (total == 0) throw std::runtime_error("cannot read /proc/meminfo");
  s.memory_percent = 100.0 * static_cast<double>(total - std::min(available, total)) / static_cast<double>(total);

  struct statvfs vfs{};
  if (statvfs(disk_path_.c_str(), &vfs) != 0) throw std::runtime_error("cannot statvfs " + disk_path_);
  const double frsize = static_cast<double>(vfs.f_frsize);
  const double used = static_cast<double>(vfs.f_blocks - vfs.f_bfree) * frsize;
  const double avail = static_cast<double>(vfs.f_bavail) * frsize;
  s.disk_usage = used + avail > 0 ? 100.0 * used / (used + avail) : 0.0;
  s.disk_total_gb = static_cast<double>(vfs.f_blocks) * frsize / (1024.0 * 1024 * 1024);

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
