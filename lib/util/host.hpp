// This host's CPU, memory and disk as Linux reports them (/proc, statvfs):
// the one reader behind the server's capability probe (lib/network) and the
// agent's device figures and samples (apps/cli/procstats).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace lucid::detail {

struct CpuInfo {
  int processors = 0;      // "processor" entries
  int physical_cores = 0;  // distinct (physical id, core id) pairs; 0 when not listed
  std::string model;       // the first "model name", trimmed
};
// Parses /proc/cpuinfo (or `path`); nullopt when it cannot be opened.
std::optional<CpuInfo> read_cpuinfo(const std::string& path = "/proc/cpuinfo");

struct MemInfo {
  std::uint64_t total_kb = 0;      // MemTotal; 0 when unreadable
  std::uint64_t available_kb = 0;  // MemAvailable; 0 when not listed
};
// Parses /proc/meminfo (or `path`); zeros for what it cannot read.
MemInfo read_meminfo(const std::string& path = "/proc/meminfo");

struct DiskInfo {
  std::uint64_t blocks = 0;            // f_blocks: size of the filesystem
  std::uint64_t free_blocks = 0;       // f_bfree: free, root's reserve included
  std::uint64_t available_blocks = 0;  // f_bavail: free to unprivileged users
  std::uint64_t block_size = 0;        // f_frsize: the unit of the three above
};
// statvfs of the filesystem holding `path`; nullopt when it fails (errno set).
std::optional<DiskInfo> read_disk(const std::string& path);

}  // namespace lucid::detail
