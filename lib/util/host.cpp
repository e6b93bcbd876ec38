#include "util/host.hpp"

#include <sys/statvfs.h>

#include <fstream>
#include <set>
#include <utility>

namespace lucid::detail {

namespace {
std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}
}  // namespace

std::optional<CpuInfo> read_cpuinfo(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  CpuInfo c;
  std::set<std::pair<std::string, std::string>> cores;  // (physical id, core id)
  std::string line, phys;
  while (std::getline(f, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = trimmed(line.substr(0, colon));
    if (key == "processor") ++c.processors;
    else if (key == "model name" && c.model.empty()) c.model = trimmed(line.substr(colon + 1));
    else if (key == "physical id") phys = trimmed(line.substr(colon + 1));
    else if (key == "core id") cores.insert({phys, trimmed(line.substr(colon + 1))});
  }
  c.physical_cores = static_cast<int>(cores.size());
  return c;
}

MemInfo read_meminfo(const std::string& path) {
  MemInfo m;
  std::ifstream f(path);
  std::string key, unit;
  std::uint64_t kb = 0;
  while (f >> key >> kb >> unit) {
    if (key == "MemTotal:") m.total_kb = kb;
    if (key == "MemAvailable:") m.available_kb = kb;
  }
  return m;
}

std::optional<DiskInfo> read_disk(const std::string& path) {
  struct statvfs vfs{};
  if (::statvfs(path.c_str(), &vfs) != 0) return std::nullopt;
  DiskInfo d;
  d.blocks = vfs.f_blocks;
  d.free_blocks = vfs.f_bfree;
  d.available_blocks = vfs.f_bavail;
  d.block_size = vfs.f_frsize;
  return d;
}

}  // namespace lucid::detail
