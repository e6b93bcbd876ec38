// Real host figures for the agent, read from /proc and statvfs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace lucidctl {

struct HostStats {
  double cpu_usage = 0;       // percent busy since the previous reading
  double memory_percent = 0;  // (MemTotal - MemAvailable) / MemTotal
  double disk_usage = 0;      // used / (used + available to users), like df
  double disk_total_gb = 0;   // GiB
  std::int64_t uptime_seconds = 0;
};

class HostSampler {
 public:
  explicit HostSampler(std::string disk_path = "/") : disk_path_(std::move(disk_path)) {}
  // Reads everything. The first call measures CPU over a short window.
  // Throws std::runtime_error if /proc cannot be read.
  HostStats sample();

 private:
  struct CpuTimes {
    unsigned long long busy = 0, total = 0;
  };
  static CpuTimes read_cpu();
  std::string disk_path_;
  std::optional<CpuTimes> last_;
};

}  // namespace lucidctl
