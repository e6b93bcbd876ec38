#include "client.hpp"
#include "util/json.hpp"
#include "util/json_object.hpp"

#include <httplib.h>
#include <rapidjson/document.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fstream>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace lucidctl {

namespace {
std::mutex g_ca_mu;
std::string g_ca_file;  // guarded by g_ca_mu
std::string g_client_cert, g_client_key;  // guarded by g_ca_mu

std::string ca_file() {
  std::lock_guard<std::mutex> lk(g_ca_mu);
  return g_ca_file;
}

std::pair<std::string, std::string> client_cert() {
  std::lock_guard<std::mutex> lk(g_ca_mu);
  return {g_client_cert, g_client_key};
}
}  // namespace

void set_client_cert(std::string cert_file, std::string key_file) {
  std::lock_guard<std::mutex> lk(g_ca_mu);
  g_client_cert = std::move(cert_file);
  g_client_key = std::move(key_file);
}

void set_ca_file(std::string path) {
  std::lock_guard<std::mutex> lk(g_ca_mu);
  g_ca_file = std::move(path);
}

struct ApiClient::Impl {
  Impl(const std::string& base, const std::pair<std::string, std::string>& cert)
      : cli(base, cert.first, cert.second), https(base.rfind("https://", 0) == 0), host(base) {
    host.erase(0, host.find("://") + 3);
  }
  httplib::Client cli;
  httplib::Headers headers;
  bool https;
  std::string host;  // host:port, for messages
  std::string ca;    // the CA file in use ("" = system store)
  bool client_cert = false;  // a client certificate is configured
};

ApiClient::ApiClient(const std::string& base, std::string bearer) {
  if (base.rfind("http://", 0) != 0 && base.rfind("https://", 0) != 0)
    throw std::invalid_argument("server URL must start with http:// or https://: " + base);
  std::string b = base;
  while (!b.empty() && b.back() == '/') b.pop_back();
  const auto cert = client_cert();
  impl_ = std::make_unique<Impl>(b, cert);
  impl_->client_cert = !cert.first.empty();
  if (!impl_->cli.is_valid()) {
    if (impl_->https && impl_->client_cert)  // httplib could not load them (a key of another certificate, ...)
      throw std::invalid_argument("cannot use the client certificate " + cert.first + " with key " + cert.second);
    throw std::invalid_argument("invalid server URL: " + base);
  }
  if (impl_->https) {
    impl_->ca = ca_file();
    if (!impl_->ca.empty()) {
      if (!std::ifstream(impl_->ca)) throw std::invalid_argument("cannot read the CA file " + impl_->ca);
      impl_->cli.set_ca_cert_path(impl_->ca);
    }
    impl_->cli.enable_server_certificate_verification(true);
    if (SSL_CTX* ctx = impl_->cli.ssl_context()) SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  }
  impl_->cli.set_connection_timeout(5, 0);
  impl_->cli.set_read_timeout(30, 0);
  impl_->cli.set_keep_alive(true);
  // Small request/answer exchanges on a kept-alive connection: without
  // TCP_NODELAY, Nagle's algorithm delays a request's second segment until
  // the previous one is acknowledged (issue 19).
  impl_->cli.set_tcp_nodelay(true);
  if (!bearer.empty()) impl_->headers.emplace("Authorization", "Bearer " + bearer);
}

ApiClient::~ApiClient() = default;

void ApiClient::set_header(const std::string& name, const std::string& value) {
  impl_->headers.erase(name);
  impl_->headers.emplace(name, value);
}

void ApiClient::set_timeout_seconds(int seconds) { impl_->cli.set_read_timeout(seconds, 0); }

namespace {
HttpResult convert(ApiClient::Impl& impl, httplib::Result res) {
  HttpResult out;
  if (!res) {
    const auto e = res.error();
    out.error = httplib::to_string(e);
    const std::string hint = impl.ca.empty() ? " (the system trust store was used; pass --ca-file or set LUCID_CA_FILE "
                                               "for a private CA)"
                                             : " (trusted: the CAs in " + impl.ca + ")";
    if (e == httplib::Error::SSLServerVerification) {
      out.tls_failed = true;
      const long v = impl.cli.get_openssl_verify_result();
      if (v != X509_V_OK)
        out.error = "TLS: cannot verify the certificate of " + impl.host + ": " + X509_verify_cert_error_string(v) + hint;
      else
        out.error = "TLS: the certificate of " + impl.host + " is not valid for that host name";
    } else if (e == httplib::Error::SSLConnection) {
      out.tls_failed = true;
      out.error = "TLS: handshake with " + impl.host + " failed (does it serve HTTPS, TLS 1.2 or later?" +
                  (impl.client_cert ? std::string(")") : std::string(" Does it require a client certificate?)"));
    } else if (e == httplib::Error::Read && impl.https && !impl.client_cert) {
      // Under TLS 1.3 a server that requires a client certificate refuses it
      // after the handshake: the client only sees the connection end.
      out.error += " (the server ended the connection; if it requires a client certificate, pass --client-cert "
                   "and --client-key)";
    } else if (e == httplib::Error::SSLLoadingCerts) {
      out.tls_failed = true;
      out.error = "TLS: cannot load trusted certificates" + hint;
    }
    return out;
  }
  out.status = res->status;
  out.body = res->body;
  if (res->has_header("Retry-After")) {
    // Only the delta-seconds form; an HTTP date is rare from our server and
    // falls back to the caller's own backoff.
    const std::string v = res->get_header_value("Retry-After");
    if (!v.empty() && v.size() <= 6 && v.find_first_not_of("0123456789") == std::string::npos)
      out.retry_after = std::stoi(v);
  }
  return out;
}
}  // namespace

HttpResult ApiClient::get(const std::string& path) {
  return convert(*impl_, impl_->cli.Get(path.c_str(), impl_->headers));
}

HttpResult ApiClient::post(const std::string& path, const std::string& json) {
  return convert(*impl_, impl_->cli.Post(path.c_str(), impl_->headers, json, "application/json"));
}

HttpResult ApiClient::put(const std::string& path, const std::string& json) {
  return convert(*impl_, impl_->cli.Put(path.c_str(), impl_->headers, json, "application/json"));
}

HttpResult ApiClient::del(const std::string& path) {
  return convert(*impl_, impl_->cli.Delete(path.c_str(), impl_->headers));
}

void ApiClient::stop() { impl_->cli.stop(); }

int exit_code_for(const HttpResult& r) {
  if (r.status != 0) return 1;
  return r.tls_failed ? 5 : 3;
}

std::string check_tls(const std::string& base) {
  if (base.rfind("https://", 0) != 0) return {};
  ApiClient api(base);
  const HttpResult r = api.get("/health");
  return r.tls_failed ? r.error : std::string();
}

std::string error_message(const HttpResult& r) {
  if (r.status == 0) return r.tls_failed ? r.error : "cannot reach server: " + r.error;
  rapidjson::Document d;
  const bool parsed = static_cast<bool>(lucid::detail::parse_json(d, r.body, lucid::detail::kJsonStrict, lucid::detail::kJsonClientMaxDepth));
  if (parsed) {
    using lucid::detail::peek_array;
    using lucid::detail::peek_string;
    const std::string status = std::to_string(r.status);
    const auto code = peek_string(d, "error_code");
    const auto message = peek_string(d, "message");
    if (code && message) return "HTTP " + status + " " + *code + ": " + *message;
    // The node-management and gateway documents: {"error": {"code", "message", ...}}.
    if (const auto* err = lucid::detail::peek_member(d, "error"); err && err->IsObject()) {
      const auto ecode = peek_string(*err, "code");
      const auto emessage = peek_string(*err, "message");
      if (emessage) return "HTTP " + status + (ecode ? " " + *ecode : std::string()) + ": " + *emessage;
    }
    // The network-node document: {"success": false, "error": "..."}.
    if (auto e = peek_string(d, "error")) return "HTTP " + status + ": " + *e;
    if (auto detail = peek_string(d, "detail")) return "HTTP " + status + ": " + *detail;
    if (const auto* details = peek_array(d, "detail"); details && !details->Empty()) {
      const auto& first = (*details)[0];
      if (auto msg = peek_string(first, "msg")) {
        std::string where;
        if (const auto* loc = peek_array(first, "loc"))
          for (const auto& l : loc->GetArray())
            if (l.IsString()) where += (where.empty() ? "" : ".") + std::string(l.GetString());
        return "HTTP " + status + ": " + where + ": " + *msg;
      }
    }
  }
  return "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 300);
}

}  // namespace lucidctl
