// One line per request: time, method, path, status, duration. Lines are
// written under a mutex to a buffered stream and flushed by a background
// thread every 200 ms, so logging costs no syscall per request.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "http/http_server.hpp"
#include "lucidnode/cluster.hpp"

namespace lucid::server {

class AccessLog {
 public:
  explicit AccessLog(std::FILE* out);  // nullptr: request lines off (other lines to stdout)
  ~AccessLog();
  void request(const http::Request& req, int status, std::chrono::microseconds took);
  void line(const std::string& text);
  void flush();

 private:
  std::FILE* out_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread flusher_;
};

// The library's Options::info_log for lucid-server: one line on stderr,
// "<time> lucid-server: <level>: <message>" (control characters in the
// message replaced, so it cannot forge lines). Thread-safe: each line is one
// write to the unbuffered stderr.
void log_to_stderr(LogLevel level, std::string_view message);

}  // namespace lucid::server
