#include "access_log.hpp"

#include "lucidnode/clock.hpp"

namespace lucid::server {

AccessLog::AccessLog(std::FILE* out) : out_(out) {
  flusher_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(200));
      std::fflush(stdout);
    }
  });
}

AccessLog::~AccessLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  flusher_.join();
  std::fflush(stdout);
}

void AccessLog::request(const http::Request& req, int status, std::chrono::microseconds took) {
  if (!out_) return;
  char buf[768];
  const std::string now = format_rfc3339(std::chrono::system_clock::now(), true);
  // The path is cut at 512 bytes and control characters are replaced, so a
  // request cannot forge or flood log lines.
  std::string path = req.path.substr(0, 512);
  for (char& c : path)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  int n = std::snprintf(buf, sizeof buf, "%s %s %s %d %.3fms\n", now.c_str(), req.method.empty() ? "-" : req.method.c_str(),
                        path.empty() ? "-" : path.c_str(), status, static_cast<double>(took.count()) / 1000.0);
  if (n <= 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(buf, 1, static_cast<std::size_t>(std::min<int>(n, sizeof buf - 1)), out_);
}

void AccessLog::line(const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  std::fprintf(stdout, "%s %s\n", format_rfc3339(std::chrono::system_clock::now(), true).c_str(), text.c_str());
  std::fflush(stdout);
}

void AccessLog::flush() {
  std::lock_guard<std::mutex> lock(mu_);
  std::fflush(stdout);
}

void log_to_stderr(LogLevel level, std::string_view message) {
  const char* name = level == LogLevel::error ? "error" : level == LogLevel::warning ? "warning" : "info";
  std::string line = format_rfc3339(std::chrono::system_clock::now(), true) + " lucid-server: " + name + ": ";
  line.reserve(line.size() + message.size() + 1);
  for (char c : message) line += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace lucid::server
