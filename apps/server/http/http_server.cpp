// lucid::http — HTTP/1.1 server implementation. The contract is in http_server.hpp.
//
// Threading model
// ---------------
// * Every connection owns a strand (the executor of its socket and timer). All
//   socket, timer, parser and state-machine members of a Connection are touched
//   only on that strand, with two exceptions:
//     - `req_` and `reply_` are handed to a worker thread while the connection is
//       in State::Handling. The strand leaves them alone in that state, and the
//       post to the worker / the post back to the strand order the accesses.
//     - the stream queue and the on_close list are guarded by `smu_`, because
//       Stream::send()/close()/on_close() may be called from any thread.
// * The acceptor and its retry timer are guarded by Impl::accept_mu: at most one
//   accept is outstanding, and stop() closes the acceptor from its own thread.
// * The registry of live connections (for stop() and connection_count()) is
//   guarded by Impl::mu.
//
// Connection life cycle (State)
//   Reading    waiting for / parsing a request (idle when no byte of it arrived)
//   Handling   the handler runs on the worker pool; no reads, no timeouts
//   Writing    the response is being written
//   StreamHead the head of a streamed response is being written
//   Streaming  a live stream: queued chunks are written; a read detects EOF
//   Closing    our side is shut down for sending; unread input is discarded for a
//              short while (a "lingering close", so that data the client already
//              sent cannot make the kernel reset the connection and destroy the
//              response before the client has read it)

#include "http_server.hpp"

#include "transport.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <unordered_map>

namespace lucid::http {

namespace {

using Clock = std::chrono::steady_clock;
using Strand = asio::strand<asio::io_context::executor_type>;
using Socket = asio::basic_stream_socket<asio::ip::tcp, Strand>;
using Timer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Strand>;
// The connection's byte stream: plain TCP, or TLS when Server::use_tls was called.
using Transport = detail::Transport<Socket>;

// Free space offered to each read of the request buffer (also its initial size).
constexpr std::size_t kReadChunk = 4096;
// Longest accepted chunk-size line (size, extensions, CRLF).
constexpr std::size_t kMaxChunkLine = 4096;
// A lingering close discards at most this much input, for at most this long.
constexpr std::size_t kMaxLingerBytes = 1024 * 1024;
constexpr auto kLinger = std::chrono::seconds(2);
constexpr auto kStopLinger = std::chrono::milliseconds(250);
// Back-off after an accept error such as EMFILE, so the loop does not spin.
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);
// Granularity of stop()'s wait loop (to notice a stopped io_context).
constexpr auto kStopPoll = std::chrono::milliseconds(50);
// [limits] Request bodies grow with the bytes received: each read of a
// Content-Length body offers at most max(kBodyStep, bytes so far) of new room,
// so a client announcing a large body pins memory only as it sends it. After
// a request, a body buffer above kKeepBodyCapacity is released (an idle
// keep-alive connection keeps no large buffer).
constexpr std::size_t kBodyStep = 16 * 1024;
constexpr std::size_t kKeepBodyCapacity = 64 * 1024;

constexpr char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower_ascii(a[i]) != lower_ascii(b[i])) return false;
  }
  return true;
}

// RFC 9110 token characters (method names, header field names).
bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// request-target: visible ASCII and obs-text, no controls, no spaces.
bool is_target_chars(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return !s.empty();
}

// field-value: no controls except HTAB.
bool is_field_value(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) return false;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(token) for every non-empty element of a comma-separated list.
template <typename Fn>
void for_each_list_item(std::string_view list, Fn&& fn) {
  while (true) {
    const auto comma = list.find(',');
    const auto item = trim_ows(list.substr(0, comma));
    if (!item.empty()) fn(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

// Percent-decodes `in` into `out`. strict: a malformed escape or a decoded NUL
// fails (returns false); otherwise a malformed escape is kept literally.
bool percent_decode(std::string_view in, std::string& out, bool plus_is_space, bool strict) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      const int h = i + 1 < in.size() ? hex_value(in[i + 1]) : -1;
      const int l = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
      if (h >= 0 && l >= 0) {
        const char d = static_cast<char>(h * 16 + l);
        if (d == '\0' && strict) return false;
        out.push_back(d);
        i += 2;
        continue;
      }
      if (strict) return false;
      out.push_back(c);  // lenient: keep a malformed escape as it is
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return true;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    case 511: return "Network Authentication Required";
    default: return "";  // the reason phrase is optional (RFC 9112 §4)
  }
}

// IMF-fixdate of the current second, formatted once per second per thread.
std::string_view http_date() {
  struct Cache {
    std::time_t sec = -1;
    char buf[64] = {};
    std::size_t len = 0;
  };
  thread_local Cache cache;
  const std::time_t now = std::time(nullptr);
  if (now != cache.sec) {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm tm{};
    gmtime_r(&now, &tm);
    const int n = std::snprintf(cache.buf, sizeof cache.buf, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                                kDays[tm.tm_wday % 7], tm.tm_mday, kMonths[tm.tm_mon % 12],
                                tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cache.len = n > 0 ? static_cast<std::size_t>(n) : 0;
    cache.sec = now;
  }
  return {cache.buf, cache.len};
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

std::string format_endpoint(const asio::ip::tcp::endpoint& ep) {
  asio::ip::address a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  std::string s = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
  s.push_back(':');
  append_uint(s, ep.port());
  return s;
}

// [limits] The key of ServerOptions::max_connections_per_address: the IPv4
// address, or the /64 prefix of an IPv6 one (one subscriber's usual share,
// so a client cannot dodge the cap by rotating addresses within its prefix).
std::string address_key(const asio::ip::address& addr) {
  asio::ip::address a = addr;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  const auto b = a.to_v6().to_bytes();
  return std::string(reinterpret_cast<const char*>(b.data()), 8);
}

// Splits the target into path and query, for origin-form ("/p?q"),
// absolute-form ("http://host/p?q") and asterisk-form ("*"). A fragment, which
// clients must not send, is dropped. Returns false for any other form.
bool split_target(std::string_view target, std::string_view& path, std::string_view& query) {
  if (target == "*") {
    path = target;
    query = {};
    return true;
  }
  if (target.empty()) return false;
  if (target.front() != '/') {
    std::size_t skip = 0;
    if (target.size() >= 7 && iequals(target.substr(0, 7), "http://")) skip = 7;
    else if (target.size() >= 8 && iequals(target.substr(0, 8), "https://")) skip = 8;
    else return false;
    const auto start = target.find_first_of("/?#", skip);
    if (start == std::string_view::npos) {
      path = "/";
      query = {};
      return true;
    }
    target.remove_prefix(start);
    if (target.front() != '/') {
      // "http://host?q": the path is "/".
      const auto hash = target.find('#');
      query = target.front() == '?' ? target.substr(1, hash == std::string_view::npos ? hash : hash - 1)
                                    : std::string_view{};
      path = "/";
      return true;
    }
  }
  const auto hash = target.find('#');
  if (hash != std::string_view::npos) target = target.substr(0, hash);
  const auto q = target.find('?');
  path = target.substr(0, q);
  query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------
// Request

const std::string* Request::header(std::string_view lower_name) const {
  for (const auto& h : headers) {
    if (h.first == lower_name) return &h.second;
  }
  return nullptr;
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  std::string_view q = query;
  std::string key;
  while (!q.empty()) {
    const auto amp = q.find('&');
    const std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    percent_decode(part.substr(0, eq), key, /*plus_is_space=*/true, /*strict=*/false);
    if (key != name) continue;
    std::string value;
    if (eq != std::string_view::npos) percent_decode(part.substr(eq + 1), value, true, false);
    return value;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Server::Impl

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  class Connection;
  class StreamHandle;
  class DeferredCompletion;

  Impl(asio::io_context& io_ctx, asio::thread_pool& pool, ServerOptions o, Handler h, ErrorResponder e,
       AccessLogger l)
      : io(io_ctx),
        workers(pool),
        opts(o),
        max_connections(o.max_connections),
        handler(std::move(h)),
        on_error(std::move(e)),
        log(std::move(l)),
        acceptor(io_ctx),
        accept_retry(io_ctx) {}

  void listen(const std::string& host, std::uint16_t port);
  void stop(std::chrono::milliseconds drain);
  // The ErrorResponder's response for `status`, or a plain-text fallback if it
  // is unset or throws. The status is always `status`.
  Response make_error(const Request& req, int status, std::string_view message) const;
  void unregister(Connection* c);

  asio::io_context& io;
  asio::thread_pool& workers;
  const ServerOptions opts;
  std::atomic<std::size_t> max_connections;  // opts.max_connections, changeable at run time
  const Handler handler;
  const ErrorResponder on_error;
  const AccessLogger log;

  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> live{0};
  std::atomic<std::uint16_t> bound_port{0};
  std::shared_ptr<asio::ssl::context> tls;  // set before listen(); null: plain HTTP

 private:
  void start_accept_locked();
  void on_accept(const std::error_code& ec, Socket sock);
  void adopt(Socket sock);
  std::vector<std::shared_ptr<Connection>> snapshot();

  std::mutex accept_mu;  // guards acceptor and accept_retry
  asio::ip::tcp::acceptor acceptor;
  asio::steady_timer accept_retry;

  std::mutex mu;  // guards conns and per_address; `live` changes under it too (for cv)
  std::condition_variable cv;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> conns;
  // [limits] Open connections per address_key(); an entry exists only while
  // its count is positive (so it is bounded by the open connections).
  std::unordered_map<std::string, std::size_t> per_address;

  std::mutex stop_mu;  // serializes stop() callers
  bool stop_done = false;
};

// ---------------------------------------------------------------------------
// Connection

class Server::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Impl> srv, Socket sock)
      : srv_(std::move(srv)), strand_(sock.get_executor()), socket_(std::move(sock), srv_->tls.get()), timer_(strand_) {}

  const Strand& strand() const { return strand_; }

  // [limits] This connection's address_key(), set by adopt() before the
  // connection is registered and not changed after; unregister() uses it.
  std::string addr_key;

  // All of these run on the strand (or, for do_close via force_close in
  // Impl::stop with a stopped io_context, on a thread that is the only one).
  void start();
  void begin_stop();
  void force_close() { do_close(); }

  // Stream API: any thread.
  bool stream_send(std::string chunk);
  bool stream_is_open() const;
  std::size_t stream_queued() const {
    std::lock_guard<std::mutex> lk(smu_);
    return squeued_;
  }
  void stream_close();
  void stream_on_close(std::function<void()> fn);
  // A deferred reply's response arrived (strand).
  void deferred_done(Response r);

 private:
  enum class State { Reading, Handling, Writing, StreamHead, Streaming, Closing };
  enum class Phase { Head, Body, ChunkSize, ChunkData, ChunkEnd, Trailer };

  const ServerOptions& opts() const { return srv_->opts; }

  void next_request();
  void process();
  std::size_t find_head_end(const char* p, std::size_t n);
  int parse_head(const char* p, std::size_t len);
  void fill_best_effort();
  void ensure_request_deadline();
  void read_more();
  void read_body_rest();
  void send_continue();
  void on_read(const std::error_code& ec, std::size_t n);
  void start_discard();
  void dispatch();
  void on_handler_done();
  void fail(int status, std::string_view message);
  void write_response();
  void on_written(const std::error_code& ec);
  void build_head(const Response& r, int status, bool stream, std::size_t body_len, bool send_length);
  void start_stream_head();
  void start_upgrade();
  void on_stream_head_written(const std::error_code& ec);
  void stream_flush();
  void on_stream_written(const std::error_code& ec);
  void graceful_close();
  void tls_handshake();
  void tls_shutdown();
  void do_close();
  void set_deadline(Clock::time_point tp);
  void arm(Clock::time_point tp);
  void on_timer(const std::error_code& ec, std::uint64_t gen);
  void log_access(int status);

  const std::shared_ptr<Impl> srv_;
  Strand strand_;
  Transport socket_;
  Timer timer_;

  // --- strand-only state -------------------------------------------------
  State state_ = State::Reading;
  bool closed_ = false;
  bool read_pending_ = false;     // an async read is outstanding
  bool read_into_body_ = false;   // ... and it reads the rest of a Content-Length body
  std::size_t body_room_ = 0;     // [limits] ... into this many bytes at the end of req_.body
  bool writing_continue_ = false; // "100 Continue" is being written
  std::string remote_;

  // Read buffer: unconsumed bytes are [rbeg_, rend_). Reused across requests;
  // bounded by max(max_header_bytes, kMaxChunkLine) + kReadChunk (see process()).
  std::vector<char> rbuf_;
  std::size_t rbeg_ = 0;
  std::size_t rend_ = 0;

  // Per-request parser state.
  Phase phase_ = Phase::Head;
  bool req_started_ = false;      // a byte of the current request arrived
  bool req_deadline_set_ = false; // request_timeout armed for it
  bool head_parsed_ = false;      // parse_head ran (req_ holds what it found)
  std::size_t head_scan_ = 0;     // bytes of the head already searched for its end
  std::size_t skipped_ = 0;       // empty lines skipped before the request line
  std::uint64_t content_length_ = 0;
  bool chunked_ = false;
  bool keep_alive_ = true;
  bool expect_continue_ = false;
  bool is_head_method_ = false;
  std::uint64_t chunk_left_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::string_view err_msg_;      // message of the last parse error (a literal)
  Clock::time_point start_{};     // first byte of the current request
  int status_ = 0;                // status of the response being written

  // Handed to the worker while State::Handling.
  Request req_;
  Reply reply_;

  std::string head_;              // response head, reused
  std::size_t discarded_ = 0;     // bytes thrown away while lingering

  // Timer: one steady_timer, re-armed lazily. `deadline_` is the wanted expiry;
  // the timer may be set later or earlier and re-armed when it fires, so the
  // common path (a request arriving on an idle connection, answered) never
  // cancels the timer.
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timer_waiting_ = false;
  std::uint64_t timer_gen_ = 0;

  // Upgraded connections: raw input goes here (strand-only).
  std::function<void(std::string_view)> data_fn_;

  // Stream writer (strand-only part).
  bool swriting_ = false;
  std::vector<std::string> sinflight_;
  std::vector<asio::const_buffer> sbufs_;

  // --- guarded by smu_ (any thread) --------------------------------------
  mutable std::mutex smu_;
  bool sopen_ = false;             // streaming and not yet closed
  bool sclose_requested_ = false;  // Stream::close() called
  bool skick_pending_ = false;     // a stream_flush is posted and has not run
  std::size_t squeued_ = 0;        // bytes queued or being written
  std::vector<std::string> squeue_;
  std::vector<std::function<void()>> on_close_;
};

// The Stream handed to the application. It holds the connection weakly and no
// strand of its own, so a handle kept after the connection closed (even after
// the io_context is gone) owns no I/O object and nothing reference-counted by
// the io_context's services; destroying it late is safe.
class Server::Impl::StreamHandle final : public Stream {
 public:
  StreamHandle(std::weak_ptr<Connection> c, asio::io_context::executor_type fallback)
      : conn_(std::move(c)), fallback_(fallback) {}

  bool send(std::string chunk) override {
    const auto c = conn_.lock();
    return c && c->stream_send(std::move(chunk));
  }
  bool is_open() const override {
    const auto c = conn_.lock();
    return c && c->stream_is_open();
  }
  void close() override {
    if (const auto c = conn_.lock()) c->stream_close();
  }
  void on_close(std::function<void()> fn) override {
    if (const auto c = conn_.lock()) {
      c->stream_on_close(std::move(fn));
      return;
    }
    // Already closed and gone: run it now, as stream_on_close would.
    if (fn) {
      try {
        fn();
      } catch (...) {
      }
    }
  }
  void abort() override {
    if (const auto c = conn_.lock()) asio::post(c->strand(), [c] { c->force_close(); });
  }
  std::size_t queued_bytes() const override {
    const auto c = conn_.lock();
    return c ? c->stream_queued() : 0;
  }
  // The connection's strand; once the connection is gone, the plain io_context
  // executor (the stream is closed then, so nothing needs serializing).
  asio::any_io_executor executor() override {
    if (const auto c = conn_.lock()) return c->strand();
    return fallback_;
  }

 private:
  std::weak_ptr<Connection> conn_;
  asio::io_context::executor_type fallback_;  // untracked: trivially destructible
};

// The Completion of a deferred reply: holds the connection until answered.
class Server::Impl::DeferredCompletion final : public Completion {
 public:
  explicit DeferredCompletion(std::shared_ptr<Connection> c) : conn_(std::move(c)) {}
  void complete(Response r) override {
    if (done_.exchange(true)) return;
    auto c = std::move(conn_);
    asio::post(c->strand(), [c, r = std::move(r)]() mutable { c->deferred_done(std::move(r)); });
  }

 private:
  std::atomic<bool> done_{false};
  std::shared_ptr<Connection> conn_;
};

void Server::Impl::Connection::deferred_done(Response r) {
  reply_ = Reply{};
  reply_.response = std::move(r);
  on_handler_done();
}

void Server::Impl::Connection::start() {
  if (closed_) return;  // stop() won the race with the accept loop
  std::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  const auto ep = socket_.remote_endpoint(ec);
  if (ec) {  // already disconnected
    do_close();
    return;
  }
  remote_ = format_endpoint(ep);
  rbuf_.resize(kReadChunk);
  if (socket_.is_tls()) return tls_handshake();
  next_request();
}

// TLS: the handshake comes first and must finish within request_timeout (the
// timer closes the connection: State::Reading with no request started).
void Server::Impl::Connection::tls_handshake() {
  set_deadline(Clock::now() + opts().request_timeout);
  socket_.async_handshake([self = shared_from_this()](const std::error_code& ec) {
    if (self->closed_) return;
    if (ec) return self->do_close();  // not TLS, no shared version/cipher, ...
    self->next_request();
  });
}

void Server::Impl::Connection::next_request() {
  state_ = State::Reading;
  phase_ = Phase::Head;
  req_.method.clear();
  req_.target.clear();
  req_.path.clear();
  req_.query.clear();
  req_.body.clear();
  req_.request_id.clear();
  // [limits] An idle keep-alive connection keeps no large buffer: release a
  // body's capacity above kKeepBodyCapacity, and a read buffer that a long
  // head grew (up to max_header_bytes + kReadChunk) once it is drained.
  if (req_.body.capacity() > kKeepBodyCapacity) std::string().swap(req_.body);
  if (rbeg_ == rend_ && rbuf_.size() > kReadChunk) {
    rbeg_ = rend_ = 0;
    std::vector<char>(kReadChunk).swap(rbuf_);
  }
  // Headers are overwritten in place by parse_head (keeps their capacity).
  if (req_.remote_addr != remote_) req_.remote_addr = remote_;
  req_started_ = false;
  req_deadline_set_ = false;
  head_parsed_ = false;
  head_scan_ = 0;
  skipped_ = 0;
  content_length_ = 0;
  chunked_ = false;
  keep_alive_ = true;
  expect_continue_ = false;
  is_head_method_ = false;
  chunk_left_ = 0;
  trailer_bytes_ = 0;
  if (rbeg_ == rend_) set_deadline(Clock::now() + opts().idle_timeout);
  process();
}

// Searches [p, p+n) for the empty line ending the head; resumes where the
// previous call stopped. Returns the head length including that line, or 0.
std::size_t Server::Impl::Connection::find_head_end(const char* p, std::size_t n) {
  std::size_t i = head_scan_;
  while (i < n) {
    const void* q = std::memchr(p + i, '\n', n - i);
    if (q == nullptr) break;
    const auto j = static_cast<std::size_t>(static_cast<const char*>(q) - p);
    if ((j >= 1 && p[j - 1] == '\n') || (j >= 2 && p[j - 1] == '\r' && p[j - 2] == '\n')) return j + 1;
    i = j + 1;
  }
  head_scan_ = n;
  return 0;
}

// Runs the parser over buffered bytes until it needs more input, the request is
// complete (→ dispatch) or it is malformed (→ fail). State::Reading only.
void Server::Impl::Connection::process() {
  for (;;) {
    const char* p = rbuf_.data() + rbeg_;
    const std::size_t n = rend_ - rbeg_;
    switch (phase_) {
      case Phase::Head: {
        // RFC 9112 §2.2: ignore empty lines before the request line.
        std::size_t k = 0;
        while (k < n && (p[k] == '\n' || (p[k] == '\r' && k + 1 < n && p[k + 1] == '\n'))) {
          k += p[k] == '\n' ? 1 : 2;
        }
        if (k > 0) {
          rbeg_ += k;
          skipped_ += k;
          head_scan_ = 0;
          if (skipped_ > opts().max_header_bytes) return fail(400, "malformed request");
          continue;
        }
        if (n == 0) return read_more();
        if (!req_started_) {
          req_started_ = true;
          start_ = Clock::now();
        }
        const std::size_t end = find_head_end(p, n);
        if (end == 0) {
          // All n bytes belong to this head. Bounding them here is what bounds rbuf_.
          if (n > opts().max_header_bytes) return fail(431, "request header too large");
          return read_more();
        }
        if (end > opts().max_header_bytes) return fail(431, "request header too large");
        const int st = parse_head(p, end);
        rbeg_ += end;
        head_scan_ = 0;
        if (st != 0) return fail(st, err_msg_);
        if (chunked_) {
          phase_ = Phase::ChunkSize;
        } else if (content_length_ > 0) {
          phase_ = Phase::Body;
          // [limits] Not content_length_: room grows as the bytes arrive (read_body_rest).
          req_.body.reserve(std::min<std::uint64_t>(content_length_, kBodyStep));
        } else {
          phase_ = Phase::Head;
          return dispatch();
        }
        if (expect_continue_ && rbeg_ == rend_) return send_continue();
        continue;
      }

      case Phase::Body: {
        const std::size_t take = std::min<std::uint64_t>(n, content_length_ - req_.body.size());
        req_.body.append(p, take);
        rbeg_ += take;
        if (req_.body.size() == content_length_) {
          phase_ = Phase::Head;
          return dispatch();
        }
        return read_body_rest();
      }

      case Phase::ChunkSize: {
        const void* q = std::memchr(p, '\n', n);
        if (q == nullptr) {
          if (n > kMaxChunkLine) return fail(400, "malformed chunked body");
          return read_more();
        }
        const auto e = static_cast<std::size_t>(static_cast<const char*>(q) - p);
        if (e > kMaxChunkLine) return fail(400, "malformed chunked body");
        std::string_view line(p, e);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        rbeg_ += e + 1;
        std::uint64_t size = 0;
        bool too_big = false;
        std::size_t i = 0;
        for (; i < line.size(); ++i) {
          const int d = hex_value(line[i]);
          if (d < 0) break;
          if (size > (std::numeric_limits<std::uint64_t>::max() >> 4)) too_big = true;  // would overflow
          if (!too_big) size = size * 16 + static_cast<std::uint64_t>(d);
        }
        if (i == 0) return fail(400, "malformed chunked body");
        // Chunk extensions (";name=value") are ignored; anything else is an error.
        const auto rest = trim_ows(line.substr(i));
        if (!rest.empty() && rest.front() != ';') return fail(400, "malformed chunked body");
        if (size == 0 && !too_big) {
          phase_ = Phase::Trailer;
          continue;
        }
        if (too_big || size > opts().max_body_bytes - req_.body.size()) {
          return fail(413, "request body too large");
        }
        chunk_left_ = size;
        phase_ = Phase::ChunkData;
        continue;
      }

      case Phase::ChunkData: {
        if (n == 0) return read_more();
        const std::size_t take = std::min<std::uint64_t>(n, chunk_left_);
        req_.body.append(p, take);
        rbeg_ += take;
        chunk_left_ -= take;
        if (chunk_left_ == 0) phase_ = Phase::ChunkEnd;
        continue;
      }

      case Phase::ChunkEnd: {
        if (n == 0) return read_more();
        if (p[0] == '\n') {
          rbeg_ += 1;
        } else if (p[0] == '\r') {
          if (n < 2) return read_more();
          if (p[1] != '\n') return fail(400, "malformed chunked body");
          rbeg_ += 2;
        } else {
          return fail(400, "malformed chunked body");
        }
        phase_ = Phase::ChunkSize;
        continue;
      }

      case Phase::Trailer: {
        // Trailer fields are read line by line and skipped; together they are
        // bounded by max_header_bytes like the head.
        const void* q = std::memchr(p, '\n', n);
        if (q == nullptr) {
          if (trailer_bytes_ + n > opts().max_header_bytes) return fail(431, "request header too large");
          return read_more();
        }
        const auto e = static_cast<std::size_t>(static_cast<const char*>(q) - p);
        trailer_bytes_ += e + 1;
        if (trailer_bytes_ > opts().max_header_bytes) return fail(431, "request header too large");
        const bool empty_line = e == 0 || (e == 1 && p[0] == '\r');
        rbeg_ += e + 1;
        if (empty_line) {
          phase_ = Phase::Head;
          return dispatch();
        }
        continue;
      }
    }
  }
}

// Parses a complete head [p, p+len) into req_ and the framing members.
// Returns 0, or an error status with err_msg_ set.
int Server::Impl::Connection::parse_head(const char* p, std::size_t len) {
  head_parsed_ = true;
  std::size_t nh = 0;
  const auto finish = [&](int status, std::string_view msg = {}) {
    req_.headers.resize(nh);
    err_msg_ = msg;
    return status;
  };

  std::size_t pos = 0;
  // Next line without its terminator; false if it contains a bare CR.
  const auto next_line = [&](std::string_view& line) {
    const auto* q = static_cast<const char*>(std::memchr(p + pos, '\n', len - pos));
    // The head ends with '\n' (find_head_end), so q is never null here.
    const auto e = static_cast<std::size_t>(q - p);
    std::size_t le = e;
    if (le > pos && p[le - 1] == '\r') --le;
    line = std::string_view(p + pos, le - pos);
    pos = e + 1;
    return line.find('\r') == std::string_view::npos;
  };

  // --- request line ---
  std::string_view line;
  if (!next_line(line)) return finish(400, "malformed request line");
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return finish(400, "malformed request line");
  const auto method = line.substr(0, sp1);
  const auto rest = line.substr(sp1 + 1);
  const auto sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos) return finish(400, "malformed request line");
  const auto target = rest.substr(0, sp2);
  const auto version = rest.substr(sp2 + 1);
  if (!is_token(method)) return finish(400, "malformed request line");
  req_.method.assign(method);
  is_head_method_ = method == "HEAD";
  if (!is_target_chars(target)) return finish(400, "malformed request line");
  req_.target.assign(target);
  std::string_view raw_path;
  std::string_view raw_query;
  const bool target_ok = split_target(target, raw_path, raw_query);
  if (target_ok) {
    req_.query.assign(raw_query);
    if (!percent_decode(raw_path, req_.path, false, /*strict=*/true)) {
      // Keep the raw path for the access log, then reject.
      req_.path.assign(raw_path);
      return finish(400, "invalid percent-encoding in path");
    }
  }
  bool http11 = false;
  if (version == "HTTP/1.1") {
    http11 = true;
  } else if (version == "HTTP/1.0") {
    http11 = false;
  } else {
    // Well-formed but unsupported versions get 505; anything else is malformed.
    bool well_formed = version.size() > 5 && version.substr(0, 5) == "HTTP/" &&
                       version[5] >= '0' && version[5] <= '9';
    for (std::size_t i = 5; well_formed && i < version.size(); ++i) {
      const char c = version[i];
      well_formed = (c >= '0' && c <= '9') || c == '.';
    }
    return finish(well_formed ? 505 : 400, well_formed ? "HTTP version not supported" : "malformed request line");
  }
  if (!target_ok) return finish(400, "invalid request target");

  // --- header fields ---
  bool cl_seen = false;
  bool cl_too_big = false;
  std::uint64_t cl = 0;
  bool te_seen = false;
  std::size_t te_chunked = 0;
  bool te_other = false;
  bool conn_close = false;
  bool conn_keep_alive = false;
  bool expect_100 = false;
  while (pos < len) {
    if (!next_line(line)) return finish(400, "malformed header field");
    if (line.empty()) break;  // the empty line ending the head
    if (line.front() == ' ' || line.front() == '\t') return finish(400, "obsolete header line folding");
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return finish(400, "malformed header field");
    const auto name = line.substr(0, colon);
    const auto value = trim_ows(line.substr(colon + 1));
    if (!is_token(name) || !is_field_value(value)) return finish(400, "malformed header field");
    if (nh >= opts().max_headers) return finish(431, "too many header fields");
    if (nh == req_.headers.size()) req_.headers.emplace_back();
    auto& h = req_.headers[nh++];
    h.first.resize(name.size());
    std::transform(name.begin(), name.end(), h.first.begin(), lower_ascii);
    h.second.assign(value);

    const std::string& lname = h.first;
    if (lname == "content-length") {
      bool bad = false;
      bool any = false;
      for_each_list_item(value, [&](std::string_view item) {
        any = true;
        std::uint64_t v = 0;
        bool big = false;
        for (char c : item) {
          if (c < '0' || c > '9') {
            bad = true;
            return;
          }
          if (v > 100'000'000'000'000ULL) big = true;  // far beyond any limit; stop growing
          if (!big) v = v * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (cl_seen && (big != cl_too_big || v != cl)) bad = true;  // conflicting duplicates
        cl_seen = true;
        cl_too_big = big;
        cl = v;
      });
      if (bad || !any) return finish(400, "invalid Content-Length");
    } else if (lname == "transfer-encoding") {
      te_seen = true;
      for_each_list_item(value, [&](std::string_view item) {
        if (iequals(item, "chunked")) ++te_chunked;
        else te_other = true;
      });
    } else if (lname == "connection") {
      for_each_list_item(value, [&](std::string_view item) {
        if (iequals(item, "close")) conn_close = true;
        else if (iequals(item, "keep-alive")) conn_keep_alive = true;
      });
    } else if (lname == "expect") {
      if (iequals(value, "100-continue")) expect_100 = true;
    }
  }

  if (te_seen) {
    if (cl_seen) return finish(400, "both Content-Length and Transfer-Encoding");
    if (te_other) return finish(501, "unsupported transfer coding");
    if (te_chunked != 1) return finish(400, "invalid Transfer-Encoding");
    chunked_ = true;
  } else if (cl_seen) {
    if (cl_too_big || cl > opts().max_body_bytes) return finish(413, "request body too large");
    content_length_ = cl;
  }
  keep_alive_ = http11 ? !conn_close : (conn_keep_alive && !conn_close);
  expect_continue_ = http11 && expect_100;
  return finish(0);
}

// For the access log of an error found before the head was parsed: take
// method and target from the buffered request line, if they look sane.
void Server::Impl::Connection::fill_best_effort() {
  if (head_parsed_) return;
  req_.headers.clear();
  const std::string_view buf(rbuf_.data() + rbeg_, rend_ - rbeg_);
  const auto line = buf.substr(0, std::min(buf.find_first_of("\r\n"), opts().max_header_bytes));
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return;
  if (is_token(line.substr(0, sp1))) req_.method.assign(line.substr(0, sp1));
  auto rest = line.substr(sp1 + 1);
  const auto target = rest.substr(0, rest.find(' '));
  if (!is_target_chars(target)) return;
  req_.target.assign(target);
  std::string_view raw_path;
  std::string_view raw_query;
  if (split_target(target, raw_path, raw_query)) {
    req_.query.assign(raw_query);
    if (!percent_decode(raw_path, req_.path, false, true)) req_.path.assign(raw_path);
  }
}

void Server::Impl::Connection::ensure_request_deadline() {
  if (req_started_ && !req_deadline_set_) {
    req_deadline_set_ = true;
    set_deadline(start_ + opts().request_timeout);
  }
}

void Server::Impl::Connection::read_more() {
  ensure_request_deadline();
  if (rbeg_ == rend_) rbeg_ = rend_ = 0;
  if (rbuf_.size() - rend_ < kReadChunk) {
    if (rbeg_ > 0) {
      std::memmove(rbuf_.data(), rbuf_.data() + rbeg_, rend_ - rbeg_);
      rend_ -= rbeg_;
      rbeg_ = 0;
    }
    // process() only asks for more input while the unconsumed bytes are within
    // max_header_bytes / kMaxChunkLine, so this growth is bounded.
    if (rbuf_.size() - rend_ < kReadChunk) rbuf_.resize(rend_ + kReadChunk);
  }
  read_pending_ = true;
  read_into_body_ = false;
  socket_.async_read_some(asio::buffer(rbuf_.data() + rend_, rbuf_.size() - rend_),
                          [self = shared_from_this()](const std::error_code& ec, std::size_t n) {
                            self->on_read(ec, n);
                          });
}

// Reads the missing part of a Content-Length body straight into req_.body:
// no copy through rbuf_, and never beyond the missing count, so bytes of a
// pipelined next request stay in the socket. [limits] Each read offers room
// for at most max(kBodyStep, bytes so far) more (doubling), not the whole
// announced length: memory follows the bytes that actually arrive. on_read
// trims the unused room and calls this again until the body is complete.
void Server::Impl::Connection::read_body_rest() {
  ensure_request_deadline();
  const std::size_t have = req_.body.size();
  const std::size_t missing = static_cast<std::size_t>(content_length_) - have;
  body_room_ = std::min(missing, std::max(kBodyStep, have));
  req_.body.resize(have + body_room_);
  read_pending_ = true;
  read_into_body_ = true;
  socket_.async_read_some(asio::buffer(req_.body.data() + have, body_room_),
                          [self = shared_from_this()](const std::error_code& ec, std::size_t n) {
                            self->on_read(ec, n);
                          });
}

void Server::Impl::Connection::send_continue() {
  ensure_request_deadline();
  static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
  writing_continue_ = true;
  asio::async_write(socket_, asio::buffer(k100.data(), k100.size()),
                    [self = shared_from_this()](const std::error_code& ec, std::size_t) {
                      self->writing_continue_ = false;
                      if (self->closed_) return;
                      if (ec) return self->do_close();
                      if (self->state_ == State::Reading) self->process();
                    });
}

void Server::Impl::Connection::on_read(const std::error_code& ec, std::size_t n) {
  read_pending_ = false;
  if (closed_) return;
  switch (state_) {
    case State::Reading:
      // EOF or error: nothing sensible to answer (the client is gone or gave up).
      if (ec) return do_close();
      if (read_into_body_) {
        read_into_body_ = false;
        // [limits] Keep the n bytes that arrived, drop the rest of the room.
        req_.body.resize(req_.body.size() - body_room_ + n);
        if (req_.body.size() < content_length_) return read_body_rest();
        phase_ = Phase::Head;
        return dispatch();
      }
      rend_ += n;
      return process();

    case State::Streaming:
    case State::Closing:
      // A read cancelled by fail() (the socket is still open): start discarding.
      if (ec == asio::error::operation_aborted) return start_discard();
      if (ec) return do_close();  // EOF: client gone (stream) or done (lingering close)
      if (state_ == State::Streaming && data_fn_) {
        data_fn_(std::string_view(rbuf_.data(), n));
        if (closed_) return;
        return start_discard();  // reads the next bytes into rbuf_ again
      }
      discarded_ += n;
      if (state_ == State::Closing && discarded_ > kMaxLingerBytes) return do_close();
      return start_discard();

    case State::Handling:
    case State::Writing:
    case State::StreamHead:
      // Only a read cancelled by fail() can complete here; nothing to do.
      return;
  }
}

// Keeps one read pending that throws input away: on a stream it detects the
// client closing; while lingering it drains what the client still sends.
void Server::Impl::Connection::start_discard() {
  if (state_ == State::Closing && socket_.is_tls()) return tls_shutdown();
  rbeg_ = rend_ = 0;
  read_pending_ = true;
  read_into_body_ = false;
  socket_.async_read_some(asio::buffer(rbuf_.data(), rbuf_.size()),
                          [self = shared_from_this()](const std::error_code& ec, std::size_t n) {
                            self->on_read(ec, n);
                          });
}

void Server::Impl::Connection::dispatch() {
  state_ = State::Handling;
  asio::post(srv_->workers, [self = shared_from_this()] {
    // Worker thread: only req_ and reply_ are touched (see the file comment).
    try {
      self->reply_ = self->srv_->handler(self->req_);
    } catch (...) {
      self->reply_ = Reply{};
      self->reply_.response = self->srv_->make_error(self->req_, 500, "internal error");
    }
    if (self->reply_.deferred) {
      // The Completion posts the response to the strand; from here on this
      // thread leaves reply_ alone.
      auto deferred = std::move(self->reply_.deferred);
      self->reply_ = Reply{};
      auto completion = std::make_shared<DeferredCompletion>(self);
      try {
        deferred(completion);
      } catch (...) {
        Response r = self->srv_->make_error(self->req_, 500, "internal error");
        completion->complete(std::move(r));
      }
      return;
    }
    asio::post(self->strand_, [self] { self->on_handler_done(); });
  });
}

void Server::Impl::Connection::on_handler_done() {
  if (closed_) {
    // Closed while the handler ran (force-closed by stop()): drop the reply.
    reply_ = Reply{};
    return;
  }
  if (reply_.upgrade) return start_upgrade();
  if (reply_.stream) return start_stream_head();
  write_response();
}

// A server-detected error: answer through the ErrorResponder, then close.
void Server::Impl::Connection::fail(int status, std::string_view message) {
  if (read_pending_) {
    // Only when fail() comes from the timer: no byte may land in the buffers
    // after this point (cancel() synchronizes with the reactor).
    std::error_code ignored;
    socket_.cancel(ignored);
  }
  keep_alive_ = false;
  if (!req_started_) {  // e.g. only blank lines arrived: time the log from now
    req_started_ = true;
    start_ = Clock::now();
  }
  fill_best_effort();
  reply_.stream = nullptr;
  reply_.response = srv_->make_error(req_, status, message);
  write_response();
}

void Server::Impl::Connection::write_response() {
  Response& r = reply_.response;
  int status = r.status;
  if (status < 100 || status > 999) status = 500;
  status_ = status;
  if (srv_->stopping.load(std::memory_order_relaxed)) keep_alive_ = false;
  // RFC 9110 §8.6: no Content-Length and no body for 1xx and 204; 304 has no body.
  const bool bodyless = status < 200 || status == 204 || status == 304;
  const bool send_body = !bodyless && !is_head_method_ && !r.body.empty();
  build_head(r, status, /*stream=*/false, r.body.size(), /*send_length=*/!bodyless);
  const std::array<asio::const_buffer, 2> bufs{asio::buffer(head_),
                                               send_body ? asio::buffer(r.body) : asio::const_buffer()};
  state_ = State::Writing;
  // A client that does not read its response is dropped after request_timeout.
  set_deadline(Clock::now() + opts().request_timeout);
  asio::async_write(socket_, bufs, [self = shared_from_this()](const std::error_code& ec, std::size_t) {
    self->on_written(ec);
  });
}

void Server::Impl::Connection::on_written(const std::error_code& ec) {
  if (closed_) return;
  if (ec) return do_close();
  log_access(status_);
  // Keep the connection cheap while idle: drop a large body, keep small capacity.
  if (reply_.response.body.capacity() > 64 * 1024) std::string().swap(reply_.response.body);
  reply_.response.body.clear();
  reply_.response.headers.clear();
  reply_.stream = nullptr;
  if (keep_alive_ && !srv_->stopping.load(std::memory_order_relaxed)) return next_request();
  graceful_close();
}

void Server::Impl::Connection::build_head(const Response& r, int status, bool stream, std::size_t body_len,
                                          bool send_length) {
  head_.clear();
  head_.append("HTTP/1.1 ");
  append_uint(head_, static_cast<std::uint64_t>(status));
  head_.push_back(' ');
  head_.append(reason_phrase(status));
  head_.append("\r\n");
  if (!r.content_type.empty() && is_field_value(r.content_type)) {
    head_.append("Content-Type: ");
    head_.append(r.content_type);
    head_.append("\r\n");
  }
  if (send_length) {
    head_.append("Content-Length: ");
    append_uint(head_, body_len);
    head_.append("\r\n");
  }
  bool have_date = false;
  bool have_cache_control = false;
  for (const auto& [name, value] : r.headers) {
    // Drop fields that would break the framing or split the response.
    if (!is_token(name) || !is_field_value(value)) continue;
    if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) continue;
    if (iequals(name, "connection")) {
      // The server owns this field; a handler may still ask to close.
      for_each_list_item(value, [&](std::string_view item) {
        if (iequals(item, "close")) keep_alive_ = false;
      });
      continue;
    }
    if (iequals(name, "date")) have_date = true;
    if (iequals(name, "cache-control")) have_cache_control = true;
    head_.append(name);
    head_.append(": ");
    head_.append(value);
    head_.append("\r\n");
  }
  if (stream && !have_cache_control) head_.append("Cache-Control: no-cache\r\n");
  if (!have_date) {
    head_.append("Date: ");
    head_.append(http_date());
    head_.append("\r\n");
  }
  head_.append(keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
}

// --- streams ----------------------------------------------------------------

void Server::Impl::Connection::start_stream_head() {
  const Response& r = reply_.response;
  status_ = (r.status < 100 || r.status > 999) ? 500 : r.status;
  keep_alive_ = false;  // the body is delimited by the close
  build_head(r, status_, /*stream=*/true, 0, /*send_length=*/false);
  state_ = State::StreamHead;
  set_deadline(Clock::now() + opts().request_timeout);
  asio::async_write(socket_, asio::buffer(head_), [self = shared_from_this()](const std::error_code& ec, std::size_t) {
    self->on_stream_head_written(ec);
  });
}

// The connection leaves HTTP: no head is written, input goes to on_data.
void Server::Impl::Connection::start_upgrade() {
  status_ = 101;
  keep_alive_ = false;
  log_access(status_);
  if (srv_->stopping.load(std::memory_order_relaxed)) return do_close();
  state_ = State::Streaming;  // no timeouts from here on
  {
    std::error_code ignored;
    socket_.set_option(asio::socket_base::send_buffer_size(static_cast<int>(opts().upgraded_send_buffer_bytes)), ignored);
  }
  {
    std::lock_guard<std::mutex> lk(smu_);
    sopen_ = true;
  }
  data_fn_ = std::move(reply_.on_data);
  auto cb = std::move(reply_.upgrade);
  reply_ = Reply{};
  auto handle = std::make_shared<StreamHandle>(weak_from_this(), srv_->io.get_executor());
  try {
    cb(handle);
  } catch (...) {
    return do_close();
  }
  if (closed_) return;
  if (rend_ > rbeg_ && data_fn_) {
    // Bytes the client sent right after the request (already buffered).
    const std::string early(rbuf_.data() + rbeg_, rend_ - rbeg_);
    rbeg_ = rend_ = 0;
    data_fn_(early);
    if (closed_) return;
  }
  if (rbuf_.size() < kReadChunk) rbuf_.resize(kReadChunk);
  if (!read_pending_) start_discard();
}

void Server::Impl::Connection::on_stream_head_written(const std::error_code& ec) {
  if (closed_) return;
  if (ec) return do_close();
  log_access(status_);
  if (srv_->stopping.load(std::memory_order_relaxed)) return do_close();
  state_ = State::Streaming;  // no timeouts from here on
  {
    std::lock_guard<std::mutex> lk(smu_);
    sopen_ = true;
  }
  if (!read_pending_) start_discard();  // notices the client going away
  // The callback runs on the worker pool: it may block briefly (e.g. load an
  // initial snapshot) without stalling I/O, and may call send() at once since
  // the head is already written and sends only queue.
  auto cb = std::move(reply_.stream);
  reply_.stream = nullptr;
  auto handle = std::make_shared<StreamHandle>(weak_from_this(), srv_->io.get_executor());
  asio::post(srv_->workers, [cb = std::move(cb), handle = std::move(handle)] {
    try {
      cb(handle);
    } catch (...) {
      handle->close();
    }
  });
}

bool Server::Impl::Connection::stream_send(std::string chunk) {
  {
    std::lock_guard<std::mutex> lk(smu_);
    if (!sopen_ || sclose_requested_) return false;
    if (chunk.empty()) return true;
    const std::size_t max = opts().max_stream_queue_bytes;
    // The queue never exceeds the limit: a chunk that does not fit is dropped.
    if (chunk.size() > max || squeued_ > max - chunk.size()) return false;
    squeued_ += chunk.size();
    squeue_.push_back(std::move(chunk));
    if (skick_pending_) return true;
    skick_pending_ = true;
  }
  asio::post(strand_, [self = shared_from_this()] { self->stream_flush(); });
  return true;
}

bool Server::Impl::Connection::stream_is_open() const {
  std::lock_guard<std::mutex> lk(smu_);
  return sopen_ && !sclose_requested_;
}

void Server::Impl::Connection::stream_close() {
  {
    std::lock_guard<std::mutex> lk(smu_);
    if (!sopen_ || sclose_requested_) return;
    sclose_requested_ = true;
    if (skick_pending_) return;
    skick_pending_ = true;
  }
  asio::post(strand_, [self = shared_from_this()] { self->stream_flush(); });
}

void Server::Impl::Connection::stream_on_close(std::function<void()> fn) {
  if (!fn) return;
  {
    std::lock_guard<std::mutex> lk(smu_);
    if (sopen_) {
      on_close_.push_back(std::move(fn));
      return;
    }
  }
  // Already closed: the callbacks have run, so run this one now.
  try {
    fn();
  } catch (...) {
  }
}

// Strand: writes everything queued in one gather write; at the end of the
// queue, honours a requested close.
void Server::Impl::Connection::stream_flush() {
  if (closed_ || state_ != State::Streaming) return;
  bool close_now = false;
  {
    std::lock_guard<std::mutex> lk(smu_);
    skick_pending_ = false;
    if (swriting_) return;  // on_stream_written calls us again
    if (squeue_.empty()) close_now = sclose_requested_;
    else sinflight_.swap(squeue_);
  }
  if (close_now) {
    if (socket_.is_tls()) return graceful_close();  // close_notify first
    // Everything queued is written. Nothing more is expected from the client
    // and the discard read keeps the receive queue empty, so a plain close
    // ends the stream with a FIN.
    std::error_code ignored;
    socket_.shutdown(asio::socket_base::shutdown_both, ignored);
    return do_close();
  }
  if (sinflight_.empty()) return;
  sbufs_.clear();
  for (const auto& s : sinflight_) sbufs_.push_back(asio::buffer(s));
  swriting_ = true;
  asio::async_write(socket_, sbufs_, [self = shared_from_this()](const std::error_code& ec, std::size_t) {
    self->on_stream_written(ec);
  });
}

void Server::Impl::Connection::on_stream_written(const std::error_code& ec) {
  swriting_ = false;
  if (closed_) return;  // do_close already reset the queue accounting
  std::size_t bytes = 0;
  for (const auto& s : sinflight_) bytes += s.size();
  sinflight_.clear();
  {
    std::lock_guard<std::mutex> lk(smu_);
    squeued_ -= bytes;
  }
  if (ec) return do_close();
  stream_flush();
}

// --- closing -----------------------------------------------------------------

void Server::Impl::Connection::graceful_close() {
  state_ = State::Closing;
  std::error_code ec;
  // TLS: tls_shutdown() (from start_discard) sends close_notify instead.
  if (socket_.is_tls()) {
    if (read_pending_) socket_.cancel(ec);  // a stream's read: on_read then calls start_discard
  } else {
    socket_.shutdown(asio::socket_base::shutdown_send, ec);
  }
  if (ec) return do_close();
  set_deadline(Clock::now() + (srv_->stopping.load(std::memory_order_relaxed)
                                   ? std::chrono::duration_cast<Clock::duration>(kStopLinger)
                                   : std::chrono::duration_cast<Clock::duration>(kLinger)));
  discarded_ = 0;
  // A read cancelled by fail() may still be on its way; on_read starts the
  // discarding then.
  if (!read_pending_) start_discard();
}

// TLS's lingering close: close_notify, then wait (bounded by the Closing
// deadline) for the client's close_notify or EOF; OpenSSL drops application
// data that arrives meanwhile.
void Server::Impl::Connection::tls_shutdown() {
  read_pending_ = true;
  read_into_body_ = false;
  socket_.async_shutdown([self = shared_from_this()](const std::error_code&) {
    self->read_pending_ = false;
    self->do_close();
  });
}

void Server::Impl::Connection::do_close() {
  if (closed_) return;
  closed_ = true;
  std::error_code ignored;
  socket_.close(ignored);  // pending operations complete with operation_aborted
  timer_.cancel();
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard<std::mutex> lk(smu_);
    sopen_ = false;
    callbacks.swap(on_close_);
    squeue_.clear();
    squeued_ = 0;
  }
  for (auto& fn : callbacks) {
    try {
      fn();
    } catch (...) {
    }
  }
  srv_->unregister(this);
}

void Server::Impl::Connection::begin_stop() {
  if (closed_) return;
  switch (state_) {
    case State::Reading:
      // Idle, or a request not yet complete: not in flight, close now.
      return do_close();
    case State::Streaming:
      // Write what is queued, then close (on_close callbacks run then).
      return stream_close();
    case State::Closing:
      set_deadline(Clock::now() + std::chrono::duration_cast<Clock::duration>(kStopLinger));
      return;
    case State::Handling:
    case State::Writing:
    case State::StreamHead:
      // In flight: completes, then sees `stopping` and closes.
      return;
  }
}

// --- timer -------------------------------------------------------------------

void Server::Impl::Connection::set_deadline(Clock::time_point tp) {
  deadline_ = tp;
  // A later deadline is picked up when the timer fires; only an earlier one
  // needs the wait re-armed now.
  if (!timer_waiting_ || tp < timer_.expiry()) arm(tp);
}

void Server::Impl::Connection::arm(Clock::time_point tp) {
  timer_.expires_at(tp);  // cancels a pending wait; its handler sees a stale generation
  timer_waiting_ = true;
  const std::uint64_t gen = ++timer_gen_;
  timer_.async_wait([self = shared_from_this(), gen](const std::error_code& ec) { self->on_timer(ec, gen); });
}

void Server::Impl::Connection::on_timer(const std::error_code& ec, std::uint64_t gen) {
  if (gen != timer_gen_) return;
  timer_waiting_ = false;
  if (closed_ || ec == asio::error::operation_aborted) return;
  if (Clock::now() < deadline_) return arm(deadline_);
  switch (state_) {
    case State::Reading:
      if (writing_continue_) return do_close();  // never two writes at once
      if (!req_started_) return do_close();      // idle keep-alive connection
      return fail(408, "request timeout");
    case State::Writing:
    case State::StreamHead:
    case State::Closing:
      return do_close();
    case State::Handling:
    case State::Streaming:
      return;  // no timeout while a handler runs or a stream is live
  }
}

void Server::Impl::Connection::log_access(int status) {
  if (!srv_->log) return;
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_);
  try {
    srv_->log(req_, status, us);
  } catch (...) {
  }
}

// ---------------------------------------------------------------------------
// Server::Impl

Response Server::Impl::make_error(const Request& req, int status, std::string_view message) const {
  Response r;
  bool ok = false;
  if (on_error) {
    try {
      r = on_error(req, status, message);
      ok = true;
    } catch (...) {
    }
  }
  if (!ok) {
    r = Response{};
    r.content_type = "text/plain; charset=utf-8";
    r.body.assign(message);
  }
  r.status = status;
  return r;
}

void Server::Impl::unregister(Connection* c) {
  std::lock_guard<std::mutex> lk(mu);
  if (conns.erase(c) > 0) {
    live.fetch_sub(1);
    // [limits] Give the address its slot back.
    const auto it = per_address.find(c->addr_key);
    if (it != per_address.end() && --it->second == 0) per_address.erase(it);
  }
  cv.notify_all();
}

void Server::Impl::listen(const std::string& host, std::uint16_t port) {
  std::lock_guard<std::mutex> lk(accept_mu);
  if (stopping.load()) throw std::logic_error("lucid::http::Server::listen: server is stopped");
  if (acceptor.is_open()) throw std::logic_error("lucid::http::Server::listen: already listening");
  asio::ip::tcp::endpoint ep;
  std::error_code ec;
  const auto addr = asio::ip::make_address(host.empty() ? std::string("0.0.0.0") : host, ec);
  if (!ec) {
    ep = asio::ip::tcp::endpoint(addr, port);
  } else {
    asio::ip::tcp::resolver resolver(io);
    const auto results = resolver.resolve(host, std::to_string(port));  // throws std::system_error
    if (results.empty()) throw std::system_error(asio::error::host_not_found, "resolve " + host);
    ep = results.begin()->endpoint();
  }
  try {
    acceptor.open(ep.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(asio::socket_base::max_listen_connections);
    bound_port.store(acceptor.local_endpoint().port());
  } catch (...) {
    std::error_code ignored;
    acceptor.close(ignored);
    throw;
  }
  start_accept_locked();
}

void Server::Impl::start_accept_locked() {
  // Each accepted socket gets its own strand as executor: the connection's
  // socket, timer and handlers all run on it.
  acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](const std::error_code& ec, Socket sock) {
    self->on_accept(ec, std::move(sock));
  });
}

void Server::Impl::on_accept(const std::error_code& ec, Socket sock) {
  if (!ec) adopt(std::move(sock));
  std::lock_guard<std::mutex> lk(accept_mu);
  if (stopping.load() || !acceptor.is_open()) return;
  if (ec && ec != asio::error::connection_aborted) {
    // EMFILE, ENFILE, ENOBUFS...: back off instead of spinning.
    accept_retry.expires_after(kAcceptRetry);
    accept_retry.async_wait([self = shared_from_this()](const std::error_code&) {
      std::lock_guard<std::mutex> lk2(self->accept_mu);
      if (self->stopping.load() || !self->acceptor.is_open()) return;
      self->start_accept_locked();
    });
    return;
  }
  start_accept_locked();
}

void Server::Impl::adopt(Socket sock) {
  std::error_code ignored;
  if (live.load() >= max_connections.load(std::memory_order_relaxed)) {
    sock.close(ignored);  // over the limit: accept and close at once
    return;
  }
  // [limits] Per-address cap: the peer's address decides its slot. Refused
  // the same cheap way as the global cap (no bytes read or written).
  const auto peer = sock.remote_endpoint(ignored);
  if (ignored) {
    sock.close(ignored);  // already disconnected
    return;
  }
  std::string key = address_key(peer.address());
  const std::size_t per_cap = opts.max_connections_per_address;
  auto c = std::make_shared<Connection>(shared_from_this(), std::move(sock));
  {
    std::lock_guard<std::mutex> lk(mu);
    if (stopping.load()) return;  // c (and its socket) are destroyed here
    std::size_t& n = per_address[key];
    if (per_cap != 0 && n >= per_cap) return;  // c (and its socket) are destroyed here: closed at once
    ++n;
    c->addr_key = std::move(key);
    conns.emplace(c.get(), c);
    live.fetch_add(1);
  }
  asio::post(c->strand(), [c] { c->start(); });
}

std::vector<std::shared_ptr<Server::Impl::Connection>> Server::Impl::snapshot() {
  std::vector<std::shared_ptr<Connection>> out;
  std::lock_guard<std::mutex> lk(mu);
  out.reserve(conns.size());
  for (const auto& entry : conns) {
    if (auto c = entry.second.lock()) out.push_back(std::move(c));
  }
  return out;
}

void Server::Impl::stop(std::chrono::milliseconds drain) {
  const bool on_io_thread = io.get_executor().running_in_this_thread();
  // A second caller waits for the first to finish (then returns at once). On an
  // I/O thread we must not wait: the connections may need this very thread.
  std::unique_lock<std::mutex> stop_lock(stop_mu, std::defer_lock);
  if (on_io_thread) {
    if (!stop_lock.try_lock()) return;
  } else {
    stop_lock.lock();
  }
  if (stop_done) return;
  stop_done = true;

  // While we drain, in-flight connections may have no operation pending on the
  // io_context (their handler runs on a worker): keep run() from returning.
  auto work = asio::make_work_guard(io);
  {
    std::lock_guard<std::mutex> lk(mu);
    stopping.store(true);  // from here on adopt() registers nothing
  }
  {
    std::lock_guard<std::mutex> lk(accept_mu);
    std::error_code ignored;
    acceptor.close(ignored);  // the pending accept completes with operation_aborted
    accept_retry.cancel();
  }

  // With a stopped io_context nothing posted would run: close from here. The
  // caller guarantees no thread is inside io_context::run() then.
  const auto close_directly = [this] {
    for (const auto& c : snapshot()) c->force_close();
  };
  if (io.stopped()) return close_directly();

  for (const auto& c : snapshot()) {
    asio::post(c->strand(), [c] { c->begin_stop(); });
  }
  if (on_io_thread) return;  // in-flight requests finish and close on their own

  const auto deadline = Clock::now() + drain;
  bool forced = false;
  std::unique_lock<std::mutex> lk(mu);
  while (live.load() != 0) {
    if (io.stopped()) {
      lk.unlock();
      close_directly();
      lk.lock();
      continue;
    }
    const auto now = Clock::now();
    if (!forced && now >= deadline) {
      // Drain time is over: close whatever is left, in-flight or not.
      forced = true;
      lk.unlock();
      for (const auto& c : snapshot()) {
        asio::post(c->strand(), [c] { c->force_close(); });
      }
      lk.lock();
      continue;
    }
    const auto until = forced ? now + kStopPoll : std::min<Clock::time_point>(deadline, now + kStopPoll);
    cv.wait_until(lk, until);
  }
}

// ---------------------------------------------------------------------------
// Server

Server::Server(asio::io_context& io, asio::thread_pool& workers, ServerOptions opts, Handler handler,
               ErrorResponder on_error, AccessLogger log)
    : impl_(std::make_shared<Impl>(io, workers, opts, std::move(handler), std::move(on_error), std::move(log))) {}

Server::~Server() {
  if (!impl_) return;
  try {
    impl_->stop(std::chrono::milliseconds(0));
  } catch (...) {
  }
}

// Connections read `tls` only after listen() started accepting.
void Server::use_tls(std::shared_ptr<asio::ssl::context> ctx) { impl_->tls = std::move(ctx); }

void Server::listen(const std::string& host, std::uint16_t port) { impl_->listen(host, port); }

std::uint16_t Server::port() const { return impl_->bound_port.load(); }

void Server::stop(std::chrono::milliseconds drain) { impl_->stop(drain); }

std::size_t Server::connection_count() const { return impl_->live.load(); }

void Server::set_max_connections(std::size_t n) { impl_->max_connections.store(n); }

}  // namespace lucid::http
