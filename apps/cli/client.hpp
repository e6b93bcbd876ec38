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
  bool tls_failed = false;  // status 0 because of TLS: untrusted certificate,
                            // host name mismatch, failed handshake (`error` says which)
  int retry_after = -1;     // seconds from a Retry-After header (delta form), -1: none
};

// TLS trust for https:// servers, process-wide: `path` names a PEM file of CA
// certificates that replaces the system trust store (empty: the system store,
// the default). Set it before creating clients (lucidctl: --ca-file /
// LUCID_CA_FILE). The server's certificate and its host name (DNS or IP
// subjectAltName) are always verified; there is no fallback to plain HTTP.
// Not thread-safe against clients being created concurrently.
void set_ca_file(std::string path);

// A client certificate and its key (PEM files) presented to https:// servers
// that require one (lucid-server --tls-client-ca); empty: none. Process-wide,
// like set_ca_file.
void set_client_cert(std::string cert_file, std::string key_file);

// Exit code of lucidctl for a failed request (README): 1 the server refused,
// 3 unreachable, 5 TLS failure.
int exit_code_for(const HttpResult& r);

// For an https:// `base`: one request to the server that fails only when TLS
// fails. Returns that failure's message, or empty when TLS works or the server
// is unreachable for another reason (the caller retries then).
std::string check_tls(const std::string& base);

class ApiClient {
 public:
  // base: "http://host:port" or "https://host:port" (no path). Throws
  // std::invalid_argument if malformed, or if https:// and the CA file given
  // to set_ca_file cannot be read.
  explicit ApiClient(const std::string& base, std::string bearer = {});
  ~ApiClient();
  void set_header(const std::string& name, const std::string& value);
  void set_timeout_seconds(int seconds);
  HttpResult get(const std::string& path);
  HttpResult post(const std::string& path, const std::string& json);
  HttpResult put(const std::string& path, const std::string& json);
  HttpResult del(const std::string& path);
  // Aborts a request in flight on another thread (it fails with status 0).
  void stop();

  struct Impl;  // client.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

// The server's message from an error body ({"detail": ...}, or the cluster
// envelope's {"message", "error_code"}), or the body.
std::string error_message(const HttpResult& r);

}  // namespace lucidctl
