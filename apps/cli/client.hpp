// A small JSON-over-HTTP client for lucidctl (cpp-httplib inside).
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace lucidctl {

struct HttpResult {
  int status = 0;       // 0: no answer (connection failed, timed out)
  std::string body;
  std::string error;    // transport error when status == 0
  bool tls_failed = false;  // status 0 because of TLS: untrusted certificate,
                            // host name mismatch, failed handshake (`error` says which)
  int retry_after = -1;     // seconds from a Retry-After header (delta form), -1: none
  bool not_sent = false;    // status 0 before any of the request went out (no connection)
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

// For each https:// server of `base` (one URL or a comma-separated list):
// one request that fails only when TLS fails. Returns the first such
// failure's message, or empty when TLS works or the servers are unreachable
// for another reason (the caller retries then).
std::string check_tls(const std::string& base);

// The servers a client may talk to (replicas of one cluster, or a load
// balancer and a fallback), in the order given, and the one requests start
// at: the last that answered (sticky). One list is shared by every ApiClient
// of an agent, so that all its threads move together. Thread-safe.
class ServerList {
 public:
  static constexpr std::size_t kMaxServers = 16;
  static constexpr std::size_t kMaxUrlLength = 2048;

  // Parses "URL[,URL...]" (spaces around the commas allowed). Throws
  // std::invalid_argument naming the problem for an empty list, an empty
  // entry, a URL that is not http:// or https://, a URL listed twice, more
  // than kMaxServers URLs, or one longer than kMaxUrlLength.
  static std::shared_ptr<ServerList> parse(const std::string& spec);

  const std::vector<std::string>& urls() const { return urls_; }
  std::size_t size() const { return urls_.size(); }
  // The index requests start at.
  std::size_t current() const { return current_.load(); }
  // Requests start at `index` from now on. When that changes the current
  // server and `why` is not empty, the switch observer is told (from, to, why).
  void move_to(std::size_t index, const std::string& why);
  // Called on every switch (the agent logs it with --verbose). Set before
  // requests are made.
  void on_switch(std::function<void(const std::string& from, const std::string& to, const std::string& why)> fn);

 private:
  explicit ServerList(std::vector<std::string> urls) : urls_(std::move(urls)) {}
  std::vector<std::string> urls_;
  std::atomic<std::size_t> current_{0};
  std::mutex mu_;  // guards on_switch_ and orders the switch messages
  std::function<void(const std::string&, const std::string&, const std::string&)> on_switch_;
};

// Whether a request may be sent again to another server after it may have
// reached one (timed out after sending, 502/504 from a proxy). GET, PUT and
// DELETE are replay-safe by their HTTP meaning; a POST only when its route
// makes a repeat harmless (docs/decisions.md, issue 14).
enum class Replay { unsafe, safe };

// A JSON-over-HTTP client for one server or a ServerList with failover: a
// request goes to the list's current server; when that server cannot be
// connected to, answers 503, or (replay-safe requests only) times out or
// answers 502/504, it goes to the next one, once round the list. A TLS
// failure is never failed over (exit 5): a server whose certificate does not
// verify may be an attacker's, and a silent move to another would hide it.
// One ApiClient is used by one thread at a time (stop() from any).
class ApiClient {
 public:
  // base: "http://host:port" or "https://host:port" (no path), or several
  // comma-separated (ServerList::parse). Throws std::invalid_argument if
  // malformed, or if https:// and the CA file given to set_ca_file cannot be
  // read.
  explicit ApiClient(const std::string& base, std::string bearer = {});
  // Talks to `servers` (shared with other clients). Throws like the above.
  explicit ApiClient(std::shared_ptr<ServerList> servers, std::string bearer = {});
  ~ApiClient();
  void set_header(const std::string& name, const std::string& value);
  void set_timeout_seconds(int seconds);
  HttpResult get(const std::string& path);
  HttpResult post(const std::string& path, const std::string& json, Replay replay = Replay::unsafe);
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
