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

namespace lucidctl {

// What a device can do, as reported in PUT /api/v1/agent/device.
struct Capabilities {
  std::string platform = "linux";
  int cpu_count = 0;             // "processor" entries in /proc/cpuinfo
  double memory_total_gb = 0;    // MemTotal, GiB
  double storage_total_gb = 0;   // size of the filesystem at disk_path, GiB
  bool has_gpu = false;          // /dev/nvidia[0-9]* or a /sys/class/drm/card[0-9]* device
  bool internet = false;         // a default route exists (IPv4 or IPv6)
  std::string cpu_model;         // "model name" of the first CPU
  bool operator==(const Capabilities&) const = default;
};

// Reads the above. Throws std::runtime_error if /proc cannot be read or
// disk_path cannot be statvfs'd.
Capabilities detect_capabilities(const std::string& disk_path);

// True if /proc/net/route or /proc/net/ipv6_route has a default route: a
// cheap "probably online" check that sends nothing.
bool has_default_route();

}  // namespace lucidctl
