// libFuzzer target: the HTTP/1.1 request parser of apps/server/http
// (request line, header fields, Content-Length / chunked framing, trailers,
// pipelining, Expect: 100-continue), through the public lucid::http::Server.
//
// The parser is the connection's own state machine (Connection::process and
// parse_head in http_server.cpp), fed from its socket buffer; it has no entry
// point apart from a connection. Rather than cut a seam into that file, this
// target runs one Server on 127.0.0.1 for the whole fuzzing session and sends
// each input over a fresh loopback connection, then half-closes and reads the
// answer to the end. So the bytes take exactly the path a client's bytes take,
// and http_server.cpp needs no change.
//
// Checked besides the sanitizers: the server answers (or closes) every input
// within a bound, and whatever it writes is a sequence of HTTP/1.1 responses.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "http/http_server.hpp"

namespace {

using lucid::http::Reply;
using lucid::http::Request;
using lucid::http::Response;

struct Fixture {
  asio::io_context io;
  asio::thread_pool workers{1};
  std::unique_ptr<lucid::http::Server> server;
  std::thread io_thread;
  std::uint16_t port = 0;

  Fixture() {
    lucid::http::ServerOptions o;
    o.max_body_bytes = 64 * 1024;          // small limits: the fuzzer reaches them
    o.max_header_bytes = 4 * 1024;
    o.max_headers = 20;
    o.idle_timeout = std::chrono::seconds(2);
    o.request_timeout = std::chrono::seconds(2);
    auto handler = [](Request& req) {
      // Touch what handlers read: header lookup, query parameters.
      Reply r;
      std::string out = req.method + " " + req.path + " q=" + req.query;
      if (const auto* h = req.header("content-type")) out += " ct=" + *h;
      if (auto v = req.query_param("a")) out += " a=" + *v;
      out += " n=" + std::to_string(req.headers.size()) + " body=" + std::to_string(req.body.size());
      r.response.content_type = "text/plain";
      r.response.body = std::move(out);
      return r;
    };
    auto on_error = [](const Request&, int status, std::string_view msg) {
      Response r;
      r.status = status;
      r.content_type = "text/plain";
      r.body.assign(msg);
      return r;
    };
    server = std::make_unique<lucid::http::Server>(io, workers, o, handler, on_error,
                                                   [](const Request&, int, std::chrono::microseconds) {});
    server->listen("127.0.0.1", 0);
    port = server->port();
    io_thread = std::thread([this] { io.run(); });
  }
};

Fixture& fixture() {
  // Never destroyed: libFuzzer exits with the server running.
  static Fixture* f = new Fixture();
  return *f;
}

[[noreturn]] void fail(const char* what, std::string_view answer = {}) {
  std::fprintf(stderr, "fuzz_http_request: %s\n%.*s\n", what, static_cast<int>(std::min<std::size_t>(answer.size(), 2000)),
               answer.data());
  std::abort();
}

// Whatever the server wrote must be HTTP/1.1 responses back to back (we only
// check each starts where the previous one's Content-Length ends).
void check_answer(std::string_view a) {
  while (!a.empty()) {
    if (a.substr(0, 9) != "HTTP/1.1 " || a.size() < 12) fail("answer is not an HTTP/1.1 response", a);
    const auto head_end = a.find("\r\n\r\n");
    if (head_end == std::string_view::npos) fail("response head never ends", a);
    const auto head = a.substr(0, head_end);
    const bool interim = a.substr(9, 3) == "100";
    std::size_t len = 0;
    const auto cl = head.find("\r\nContent-Length: ");
    if (cl != std::string_view::npos) len = std::strtoull(head.data() + cl + 18, nullptr, 10);
    else if (!interim) fail("final response without Content-Length", a);
    if (a.size() < head_end + 4 + len) {
      // HEAD answers carry the length of a body they do not send.
      return;
    }
    a.remove_prefix(head_end + 4 + len);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& f = fixture();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(f.port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // libFuzzer's timer signal (-timeout) interrupts system calls: EINTR is
  // retried everywhere below, or a connect or a read cut short would look like
  // a server fault (seen in CI as "connect" failing).
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINTR) fail((std::string("connect: ") + std::strerror(errno)).c_str());
    // An interrupted connect goes on in the background: wait for it.
    pollfd w{fd, POLLOUT, 0};
    while (::poll(&w, 1, -1) < 0 && errno == EINTR) {
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
      fail((std::string("connect: ") + std::strerror(err ? err : errno)).c_str());
  }
  std::size_t sent = 0;
  while (sent < size) {
    const auto n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server may close early (413, 400): fine
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string answer;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  char buf[16384];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) fail("server neither answered nor closed within 10 s", answer);
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (answer.find("\r\nContent-Length: ") != std::string::npos || !answer.empty()) {
    // A HEAD request's answer has a length but no body; only check non-HEAD inputs fully.
    if (std::string_view(reinterpret_cast<const char*>(data), size).find("HEAD") == std::string_view::npos)
      check_answer(answer);
  }
  return 0;
}
