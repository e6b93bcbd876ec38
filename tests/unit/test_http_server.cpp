// Unit tests for lucid::http::Server (apps/server/http/http_server.*).
//
// Every test runs a real Server on 127.0.0.1, port 0, with its io_context on two
// threads, and talks to it through blocking POSIX sockets, so the bytes on the
// wire are exactly what the test wrote. Reads have timeouts (poll), so a broken
// server makes a test fail instead of hanging.
#include <doctest/doctest.h>

#include "http/http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using lucid::http::AccessLogger;
using lucid::http::ErrorResponder;
using lucid::http::Handler;
using lucid::http::Reply;
using lucid::http::Request;
using lucid::http::Response;
using lucid::http::Server;
using lucid::http::ServerOptions;
using lucid::http::Stream;
using SteadyClock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// A parsed response as the client saw it.
struct Resp {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;

  const std::string* header(std::string_view lower_name) const {
    for (const auto& h : headers) {
      if (h.first == lower_name) return &h.second;
    }
    return nullptr;
  }
  std::string header_or(std::string_view lower_name, std::string fallback = "<none>") const {
    const auto* v = header(lower_name);
    return v ? *v : fallback;
  }
};

// A blocking client socket with timeouts on every read.
class Client {
 public:
  // source: the client's own address (another loopback address such as
  // "127.0.0.2" stands for another client), or nullptr for the default.
  explicit Client(std::uint16_t port, const char* source = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket() failed");
    if (source) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      ::inet_pton(AF_INET, source, &local.sin_addr);
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) throw std::runtime_error("bind() failed");
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return fd_ >= 0; }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Writes all of `data`; false if the connection is gone.
  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        return false;
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads until `in` contains `needle` (false on timeout or EOF).
  bool read_until(std::string_view needle, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = SteadyClock::now() + timeout;
    while (in.find(needle) == std::string::npos) {
      if (!recv_some(deadline)) return false;
    }
    return true;
  }

  // Reads one response: the head, then a Content-Length body if there is one.
  // A response without Content-Length (a stream) returns after its head.
  std::optional<Resp> read_response(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = SteadyClock::now() + timeout;
    std::size_t end;
    while ((end = in.find("\r\n\r\n")) == std::string::npos) {
      if (!recv_some(deadline)) return std::nullopt;
    }
    const std::string head = in.substr(0, end);
    in.erase(0, end + 4);
    Resp r;
    std::size_t pos = head.find("\r\n");
    const std::string status_line = head.substr(0, pos);
    if (status_line.rfind("HTTP/1.1 ", 0) != 0 || status_line.size() < 12) return std::nullopt;
    r.status = std::stoi(status_line.substr(9, 3));
    while (pos != std::string::npos) {
      const std::size_t start = pos + 2;
      pos = head.find("\r\n", start);
      const std::string line = head.substr(start, pos == std::string::npos ? std::string::npos : pos - start);
      const auto colon = line.find(':');
      if (colon == std::string::npos) return std::nullopt;
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers.emplace_back(std::move(name), std::move(value));
    }
    if (const auto* cl = r.header("content-length")) {
      const std::size_t n = std::stoul(*cl);
      while (in.size() < n) {
        if (!recv_some(deadline)) return std::nullopt;
      }
      r.body = in.substr(0, n);
      in.erase(0, n);
    }
    return r;
  }

  // True once the server closed the connection (EOF or reset); data that
  // arrives meanwhile is kept in `in`.
  bool wait_closed(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = SteadyClock::now() + timeout;
    while (!eof_) {
      if (!recv_some(deadline) && !eof_) return false;
    }
    return true;
  }

  std::string in;  // received and not yet consumed

 private:
  // One recv, waiting at most until `deadline`. False on timeout, EOF or error.
  bool recv_some(SteadyClock::time_point deadline) {
    if (fd_ < 0 || eof_) return false;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      const int pr = ::poll(&p, 1, static_cast<int>(left.count()));
      if (pr < 0 && errno == EINTR) continue;
      if (pr <= 0) return false;
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        in.append(buf, static_cast<std::size_t>(n));
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      eof_ = true;  // 0: orderly close; <0: reset
      return false;
    }
  }

  int fd_ = -1;
  bool eof_ = false;
};

struct LogEntry {
  std::string method;
  std::string path;
  int status = 0;
  std::chrono::microseconds duration{0};
};

// ErrorResponder used by every test server: a recognisable JSON body.
Response json_error(const lucid::http::Request&, int status, std::string_view message) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = "{\"error\":" + std::to_string(status) + ",\"message\":\"" + std::string(message) + "\"}";
  return r;
}

// A Server on 127.0.0.1:0 with two I/O threads and four workers.
class TestServer {
 public:
  explicit TestServer(Handler handler, ServerOptions opts = {})
      : guard_(asio::make_work_guard(io_)) {
    server_ = std::make_unique<Server>(io_, workers_, opts, std::move(handler), json_error,
                                       [this](const Request& r, int status, std::chrono::microseconds d) {
                                         std::lock_guard<std::mutex> lk(mu_);
                                         logs_.push_back({r.method, r.path, status, d});
                                       });
    server_->listen("127.0.0.1", 0);
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~TestServer() {
    server_->stop(std::chrono::milliseconds(2000));
    guard_.reset();
    // io_.run() returns only if the stopped server left no work behind.
    for (auto& t : threads_) t.join();
    workers_.join();
    server_.reset();
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  Server& server() { return *server_; }
  std::uint16_t port() const { return server_->port(); }

  std::vector<LogEntry> logs() {
    std::lock_guard<std::mutex> lk(mu_);
    return logs_;
  }
  // The access log runs after the response is written, so the client may see
  // the response first: wait for it.
  bool wait_logs(std::size_t n, std::chrono::milliseconds timeout = 3s) {
    return wait_for([&] { return logs().size() >= n; }, timeout);
  }
  bool wait_connections(std::size_t n, std::chrono::milliseconds timeout = 3s) {
    return wait_for([&] { return server_->connection_count() == n; }, timeout);
  }

  template <typename Pred>
  static bool wait_for(Pred pred, std::chrono::milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    while (!pred()) {
      if (SteadyClock::now() >= deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  asio::thread_pool workers_{4};
  std::unique_ptr<Server> server_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<LogEntry> logs_;
};

Reply text(std::string body, int status = 200) {
  Reply r;
  r.response.status = status;
  r.response.content_type = "text/plain";
  r.response.body = std::move(body);
  return r;
}

// Handler echoing what the server parsed.
Reply echo(Request& req) {
  return text("method=" + req.method + " path=" + req.path + " query=" + req.query + " body=" + req.body);
}

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("http: GET with keep-alive serves two requests on one connection") {
  TestServer ts(echo);
  Client c(ts.port());
  REQUIRE(c.connected());

  REQUIRE(c.send("GET /one HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r1 = c.read_response();
  REQUIRE(r1);
  CHECK(r1->status == 200);
  CHECK(r1->body == "method=GET path=/one query= body=");
  CHECK(r1->header_or("content-type") == "text/plain");
  CHECK(r1->header_or("content-length") == std::to_string(r1->body.size()));
  CHECK(r1->header_or("connection") == "keep-alive");
  CHECK(r1->header("date") != nullptr);

  REQUIRE(c.send("GET /two?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r2 = c.read_response();
  REQUIRE(r2);
  CHECK(r2->status == 200);
  CHECK(r2->body == "method=GET path=/two query=x=1 body=");
  CHECK(ts.server().connection_count() == 1);

  REQUIRE(ts.wait_logs(2));
  const auto logs = ts.logs();
  CHECK(logs[0].method == "GET");
  CHECK(logs[0].path == "/one");
  CHECK(logs[0].status == 200);
  CHECK(logs[1].path == "/two");
  CHECK(logs[1].duration.count() >= 0);
}

TEST_CASE("http: POST with a Content-Length body is echoed") {
  TestServer ts([](Request& req) {
    Reply r = text(req.body);
    if (const auto* ct = req.header("content-type")) r.response.headers.emplace_back("X-Seen-Type", *ct);
    if (const auto* addr = &req.remote_addr; addr->rfind("127.0.0.1:", 0) == 0) {
      r.response.headers.emplace_back("X-Remote-Ok", "1");
    }
    return r;
  });
  Client c(ts.port());
  REQUIRE(c.connected());

  SUBCASE("body in the same write as the head") {
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type:  text/x-test \r\nContent-Length: 11\r\n\r\n"
                   "hello world"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "hello world");
    CHECK(r->header_or("x-seen-type") == "text/x-test");  // OWS trimmed
    CHECK(r->header_or("x-remote-ok") == "1");
  }
  SUBCASE("large body arriving in pieces") {
    std::string body(200 * 1024, 'x');
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) +
                   "\r\n\r\n" + body.substr(0, 1000)));
    std::this_thread::sleep_for(50ms);
    REQUIRE(c.send(std::string_view(body).substr(1000)));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == body);
    // The connection is still usable: the body was framed exactly.
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"));
    auto r2 = c.read_response();
    REQUIRE(r2);
    CHECK(r2->body == "abc");
  }
}

TEST_CASE("http: chunked request body is decoded") {
  TestServer ts(echo);
  Client c(ts.port());
  REQUIRE(c.connected());
  const std::string req =
      "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4;ext=1\r\nWiki\r\n"
      "5\r\npedia\r\n"
      "E\r\n in\r\n\r\nchunks.\r\n"
      "0\r\nX-Trailer: yes\r\n\r\n";
  SUBCASE("in one write") { REQUIRE(c.send(req)); }
  SUBCASE("a few bytes at a time") {
    for (std::size_t i = 0; i < req.size(); i += 3) {
      REQUIRE(c.send(std::string_view(req).substr(i, 3)));
      std::this_thread::sleep_for(1ms);
    }
  }
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "method=POST path=/c query= body=Wikipedia in\r\n\r\nchunks.");
  // Framing ended exactly after the trailers: the next request works.
  REQUIRE(c.send("GET /after HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r2 = c.read_response();
  REQUIRE(r2);
  CHECK(r2->body == "method=GET path=/after query= body=");
}

TEST_CASE("http: chunked body over max_body_bytes gets 413") {
  ServerOptions o;
  o.max_body_bytes = 10;
  TestServer ts(echo, o);
  Client c(ts.port());
  REQUIRE(c.connected());
  REQUIRE(c.send("POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 413);
  CHECK(c.wait_closed());
}

TEST_CASE("http: pipelined requests are answered in order") {
  std::atomic<int> calls{0};
  TestServer ts([&](Request& req) {
    ++calls;
    if (req.path == "/a") std::this_thread::sleep_for(30ms);  // the first is the slowest
    return echo(req);
  });
  Client c(ts.port());
  REQUIRE(c.connected());
  REQUIRE(c.send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                 "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"
                 "GET /c?z HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto ra = c.read_response();
  auto rb = c.read_response();
  auto rc = c.read_response();
  REQUIRE(ra);
  REQUIRE(rb);
  REQUIRE(rc);
  CHECK(ra->body == "method=GET path=/a query= body=");
  CHECK(rb->body == "method=POST path=/b query= body=hi");
  CHECK(rc->body == "method=GET path=/c query=z body=");
  CHECK(calls.load() == 3);
}

TEST_CASE("http: malformed request line gets 400 from the ErrorResponder, then close") {
  std::atomic<int> calls{0};
  TestServer ts([&](Request& req) {
    ++calls;
    return echo(req);
  });
  const char* bad[] = {
      "GARBAGE\r\n\r\n",
      "GET /\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "G(T / HTTP/1.1\r\n\r\n",
      "GET / FOO/1.1\r\n\r\n",
      "GET nopath HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
  };
  for (const char* req : bad) {
    CAPTURE(req);
    Client c(ts.port());
    REQUIRE(c.connected());
    REQUIRE(c.send(req));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(r->header_or("content-type") == "application/json");
    CHECK(r->body.find("\"error\":400") != std::string::npos);
    CHECK(r->header_or("connection") == "close");
    CHECK(c.wait_closed());
  }
  CHECK(calls.load() == 0);
  REQUIRE(ts.wait_logs(std::size(bad)));
  CHECK(ts.logs()[0].status == 400);
}

TEST_CASE("http: other HTTP versions get 505") {
  TestServer ts(echo);
  for (const char* req : {"GET / HTTP/2.0\r\nHost: t\r\n\r\n", "GET /v HTTP/1.2\r\n\r\n"}) {
    CAPTURE(req);
    Client c(ts.port());
    REQUIRE(c.connected());
    REQUIRE(c.send(req));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 505);
    CHECK(r->body.find("\"error\":505") != std::string::npos);
    CHECK(c.wait_closed());
  }
}

TEST_CASE("http: Content-Length over max_body_bytes gets 413 at once, then close") {
  ServerOptions o;
  o.max_body_bytes = 1024;
  std::atomic<int> calls{0};
  TestServer ts(
      [&](Request& req) {
        ++calls;
        return echo(req);
      },
      o);
  Client c(ts.port());
  REQUIRE(c.connected());
  // Only the head is sent: the answer must not wait for the body.
  REQUIRE(c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n"));
  auto r = c.read_response(3s);
  REQUIRE(r);
  CHECK(r->status == 413);
  CHECK(r->body.find("\"error\":413") != std::string::npos);
  CHECK(c.wait_closed());
  CHECK(calls.load() == 0);
  REQUIRE(ts.wait_logs(1));
  CHECK(ts.logs()[0].method == "POST");
  CHECK(ts.logs()[0].path == "/upload");
  CHECK(ts.logs()[0].status == 413);
}

TEST_CASE("http: framing errors") {
  TestServer ts(echo);
  struct Case {
    const char* request;
    int status;
  };
  const Case cases[] = {
      {"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\nabcd", 400},
      {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX", 400},
  };
  for (const auto& tc : cases) {
    CAPTURE(tc.request);
    Client c(ts.port());
    REQUIRE(c.connected());
    REQUIRE(c.send(tc.request));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == tc.status);
    CHECK(c.wait_closed());
  }
  // Identical duplicates are accepted.
  Client c(ts.port());
  REQUIRE(c.send("POST /d HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "method=POST path=/d query= body=ok");
}

TEST_CASE("http: too many header fields get 431") {
  ServerOptions o;
  o.max_headers = 10;
  TestServer ts(echo, o);
  auto request_with = [](int n) {
    std::string s = "GET /h HTTP/1.1\r\n";
    for (int i = 0; i < n; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
    return s + "\r\n";
  };
  {
    Client c(ts.port());
    REQUIRE(c.send(request_with(10)));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  {
    Client c(ts.port());
    REQUIRE(c.send(request_with(11)));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 431);
    CHECK(r->body.find("\"error\":431") != std::string::npos);
    CHECK(c.wait_closed());
  }
}

TEST_CASE("http: a header block over max_header_bytes gets 431") {
  ServerOptions o;
  o.max_header_bytes = 1024;
  TestServer ts(echo, o);
  SUBCASE("complete head, too large") {
    Client c(ts.port());
    REQUIRE(c.send("GET /big HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 431);
    CHECK(c.wait_closed());
    REQUIRE(ts.wait_logs(1));
    CHECK(ts.logs()[0].path == "/big");  // best-known path of the failed request
  }
  SUBCASE("head that never ends") {
    Client c(ts.port());
    REQUIRE(c.send("GET /big HTTP/1.1\r\n"));
    for (int i = 0; i < 40; ++i) {
      if (!c.send("X-Filler-" + std::to_string(i) + ": " + std::string(50, 'b') + "\r\n")) break;
    }
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 431);
    CHECK(c.wait_closed());
  }
  SUBCASE("just under the limit is fine") {
    Client c(ts.port());
    const std::string head = "GET /ok HTTP/1.1\r\nX-Big: ";
    const std::string tail = "\r\n\r\n";
    REQUIRE(c.send(head + std::string(1024 - head.size() - tail.size(), 'c') + tail));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
  }
}

TEST_CASE("http: bad percent escapes in the path get 400") {
  std::atomic<int> calls{0};
  TestServer ts([&](Request& req) {
    ++calls;
    return echo(req);
  });
  for (const char* target : {"/a%zz", "/a%2", "/a%", "/a%00b"}) {
    CAPTURE(target);
    Client c(ts.port());
    REQUIRE(c.send(std::string("GET ") + target + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(c.wait_closed());
  }
  CHECK(calls.load() == 0);
  // A bad escape in the query is not the server's business.
  Client c(ts.port());
  REQUIRE(c.send("GET /p%20q/r%2Fs?x=%zz HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "method=GET path=/p q/r/s query=x=%zz body=");
}

TEST_CASE("http: Request::query_param decodes %XX and '+'") {
  Request req;
  req.query = "q=a%20b+c&x=1&empty=&flag&enc%5Fkey=v%2Bw&bad=%zz&x=2&&plus=%2B+";
  CHECK(req.query_param("q") == std::optional<std::string>("a b c"));
  CHECK(req.query_param("x") == std::optional<std::string>("1"));  // the first one
  CHECK(req.query_param("empty") == std::optional<std::string>(""));
  CHECK(req.query_param("flag") == std::optional<std::string>(""));
  CHECK(req.query_param("enc_key") == std::optional<std::string>("v+w"));
  CHECK(req.query_param("bad") == std::optional<std::string>("%zz"));
  CHECK(req.query_param("plus") == std::optional<std::string>("+ "));
  CHECK_FALSE(req.query_param("missing").has_value());
  CHECK_FALSE(req.query_param("").has_value());

  req.headers = {{"x-a", "1"}, {"x-b", "2"}, {"x-a", "3"}};
  REQUIRE(req.header("x-a") != nullptr);
  CHECK(*req.header("x-a") == "1");
  CHECK(req.header("x-c") == nullptr);

  // Through the server: the raw query reaches the handler untouched.
  TestServer ts([](Request& r) {
    return text(r.query_param("name").value_or("<none>") + "|" + r.query_param("n").value_or("<none>") + "|" +
                r.header("x-mixed-case")->c_str());
  });
  Client c(ts.port());
  REQUIRE(c.send("GET /s?name=J%C3%BCrgen+M&n=%31 HTTP/1.1\r\nHost: t\r\nX-MiXeD-CaSe: yes\r\n\r\n"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->body == "J\xC3\xBCrgen M|1|yes");
}

TEST_CASE("http: a throwing handler gets 500 and the server keeps serving") {
  TestServer ts([](Request& req) -> Reply {
    if (req.path == "/boom") throw std::runtime_error("kaboom");
    if (req.path == "/boom2") throw 42;  // not even a std::exception
    return echo(req);
  });
  Client c(ts.port());
  REQUIRE(c.send("GET /boom HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 500);
  CHECK(r->body == "{\"error\":500,\"message\":\"internal error\"}");
  // The response is complete, so the connection stays usable.
  REQUIRE(c.send("GET /boom2 HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r2 = c.read_response();
  REQUIRE(r2);
  CHECK(r2->status == 500);
  REQUIRE(c.send("GET /fine HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r3 = c.read_response();
  REQUIRE(r3);
  CHECK(r3->status == 200);
  Client c2(ts.port());
  REQUIRE(c2.send("GET /fresh HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r4 = c2.read_response();
  REQUIRE(r4);
  CHECK(r4->status == 200);
}

TEST_CASE("http: idle keep-alive connections are closed after idle_timeout") {
  ServerOptions o;
  o.idle_timeout = std::chrono::seconds(1);
  TestServer ts(echo, o);
  Client used(ts.port());
  REQUIRE(used.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(used.read_response());
  const auto t0 = SteadyClock::now();
  Client silent(ts.port());  // never sends a byte
  REQUIRE(ts.wait_connections(2));
  CHECK(used.wait_closed(4s));
  CHECK(silent.wait_closed(4s));
  const auto waited = SteadyClock::now() - t0;
  CHECK(waited >= 800ms);
  CHECK(used.in.empty());  // closed without a response (no 408 for idle)
  CHECK(ts.wait_connections(0));
}

TEST_CASE("http: a request not complete within request_timeout gets 408") {
  ServerOptions o;
  o.request_timeout = std::chrono::seconds(1);
  o.idle_timeout = std::chrono::seconds(30);
  TestServer ts(echo, o);
  SUBCASE("head") {
    Client c(ts.port());
    REQUIRE(c.send("GET /slowloris HTTP/1.1\r\nHost: t\r\n"));
    auto r = c.read_response(4s);
    REQUIRE(r);
    CHECK(r->status == 408);
    CHECK(c.wait_closed());
    REQUIRE(ts.wait_logs(1));
    CHECK(ts.logs()[0].path == "/slowloris");
  }
  SUBCASE("body") {
    Client c(ts.port());
    REQUIRE(c.send("POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"));
    auto r = c.read_response(4s);
    REQUIRE(r);
    CHECK(r->status == 408);
    CHECK(c.wait_closed());
  }
}

TEST_CASE("http: Connection: close and HTTP/1.0 keep-alive rules") {
  TestServer ts(echo);
  SUBCASE("HTTP/1.1 Connection: close") {
    Client c(ts.port());
    REQUIRE(c.send("GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->header_or("connection") == "close");
    CHECK(c.wait_closed());
  }
  SUBCASE("HTTP/1.0 without keep-alive") {
    Client c(ts.port());
    REQUIRE(c.send("GET /x HTTP/1.0\r\n\r\n"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->header_or("connection") == "close");
    CHECK(c.wait_closed());
  }
  SUBCASE("HTTP/1.0 with keep-alive") {
    Client c(ts.port());
    REQUIRE(c.send("GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->header_or("connection") == "keep-alive");
    REQUIRE(c.send("GET /y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto r2 = c.read_response();
    REQUIRE(r2);
    CHECK(r2->body == "method=GET path=/y query= body=");
  }
}

TEST_CASE("http: Expect: 100-continue gets an interim response") {
  TestServer ts(echo);
  Client c(ts.port());
  REQUIRE(c.send("POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  REQUIRE(c.read_until("\r\n\r\n"));
  CHECK(c.in.rfind("HTTP/1.1 100 Continue\r\n\r\n", 0) == 0);
  c.in.clear();
  REQUIRE(c.send("data"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->body == "method=POST path=/e query= body=data");
}

TEST_CASE("http: HEAD responses carry the length but no body") {
  TestServer ts([](Request&) { return text("twelve bytes"); });
  Client c(ts.port());
  REQUIRE(c.send("HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(c.read_until("\r\n\r\n"));
  const auto head_end = c.in.find("\r\n\r\n") + 4;
  CHECK(c.in.substr(0, head_end).find("Content-Length: 12\r\n") != std::string::npos);
  c.in.erase(0, head_end);
  auto r = c.read_response();  // the next response follows right away
  REQUIRE(r);
  CHECK(r->body == "twelve bytes");
}

// --- streams -------------------------------------------------------------------

namespace {

// Shared between a streaming handler and the test body.
struct StreamProbe {
  std::mutex mu;
  std::shared_ptr<Stream> stream;
  std::atomic<int> closed{0};
  std::atomic<int> callback_threads_io{0};

  std::shared_ptr<Stream> get() {
    std::lock_guard<std::mutex> lk(mu);
    return stream;
  }
  bool wait_stream(std::chrono::milliseconds timeout = 3s) {
    return TestServer::wait_for([&] { return get() != nullptr; }, timeout);
  }
};

Reply sse_reply(std::function<void(std::shared_ptr<Stream>)> fn) {
  Reply r;
  r.response.content_type = "text/event-stream";
  r.response.body = "ignored";
  r.stream = std::move(fn);
  return r;
}

}  // namespace

TEST_CASE("http: a stream delivers its chunks in order") {
  StreamProbe probe;
  TestServer ts([&](Request&) {
    return sse_reply([&](std::shared_ptr<Stream> s) {
      // May send at once from the callback.
      CHECK(s->send("data: 1\n\n"));
      CHECK(s->send("data: 2\n\n"));
      CHECK(s->send("data: 3\n\n"));
      s->on_close([&] { ++probe.closed; });
      std::lock_guard<std::mutex> lk(probe.mu);
      probe.stream = s;
    });
  });
  Client c(ts.port());
  REQUIRE(c.send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->header_or("content-type") == "text/event-stream");
  CHECK(r->header_or("cache-control") == "no-cache");
  CHECK(r->header_or("connection") == "close");
  CHECK(r->header("content-length") == nullptr);
  CHECK(r->header("transfer-encoding") == nullptr);
  REQUIRE(c.read_until("data: 3\n\n"));
  CHECK(c.in == "data: 1\n\ndata: 2\n\ndata: 3\n\n");
  REQUIRE(probe.wait_stream());
  CHECK(ts.server().connection_count() == 1);
  REQUIRE(ts.wait_logs(1));
  CHECK(ts.logs()[0].status == 200);
  CHECK(ts.logs()[0].path == "/events");

  SUBCASE("the stream's executor runs timers") {
    auto s = probe.get();
    auto timer = std::make_shared<asio::steady_timer>(s->executor(), 20ms);
    timer->async_wait([s, timer](const std::error_code& ec) {
      if (!ec) s->send("data: tick\n\n");
    });
    REQUIRE(c.read_until("data: tick\n\n"));
  }
  SUBCASE("close() from the server ends the stream after the queued bytes") {
    auto s = probe.get();
    CHECK(s->send("data: last\n\n"));
    s->close();
    CHECK_FALSE(s->is_open());
    CHECK_FALSE(s->send("data: too late\n\n"));
    CHECK(c.wait_closed());
    CHECK(c.in.find("data: last\n\n") != std::string::npos);
    CHECK(c.in.find("too late") == std::string::npos);
    CHECK(TestServer::wait_for([&] { return probe.closed.load() == 1; }, 3s));
    CHECK(ts.wait_connections(0));
  }
}

TEST_CASE("http: a client disconnect closes the stream and runs on_close once") {
  StreamProbe probe;
  TestServer ts([&](Request&) {
    return sse_reply([&](std::shared_ptr<Stream> s) {
      s->on_close([&] { ++probe.closed; });
      std::lock_guard<std::mutex> lk(probe.mu);
      probe.stream = s;
    });
  });
  auto c = std::make_unique<Client>(ts.port());
  REQUIRE(c->send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(c->read_response());
  REQUIRE(probe.wait_stream());
  auto s = probe.get();
  CHECK(s->is_open());
  CHECK(ts.server().connection_count() == 1);
  c.reset();  // the client goes away
  REQUIRE(TestServer::wait_for([&] { return probe.closed.load() == 1; }, 3s));
  CHECK_FALSE(s->is_open());
  CHECK_FALSE(s->send("data: x\n\n"));
  s->close();  // harmless now
  CHECK(ts.wait_connections(0));
  std::this_thread::sleep_for(50ms);
  CHECK(probe.closed.load() == 1);  // exactly once
  // A callback registered after the close runs at once.
  std::atomic<bool> late{false};
  s->on_close([&] { late = true; });
  CHECK(late.load());
}

TEST_CASE("http: stream send() drops chunks once the queue is full") {
  ServerOptions o;
  o.max_stream_queue_bytes = 64 * 1024;
  StreamProbe probe;
  TestServer ts(
      [&](Request&) {
        return sse_reply([&](std::shared_ptr<Stream> s) {
          std::lock_guard<std::mutex> lk(probe.mu);
          probe.stream = s;
        });
      },
      o);
  auto c = std::make_unique<Client>(ts.port());
  REQUIRE(c->send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(c->read_response());
  REQUIRE(probe.wait_stream());
  auto s = probe.get();
  // A chunk larger than the whole queue can never be queued.
  CHECK_FALSE(s->send(std::string(64 * 1024 + 1, 'x')));
  CHECK(s->is_open());
  // The client reads nothing: once the kernel buffers are full the queue fills.
  const std::string chunk(16 * 1024, 'y');
  int accepted = 0;
  bool dropped = false;
  for (int i = 0; i < 100000 && !dropped; ++i) {
    if (s->send(chunk)) ++accepted;
    else dropped = true;
  }
  CHECK(dropped);
  CHECK(accepted > 0);
  CHECK(s->is_open());  // dropping a chunk does not close the stream
  c.reset();
  CHECK(ts.wait_connections(0));
}

TEST_CASE("http: stop() closes live streams and runs their on_close") {
  StreamProbe probe;
  TestServer ts([&](Request&) {
    return sse_reply([&](std::shared_ptr<Stream> s) {
      s->on_close([&] { ++probe.closed; });
      std::lock_guard<std::mutex> lk(probe.mu);
      probe.stream = s;
    });
  });
  Client c(ts.port());
  REQUIRE(c.send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(c.read_response());
  REQUIRE(probe.wait_stream());
  const auto t0 = SteadyClock::now();
  ts.server().stop(std::chrono::milliseconds(5000));
  CHECK(SteadyClock::now() - t0 < 2s);
  CHECK(probe.closed.load() == 1);
  CHECK(ts.server().connection_count() == 0);
  CHECK(c.wait_closed());
}

// --- lifecycle and load ----------------------------------------------------------

TEST_CASE("http: stop() drains an in-flight request and closes idle connections") {
  std::atomic<bool> slow_started{false};
  std::atomic<bool> slow_finished{false};
  TestServer ts([&](Request& req) {
    if (req.path == "/slow") {
      slow_started = true;
      std::this_thread::sleep_for(300ms);
      slow_finished = true;
      return text(std::string(100 * 1024, 's'));
    }
    return echo(req);
  });
  Client idle(ts.port());
  REQUIRE(idle.send("GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(idle.read_response());

  Client slow(ts.port());
  REQUIRE(slow.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(TestServer::wait_for([&] { return slow_started.load(); }, 3s));
  // The slow client reads concurrently, as a real client would.
  auto slow_result = std::async(std::launch::async, [&] {
    auto r = slow.read_response(5s);
    const bool closed = slow.wait_closed(5s);
    return std::make_pair(r, closed);
  });

  const auto t0 = SteadyClock::now();
  ts.server().stop(std::chrono::milliseconds(5000));
  const auto took = SteadyClock::now() - t0;
  CHECK(slow_finished.load());
  CHECK(took < 3s);
  CHECK(ts.server().connection_count() == 0);

  auto [resp, closed] = slow_result.get();
  REQUIRE(resp);
  CHECK(resp->status == 200);
  CHECK(resp->body == std::string(100 * 1024, 's'));
  CHECK(resp->header_or("connection") == "close");
  CHECK(closed);
  CHECK(idle.wait_closed(1s));

  // No longer accepting.
  Client late(ts.port());
  if (late.connected()) CHECK(late.wait_closed(2s));
  // Calling stop() again is harmless (the fixture's destructor calls it a third time).
  ts.server().stop(std::chrono::milliseconds(100));
}

TEST_CASE("http: stop() gives up on handlers that outlive the drain time") {
  std::atomic<bool> started{false};
  TestServer ts([&](Request&) {
    started = true;
    std::this_thread::sleep_for(800ms);
    return text("late");
  });
  Client c(ts.port());
  REQUIRE(c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(TestServer::wait_for([&] { return started.load(); }, 3s));
  const auto t0 = SteadyClock::now();
  ts.server().stop(std::chrono::milliseconds(100));
  const auto took = SteadyClock::now() - t0;
  CHECK(took < 600ms);
  CHECK(ts.server().connection_count() == 0);
  CHECK(c.wait_closed(1s));
  CHECK(c.in.empty());
}

TEST_CASE("http: 200 idle connections do not delay a request on a fresh connection") {
  TestServer ts(echo);
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 200; ++i) {
    idle.push_back(std::make_unique<Client>(ts.port()));
    REQUIRE(idle.back()->connected());
    if (i % 2 == 0) {  // half are used keep-alive connections, half never spoke
      REQUIRE(idle.back()->send("GET /warm HTTP/1.1\r\nHost: t\r\n\r\n"));
      REQUIRE(idle.back()->read_response());
    }
  }
  REQUIRE(ts.wait_connections(200));
  const auto t0 = SteadyClock::now();
  Client fresh(ts.port());
  REQUIRE(fresh.send("GET /fresh HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = fresh.read_response(2s);
  const auto took = SteadyClock::now() - t0;
  REQUIRE(r);
  CHECK(r->body == "method=GET path=/fresh query= body=");
  CHECK(took < 500ms);
  CHECK(ts.server().connection_count() == 201);
  // The idle ones are still served.
  REQUIRE(idle[1]->send("GET /late HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r2 = idle[1]->read_response();
  REQUIRE(r2);
  CHECK(r2->status == 200);
}

TEST_CASE("http: max_connections is enforced") {
  ServerOptions o;
  o.max_connections = 2;
  TestServer ts(echo, o);
  Client c1(ts.port());
  Client c2(ts.port());
  for (Client* c : {&c1, &c2}) {
    REQUIRE(c->send("GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
    REQUIRE(c->read_response());
  }
  CHECK(ts.server().connection_count() == 2);
  Client c3(ts.port());  // the kernel completes the handshake; the server closes it
  REQUIRE(c3.connected());
  c3.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(c3.wait_closed(3s));
  CHECK(c3.in.empty());
  CHECK(ts.server().connection_count() == 2);

  c1.close();
  REQUIRE(ts.wait_connections(1));
  Client c4(ts.port());
  REQUIRE(c4.send("GET /four HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c4.read_response();
  REQUIRE(r);
  CHECK(r->body == "method=GET path=/four query= body=");
}

TEST_CASE("http: listen() on a taken port throws std::system_error") {
  TestServer ts(echo);
  asio::io_context io;
  asio::thread_pool workers(1);
  Server other(io, workers, ServerOptions{}, echo, json_error, nullptr);
  CHECK_THROWS_AS(other.listen("127.0.0.1", ts.port()), std::system_error);
  workers.join();
}

// ---------------------------------------------------------------------------
// Deferred replies (long-polls): answered later from any thread, no worker held.

TEST_CASE("http: deferred reply is answered later and the connection is reused") {
  std::mutex mu;
  std::vector<std::shared_ptr<lucid::http::Completion>> pending;
  TestServer ts([&](Request& req) {
    if (req.path != "/wait") return text("quick");
    Reply r;
    r.deferred = [&](std::shared_ptr<lucid::http::Completion> c) {
      std::lock_guard<std::mutex> lk(mu);
      pending.push_back(std::move(c));
    };
    return r;
  });
  // More waiting requests than the four workers: none of them holds a worker.
  std::vector<std::unique_ptr<Client>> waiting;
  for (int i = 0; i < 6; ++i) {
    waiting.push_back(std::make_unique<Client>(ts.port()));
    REQUIRE(waiting.back()->send("GET /wait HTTP/1.1\r\nHost: t\r\n\r\n"));
  }
  REQUIRE(TestServer::wait_for([&] { std::lock_guard<std::mutex> lk(mu); return pending.size() == 6; }, 3s));
  Client quick(ts.port());
  REQUIRE(quick.send("GET /q HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto q = quick.read_response();
  REQUIRE(q);
  CHECK(q->body == "quick");
  std::thread answer([&] {
    std::lock_guard<std::mutex> lk(mu);
    for (auto& c : pending) {
      Response r;
      r.status = 202;
      r.body = "late";
      c->complete(r);
      r.body = "twice";
      c->complete(r);  // ignored
    }
  });
  answer.join();
  for (auto& c : waiting) {
    auto r = c->read_response();
    REQUIRE(r);
    CHECK(r->status == 202);
    CHECK(r->body == "late");
    REQUIRE(c->send("GET /q HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto again = c->read_response();
    REQUIRE(again);
    CHECK(again->body == "quick");
  }
}

TEST_CASE("http: a deferred callback that throws answers 500") {
  TestServer ts([](Request&) {
    Reply r;
    r.deferred = [](std::shared_ptr<lucid::http::Completion>) { throw std::runtime_error("boom"); };
    return r;
  });
  Client c(ts.port());
  REQUIRE(c.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 500);
}

TEST_CASE("http: set_max_connections applies to new connections") {
  TestServer ts(echo);
  ts.server().set_max_connections(1);
  Client a(ts.port());
  REQUIRE(a.send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(a.read_response());
  Client b(ts.port());
  b.send("GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK_FALSE(b.read_response());
  ts.server().set_max_connections(10);
  Client d(ts.port());
  REQUIRE(d.send("GET /d HTTP/1.1\r\nHost: t\r\n\r\n"));
  CHECK(d.read_response());
}

// ---------------------------------------------------------------------------
// Issue 12 item 6: one client cannot starve everyone.

TEST_CASE("http: max_connections_per_address caps one address, not the others") {
  ServerOptions o;
  o.max_connections = 10;
  o.max_connections_per_address = 2;
  TestServer ts(echo, o);
  Client a1(ts.port(), "127.0.0.1");
  Client a2(ts.port(), "127.0.0.1");
  for (Client* c : {&a1, &a2}) {
    REQUIRE(c->send("GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
    REQUIRE(c->read_response());
  }
  Client a3(ts.port(), "127.0.0.1");  // over the per-address cap: closed unanswered
  REQUIRE(a3.connected());
  a3.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(a3.wait_closed(3s));
  CHECK(a3.in.empty());
  Client b(ts.port(), "127.0.0.2");  // another address still gets in
  REQUIRE(b.send("GET /b HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = b.read_response();
  REQUIRE(r);
  CHECK(r->body == "method=GET path=/b query= body=");
  CHECK(ts.server().connection_count() == 3);
  // A closed connection gives its address the slot back.
  a1.close();
  REQUIRE(ts.wait_connections(2));
  Client a4(ts.port(), "127.0.0.1");
  REQUIRE(a4.send("GET /a4 HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(a4.read_response());
}

TEST_CASE("http: max_connections_per_address 0 means no per-address cap") {
  ServerOptions o;
  o.max_connections = 10;
  o.max_connections_per_address = 0;
  TestServer ts(echo, o);
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 0; i < 5; ++i) {
    cs.push_back(std::make_unique<Client>(ts.port()));
    REQUIRE(cs.back()->send("GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
    REQUIRE(cs.back()->read_response());
  }
  CHECK(ts.server().connection_count() == 5);
}

TEST_CASE("http: a request body's capacity is released after the request") {
  // The handler reports the capacity of the body buffer it is handed; after a
  // 1 MiB request the next request on the connection must not inherit it.
  TestServer ts([](Request& req) { return text(std::to_string(req.body.capacity()) + " " + std::to_string(req.body.size())); });
  Client c(ts.port());
  REQUIRE(c.connected());
  const std::string big(1024 * 1024, 'z');
  REQUIRE(c.send("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n"));
  // In pieces with pauses: the body grows step by step.
  for (std::size_t i = 0; i < big.size(); i += 100 * 1000) {
    REQUIRE(c.send(std::string_view(big).substr(i, 100 * 1000)));
    std::this_thread::sleep_for(2ms);
  }
  auto r1 = c.read_response();
  REQUIRE(r1);
  CHECK(r1->body.substr(r1->body.find(' ') + 1) == std::to_string(big.size()));
  REQUIRE(c.send("GET /small HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r2 = c.read_response();
  REQUIRE(r2);
  const auto cap = std::stoul(r2->body.substr(0, r2->body.find(' ')));
  CHECK(cap <= 64 * 1024);
}

TEST_CASE("http: a body sent in many small pieces is framed exactly (its room grows in steps)") {
  // Each read offers at most max(16 KiB, bytes so far) of room and never
  // reads past Content-Length: the body is exact and a pipelined request
  // right after it is answered. (Memory under a body announced but not sent
  // is measured by tests/http/test_starvation.py through the server's RSS.)
  TestServer ts(echo);
  Client c(ts.port());
  REQUIRE(c.connected());
  std::string body(300 * 1024, 'q');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + (i * 7) % 26);
  REQUIRE(c.send("POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
  for (std::size_t i = 0; i < body.size(); i += 4093) {
    REQUIRE(c.send(std::string_view(body).substr(i, 4093)));
    if (i % (64 * 4093) == 0) std::this_thread::sleep_for(5ms);
  }
  REQUIRE(c.send("GET /next HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->body == "method=POST path=/slow query= body=" + body);
  auto r2 = c.read_response();
  REQUIRE(r2);
  CHECK(r2->body == "method=GET path=/next query= body=");
}
