// ingest — load benchmark for a live lucid-server (see bench/README.md).
//
// Phases:
//   setup        start lucid-server (or attach to --url), mint a super_admin
//                token with lucidctl, register --nodes nodes concurrently
//                (join-request → approve → status/code → api_key)
//   ingest       --connections closed-loop keep-alive connections posting
//                POST /api/v1/stats/ for --seconds
//   concurrency  (--idle/--sse) hold idle keep-alive connections and SSE
//                subscribers open while --probe-connections measure REST
//                latency (GET /api/v1/nodes/{id} and POST /api/v1/stats/)
//
// Raw HTTP/1.1 over standalone Asio (C++20 coroutines). Output is plain
// "key: value" lines. The program never asserts on timing: it exits 0 unless
// setup failed.
// GCC 12 reports a false -Wmismatched-new-delete on every coroutine whose
// frame uses asio's awaitable_frame_base allocator (GCC PR 109224).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <rapidjson/document.h>

#include "bench_util.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace benchutil;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

constexpr std::string_view kStatsBody =
    R"({"cpu_usage":12.5,"disk_usage":40,"active_backups":0,"memory_percent":55.1,"uptime_seconds":1234})";



using StatusCounts = std::array<std::uint64_t, 600>;  // index = HTTP status; 0 = outside 100..599

void count_status(StatusCounts& c, int status) { ++c[(status >= 100 && status < 600) ? status : 0]; }

std::string describe_non200(const StatusCounts& c) {
  std::string s;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (i == 200 || !c[i]) continue;
    if (!s.empty()) s += ", ";
    s += (i == 0 ? std::string("other") : std::to_string(i)) + "=" + std::to_string(c[i]);
  }
  return s.empty() ? "none" : s;
}

std::uint64_t sum_non200(const StatusCounts& c) {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (i != 200) n += c[i];
  return n;
}

// ---------------------------------------------------------------------------
// Errors seen inside coroutines (first few kept, all counted)

struct ErrorLog {
  std::mutex mu;
  std::vector<std::string> samples;
  std::uint64_t total = 0;
  void add(std::string what) {
    std::lock_guard<std::mutex> lk(mu);
    ++total;
    if (samples.size() < 8) samples.push_back(std::move(what));
  }
  void print(std::string_view prefix) {
    std::lock_guard<std::mutex> lk(mu);
    if (!total) return;
    kv(std::string(prefix) + "_error_samples", std::to_string(samples.size()) + " of " + std::to_string(total));
    for (const auto& s : samples) kv(std::string(prefix) + "_error", s);
    samples.clear();
    total = 0;
  }
};

ErrorLog g_errors;

std::string what_of(std::exception_ptr e) {
  try {
    if (e) std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown exception";
  }
  return "";
}

// ---------------------------------------------------------------------------
// Minimal HTTP/1.1 client connection (keep-alive, Content-Length bodies)

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

bool icontains(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i)
    if (iequals(hay.substr(i, needle.size()), needle)) return true;
  return false;
}


class HttpConn {
 public:
  explicit HttpConn(const asio::any_io_executor& ex) : sock_(ex), buf_(16 * 1024) {}

  awaitable<void> connect(const tcp::endpoint& ep) {
    close();
    co_await sock_.async_connect(ep, use_awaitable);
    sock_.set_option(tcp::no_delay(true));
    beg_ = end_ = 0;
    keep_alive_ = true;
    open_ = true;
  }
  void close() {
    asio::error_code ec;
    sock_.close(ec);
    open_ = false;
  }
  // True when the next request may be sent on this connection.
  bool usable() const { return open_ && keep_alive_; }
  tcp::socket& socket() { return sock_; }

  awaitable<int> roundtrip(std::string_view req, std::string* body) {
    co_await asio::async_write(sock_, asio::buffer(req.data(), req.size()), use_awaitable);
    co_return co_await read_response(body);
  }

  // Reads a full response (Content-Length framed). Returns the status.
  awaitable<int> read_response(std::string* body) {
    std::size_t head_len = 0;
    long long cl = -1;
    const int status = co_await read_head(head_len, cl);
    if (cl < 0) {
      if (status == 204 || status == 304 || (status >= 100 && status < 200)) cl = 0;
      else throw std::runtime_error("response " + std::to_string(status) + " without Content-Length");
    }
    (void)head_len;  // read_head consumed the head
    const std::size_t need = static_cast<std::size_t>(cl);
    while (end_ - beg_ < need) co_await fill();
    if (body) body->assign(buf_.data() + beg_, need);
    beg_ += need;
    if (beg_ == end_) beg_ = end_ = 0;
    co_return status;
  }

  // Reads a status line and headers (consumed). Returns the status; `cl` is the
  // Content-Length or -1.
  awaitable<int> read_head(std::size_t& head_len, long long& cl) {
    if (beg_ == end_) beg_ = end_ = 0;
    for (;;) {
      std::string_view v(buf_.data() + beg_, end_ - beg_);
      const auto p = v.find("\r\n\r\n");
      if (p != std::string_view::npos) {
        head_len = p + 4;
        break;
      }
      if (v.size() > 64 * 1024) throw std::runtime_error("response head over 64 KiB");
      co_await fill();
    }
    std::string_view head(buf_.data() + beg_, head_len - 2);
    if (head.size() < 12 || head.substr(0, 7) != "HTTP/1.") throw std::runtime_error("malformed status line");
    const bool http10 = head[7] == '0';
    int status = 0;
    for (std::size_t i = 9; i < 12; ++i) {
      if (head[i] < '0' || head[i] > '9') throw std::runtime_error("malformed status code");
      status = status * 10 + (head[i] - '0');
    }
    cl = -1;
    bool close = http10, ka = false;
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
      const std::size_t start = pos + 2;
      std::size_t eol = head.find("\r\n", start);
      std::string_view line = head.substr(start, eol == std::string_view::npos ? std::string_view::npos : eol - start);
      pos = eol;
      const auto colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const auto name = trim(line.substr(0, colon));
      const auto value = trim(line.substr(colon + 1));
      if (iequals(name, "content-length")) {
        long long n = 0;
        for (char c : value) {
          if (c < '0' || c > '9') throw std::runtime_error("bad Content-Length");
          n = n * 10 + (c - '0');
        }
        cl = n;
      } else if (iequals(name, "connection")) {
        if (icontains(value, "close")) close = true;
        if (icontains(value, "keep-alive")) ka = true;
      }
    }
    keep_alive_ = http10 ? (ka && !close) : !close;
    beg_ += head_len;
    co_return status;
  }

  // Bytes already buffered past what was consumed (e.g. the start of a stream body).
  std::string_view buffered() const { return {buf_.data() + beg_, end_ - beg_}; }
  void drop_buffered() { beg_ = end_ = 0; }

 private:
  awaitable<void> fill() {
    if (end_ == buf_.size()) {
      if (beg_ > 0) {
        std::memmove(buf_.data(), buf_.data() + beg_, end_ - beg_);
        end_ -= beg_;
        beg_ = 0;
      } else {
        buf_.resize(buf_.size() * 2);
      }
    }
    const std::size_t n =
        co_await sock_.async_read_some(asio::buffer(buf_.data() + end_, buf_.size() - end_), use_awaitable);
    end_ += n;
  }

  tcp::socket sock_;
  std::vector<char> buf_;
  std::size_t beg_ = 0, end_ = 0;
  bool keep_alive_ = true;
  bool open_ = false;
};

// ---------------------------------------------------------------------------
// Options

struct Options {
  std::size_t nodes = 1000;
  int connections = 64;
  int setup_connections = 0;  // 0: same as connections
  double seconds = 10;
  int threads = 2;
  double duration_report = 0;
  int idle = 0;
  int sse = 0;
  int sse_interval = 1;
  int probe_connections = 8;
  double probe_baseline_seconds = 5;
  std::string probe_mix = "both";  // both | get | post
  std::string server_bin, lucidctl, url, db, token, hostname_prefix = "bench-";
  int server_pid = 0;
  std::vector<std::string> server_args;
  bool keep_tmp = false;
  bool skip_ingest = false;
};

void usage() {
  std::puts(
      "usage: ingest [options]\n"
      "  --nodes N                nodes to register (default 1000)\n"
      "  --connections C          ingest connections, closed loop (default 64)\n"
      "  --setup-connections C    connections used to register nodes (default: --connections)\n"
      "  --seconds S              length of the ingest phase and of the probe phase (default 10)\n"
      "  --threads T              client io_context threads (default 2)\n"
      "  --duration-report N      print a progress line (rate, server RSS) every N seconds (default off)\n"
      "  --idle N                 concurrency phase: idle keep-alive connections to hold open (default 0)\n"
      "  --sse N                  concurrency phase: SSE subscribers of the all-nodes stream (default 0)\n"
      "  --sse-interval S         SSE interval query parameter, seconds (default 1)\n"
      "  --probe-connections K    concurrency phase: closed-loop REST probe connections (default 8)\n"
      "  --probe-baseline-seconds S  probe alone before opening idle/SSE connections (default 5; 0: skip)\n"
      "  --probe-mix both|get|post  probe requests: alternate GET node and POST stats (default), or only one\n"
      "  --skip-ingest            skip the ingest phase (useful with --idle/--sse)\n"
      "  --server-bin PATH        lucid-server to start (default: <dir of argv[0]>/lucid-server)\n"
      "  --server-arg ARG         extra argument for the started server (repeatable)\n"
      "  --lucidctl PATH          lucidctl used to mint the token (default: <dir of argv[0]>/lucidctl)\n"
      "  --url http://HOST:PORT   attach to a running server instead of starting one (needs --db or --token)\n"
      "  --db PATH                with --url: the server's database (lucidctl signs the token with its key)\n"
      "  --token JWT              with --url: use this super_admin token instead of minting one\n"
      "  --server-pid PID         with --url: the server's pid, for RSS/CPU figures\n"
      "  --hostname-prefix P      registered hostnames are P<i> (default bench-)\n"
      "  --keep-tmp               keep the temporary directory (database, server log)\n"
      "  --help");
}

bool parse_options(int argc, char** argv, Options& o) {
  auto need = [&](int& i, const std::string& name) -> std::string {
    if (i + 1 >= argc) throw std::invalid_argument(name + " needs a value");
    return argv[++i];
  };
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      std::string inline_value;
      bool has_inline = false;
      if (a.rfind("--", 0) == 0) {
        if (auto eq = a.find('='); eq != std::string::npos) {
          inline_value = a.substr(eq + 1);
          a = a.substr(0, eq);
          has_inline = true;
        }
      }
      auto val = [&]() { return has_inline ? inline_value : need(i, a); };
      auto pos_int = [&](long long lo) {
        const std::string v = val();
        std::size_t used = 0;
        long long n = std::stoll(v, &used);
        if (used != v.size() || n < lo) throw std::invalid_argument(a + ": bad value '" + v + "'");
        return n;
      };
      auto pos_double = [&](double lo) {
        const std::string v = val();
        std::size_t used = 0;
        double d = std::stod(v, &used);
        if (used != v.size() || d < lo) throw std::invalid_argument(a + ": bad value '" + v + "'");
        return d;
      };
      if (a == "--help" || a == "-h") {
        usage();
        std::exit(0);
      } else if (a == "--nodes") o.nodes = static_cast<std::size_t>(pos_int(1));
      else if (a == "--connections") o.connections = static_cast<int>(pos_int(1));
      else if (a == "--setup-connections") o.setup_connections = static_cast<int>(pos_int(1));
      else if (a == "--seconds") o.seconds = pos_double(0.1);
      else if (a == "--threads") o.threads = static_cast<int>(pos_int(1));
      else if (a == "--duration-report") o.duration_report = pos_double(0);
      else if (a == "--idle") o.idle = static_cast<int>(pos_int(0));
      else if (a == "--sse") o.sse = static_cast<int>(pos_int(0));
      else if (a == "--sse-interval") o.sse_interval = static_cast<int>(pos_int(1));
      else if (a == "--probe-connections") o.probe_connections = static_cast<int>(pos_int(1));
      else if (a == "--probe-baseline-seconds") o.probe_baseline_seconds = pos_double(0);
      else if (a == "--probe-mix") {
        o.probe_mix = val();
        if (o.probe_mix != "both" && o.probe_mix != "get" && o.probe_mix != "post")
          throw std::invalid_argument("--probe-mix must be both, get or post");
      } else if (a == "--skip-ingest") o.skip_ingest = true;
      else if (a == "--server-bin") o.server_bin = val();
      else if (a == "--server-arg") o.server_args.push_back(val());
      else if (a == "--lucidctl") o.lucidctl = val();
      else if (a == "--url") o.url = val();
      else if (a == "--db") o.db = val();
      else if (a == "--token") o.token = val();
      else if (a == "--server-pid") o.server_pid = static_cast<int>(pos_int(1));
      else if (a == "--hostname-prefix") o.hostname_prefix = val();
      else if (a == "--keep-tmp") o.keep_tmp = true;
      else throw std::invalid_argument("unknown option " + a);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ingest: %s (see --help)\n", e.what());
    return false;
  }
  if (!o.setup_connections) o.setup_connections = o.connections;
  return true;
}




// ---------------------------------------------------------------------------
// Shared benchmark state

struct NodeRec {
  std::int64_t id = 0;
  std::string request_id, code, join_secret, api_key;
  std::string stats_req, get_req;
  bool ok = false;
};

struct Bench {
  Options opt;
  asio::io_context io;
  tcp::endpoint ep;
  std::string host;  // Host header value
  std::string token;
  std::vector<NodeRec> nodes;
  std::vector<std::size_t> good;  // indexes of registered nodes

  explicit Bench(Options o) : opt(std::move(o)), io(opt.threads) {}

  std::string request(std::string_view method, std::string_view path, std::string_view headers,
                      std::string_view body, bool with_length) const {
    std::string r;
    r.reserve(256 + headers.size() + body.size());
    r.append(method).append(" ").append(path).append(" HTTP/1.1\r\nHost: ").append(host).append("\r\n");
    r.append(headers);
    if (with_length) {
      r.append("Content-Type: application/json\r\nContent-Length: ").append(std::to_string(body.size())).append("\r\n");
    }
    r.append("\r\n").append(body);
    return r;
  }
  std::string bearer() const { return "Authorization: Bearer " + token + "\r\n"; }
};

// Reconnects (with a short pause after a failure). Returns false if it could not.
awaitable<bool> ensure_open(HttpConn& c, const tcp::endpoint& ep, std::uint64_t& reconnects) {
  for (int attempt = 0; !c.usable(); ++attempt) {
    if (attempt >= 50) co_return false;
    if (attempt > 0) {
      asio::steady_timer t(co_await asio::this_coro::executor);
      t.expires_after(std::chrono::milliseconds(20));
      co_await t.async_wait(use_awaitable);
    }
    try {
      co_await c.connect(ep);
      ++reconnects;
    } catch (const std::exception& e) {
      g_errors.add(std::string("connect: ") + e.what());
    }
  }
  co_return true;
}

// ---------------------------------------------------------------------------
// Setup: join → approve → collect

struct alignas(64) SetupWorker {
  Histo join, approve, collect;
  StatusCounts status{};
  std::uint64_t failed = 0, conn_errors = 0, reconnects = 0;
};

std::optional<rapidjson::Document> parse_json(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  return d;
}

std::string json_str(const rapidjson::Document& d, const char* key) {
  auto it = d.FindMember(key);
  if (it == d.MemberEnd()) return "";
  if (it->value.IsString()) return std::string(it->value.GetString(), it->value.GetStringLength());
  if (it->value.IsInt64()) return std::to_string(it->value.GetInt64());
  return "";
}

awaitable<void> setup_worker(Bench& b, SetupWorker& w, std::atomic<std::size_t>& next) {
  HttpConn c(co_await asio::this_coro::executor);
  std::string body;
  auto uus = [](Clock::time_point t0) {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
  };
  for (;;) {
    const std::size_t i = next.fetch_add(1);
    if (i >= b.nodes.size()) break;
    NodeRec& n = b.nodes[i];
    const std::string host_json = "{\"hostname\":\"" + b.opt.hostname_prefix + std::to_string(i) + "\"}";
    try {
      bool opened = co_await ensure_open(c, b.ep, w.reconnects);
      if (!opened) {
        ++w.failed;
        continue;
      }
      auto t0 = Clock::now();
      int st = co_await c.roundtrip(b.request("POST", "/api/v1/nodes/join-request", "", host_json, true), &body);
      w.join.add(uus(t0));
      count_status(w.status, st);
      std::optional<rapidjson::Document> d;
      if (st != 200 || !(d = parse_json(body))) {
        ++w.failed;
        g_errors.add("join-request " + std::to_string(st) + ": " + body.substr(0, 200));
        continue;
      }
      n.request_id = json_str(*d, "request_id");
      n.code = json_str(*d, "registration_code");
      n.join_secret = json_str(*d, "join_secret");

      opened = co_await ensure_open(c, b.ep, w.reconnects);
      if (!opened) {
        ++w.failed;
        continue;
      }
      t0 = Clock::now();
      st = co_await c.roundtrip(b.request("POST", "/api/v1/nodes/approve/" + n.request_id, b.bearer(), "", true), &body);
      w.approve.add(uus(t0));
      count_status(w.status, st);
      if (st != 200 || !(d = parse_json(body))) {
        ++w.failed;
        g_errors.add("approve " + std::to_string(st) + ": " + body.substr(0, 200));
        continue;
      }
      if (auto it = d->FindMember("id"); it != d->MemberEnd() && it->value.IsInt64()) n.id = it->value.GetInt64();

      opened = co_await ensure_open(c, b.ep, w.reconnects);
      if (!opened) {
        ++w.failed;
        continue;
      }
      t0 = Clock::now();
      st = co_await c.roundtrip(b.request("GET", "/api/v1/nodes/status/code/" + n.code,
                                                "X-Join-Secret: " + n.join_secret + "\r\n", "", false), &body);
      w.collect.add(uus(t0));
      count_status(w.status, st);
      if (st != 200 || !(d = parse_json(body))) {
        ++w.failed;
        g_errors.add("status/code " + std::to_string(st) + ": " + body.substr(0, 200));
        continue;
      }
      n.api_key = json_str(*d, "api_key");
      if (n.api_key.empty()) {
        ++w.failed;
        g_errors.add("status/code gave no api_key: " + body.substr(0, 200));
        continue;
      }
      n.ok = true;
    } catch (const std::exception& e) {
      ++w.failed;
      ++w.conn_errors;
      g_errors.add(std::string("setup: ") + e.what());
      c.close();
    }
  }
  c.close();
}

// ---------------------------------------------------------------------------
// Closed-loop load workers (ingest and probe)

enum class LoadKind { ingest, probe };

struct alignas(64) LoadWorker {
  std::atomic<std::uint64_t> ok{0};  // 200 responses, read by the progress reporter
  std::vector<std::size_t> nodes;    // indexes into Bench::nodes
  Histo post, get;                   // latencies (µs)
  std::uint64_t post_ok = 0, get_ok = 0;
  StatusCounts post_status{}, get_status{};
  std::uint64_t conn_errors = 0, reconnects = 0;
};

awaitable<void> load_worker(Bench& b, LoadWorker& w, LoadKind kind, Clock::time_point deadline) {
  HttpConn c(co_await asio::this_coro::executor);
  std::size_t k = 0;
  bool do_get = kind == LoadKind::probe && b.opt.probe_mix != "post";  // probes alternate GET node / POST stats
  const bool alternate = kind == LoadKind::probe && b.opt.probe_mix == "both";
  while (Clock::now() < deadline) {
    if (!c.usable()) {
      const bool opened = co_await ensure_open(c, b.ep, w.reconnects);
      if (!opened) break;
    }
    const NodeRec& n = b.nodes[w.nodes[k % w.nodes.size()]];
    const bool get = do_get;
    if (alternate) {
      do_get = !do_get;
      if (!get) ++k;
    } else {
      ++k;
    }
    const std::string& req = get ? n.get_req : n.stats_req;
    const auto t0 = Clock::now();
    int st = 0;
    try {
      st = co_await c.roundtrip(req, nullptr);
    } catch (const std::exception& e) {
      ++w.conn_errors;
      g_errors.add(std::string(get ? "GET node: " : "POST stats: ") + e.what());
      c.close();
      continue;
    }
    const auto us =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
    if (get) {
      w.get.add(us);
      count_status(w.get_status, st);
      if (st == 200) ++w.get_ok;
    } else {
      w.post.add(us);
      count_status(w.post_status, st);
      if (st == 200) ++w.post_ok;
    }
    if (st == 200) w.ok.fetch_add(1, std::memory_order_relaxed);
  }
  c.close();
}

// ---------------------------------------------------------------------------
// Idle keep-alive connections and SSE subscribers

struct IdleConn {
  explicit IdleConn(asio::io_context& io) : strand(asio::make_strand(io)), conn(strand) {}
  asio::strand<asio::io_context::executor_type> strand;
  HttpConn conn;
  bool ready = false;         // first request answered 200
  bool closed_early = false;  // the server closed it while idle
  bool alive_at_end = false;  // answered a second request at the end
  bool stopping = false;      // touched on the strand only
};

awaitable<void> idle_conn(Bench& b, IdleConn& ic, const std::string& req, std::latch& opened) {
  try {
    co_await ic.conn.connect(b.ep);
    const int st = co_await ic.conn.roundtrip(req, nullptr);
    ic.ready = st == 200 && ic.conn.usable();
    if (!ic.ready) g_errors.add("idle: first request gave " + std::to_string(st));
  } catch (const std::exception& e) {
    g_errors.add(std::string("idle open: ") + e.what());
  }
  opened.count_down();
  if (!ic.ready) co_return;
  char buf[512];
  auto [ec, n] = co_await ic.conn.socket().async_read_some(asio::buffer(buf), use_tuple);
  (void)n;
  if (!(ic.stopping && ec == asio::error::operation_aborted)) {
    ic.closed_early = true;
    g_errors.add("idle connection ended while idle: " + (ec ? ec.message() : std::string("unexpected bytes")));
    co_return;
  }
  try {
    const int st = co_await ic.conn.roundtrip(req, nullptr);
    ic.alive_at_end = st == 200;
  } catch (const std::exception& e) {
    g_errors.add(std::string("idle final request: ") + e.what());
  }
  ic.conn.close();
}

struct SseSub {
  explicit SseSub(asio::io_context& io) : strand(asio::make_strand(io)), conn(strand) {}
  asio::strand<asio::io_context::executor_type> strand;
  HttpConn conn;
  int status = 0;
  std::atomic<std::uint64_t> events{0};
  std::atomic<std::uint64_t> bytes{0};
  bool streaming = false;    // got a 200 head
  bool ended_early = false;  // the stream ended before we stopped it
  bool stopping = false;     // strand only
  bool prev_nl = false;
};

void count_events(SseSub& s, std::string_view chunk) {
  std::uint64_t ev = 0;
  const char* p = chunk.data();
  const char* e = p + chunk.size();
  while (p < e) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(e - p)));
    if (!nl) break;
    const bool prev = nl == chunk.data() ? s.prev_nl : nl[-1] == '\n';
    if (prev) ++ev;
    p = nl + 1;
  }
  if (!chunk.empty()) s.prev_nl = chunk.back() == '\n';
  if (ev) s.events.fetch_add(ev, std::memory_order_relaxed);
  s.bytes.fetch_add(chunk.size(), std::memory_order_relaxed);
}

awaitable<void> sse_sub(Bench& b, SseSub& s, const std::string& req, std::latch& opened) {
  try {
    co_await s.conn.connect(b.ep);
    co_await asio::async_write(s.conn.socket(), asio::buffer(req), use_awaitable);
    std::size_t head_len = 0;
    long long cl = -1;
    s.status = co_await s.conn.read_head(head_len, cl);
    s.streaming = s.status == 200;
    if (!s.streaming) g_errors.add("sse: status " + std::to_string(s.status));
  } catch (const std::exception& e) {
    g_errors.add(std::string("sse open: ") + e.what());
  }
  opened.count_down();
  if (!s.streaming) {
    s.conn.close();
    co_return;
  }
  count_events(s, s.conn.buffered());
  s.conn.drop_buffered();
  std::vector<char> buf(256 * 1024);
  for (;;) {
    auto [ec, n] = co_await s.conn.socket().async_read_some(asio::buffer(buf), use_tuple);
    if (ec) {
      if (!s.stopping) {
        s.ended_early = true;
        g_errors.add("sse stream ended: " + ec.message());
      }
      break;
    }
    count_events(s, std::string_view(buf.data(), n));
  }
  s.conn.close();
}

// ---------------------------------------------------------------------------
// Phase driver

template <class Spawn>
void run_workers(Bench& b, int n, Spawn spawn) {
  std::latch done(n);
  for (int i = 0; i < n; ++i)
    asio::co_spawn(b.io, spawn(i), [&done](std::exception_ptr e) {
      if (e) g_errors.add("worker: " + what_of(e));
      done.count_down();
    });
  done.wait();
}

// Runs a timed closed-loop phase; prints progress lines every
// --duration-report seconds. Returns the measured wall time.
double run_load(Bench& b, std::vector<std::unique_ptr<LoadWorker>>& workers, LoadKind kind, double seconds,
                int server_pid, const std::string& db, std::string_view label) {
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::microseconds(static_cast<long long>(seconds * 1e6));
  std::latch done(static_cast<std::ptrdiff_t>(workers.size()));
  for (auto& w : workers)
    asio::co_spawn(b.io, load_worker(b, *w, kind, deadline), [&done](std::exception_ptr e) {
      if (e) g_errors.add("worker: " + what_of(e));
      done.count_down();
    });
  const double every = b.opt.duration_report;
  auto next_report = t0 + std::chrono::microseconds(static_cast<long long>(every * 1e6));
  std::uint64_t last_ok = 0;
  auto last_t = t0;
  auto total_ok = [&] {
    std::uint64_t n = 0;
    for (auto& w : workers) n += w->ok.load(std::memory_order_relaxed);
    return n;
  };
  while (!done.try_wait()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (every > 0 && Clock::now() >= next_report && Clock::now() < deadline) {
      const auto now = Clock::now();
      const std::uint64_t ok = total_ok();
      const double dt = std::chrono::duration<double>(now - last_t).count();
      const double el = std::chrono::duration<double>(now - t0).count();
      const ProcSample ps = sample_proc(server_pid);
      std::printf("progress %.*s t=%.0fs ok_total=%llu ok_per_s_interval=%.0f ok_per_s_avg=%.0f server_rss_mb=%s "
                  "server_threads=%d db_mb=%.1f wal_mb=%.1f\n",
                  static_cast<int>(label.size()), label.data(), el, static_cast<unsigned long long>(ok),
                  static_cast<double>(ok - last_ok) / dt, static_cast<double>(ok) / el,
                  ps.rss_mb < 0 ? "n/a" : num(ps.rss_mb, 1).c_str(), ps.threads, file_mb(db), file_mb(db + "-wal"));
      std::fflush(stdout);
      last_ok = ok;
      last_t = now;
      next_report += std::chrono::microseconds(static_cast<long long>(every * 1e6));
    }
  }
  return secs_since(t0);
}

void print_server_sample(std::string_view prefix, int pid) {
  if (pid <= 0) return;
  const ProcSample s = sample_proc(pid);
  const std::string p(prefix);
  kv(p + "_server_rss_mb", num(s.rss_mb, 1));
  kv(p + "_server_threads", std::to_string(s.threads));
  kv(p + "_server_open_fds", std::to_string(s.fds));
}


// CPU used during a phase, in cores: the server, this bench, everything else.
struct CpuWindow {
  int pid;
  Clock::time_point t0 = Clock::now();
  double server0, self0, machine0;
  explicit CpuWindow(int p)
      : pid(p), server0(sample_proc(p).cpu_seconds), self0(self_cpu_seconds()), machine0(machine_busy_seconds()) {}
  void print(std::string_view prefix) const {
    const double wall = secs_since(t0);
    const std::string p(prefix);
    const double server = pid > 0 ? (sample_proc(pid).cpu_seconds - server0) / wall : 0;
    const double self = (self_cpu_seconds() - self0) / wall;
    const double machine = (machine_busy_seconds() - machine0) / wall;
    if (pid > 0) kv(p + "_server_cpu_cores", num(server, 2));
    kv(p + "_bench_cpu_cores", num(self, 2));
    if (pid > 0) kv(p + "_other_cpu_cores", num(std::max(0.0, machine - server - self), 2) + " (should be ~0)");
  }
};

// After a load phase: how long the server keeps working (e.g. writing a
// backlog of buffered stats) before it goes idle. Returns seconds, or -1 if
// it did not go idle within max_s.
double wait_server_idle(int pid, double max_s) {
  const auto t0 = Clock::now();
  double last = sample_proc(pid).cpu_seconds;
  while (secs_since(t0) < max_s) {
    const auto w0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const double now = sample_proc(pid).cpu_seconds;
    if (now - last <= 0.02) return std::chrono::duration<double>(w0 - t0).count();
    last = now;
  }
  return -1;
}

std::vector<std::unique_ptr<LoadWorker>> make_workers(const Bench& b, int count) {
  std::vector<std::unique_ptr<LoadWorker>> ws;
  const std::size_t n = b.good.size();
  for (int i = 0; i < count; ++i) {
    auto w = std::make_unique<LoadWorker>();
    for (std::size_t j = static_cast<std::size_t>(i); j < n; j += static_cast<std::size_t>(count)) w->nodes.push_back(b.good[j]);
    if (w->nodes.empty()) w->nodes.push_back(b.good[static_cast<std::size_t>(i) % n]);
    ws.push_back(std::move(w));
  }
  return ws;
}

struct LoadTotals {
  Histo post, get;
  std::uint64_t post_ok = 0, get_ok = 0, conn_errors = 0, reconnects = 0;
  StatusCounts post_status{}, get_status{};
};

LoadTotals merge(const std::vector<std::unique_ptr<LoadWorker>>& ws) {
  LoadTotals t;
  for (const auto& w : ws) {
    t.post.merge(w->post);
    t.get.merge(w->get);
    t.post_ok += w->post_ok;
    t.get_ok += w->get_ok;
    t.conn_errors += w->conn_errors;
    t.reconnects += w->reconnects;
    for (std::size_t i = 0; i < t.post_status.size(); ++i) {
      t.post_status[i] += w->post_status[i];
      t.get_status[i] += w->get_status[i];
    }
  }
  return t;
}

void print_probe(std::string_view prefix, const LoadTotals& t, double wall) {
  const std::string p(prefix);
  kv(p + "_seconds", num(wall, 2));
  kv(p + "_get_node_ok_per_s", num(static_cast<double>(t.get_ok) / wall, 0));
  kv(p + "_get_node_non200", describe_non200(t.get_status));
  print_latency(p + "_get_node_latency", t.get);
  kv(p + "_post_stats_ok_per_s", num(static_cast<double>(t.post_ok) / wall, 0));
  kv(p + "_post_stats_non200", describe_non200(t.post_status));
  print_latency(p + "_post_stats_latency", t.post);
  Histo all = t.get;
  all.merge(t.post);
  kv(p + "_all_ok_per_s", num(static_cast<double>(t.get_ok + t.post_ok) / wall, 0));
  print_latency(p + "_all_latency", all);
  kv(p + "_connection_errors", num(t.conn_errors));
}

// ---------------------------------------------------------------------------

bool parse_url(const std::string& url, std::string& host, std::string& port) {
  const std::string pfx = "http://";
  if (url.rfind(pfx, 0) != 0) return false;
  std::string rest = url.substr(pfx.size());
  if (auto slash = rest.find('/'); slash != std::string::npos) rest = rest.substr(0, slash);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) {
    host = rest;
    port = "80";
  } else {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return !host.empty() && !port.empty();
}

int run(int argc, char** argv) {
  Options opt;
  if (!parse_options(argc, argv, opt)) return 2;
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, on_fatal_signal);
  std::signal(SIGTERM, on_fatal_signal);
  std::signal(SIGHUP, on_fatal_signal);

  // Raise the descriptor limit first: the started server inherits it.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  print_machine(argc, argv, opt.threads);

  const fs::path self_dir = fs::absolute(fs::path(argv[0])).parent_path();
  if (opt.server_bin.empty()) opt.server_bin = (self_dir / "lucid-server").string();
  if (opt.lucidctl.empty()) opt.lucidctl = (self_dir / "lucidctl").string();

  Bench b(opt);
  ServerProcess server;
  std::string tmpdir, db = opt.db;
  int server_pid = opt.server_pid;
  std::string conn_host, conn_port;

  section("setup");
  if (opt.url.empty()) {
    char tmpl[] = "/tmp/lucid-ingest-XXXXXX";
    if (!mkdtemp(tmpl)) {
      std::fprintf(stderr, "ingest: mkdtemp failed: %s\n", std::strerror(errno));
      return 1;
    }
    tmpdir = tmpl;
    db = tmpdir + "/bench.db";
    const std::string port_file = tmpdir + "/port";
    std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--db", db, "--port-file", port_file, "--quiet"};
    // Every request comes from 127.0.0.1: the per-address join/status rate
    // (120/min) and connection cap (256) would measure the limits, not the server.
    lift_server_limits(args, opt.server_args, {{"--rate-join", "100000000"}, {"--max-connections-per-address", "0"}});
    for (const auto& a : opt.server_args) args.push_back(a);
    std::string shown = opt.server_bin;
    for (const auto& a : args) shown += " " + shell_quote(a);
    kv("server_command", shown);
    if (!server.start(opt.server_bin, args, tmpdir + "/server.log")) {
      std::fprintf(stderr, "ingest: cannot start the server\n");
      return 1;
    }
    server_pid = server.pid;
    const auto t0 = Clock::now();
    std::string port;
    while (secs_since(t0) < 30) {
      port = std::string(trim(last_line(read_file(port_file))));
      if (!port.empty()) break;
      if (!server.running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (port.empty()) {
      std::fprintf(stderr, "ingest: the server did not write %s within 30 s\n", port_file.c_str());
      print_log_tail(server.log_path, 40);
      return 1;
    }
    kv("server_pid", std::to_string(server_pid));
    kv("server_startup_seconds", num(secs_since(t0), 2));
    conn_host = "127.0.0.1";
    conn_port = port;
  } else {
    if (!parse_url(opt.url, conn_host, conn_port)) {
      std::fprintf(stderr, "ingest: --url must be http://HOST:PORT\n");
      return 2;
    }
    if (opt.db.empty() && opt.token.empty()) {
      std::fprintf(stderr, "ingest: --url needs --db (to mint a token with lucidctl) or --token\n");
      return 2;
    }
    kv("server_url", opt.url);
    kv("server_pid", server_pid > 0 ? std::to_string(server_pid) : "unknown (pass --server-pid for RSS/CPU)");
  }
  {
    tcp::resolver res(b.io);
    asio::error_code ec;
    auto eps = res.resolve(conn_host, conn_port, ec);
    if (ec || eps.empty()) {
      std::fprintf(stderr, "ingest: cannot resolve %s:%s: %s\n", conn_host.c_str(), conn_port.c_str(),
                   ec.message().c_str());
      return 1;
    }
    b.ep = eps.begin()->endpoint();
    b.host = conn_host + ":" + conn_port;
  }
  kv("server_endpoint", b.host);
  if (server_pid > 0) {
    const ProcSample s = sample_proc(server_pid);
    {
      std::istringstream in(read_file("/proc/" + std::to_string(server_pid) + "/limits"));
      std::string line;
      while (std::getline(in, line))
        if (line.rfind("Max open files", 0) == 0) {
          std::istringstream f(line.substr(14));
          std::string soft, hard;
          f >> soft >> hard;
          kv("server_rlimit_nofile", soft + " (hard " + hard + ")");
        }
    }
    kv("startup_server_rss_mb", num(s.rss_mb, 1));
    kv("startup_server_threads", std::to_string(s.threads));
  }

  if (!opt.token.empty()) {
    b.token = opt.token;
  } else {
    auto out = run_capture({opt.lucidctl, "--db", db, "admin", "create-token", "--role", "super_admin", "--ttl", "2h"});
    if (!out || last_line(*out).empty()) {
      std::fprintf(stderr, "ingest: '%s --db %s admin create-token' failed\n", opt.lucidctl.c_str(), db.c_str());
      if (server.pid > 0) print_log_tail(server.log_path, 40);
      return 1;
    }
    b.token = last_line(*out);
  }
  kv("token", "super_admin, " + std::to_string(b.token.size()) + " chars");

  // One thread pool of io_context runners for the whole run.
  auto guard = asio::make_work_guard(b.io);
  std::vector<std::thread> io_threads;
  for (int i = 0; i < opt.threads; ++i) io_threads.emplace_back([&b] { b.io.run(); });
  struct Joiner {
    decltype(guard)& g;
    std::vector<std::thread>& ts;
    asio::io_context& io;
    ~Joiner() {
      g.reset();
      io.stop();
      for (auto& t : ts)
        if (t.joinable()) t.join();
    }
  } joiner{guard, io_threads, b.io};

  // ---- register nodes ----
  b.nodes.resize(opt.nodes);
  {
    std::vector<std::unique_ptr<SetupWorker>> sw;
    for (int i = 0; i < opt.setup_connections; ++i) sw.push_back(std::make_unique<SetupWorker>());
    std::atomic<std::size_t> next{0};
    CpuWindow cpu(server_pid);
    const auto t0 = Clock::now();
    run_workers(b, opt.setup_connections, [&](int i) { return setup_worker(b, *sw[static_cast<std::size_t>(i)], next); });
    const double wall = secs_since(t0);
    Histo join, approve, collect;
    StatusCounts st{};
    std::uint64_t failed = 0, conn_errors = 0;
    for (auto& w : sw) {
      join.merge(w->join);
      approve.merge(w->approve);
      collect.merge(w->collect);
      failed += w->failed;
      conn_errors += w->conn_errors;
      for (std::size_t i = 0; i < st.size(); ++i) st[i] += w->status[i];
    }
    for (std::size_t i = 0; i < b.nodes.size(); ++i)
      if (b.nodes[i].ok) b.good.push_back(i);
    kv("register_connections", std::to_string(opt.setup_connections));
    kv("register_nodes_requested", num(static_cast<std::uint64_t>(opt.nodes)));
    kv("register_nodes_ok", num(static_cast<std::uint64_t>(b.good.size())));
    kv("register_nodes_failed", num(failed));
    kv("register_seconds", num(wall, 3));
    kv("register_nodes_per_s", num(static_cast<double>(b.good.size()) / wall, 1));
    kv("register_requests_per_s", num(static_cast<double>(join.count() + approve.count() + collect.count()) / wall, 1));
    kv("register_non200", describe_non200(st));
    kv("register_connection_errors", num(conn_errors));
    print_latency("register_join_latency", join);
    print_latency("register_approve_latency", approve);
    print_latency("register_collect_latency", collect);
    cpu.print("register");
    print_server_sample("after_register", server_pid);
    g_errors.print("register");
    std::fflush(stdout);
  }
  if (b.good.empty()) {
    std::fprintf(stderr, "ingest: no node could be registered\n");
    if (server.pid > 0) print_log_tail(server.log_path, 40);
    return 1;
  }
  for (auto& n : b.nodes) {
    if (!n.ok) continue;
    n.stats_req = b.request("POST", "/api/v1/stats/", "X-API-KEY: " + n.api_key + "\r\n", kStatsBody, true);
    n.get_req = b.request("GET", "/api/v1/nodes/" + std::to_string(n.id), b.bearer(), "", false);
  }

  // ---- ingest ----
  if (!opt.skip_ingest) {
    section("ingest");
    kv("ingest_connections", std::to_string(opt.connections));
    kv("ingest_nodes", num(static_cast<std::uint64_t>(b.good.size())));
    kv("ingest_body_bytes", std::to_string(kStatsBody.size()));
    std::fflush(stdout);
    auto ws = make_workers(b, opt.connections);
    CpuWindow cpu(server_pid);
    const double rss0 = sample_proc(server_pid).rss_mb;
    const double wall = run_load(b, ws, LoadKind::ingest, opt.seconds, server_pid, db, "ingest");
    const LoadTotals t = merge(ws);
    kv("ingest_seconds", num(wall, 2));
    kv("ingest_requests_total", num(t.post.count()));
    kv("ingest_ok_200", num(t.post_ok));
    kv("ingest_ok_per_s", num(static_cast<double>(t.post_ok) / wall, 0));
    kv("ingest_non200_total", num(sum_non200(t.post_status)));
    kv("ingest_non200_by_status", describe_non200(t.post_status));
    kv("ingest_connection_errors", num(t.conn_errors));
    kv("ingest_reconnects_after_first", num(t.reconnects > ws.size() ? t.reconnects - ws.size() : 0));
    print_latency("ingest_latency", t.post);
    cpu.print("ingest");
    if (server_pid > 0) {
      kv("ingest_server_rss_mb_start", num(rss0, 1));
      kv("ingest_server_rss_mb_end", num(sample_proc(server_pid).rss_mb, 1));
    }
    if (server_pid > 0) {
      // Stats are buffered and written by the server in the background: a
      // rate the writer cannot sustain shows up as work after the load stops.
      const double drain = wait_server_idle(server_pid, 120);
      kv("ingest_server_busy_after_load_seconds", drain < 0 ? std::string("> 120") : num(drain, 1));
      if (drain >= 0)
        kv("ingest_ok_per_s_including_drain", num(static_cast<double>(t.post_ok) / (wall + drain), 0));
      kv("ingest_server_rss_mb_after_drain", num(sample_proc(server_pid).rss_mb, 1));
    }
    kv("ingest_db_mb", num(file_mb(db), 1));
    kv("ingest_wal_mb", num(file_mb(db + "-wal"), 1));
    print_server_sample("after_ingest", server_pid);
    g_errors.print("ingest");
    std::fflush(stdout);
  }

  // ---- concurrency ----
  if (opt.idle > 0 || opt.sse > 0) {
    section("concurrency");
    kv("conc_probe_connections", std::to_string(opt.probe_connections));
    kv("conc_probe_mix", opt.probe_mix == "both"
                             ? "alternating GET /api/v1/nodes/{id} (Bearer) and POST /api/v1/stats/ (X-API-KEY)"
                         : opt.probe_mix == "get" ? "GET /api/v1/nodes/{id} (Bearer) only"
                                                  : "POST /api/v1/stats/ (X-API-KEY) only");
    if (opt.probe_baseline_seconds > 0) {
      auto ws = make_workers(b, opt.probe_connections);
      CpuWindow cpu(server_pid);
      const double wall = run_load(b, ws, LoadKind::probe, opt.probe_baseline_seconds, server_pid, db, "baseline");
      print_probe("baseline_probe", merge(ws), wall);
      cpu.print("baseline_probe");
      g_errors.print("baseline_probe");
    }

    const std::string idle_req = b.request("GET", "/api/v1/nodes/status/" + b.nodes[b.good[0]].request_id, "", "", false);
    std::vector<std::unique_ptr<IdleConn>> idle;
    std::latch idle_opened(opt.idle), idle_done(opt.idle);
    const auto idle_t0 = Clock::now();
    auto t0 = idle_t0;
    for (int i = 0; i < opt.idle; ++i) {
      idle.push_back(std::make_unique<IdleConn>(b.io));
      IdleConn& ic = *idle.back();
      asio::co_spawn(ic.strand, idle_conn(b, ic, idle_req, idle_opened), [&idle_done](std::exception_ptr e) {
        if (e) g_errors.add("idle: " + what_of(e));
        idle_done.count_down();
      });
    }
    idle_opened.wait();
    const double idle_open_s = secs_since(t0);
    std::size_t idle_ready = 0;
    for (auto& ic : idle) idle_ready += ic->ready;
    kv("conc_idle_requested", std::to_string(opt.idle));
    kv("conc_idle_opened", std::to_string(idle_ready));
    kv("conc_idle_open_seconds", num(idle_open_s, 3));

    const std::string sse_req = b.request("GET",
                                          "/api/v1/metrics/nodes/stats/stream?token=" + b.token +
                                              "&interval=" + std::to_string(opt.sse_interval),
                                          "Accept: text/event-stream\r\n", "", false);
    std::vector<std::unique_ptr<SseSub>> subs;
    std::latch sse_opened(opt.sse), sse_done(opt.sse);
    t0 = Clock::now();
    for (int i = 0; i < opt.sse; ++i) {
      subs.push_back(std::make_unique<SseSub>(b.io));
      SseSub& s = *subs.back();
      asio::co_spawn(s.strand, sse_sub(b, s, sse_req, sse_opened), [&sse_done](std::exception_ptr e) {
        if (e) g_errors.add("sse: " + what_of(e));
        sse_done.count_down();
      });
    }
    sse_opened.wait();
    std::size_t sse_ok = 0;
    for (auto& s : subs) sse_ok += s->streaming;
    kv("conc_sse_requested", std::to_string(opt.sse));
    kv("conc_sse_opened", std::to_string(sse_ok));
    kv("conc_sse_open_seconds", num(secs_since(t0), 3));
    kv("conc_sse_interval_s", std::to_string(opt.sse_interval));
    print_server_sample("conc_open", server_pid);
    std::fflush(stdout);

    // Probe while everything is open.
    std::vector<std::uint64_t> ev0(subs.size()), by0(subs.size());
    for (std::size_t i = 0; i < subs.size(); ++i) {
      ev0[i] = subs[i]->events.load();
      by0[i] = subs[i]->bytes.load();
    }
    auto ws = make_workers(b, opt.probe_connections);
    CpuWindow cpu(server_pid);
    const double wall = run_load(b, ws, LoadKind::probe, opt.seconds, server_pid, db, "probe");
    std::uint64_t ev_total = 0, ev_min = UINT64_MAX, ev_max = 0, bytes = 0;
    for (std::size_t i = 0; i < subs.size(); ++i) {
      if (!subs[i]->streaming) continue;
      const std::uint64_t e = subs[i]->events.load() - ev0[i];
      ev_total += e;
      ev_min = std::min(ev_min, e);
      ev_max = std::max(ev_max, e);
      bytes += subs[i]->bytes.load() - by0[i];
    }
    if (ev_min == UINT64_MAX) ev_min = 0;
    print_probe("conc_probe", merge(ws), wall);
    cpu.print("conc_probe");
    print_server_sample("conc_end", server_pid);
    if (opt.sse > 0) {
      kv("conc_sse_events_expected_per_sub", num(wall / opt.sse_interval, 1));
      kv("conc_sse_events_total", num(ev_total));
      kv("conc_sse_events_slowest_sub", num(ev_min));
      kv("conc_sse_events_fastest_sub", num(ev_max));
      kv("conc_sse_mb_received", num(static_cast<double>(bytes) / (1024.0 * 1024.0), 1));
      kv("conc_sse_mb_per_s", num(static_cast<double>(bytes) / (1024.0 * 1024.0) / wall, 1));
    }

    // Stop: idle connections send one more request (proving they are still
    // usable), SSE subscribers disconnect.
    for (auto& ic : idle) {
      IdleConn* p = ic.get();
      asio::post(p->strand, [p] {
        p->stopping = true;
        asio::error_code ec;
        p->conn.socket().cancel(ec);
      });
    }
    std::size_t sse_still_open = 0;
    for (auto& s : subs) {
      SseSub* p = s.get();
      asio::post(p->strand, [p] {
        p->stopping = true;
        p->conn.close();
      });
    }
    idle_done.wait();
    sse_done.wait();
    std::size_t idle_alive = 0, idle_closed = 0;
    for (auto& ic : idle) {
      idle_alive += ic->alive_at_end;
      idle_closed += ic->closed_early;
    }
    for (auto& s : subs) sse_still_open += s->streaming && !s->ended_early;
    kv("conc_idle_still_open_at_end", std::to_string(idle_alive) + " of " + std::to_string(idle_ready) +
                                           " (answered a second request " + num(secs_since(idle_t0), 1) + " s after opening)");
    kv("conc_idle_closed_by_server", std::to_string(idle_closed));
    if (opt.sse > 0) kv("conc_sse_still_open_at_end", std::to_string(sse_still_open) + " of " + std::to_string(sse_ok));
    g_errors.print("conc");
    std::fflush(stdout);
  }

  section("end");
  print_server_sample("final", server_pid);
  kv("final_db_mb", num(file_mb(db), 1));
  kv("final_wal_mb", num(file_mb(db + "-wal"), 1));
  if (server.pid > 0) {
    server.stop(true);
    print_log_tail(server.log_path, 20);
  }
  if (!tmpdir.empty()) {
    if (opt.keep_tmp) {
      kv("tmpdir_kept", tmpdir);
    } else {
      std::error_code ec;
      fs::remove_all(tmpdir, ec);
    }
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ingest: %s\n", e.what());
    return 1;
  }
}

