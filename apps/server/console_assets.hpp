// The web console's static files (ui/dist, built by npm), read into memory
// once at start-up and served by routes/console.cpp under /ui/.
//
// Only the regular files directly in the directory are loaded, under names of
// [A-Za-z0-9._-] that do not start with '.', so a request names one of a
// fixed set of in-memory entries: no request path ever reaches the file
// system (path traversal has nothing to traverse).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace lucid::server {

struct ConsoleAsset {
  std::string body;
  std::string content_type;  // from the file name's extension
  std::string etag;          // "\"<hex of SHA-256's first 16 bytes>\""
  bool immutable = false;    // a content-hashed name (app-3F2A9C1B.js): cacheable for a year
};

class ConsoleAssets {
 public:
  // Bounds on what a console directory may hold: an operator pointing
  // --ui-dir at the wrong directory gets an error, not a server that reads
  // gigabytes into memory.
  static constexpr std::size_t kMaxFiles = 256;
  static constexpr std::size_t kMaxTotalBytes = 32 * 1024 * 1024;

  // No console: every lookup fails and built() is false.
  ConsoleAssets() = default;

  // Reads the console's files from `dir`. A directory without index.html
  // (absent, or empty: the console was not built) gives an empty set whose
  // built() is false. Throws lucid::Error(invalid_argument) when `dir` holds
  // index.html but breaks a bound above or a file cannot be read.
  static ConsoleAssets load(const std::string& dir);

  // The first of `candidates` that holds index.html, or "" when none does.
  static std::string first_built(const std::initializer_list<std::string>& candidates);

  bool built() const noexcept { return files_.count("index.html") != 0; }
  const std::string& dir() const noexcept { return dir_; }
  std::size_t file_count() const noexcept { return files_.size(); }

  // The file named `name` (one path segment), or nullptr. Thread-safe (the
  // set is not changed after load()).
  const ConsoleAsset* find(std::string_view name) const;

  // Whether `name` may name a console file: 1..128 characters of
  // [A-Za-z0-9._-], not starting with '.'. Anything else ("..", "a/b",
  // "%2e%2e" decoded, NUL) is refused before lookup.
  static bool valid_name(std::string_view name) noexcept;

  // The Content-Type of a file name by its extension (application/octet-stream
  // when unknown).
  static const char* content_type_of(std::string_view name) noexcept;

 private:
  std::string dir_;
  std::map<std::string, ConsoleAsset, std::less<>> files_;
};

}  // namespace lucid::server
