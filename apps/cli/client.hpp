// A small JSON-over-HTTP client for lucidctl (cpp-httplib inside).
#pragma once

#include <map>
#include <memory>
#include <string>

namespace lucidctl {

struct HttpResult {
  int status = 0;       // 0: no answer (connection failed, timed out)
  std::string body;
  std::string error;    // transport error when status == 0
};

class ApiClient {
 public:
  // base: "http://host:port" (no path). Throws std::invalid_argument if malformed.
  explicit ApiClient(const std::string& base, std::string bearer = {});
  ~ApiClient();
  void set_header(const std::string& name, const std::string& value);
  void set_timeout_seconds(int seconds);
  HttpResult get(const std::string& path);
  HttpResult post(const std::string& path, const std::string& json);
  HttpResult put(const std::string& path, const std::string& json);
  // Aborts a request in flight on another thread (it fails with status 0).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The server's message from an error body ({"detail": ...}, or the cluster
// envelope's {"message", "error_code"}), or the body.
std::string error_message(const HttpResult& r);

}  // namespace lucidctl
