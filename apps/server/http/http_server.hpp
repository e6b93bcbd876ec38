// lucid::http — a small HTTP/1.1 server on standalone Asio.
//
// Why not cpp-httplib's server: it serves each connection on one pool thread
// with blocking I/O, so idle keep-alive clients and long-lived SSE streams hold
// threads and starve short REST calls (its issues #1891, #2076). Here every
// connection is asynchronous on the I/O threads; only complete requests are
// handed to a worker pool, where handlers may block on SQLite. Streams (SSE)
// stay on the I/O threads and cost a socket and a bounded queue each.
#pragma once

#include <asio.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace asio::ssl {
class context;
}

namespace lucid::http {

struct Request {
  std::string method;  // as received, e.g. "GET"
  std::string target;  // raw request-target, e.g. "/a/b?x=1"
  std::string path;    // target before '?', percent-decoded
  std::string query;   // raw text after '?', may be empty
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string remote_addr;  // "ip:port"
  // The id the application gave this request (its answer's X-Request-ID),
  // for the access log; mutable so an error answered from a const Request
  // can record it too. Cleared for each request.
  mutable std::string request_id;

  // First header with this (lower-case) name, or nullptr.
  const std::string* header(std::string_view lower_name) const;
  // First query parameter with this name, percent-decoded ('+' is a space).
  std::optional<std::string> query_param(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string body;
};

// A long-lived response (Server-Sent Events). Thread-safe: send()/close() may be
// called from any thread. Writes happen on the connection's strand.
class Stream {
 public:
  virtual ~Stream() = default;
  // Queues bytes for the client. Returns false when the stream is closed, or when
  // the chunk does not fit: bytes queued but not yet written never exceed
  // max_stream_queue_bytes (the chunk is dropped, the stream stays open: a slow
  // client loses updates instead of slowing anyone else).
  virtual bool send(std::string chunk) = 0;
  virtual bool is_open() const = 0;
  // Closes the connection after the queued bytes are written.
  virtual void close() = 0;
  // Closes the connection now, dropping what is queued (a client that does
  // not read would otherwise keep it open).
  virtual void abort() { close(); }
  // Bytes queued but not yet written to the socket.
  virtual std::size_t queued_bytes() const { return 0; }
  // Registers a callback run once when the stream closes for any reason
  // (client gone, close(), server stopping). It runs on the connection's strand;
  // if the stream is already closed, it runs at once on the calling thread.
  virtual void on_close(std::function<void()> fn) = 0;
  // Executor for timers that drive this stream: the connection's strand (after
  // the connection is gone, the plain io_context executor).
  virtual asio::any_io_executor executor() = 0;
};

// What a handler returns. If `stream` is set, `response` status/headers are
// written with no Content-Length (body ignored; `Cache-Control: no-cache` and
// `Connection: close` added), the connection is not reused, and `stream` is
// called once with the live Stream — on the worker pool, after the head has
// been written, so it may block briefly and may call send() at once. If the
// client is gone before that, `stream` is not called.
//
// Response headers: Content-Length, Transfer-Encoding and Connection are the
// server's; such entries in `headers` are dropped (a `Connection: close` entry
// still makes the server close after the response). Fields containing CR/LF
// are dropped. A Date field is added unless present. For HEAD requests the
// body is not sent (Content-Length still gives its size).
//
// If `deferred` is set instead, the handler answers later without holding a
// worker thread (long-polls): `deferred` is called once, on the worker, with a
// Completion; the response is whatever is passed to Completion::complete(),
// which may be called from any thread, exactly once (later calls are ignored).
// Until then the connection waits (no timeouts apply); the owner of the
// Completion must complete it in bounded time. If the connection is closed
// meanwhile (client gone, server stopped), complete() does nothing.
class Completion {
 public:
  virtual ~Completion() = default;
  virtual void complete(Response r) = 0;
};

struct Reply {
  Response response;
  std::function<void(std::shared_ptr<Stream>)> stream;
  std::function<void(std::shared_ptr<Completion>)> deferred;
  // Protocol upgrade (WebSocket): if `upgrade` is set, the server writes
  // nothing itself; the connection leaves HTTP and becomes a raw byte stream.
  // `upgrade` is called once on the connection's strand (it must not block)
  // with the Stream that writes raw bytes (the upgrading protocol writes its
  // own handshake response); then every byte read from the client, starting
  // with any already buffered after the request, is passed to `on_data` on the
  // strand, in order. `response` is used only for the access log status (101).
  std::function<void(std::shared_ptr<Stream>)> upgrade;
  std::function<void(std::string_view)> on_data;
};

using Handler = std::function<Reply(Request&)>;
// Builds the body of an error the server itself detects before routing
// (malformed request, body too large, ...). Lets each product choose its format;
// `req` holds what was parsed of the request so far (method and path when the
// request line was read), so the format can follow the path.
using ErrorResponder = std::function<Response(const Request& req, int status, std::string_view message)>;
// Called after a response is fully written (or a stream opened).
using AccessLogger = std::function<void(const Request&, int status, std::chrono::microseconds)>;

struct ServerOptions {
  std::size_t max_header_bytes = 16 * 1024;  // request line + headers; over → 431
  std::size_t max_headers = 100;             // over → 431
  std::size_t max_body_bytes = 1024 * 1024;  // over → 413, then close
  std::chrono::seconds idle_timeout{60};     // keep-alive connection with no request
  std::chrono::seconds request_timeout{30};  // started request must complete
  std::size_t max_connections = 10000;       // beyond: accept and close at once
  // Open connections from one client address (IPv6: one /64) beyond which a
  // new one from it is accepted and closed at once, so one client cannot
  // take every slot of max_connections. 0: no per-address cap.
  std::size_t max_connections_per_address = 256;
  std::size_t max_stream_queue_bytes = 4 * 1024 * 1024;
  // SO_SNDBUF of upgraded (WebSocket) connections: a fixed kernel buffer
  // bounds the memory a long-lived client that stops reading can pin (Linux
  // would otherwise autotune it up to tcp_wmem's maximum).
  std::size_t upgraded_send_buffer_bytes = 256 * 1024;
};

// Lifetimes: `io` and `workers` must outlive the Server, and `workers` must be
// joined before `io` is destroyed (a handler still running after stop() posts
// its result to `io`). Keep threads running `io` until stop() returns (stop()
// holds a work guard meanwhile, so io.run() does not return early). Requests:
// `Expect: 100-continue` is answered; the Host field is not required.
class Server {
 public:
  // io: the I/O context (run by the caller's threads). workers: where handlers run.
  Server(asio::io_context& io, asio::thread_pool& workers, ServerOptions opts, Handler handler,
         ErrorResponder on_error, AccessLogger log);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves HTTPS: every connection accepted from now on starts with a TLS
  // handshake with `ctx` (see make_server_tls_context in tls.hpp), which must
  // finish within request_timeout; a client that does not speak TLS is
  // disconnected. Responses and streams are the same; closing sends
  // close_notify. Call before listen(). Null: plain HTTP (the default).
  void use_tls(std::shared_ptr<asio::ssl::context> ctx);
  // Binds and starts accepting. Throws std::system_error if the address is taken.
  void listen(const std::string& host, std::uint16_t port);
  // The bound port (useful with port 0).
  std::uint16_t port() const;
  // Graceful stop: stop accepting, close idle connections and streams, let
  // in-flight requests finish (up to `drain`), then close everything.
  // Blocks until done. Safe to call from any thread except an I/O thread; a
  // second call returns once the first is done. Called on an I/O thread, it
  // starts the same shutdown but does not wait (and does not force-close). If
  // the io_context is stopped (io.stop()), the remaining connections are closed
  // from the calling thread: no thread may be inside io.run() then.
  // The destructor calls stop(0ms) if stop() was not called.
  void stop(std::chrono::milliseconds drain = std::chrono::milliseconds(10000));
  std::size_t connection_count() const;
  // Changes ServerOptions::max_connections while running (new connections
  // beyond it are refused; open ones stay). Thread-safe.
  void set_max_connections(std::size_t n);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace lucid::http
