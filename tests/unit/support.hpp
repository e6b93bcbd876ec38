// Shared helpers for unit tests.
#pragma once

#include <filesystem>
#include <functional>
#include <random>
#include <string>

#include "lucidnode/error.hpp"

namespace testsupport {

// A fresh directory under the system temp dir, removed when destroyed.
struct TempDir {
  TempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / ("lucid-unit-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::filesystem::path path;
};

// The lucid::Errc that f throws (Errc::internal if it throws nothing).
inline lucid::Errc code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const lucid::Error& e) {
    return e.code();
  }
  return lucid::Errc::internal;
}

// The field named by the lucid::Error that f throws ("<none>" if none).
inline std::string field_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const lucid::Error& e) {
    return e.field();
  }
  return "<none>";
}

// The message of the lucid::Error that f throws ("<none>" if none).
inline std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const lucid::Error& e) {
    return e.message();
  }
  return "<none>";
}

// The lucid::Reason of the lucid::Error that f throws (Reason::none if none
// is thrown; check code_of too).
inline lucid::Reason reason_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const lucid::Error& e) {
    return e.reason();
  }
  return lucid::Reason::none;
}

}  // namespace testsupport
