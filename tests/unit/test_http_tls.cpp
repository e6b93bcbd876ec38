// Unit tests for HTTPS in lucid::http (apps/server/http/tls.* and the TLS
// transport under http_server.cpp): the context's refusals, and a real Server
// with use_tls() driven by a blocking asio::ssl client that verifies it —
// keep-alive and pipelined requests, a stream ended by the server, an upgraded
// (raw byte) connection, and close_notify at every close.
#include <doctest/doctest.h>

#include "http/http_server.hpp"
#include "http/tls.hpp"

#include <asio/ssl.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A temporary directory with a self-signed P-256 certificate for 127.0.0.1
// (its own trust anchor) and its key (0600), plus a second key.
struct Pki {
  fs::path dir;
  std::string cert, key, other_key;

  Pki() {
    char tmpl[] = "/tmp/lucid-tls-unit-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = tmpl;
    cert = (dir / "cert.pem").string();
    key = (dir / "key.pem").string();
    other_key = (dir / "other.pem").string();
    EVP_PKEY* pkey = EVP_EC_gen("P-256");
    EVP_PKEY* other = EVP_EC_gen("P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -300);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pkey);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    for (const auto& [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
                                     std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      X509_add_ext(x, ext, -1);
      X509_EXTENSION_free(ext);
    }
    X509_sign(x, pkey, EVP_sha256());
    write(cert, [&](FILE* f) { PEM_write_X509(f, x); });
    write(key, [&](FILE* f) { PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr); });
    write(other_key, [&](FILE* f) { PEM_write_PrivateKey(f, other, nullptr, nullptr, 0, nullptr, nullptr); });
    X509_free(x);
    EVP_PKEY_free(pkey);
    EVP_PKEY_free(other);
  }
  ~Pki() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  template <class F>
  static void write(const std::string& path, F fn) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) throw std::runtime_error("cannot write " + path);
    fn(f);
    std::fclose(f);
    ::chmod(path.c_str(), 0600);
  }
};

std::string refusal(const std::string& cert, const std::string& key) {
  try {
    lucid::http::make_server_tls_context(cert, key);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "<accepted>";
}

// A Server with use_tls() on two I/O threads.
struct TlsServer {
  asio::io_context io;
  asio::thread_pool workers{2};
  std::unique_ptr<lucid::http::Server> srv;
  std::vector<std::thread> threads;

  TlsServer(const Pki& pki, lucid::http::Handler h) {
    srv = std::make_unique<lucid::http::Server>(io, workers, lucid::http::ServerOptions{}, std::move(h), nullptr,
                                                nullptr);
    srv->use_tls(lucid::http::make_server_tls_context(pki.cert, pki.key));
    srv->listen("127.0.0.1", 0);
    for (int i = 0; i < 2; ++i) threads.emplace_back([this] { io.run(); });
  }
  ~TlsServer() {
    srv->stop(1s);
    io.stop();
    for (auto& t : threads) t.join();
    workers.join();
  }
};

// A blocking TLS client verifying the server against the test certificate.
struct TlsClient {
  asio::io_context io;
  asio::ssl::context ctx{asio::ssl::context::tls_client};
  asio::ssl::stream<asio::ip::tcp::socket> s{io, ctx};

  TlsClient(const Pki& pki, std::uint16_t port) {
    ctx.load_verify_file(pki.cert);
    s.set_verify_mode(asio::ssl::verify_peer);
    s.set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
    s.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
    s.handshake(asio::ssl::stream_base::client);
  }
  void send(const std::string& data) { asio::write(s, asio::buffer(data)); }
  // Everything until the server closes; `clean` tells whether it sent close_notify.
  std::string read_to_end(bool& clean) {
    std::string out;
    char buf[4096];
    for (;;) {
      std::error_code ec;
      const std::size_t n = s.read_some(asio::buffer(buf), ec);
      out.append(buf, n);
      if (ec) {
        clean = ec == asio::error::eof;  // stream_truncated: EOF without close_notify
        return out;
      }
    }
  }
  std::string read_until(const std::string& needle) {
    std::string out;
    char buf[4096];
    while (out.find(needle) == std::string::npos) {
      const std::size_t n = s.read_some(asio::buffer(buf));
      out.append(buf, n);
    }
    return out;
  }
};

std::size_t count(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("tls: the context refuses bad certificate and key files with messages naming them") {
  Pki pki;
  CHECK(refusal(pki.cert, pki.key) == "<accepted>");
  const std::string missing = (pki.dir / "missing.pem").string();
  CHECK(refusal(missing, pki.key).find("cannot read the TLS certificate file " + missing) == 0);
  CHECK(refusal(pki.cert, missing).find("cannot read the TLS key file " + missing) == 0);
  CHECK(refusal(pki.cert, pki.other_key).find("does not match the certificate") != std::string::npos);
  CHECK(refusal(pki.key, pki.key).find("holds no usable PEM certificate") != std::string::npos);
  CHECK(refusal(pki.cert, pki.cert).find("holds no usable (unencrypted) PEM private key") != std::string::npos);
  ::chmod(pki.key.c_str(), 0644);
  CHECK(refusal(pki.cert, pki.key).find("must not be accessible by others") != std::string::npos);
  ::chmod(pki.key.c_str(), 0660);
  CHECK(refusal(pki.cert, pki.key).find("must not be accessible by others") != std::string::npos);
  ::chmod(pki.key.c_str(), 0640);
  CHECK(refusal(pki.cert, pki.key) == "<accepted>");
}

TEST_CASE("tls: keep-alive, pipelining and Connection: close end with close_notify") {
  Pki pki;
  TlsServer server(pki, [](lucid::http::Request& req) {
    lucid::http::Reply r;
    r.response.body = "you asked for " + req.path;
    return r;
  });
  TlsClient c(pki, server.srv->port());
  c.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(c.read_until("you asked for /a").find("HTTP/1.1 200 OK") == 0);
  c.send("GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  bool clean = false;
  const std::string rest = c.read_to_end(clean);
  CHECK(count(rest, "HTTP/1.1 200 OK") == 2);
  CHECK(rest.find("you asked for /b") < rest.find("you asked for /c"));
  CHECK(clean);
}

TEST_CASE("tls: a stream closed by the server ends with close_notify") {
  Pki pki;
  TlsServer server(pki, [](lucid::http::Request&) {
    lucid::http::Reply r;
    r.response.content_type = "text/event-stream";
    r.stream = [](std::shared_ptr<lucid::http::Stream> s) {
      s->send("data: one\n\n");
      s->send("data: two\n\n");
      s->close();
    };
    return r;
  });
  TlsClient c(pki, server.srv->port());
  c.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
  bool clean = false;
  const std::string all = c.read_to_end(clean);
  CHECK(all.find("HTTP/1.1 200 OK") == 0);
  CHECK(all.find("data: one\n\ndata: two\n\n") != std::string::npos);
  CHECK(clean);
}

TEST_CASE("tls: an upgraded connection carries raw bytes both ways") {
  Pki pki;
  TlsServer server(pki, [](lucid::http::Request&) {
    lucid::http::Reply r;
    r.response.status = 101;
    auto stream = std::make_shared<std::shared_ptr<lucid::http::Stream>>();
    r.upgrade = [stream](std::shared_ptr<lucid::http::Stream> s) {
      *stream = s;
      s->send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
    };
    r.on_data = [stream](std::string_view bytes) {
      const std::string text(bytes);
      (*stream)->send("echo:" + text);
      if (text.find("bye") != std::string::npos) (*stream)->close();
    };
    return r;
  });
  TlsClient c(pki, server.srv->port());
  c.send("GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly");
  CHECK(c.read_until("echo:early").find("HTTP/1.1 101") == 0);
  c.send("bye");
  bool clean = false;
  CHECK(c.read_to_end(clean).find("echo:bye") != std::string::npos);
  CHECK(clean);
}

TEST_CASE("tls: a client speaking plain HTTP is dropped and the server keeps serving") {
  Pki pki;
  TlsServer server(pki, [](lucid::http::Request&) { return lucid::http::Reply{}; });
  {
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), server.srv->port()});
    asio::write(s, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
    std::string got;
    char buf[1024];
    std::error_code ec;
    while (!ec) {
      const std::size_t n = s.read_some(asio::buffer(buf), ec);
      got.append(buf, n);
    }
    CHECK(got.rfind("HTTP/", 0) != 0);  // at most a TLS alert, never an HTTP answer
  }
  TlsClient c(pki, server.srv->port());
  c.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  bool clean = false;
  CHECK(c.read_to_end(clean).find("HTTP/1.1 200 OK") == 0);
}
