#include "access_log.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "lucidnode/clock.hpp"
#include "router.hpp"

namespace lucid::server {

namespace {

LogConfig g_stderr_config;

// A field as it may appear in a log line: cut at `max` bytes, control
// characters and non-ASCII bytes replaced by '?', so a request cannot forge
// or flood lines and a JSON line is always valid UTF-8.
std::string clean(std::string_view s, std::size_t max = 512) {
  std::string out(s.substr(0, max));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return out;
}

std::string now_text() { return format_rfc3339(std::chrono::system_clock::now(), true); }

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void key_string(Writer& w, const char* key, std::string_view value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

// {"time":...,"level":...,"msg":...}
std::string json_line(LogLevel level, std::string_view message) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  key_string(w, "time", now_text());
  key_string(w, "level", log_level_name(level));
  key_string(w, "msg", clean(message, 64 * 1024));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

}  // namespace

std::optional<LogFormat> parse_log_format(std::string_view s) {
  if (s == "text") return LogFormat::text;
  if (s == "json") return LogFormat::json;
  return std::nullopt;
}

std::optional<LogLevel> parse_log_level(std::string_view s) {
  if (s == "info") return LogLevel::info;
  if (s == "warning") return LogLevel::warning;
  if (s == "error") return LogLevel::error;
  return std::nullopt;
}

const char* log_level_name(LogLevel level) noexcept {
  return level == LogLevel::error ? "error" : level == LogLevel::warning ? "warning" : "info";
}

LogLevel request_log_level(int status) noexcept {
  return status >= 500 ? LogLevel::error : status >= 400 ? LogLevel::warning : LogLevel::info;
}

void configure_stderr_log(const LogConfig& config) { g_stderr_config = config; }

AccessLog::AccessLog(LogConfig config) : config_(config) {
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
  const LogLevel level = request_log_level(status);
  if (!config_.requests || level < config_.min_level) return;
  const std::string method = req.method.empty() ? "-" : clean(req.method, 32);
  const std::string path = req.path.empty() ? "-" : clean(req.path);
  const std::string client = clean(client_address(req), 64);
  const std::string id = req.request_id.empty() ? "-" : clean(req.request_id, 128);
  const double ms = static_cast<double>(took.count()) / 1000.0;
  std::string line;
  if (config_.format == LogFormat::json) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    key_string(w, "time", now_text());
    key_string(w, "level", log_level_name(level));
    key_string(w, "msg", "request");
    key_string(w, "client", client);
    key_string(w, "request_id", id);
    key_string(w, "method", method);
    key_string(w, "path", path);
    w.Key("status"); w.Int(status);
    w.Key("duration_ms"); w.Double(ms);
    w.EndObject();
    line.assign(buf.GetString(), buf.GetSize());
    line += '\n';
  } else {
    char took_text[32];
    std::snprintf(took_text, sizeof took_text, "%.3fms", ms);
    line = now_text() + " " + log_level_name(level) + " " + client + " " + id + " " + method + " " + path + " " +
           std::to_string(status) + " " + took_text + "\n";
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(line.data(), 1, line.size(), stdout);
}

void AccessLog::line(const std::string& text, LogLevel level) {
  if (level < config_.min_level) return;
  const std::string out = config_.format == LogFormat::json
                              ? json_line(level, text)
                              : now_text() + " " + log_level_name(level) + " " + clean(text, 64 * 1024) + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

void AccessLog::flush() {
  std::lock_guard<std::mutex> lock(mu_);
  std::fflush(stdout);
}

void log_to_stderr(LogLevel level, std::string_view message) {
  if (level < g_stderr_config.min_level) return;
  const std::string line = g_stderr_config.format == LogFormat::json
                               ? json_line(level, message)
                               : now_text() + " lucid-server: " + log_level_name(level) + ": " +
                                     clean(message, 64 * 1024) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace lucid::server
