#include "console_assets.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "lucidnode/lucidnode.hpp"
#include "util/encoding.hpp"

namespace lucid::server {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// esbuild's "[name]-[hash]" names: a '-' followed by 8 characters of
// [A-Z0-9] just before the extension. Such a file never changes under its
// name, so browsers may keep it for a year.
bool content_hashed(std::string_view name) {
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot < 9) return false;
  if (name[dot - 9] != '-') return false;
  for (std::size_t i = dot - 8; i < dot; ++i) {
    const char c = name[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

}  // namespace

bool ConsoleAssets::valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 128 || name.front() == '.') return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

const char* ConsoleAssets::content_type_of(std::string_view name) noexcept {
  if (ends_with(name, ".html")) return "text/html; charset=utf-8";
  if (ends_with(name, ".js") || ends_with(name, ".mjs")) return "text/javascript; charset=utf-8";
  if (ends_with(name, ".css")) return "text/css; charset=utf-8";
  if (ends_with(name, ".json") || ends_with(name, ".map")) return "application/json";
  if (ends_with(name, ".svg")) return "image/svg+xml";
  if (ends_with(name, ".png")) return "image/png";
  if (ends_with(name, ".ico")) return "image/x-icon";
  if (ends_with(name, ".woff2")) return "font/woff2";
  if (ends_with(name, ".txt")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

std::string ConsoleAssets::first_built(const std::initializer_list<std::string>& candidates) {
  std::error_code ec;
  for (const auto& dir : candidates)
    if (!dir.empty() && std::filesystem::is_regular_file(std::filesystem::path(dir) / "index.html", ec)) return dir;
  return {};
}

ConsoleAssets ConsoleAssets::load(const std::string& dir) {
  namespace fs = std::filesystem;
  ConsoleAssets out;
  out.dir_ = dir;
  std::error_code ec;
  if (dir.empty() || !fs::is_regular_file(fs::path(dir) / "index.html", ec)) return out;
  std::size_t total = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // Subdirectories, links to elsewhere and oddly named files are not served.
    if (!valid_name(name) || it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
    if (out.files_.size() >= kMaxFiles)
      throw Error(Errc::invalid_argument, "--ui-dir " + dir + " holds more than " + std::to_string(kMaxFiles) + " files");
    std::ifstream in(it->path(), std::ios::binary);
    std::ostringstream buf;
    buf << in.rdbuf();
    if (!in.good() && !in.eof()) throw Error(Errc::invalid_argument, "--ui-dir: cannot read " + it->path().string());
    ConsoleAsset a;
    a.body = buf.str();
    total += a.body.size();
    if (total > kMaxTotalBytes)
      throw Error(Errc::invalid_argument, "--ui-dir " + dir + " holds more than " +
                                              std::to_string(kMaxTotalBytes / (1024 * 1024)) + " MiB");
    a.content_type = content_type_of(name);
    const auto digest = detail::sha256(a.body);
    a.etag = "\"" + detail::to_hex(std::string_view(reinterpret_cast<const char*>(digest.data()), 16)) + "\"";
    a.immutable = content_hashed(name);
    out.files_.emplace(name, std::move(a));
  }
  if (ec) throw Error(Errc::invalid_argument, "--ui-dir " + dir + ": " + ec.message());
  return out;
}

const ConsoleAsset* ConsoleAssets::find(std::string_view name) const {
  if (!valid_name(name)) return nullptr;
  const auto it = files_.find(name);
  return it == files_.end() ? nullptr : &it->second;
}

}  // namespace lucid::server
