#include "client.hpp"
#include "util/json.hpp"
#include "util/json_object.hpp"

#include <httplib.h>
#include <rapidjson/document.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
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

std::shared_ptr<ServerList> ServerList::parse(const std::string& spec) {
  std::vector<std::string> urls;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t comma = spec.find(',', pos);
    std::string url = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    const auto first = url.find_first_not_of(" \t");
    url = first == std::string::npos ? std::string() : url.substr(first, url.find_last_not_of(" \t") - first + 1);
    if (url.empty()) throw std::invalid_argument(spec.empty() ? "no server URL" : "empty server URL in the list: " + spec);
    if (url.size() > kMaxUrlLength)
      throw std::invalid_argument("server URL longer than " + std::to_string(kMaxUrlLength) + " characters");
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
      throw std::invalid_argument("server URL must start with http:// or https://: " + url);
    while (url.back() == '/') url.pop_back();
    if (std::find(urls.begin(), urls.end(), url) != urls.end())
      throw std::invalid_argument("server URL listed twice: " + url);
    urls.push_back(url);
    if (urls.size() > kMaxServers)
      throw std::invalid_argument("more than " + std::to_string(kMaxServers) + " server URLs");
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return std::shared_ptr<ServerList>(new ServerList(std::move(urls)));
}

void ServerList::move_to(std::size_t index, const std::string& why) {
  std::lock_guard<std::mutex> lk(mu_);
  const std::size_t from = current_.exchange(index);
  if (from != index && on_switch_ && !why.empty()) on_switch_(urls_[from], urls_[index], why);
}

void ServerList::on_switch(std::function<void(const std::string&, const std::string&, const std::string&)> fn) {
  std::lock_guard<std::mutex> lk(mu_);
  on_switch_ = std::move(fn);
}

// One server of the list: its own connection (kept alive) and TLS settings.
struct Endpoint {
  Endpoint(const std::string& base, const std::pair<std::string, std::string>& cert)
      : cli(base, cert.first, cert.second), https(base.rfind("https://", 0) == 0), host(base) {
    host.erase(0, host.find("://") + 3);
  }
  httplib::Client cli;
  bool https;
  std::string host;  // host:port, for messages
  std::string ca;    // the CA file in use ("" = system store)
  bool client_cert = false;  // a client certificate is configured
};

struct ApiClient::Impl {
  std::shared_ptr<ServerList> servers;
  std::vector<std::unique_ptr<Endpoint>> endpoints;  // one per servers->urls()
  httplib::Headers headers;
};

namespace {

std::unique_ptr<Endpoint> make_endpoint(const std::string& base) {
  const auto cert = client_cert();
  auto ep = std::make_unique<Endpoint>(base, cert);
  ep->client_cert = !cert.first.empty();
  if (!ep->cli.is_valid()) {
    if (ep->https && ep->client_cert)  // httplib could not load them (a key of another certificate, ...)
      throw std::invalid_argument("cannot use the client certificate " + cert.first + " with key " + cert.second);
    throw std::invalid_argument("invalid server URL: " + base);
  }
  if (ep->https) {
    ep->ca = ca_file();
    if (!ep->ca.empty()) {
      if (!std::ifstream(ep->ca)) throw std::invalid_argument("cannot read the CA file " + ep->ca);
      ep->cli.set_ca_cert_path(ep->ca);
    }
    ep->cli.enable_server_certificate_verification(true);
    if (SSL_CTX* ctx = ep->cli.ssl_context()) SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  }
  ep->cli.set_connection_timeout(5, 0);
  ep->cli.set_read_timeout(30, 0);
  ep->cli.set_keep_alive(true);
  // Small request/answer exchanges on a kept-alive connection: without
  // TCP_NODELAY, Nagle's algorithm delays a request's second segment until
  // the previous one is acknowledged (issue 19).
  ep->cli.set_tcp_nodelay(true);
  return ep;
}

}  // namespace

ApiClient::ApiClient(const std::string& base, std::string bearer) : ApiClient(ServerList::parse(base), std::move(bearer)) {}

ApiClient::ApiClient(std::shared_ptr<ServerList> servers, std::string bearer) : impl_(std::make_unique<Impl>()) {
  if (!servers) throw std::invalid_argument("no server URL");
  for (const auto& url : servers->urls()) impl_->endpoints.push_back(make_endpoint(url));
  impl_->servers = std::move(servers);
  if (!bearer.empty()) impl_->headers.emplace("Authorization", "Bearer " + bearer);
}

ApiClient::~ApiClient() = default;

void ApiClient::set_header(const std::string& name, const std::string& value) {
  impl_->headers.erase(name);
  impl_->headers.emplace(name, value);
}

void ApiClient::set_timeout_seconds(int seconds) {
  for (auto& ep : impl_->endpoints) ep->cli.set_read_timeout(seconds, 0);
}

namespace {
HttpResult convert(Endpoint& impl, httplib::Result res) {
  HttpResult out;
  if (!res) {
    const auto e = res.error();
    out.error = httplib::to_string(e);
    // Nothing of the request went out: it cannot have been applied.
    out.not_sent = e == httplib::Error::Connection || e == httplib::Error::ConnectionTimeout ||
                   e == httplib::Error::BindIPAddress;
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

// 502, 503, 504: a proxy without a live backend, or a server that cannot
// serve now (its storage failed, its queue is full).
bool unavailable(int status) { return status == 502 || status == 503 || status == 504; }

std::string why_failed(const HttpResult& r) {
  return r.status ? "HTTP " + std::to_string(r.status) : r.error;
}

// One request through the list (ApiClient's comment says the policy). The
// list's current server changes (and the switch is told) when another one
// answered, or when a request that must not be repeated failed on it.
HttpResult send_with_failover(ApiClient::Impl& impl, const std::function<httplib::Result(httplib::Client&)>& call,
                              Replay replay) {
  ServerList& list = *impl.servers;
  const std::size_t n = list.size();
  const std::size_t start = list.current();
  HttpResult answered;      // the last 502/503/504 answer of this round
  std::string unreachable;  // "url: error; ..." of servers that did not answer
  std::string why;          // what made this round move on: "url: error"
  int retry_after = -1;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (start + k) % n;
    HttpResult r = convert(*impl.endpoints[i], call(impl.endpoints[i]->cli));
    if (n == 1) return r;  // one server: its answer as it is (the caller retries)
    // A TLS failure is not failed over (see the class comment), nor a
    // request stopped on purpose.
    if (r.tls_failed || r.error == httplib::to_string(httplib::Error::Canceled)) return r;
    if (r.status != 0 && !unavailable(r.status)) {
      if (i != start) list.move_to(i, why);
      return r;
    }
    why = list.urls()[i] + ": " + why_failed(r);
    // Not served here. A request that may have been applied is not sent
    // again unless repeating it is harmless; the next request starts at the
    // next server all the same (a hanging server must not hold the caller).
    const bool maybe_applied = r.status == 0 ? !r.not_sent : r.status != 503;
    if (maybe_applied && replay == Replay::unsafe) {
      list.move_to((i + 1) % n, why + " (the request was not repeated)");
      return r;
    }
    if (r.status != 0) {
      retry_after = std::max(retry_after, r.retry_after);
      answered = std::move(r);
    } else {
      unreachable += (unreachable.empty() ? "" : "; ") + list.urls()[i] + ": " + r.error;
    }
  }
  // A full round failed; the next one starts where this one did. An answer
  // (503 with Retry-After ...) says more than a refused connection; else
  // every server was unreachable (exit 3).
  if (answered.status != 0) {
    answered.retry_after = retry_after;
    return answered;
  }
  HttpResult out;
  out.error = "none of the " + std::to_string(n) + " servers answered (" + unreachable + ")";
  return out;
}

}  // namespace

HttpResult ApiClient::get(const std::string& path) {
  return send_with_failover(*impl_, [&](httplib::Client& c) { return c.Get(path.c_str(), impl_->headers); }, Replay::safe);
}

HttpResult ApiClient::post(const std::string& path, const std::string& json, Replay replay) {
  return send_with_failover(*impl_, [&](httplib::Client& c) { return c.Post(path.c_str(), impl_->headers, json, "application/json"); }, replay);
}

HttpResult ApiClient::put(const std::string& path, const std::string& json) {
  return send_with_failover(*impl_, [&](httplib::Client& c) { return c.Put(path.c_str(), impl_->headers, json, "application/json"); },
              Replay::safe);
}

HttpResult ApiClient::del(const std::string& path) {
  return send_with_failover(*impl_, [&](httplib::Client& c) { return c.Delete(path.c_str(), impl_->headers); }, Replay::safe);
}

void ApiClient::stop() {
  for (auto& ep : impl_->endpoints) ep->cli.stop();
}

int exit_code_for(const HttpResult& r) {
  if (r.status != 0) return 1;
  return r.tls_failed ? 5 : 3;
}

std::string check_tls(const std::string& base) {
  const auto servers = ServerList::parse(base);  // kept alive through the loop
  for (const auto& url : servers->urls()) {
    if (url.rfind("https://", 0) != 0) continue;
    ApiClient api(url);
    const HttpResult r = api.get("/health");
    if (r.tls_failed) return r.error;
  }
  return {};
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
