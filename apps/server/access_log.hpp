// lucid-server's log: one line per request (level, client address, request
// id, method, path, status, duration) and the server's own lines, as text or
// as JSON lines (--log-format json). Lines are written under a mutex to a
// buffered stream and flushed by a background thread every 200 ms, so logging
// costs no syscall per request.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "http/http_server.hpp"
#include "lucidnode/cluster.hpp"

namespace lucid::server {

enum class LogFormat { text, json };

// How lucid-server writes its lines; set once at startup, before serving.
struct LogConfig {
  LogFormat format = LogFormat::text;
  LogLevel min_level = LogLevel::info;  // lines below it are not written
  bool requests = true;                 // one line per request (--quiet: false)
};

// "text"/"json" and "info"/"warning"/"error"; nullopt for anything else.
std::optional<LogFormat> parse_log_format(std::string_view s);
std::optional<LogLevel> parse_log_level(std::string_view s);
const char* log_level_name(LogLevel level) noexcept;

// The level of a request's line: error for 5xx (the server failed), warning
// for 4xx (the client did), info otherwise.
LogLevel request_log_level(int status) noexcept;

// Sets the format and minimum level of log_to_stderr. Call before any thread
// logs (not synchronized).
void configure_stderr_log(const LogConfig& config);

class AccessLog {
 public:
  // Writes to stdout. Thread-safe after construction.
  explicit AccessLog(LogConfig config);
  ~AccessLog();
  // One request's line; `req.request_id` (set by the router) names it.
  void request(const http::Request& req, int status, std::chrono::microseconds took);
  // A server line (startup, shutdown) at `level`.
  void line(const std::string& text, LogLevel level = LogLevel::info);
  void flush();

 private:
  LogConfig config_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread flusher_;
};

// The library's Options::info_log for lucid-server: one line on stderr in
// the configured format ("<time> lucid-server: <level>: <message>" as text;
// control characters in the message replaced, so it cannot forge lines).
// Thread-safe: each line is one write to the unbuffered stderr.
void log_to_stderr(LogLevel level, std::string_view message);

}  // namespace lucid::server
