#include "workflows/docker.hpp"

#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>

#include "lucidnode/error.hpp"
#include "util/encoding.hpp"
#include "util/json.hpp"

namespace lucid::detail {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Engine API 1.41 (Docker 20.10, Debian 12's docker.io); later daemons
// still serve it.
constexpr const char* kApi = "/v1.41";

// The daemon's text made safe to pass on: bounded, one line.
std::string clean(std::string s, std::size_t max = 400) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  if (s.size() > max) s = s.substr(0, max) + "...";
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return s;
}

// {"message": "..."} of a refusing daemon, or the status.
std::string daemon_message(const DockerReply& r) {
  rapidjson::Document d;
  if (parse_json(d, r.body) && d.IsObject())
    if (auto it = d.FindMember("message"); it != d.MemberEnd() && it->value.IsString())
      return clean(it->value.GetString());
  return "the Docker daemon answered HTTP " + std::to_string(r.status);
}

std::vector<std::string> string_list(const rapidjson::Value& o, const char* key) {
  std::vector<std::string> out;
  auto it = o.FindMember(key);
  if (it == o.MemberEnd()) return out;
  if (it->value.IsArray()) {
    for (const auto& v : it->value.GetArray())
      if (v.IsString()) out.emplace_back(v.GetString(), v.GetStringLength());
  } else if (it->value.IsObject()) {
    for (const auto& m : it->value.GetObject()) out.emplace_back(m.name.GetString(), m.name.GetStringLength());
  }
  return out;
}

void write_strings(rapidjson::Writer<rapidjson::StringBuffer>& w, const std::vector<std::string>& v) {
  w.StartArray();
  for (const auto& s : v) w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
}

// Splits a streamed body of JSON lines; each complete line goes to `line`.
class JsonLines {
 public:
  explicit JsonLines(std::function<void(const rapidjson::Document&)> line) : line_(std::move(line)) {}
  void feed(std::string_view data) {
    buf_.append(data);
    std::size_t start = 0;
    for (auto nl = buf_.find('\n', start); nl != std::string::npos; nl = buf_.find('\n', start)) {
      one(std::string_view(buf_).substr(start, nl - start));
      start = nl + 1;
    }
    buf_.erase(0, start);
    if (buf_.size() > 1024 * 1024) buf_.clear();  // a line this long is no progress message
  }
  void finish() {
    if (!buf_.empty()) one(buf_);
    buf_.clear();
  }

 private:
  void one(std::string_view text) {
    rapidjson::Document d;
    if (text.find_first_not_of(" \r\t") == std::string_view::npos) return;
    if (parse_json(d, text) && d.IsObject()) line_(d);
  }
  std::function<void(const rapidjson::Document&)> line_;
  std::string buf_;
};

// A connected, blocking unix socket to the daemon, or -1.
int connect_unix(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) return -1;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int ms_left(Clock::time_point deadline) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms <= 0 ? 0 : static_cast<int>(std::min<long long>(ms, 1000 * 1000));
}

}  // namespace

std::string docker_socket_path(const std::string& configured, std::string* why) {
  if (!configured.empty()) return configured;
  const char* host = std::getenv("DOCKER_HOST");
  if (host && *host) {
    const std::string h = host;
    if (h.rfind("unix://", 0) == 0) return h.substr(7);
    if (why) *why = "DOCKER_HOST names a host that is not a unix socket (only unix:// is supported)";
    return {};
  }
  return "/var/run/docker.sock";
}

bool valid_image_name(const std::string& name) {
  // [host[:port]/]component(/component)*; the host may hold upper case,
  // dots and a port; path components: [a-z0-9] separated by '.', '_', "__", '-'.
  if (name.empty() || name.size() > 255) return false;
  std::size_t start = 0;
  const auto slash = name.find('/');
  if (slash != std::string::npos) {
    const std::string first = name.substr(0, slash);
    if (first.find_first_of(".:") != std::string::npos || first == "localhost") {
      bool ok = !first.empty() && first[0] != '-' && first[0] != '.';
      for (unsigned char c : first) ok = ok && (std::isalnum(c) || c == '.' || c == '-' || c == ':');
      if (!ok) return false;
      start = slash + 1;
    }
  }
  const std::string path = name.substr(start);
  if (path.empty()) return false;
  std::size_t i = 0;
  while (i <= path.size()) {
    auto e = path.find('/', i);
    if (e == std::string::npos) e = path.size();
    const std::string comp = path.substr(i, e - i);
    if (comp.empty() || !std::isalnum(static_cast<unsigned char>(comp.front())) ||
        !std::isalnum(static_cast<unsigned char>(comp.back())))
      return false;
    for (unsigned char c : comp)
      if (!(std::islower(c) || std::isdigit(c) || c == '.' || c == '_' || c == '-')) return false;
    i = e + 1;
  }
  return true;
}

bool valid_image_tag(const std::string& tag) {
  if (tag.empty() || tag.size() > 128) return false;
  if (!(std::isalnum(static_cast<unsigned char>(tag[0])) || tag[0] == '_')) return false;
  for (unsigned char c : tag)
    if (!(std::isalnum(c) || c == '_' || c == '.' || c == '-')) return false;
  return true;
}

namespace {

// The daemon's HTTP/1.1 answer to one request on a `Connection: close`
// socket: status line and headers (at most 64 KiB), then the body framed by
// Content-Length, chunked transfer coding or the end of the connection. The
// body's bytes go to `on_body` as they arrive (de-chunked). Throws
// Error(unavailable) when the daemon breaks the protocol or the connection,
// Error(internal) when `deadline` passes.
class ResponseReader {
 public:
  ResponseReader(int fd, Clock::time_point deadline, std::chrono::seconds timeout)
      : fd_(fd), deadline_(deadline), timeout_(timeout) {}

  long read(const std::function<void(std::string_view)>& on_body) {
    std::size_t head_end;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (buf_.size() > 64 * 1024) broken("an oversized response head");
      if (!fill()) broken("the connection closed before the response head");
    }
    const std::string head = buf_.substr(0, head_end);
    buf_.erase(0, head_end + 4);
    long status = 0;
    if (head.rfind("HTTP/1.", 0) != 0 || head.size() < 12 || !std::isdigit(static_cast<unsigned char>(head[9])))
      broken("a malformed status line");
    status = std::strtol(head.c_str() + 9, nullptr, 10);
    std::optional<std::size_t> length;
    bool chunked = false;
    std::size_t pos = head.find("\r\n");
    while (pos != std::string::npos) {
      const std::size_t next = head.find("\r\n", pos + 2);
      std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      pos = next;
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      if (name == "content-length") {
        if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos || value.size() > 15)
          broken("a malformed Content-Length");
        length = static_cast<std::size_t>(std::stoull(value));
      } else if (name == "transfer-encoding") {
        std::transform(value.begin(), value.end(), value.begin(), [](unsigned char c) { return std::tolower(c); });
        chunked = value.find("chunked") != std::string::npos;
      }
    }
    if (status == 204 || status == 304) return status;
    if (chunked) {
      for (;;) {
        std::size_t eol;
        while ((eol = buf_.find("\r\n")) == std::string::npos) {
          if (buf_.size() > 1024) broken("a malformed chunk size");
          if (!fill()) broken("the connection closed inside the body");
        }
        std::size_t size = 0;
        const std::string line = buf_.substr(0, eol);
        std::size_t k = 0;
        for (; k < line.size() && std::isxdigit(static_cast<unsigned char>(line[k])); ++k) {
          if (k >= 15) broken("a malformed chunk size");
          const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(line[k])));
          size = size * 16 + static_cast<std::size_t>(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        if (k == 0) broken("a malformed chunk size");
        buf_.erase(0, eol + 2);
        if (size == 0) return status;  // trailers, if any, are not read: the connection closes
        while (size > 0) {
          if (buf_.empty() && !fill()) broken("the connection closed inside the body");
          const std::size_t n = std::min(size, buf_.size());
          on_body(std::string_view(buf_).substr(0, n));
          buf_.erase(0, n);
          size -= n;
        }
        while (buf_.size() < 2)
          if (!fill()) broken("the connection closed inside the body");
        if (buf_.compare(0, 2, "\r\n") != 0) broken("a malformed chunk");
        buf_.erase(0, 2);
      }
    }
    std::size_t left = length.value_or(std::numeric_limits<std::size_t>::max());
    for (;;) {
      if (!buf_.empty()) {
        const std::size_t n = std::min(left, buf_.size());
        on_body(std::string_view(buf_).substr(0, n));
        buf_.erase(0, n);
        left -= n;
      }
      if (left == 0) return status;
      if (!fill()) {
        if (length) broken("the connection closed inside the body");
        return status;  // no length: the body ends with the connection
      }
    }
  }

 private:
  [[noreturn]] void broken(const char* what) {
    throw Error(Errc::unavailable, std::string("Docker daemon not available: ") + what);
  }
  // Appends what the socket has; false at the end of the connection.
  bool fill() {
    pollfd p{fd_, POLLIN, 0};
    const int t = ms_left(deadline_);
    const int ready = t > 0 ? ::poll(&p, 1, t) : 0;
    if (ready == 0)
      throw Error(Errc::internal, "the Docker daemon did not finish within " + std::to_string(timeout_.count()) + " s");
    if (ready < 0) {
      if (errno == EINTR) return fill();
      broken("poll failed");
    }
    char b[16384];
    ssize_t n;
    do n = ::recv(fd_, b, sizeof b, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) broken("the connection failed");
    if (n == 0) return false;
    buf_.append(b, static_cast<std::size_t>(n));
    return true;
  }

  int fd_;
  Clock::time_point deadline_;
  std::chrono::seconds timeout_;
  std::string buf_;
};

}  // namespace

// One request per connection (Connection: close): the Engine API is local and
// cheap to connect to, and it keeps the client free of connection reuse.
DockerReply DockerClient::call(const std::string& method, const std::string& path, const std::string& body,
                               const std::vector<std::string>& headers, std::chrono::seconds timeout,
                               std::size_t max_body, const std::function<void(std::string_view)>& on_data) const {
  if (socket_.empty()) throw Error(Errc::unavailable, "Docker daemon not available");
  const auto deadline = Clock::now() + timeout;
  const int fd = connect_unix(socket_);
  if (fd < 0) throw Error(Errc::unavailable, "Docker daemon not available");
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } close_fd{fd};
  std::string req = method + " " + kApi + path + " HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n";
  for (const auto& hd : headers) {
    if (hd.find_first_of("\r\n") != std::string::npos) throw Error(Errc::invalid_argument, "a header holds a line break");
    req += hd + "\r\n";
  }
  if (!body.empty() && std::none_of(headers.begin(), headers.end(),
                                    [](const std::string& s) { return s.rfind("Content-Type:", 0) == 0; }))
    req += "Content-Type: application/json\r\n";
  if (method == "POST" || method == "PUT" || !body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  // The head, then the body from where it lies (a build context may be large).
  auto send_all = [&](const char* data, std::size_t size) {
    std::size_t sent = 0;
    while (sent < size) {
      pollfd p{fd, POLLOUT, 0};
      const int t = ms_left(deadline);
      if (t == 0 || ::poll(&p, 1, t) != 1)
        throw Error(Errc::internal, "the Docker daemon did not finish within " + std::to_string(timeout.count()) + " s");
      const ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  };
  // A daemon may answer (e.g. a refusal) and close before it read the whole
  // request: its answer is still read, as HTTP clients do.
  const bool sent_all = send_all(req.data(), req.size()) && send_all(body.data(), body.size());
  DockerReply r;
  ResponseReader reader(fd, deadline, timeout);
  try {
    r.status = reader.read([&](std::string_view data) {
      const std::size_t room = max_body > r.body.size() ? max_body - r.body.size() : 0;
      r.body.append(data.substr(0, std::min(room, data.size())));
      if (on_data) on_data(data);
    });
  } catch (const Error& e) {
    if (!sent_all && r.status == 0 && e.code() == Errc::unavailable)
      throw Error(Errc::unavailable, "Docker daemon not available: sending the request failed");
    throw;
  }
  return r;
}

std::optional<std::string> DockerClient::version() const noexcept {
  try {
    auto r = call("GET", "/version", {}, {}, std::chrono::seconds(2), 64 * 1024);
    if (r.status != 200) return std::nullopt;
    rapidjson::Document d;
    if (!parse_json(d, r.body) || !d.IsObject()) return std::nullopt;
    auto it = d.FindMember("Version");
    if (it == d.MemberEnd() || !it->value.IsString()) return std::string();
    return clean(it->value.GetString(), 64);
  } catch (...) {
    return std::nullopt;
  }
}

namespace {

// Runs a streamed pull/build: progress to `progress`, the first {"error"}
// line (or a refusing status) becomes Error(internal, what + ": " + message).
void streamed(const DockerClient& d, const std::string& path, const std::string& body,
              const std::vector<std::string>& headers, std::chrono::seconds timeout, const DockerProgress& progress,
              const char* what) {
  std::optional<std::string> error;
  std::string tail;  // the end of the build's output, for its error message
  JsonLines lines([&](const rapidjson::Document& doc) {
    if (auto e = doc.FindMember("error"); e != doc.MemberEnd() && e->value.IsString()) {
      if (!error) error = clean(e->value.GetString());
      return;
    }
    for (const char* k : {"stream", "status"}) {
      auto it = doc.FindMember(k);
      if (it == doc.MemberEnd() || !it->value.IsString()) continue;
      std::string m = it->value.GetString();
      tail += m;
      if (tail.size() > 2048) tail.erase(0, tail.size() - 2048);
      m = clean(m, 200);
      if (!m.empty() && progress) progress(m);
    }
  });
  auto r = d.call("POST", path, body, headers, timeout, 64 * 1024, [&](std::string_view s) { lines.feed(s); });
  lines.finish();
  if (r.status < 200 || r.status >= 300) throw Error(Errc::internal, std::string(what) + ": " + daemon_message(r));
  if (error) {
    std::string t = clean(tail, 100000);
    if (t.size() > 300) t = "..." + t.substr(t.size() - 300);
    throw Error(Errc::internal, std::string(what) + ": " + *error + (t.empty() ? "" : " (output: " + t + ")"));
  }
}

}  // namespace

void DockerClient::pull(const std::string& name, const std::string& tag, const std::string& user,
                        const std::string& password, std::chrono::seconds timeout,
                        const DockerProgress& progress) const {
  std::vector<std::string> headers;
  if (!user.empty() || !password.empty()) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("username"); w.String(user.data(), static_cast<rapidjson::SizeType>(user.size()));
    w.Key("password"); w.String(password.data(), static_cast<rapidjson::SizeType>(password.size()));
    const auto slash = name.find('/');
    if (slash != std::string::npos && name.substr(0, slash).find_first_of(".:") != std::string::npos) {
      w.Key("serveraddress");
      w.String(name.data(), static_cast<rapidjson::SizeType>(slash));
    }
    w.EndObject();
    const std::size_t len = sodium_base64_ENCODED_LEN(buf.GetSize(), sodium_base64_VARIANT_URLSAFE);
    std::string b64(len, '\0');
    sodium_bin2base64(b64.data(), len, reinterpret_cast<const unsigned char*>(buf.GetString()), buf.GetSize(),
                      sodium_base64_VARIANT_URLSAFE);
    b64.resize(std::strlen(b64.c_str()));
    headers.push_back("X-Registry-Auth: " + b64);
    sodium_memzero(b64.data(), b64.size());
  }
  streamed(*this, "/images/create?fromImage=" + percent_encode(name) + "&tag=" + percent_encode(tag), {}, headers,
           timeout, progress, "image pull failed");
}

void DockerClient::build(const fs::path& context, const std::string& dockerfile, const std::string& name,
                         const std::string& tag, std::chrono::seconds timeout, std::size_t max_context,
                         const DockerProgress& progress) const {
  const std::string tar = tar_directory(context, max_context);
  streamed(*this,
           "/build?t=" + percent_encode(name + ":" + tag) + "&dockerfile=" + percent_encode(dockerfile) +
               "&rm=1&forcerm=1&networkmode=none",
           tar, {"Content-Type: application/x-tar"}, timeout, progress, "image build failed");
}

std::optional<ImageFacts> DockerClient::inspect_image(const std::string& ref) const {
  auto r = call("GET", "/images/" + percent_encode(ref) + "/json");
  if (r.status == 404) return std::nullopt;
  if (r.status != 200) throw Error(Errc::internal, "image inspection failed: " + daemon_message(r));
  rapidjson::Document d;
  if (!parse_json(d, r.body, kJsonStrict, 64) || !d.IsObject())
    throw Error(Errc::internal, "image inspection failed: the daemon's answer is not JSON");
  ImageFacts f;
  if (auto it = d.FindMember("Id"); it != d.MemberEnd() && it->value.IsString()) f.id = it->value.GetString();
  auto cfg = d.FindMember("Config");
  if (cfg != d.MemberEnd() && cfg->value.IsObject()) {
    f.exposed_ports = string_list(cfg->value, "ExposedPorts");
    f.volumes = string_list(cfg->value, "Volumes");
    f.env = string_list(cfg->value, "Env");
    f.entrypoint = string_list(cfg->value, "Entrypoint");
    f.cmd = string_list(cfg->value, "Cmd");
  }
  return f;
}

bool DockerClient::remove_image(const std::string& ref) const {
  auto r = call("DELETE", "/images/" + percent_encode(ref) + "?force=1");
  if (r.status == 404) return false;
  if (r.status != 200) throw Error(Errc::internal, "image removal failed: " + daemon_message(r));
  return true;
}

ContainerResult DockerClient::run(const std::string& image, const ContainerRun& rq) const {
  ContainerResult res;
  const auto deadline = Clock::now() + rq.timeout;
  auto left = [&] {
    return std::chrono::seconds(std::max<long long>(1, std::chrono::duration_cast<std::chrono::seconds>(
                                                           deadline - Clock::now()).count() + 1));
  };
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("Image"); w.String(image.data(), static_cast<rapidjson::SizeType>(image.size()));
  if (!rq.entrypoint.empty()) { w.Key("Entrypoint"); write_strings(w, rq.entrypoint); }
  if (!rq.cmd.empty()) { w.Key("Cmd"); write_strings(w, rq.cmd); }
  w.Key("Env"); write_strings(w, rq.env);
  w.Key("AttachStdin"); w.Bool(true);
  w.Key("AttachStdout"); w.Bool(true);
  w.Key("AttachStderr"); w.Bool(true);
  w.Key("OpenStdin"); w.Bool(true);
  w.Key("StdinOnce"); w.Bool(true);
  w.Key("Tty"); w.Bool(false);
  w.Key("NetworkDisabled"); w.Bool(!rq.network);
  w.Key("Labels"); w.StartObject(); w.Key("lucidnode.job"); w.String("1"); w.EndObject();
  w.Key("HostConfig");
  w.StartObject();
  w.Key("NetworkMode"); w.String(rq.network ? "default" : "none");
  if (rq.memory_bytes > 0) { w.Key("Memory"); w.Int64(rq.memory_bytes); w.Key("MemorySwap"); w.Int64(rq.memory_bytes); }
  if (rq.nano_cpus > 0) { w.Key("NanoCpus"); w.Int64(rq.nano_cpus); }
  if (rq.pids_limit > 0) { w.Key("PidsLimit"); w.Int64(rq.pids_limit); }
  w.Key("CapDrop"); w.StartArray(); w.String("NET_RAW"); w.String("MKNOD"); w.EndArray();
  w.Key("SecurityOpt"); w.StartArray(); w.String("no-new-privileges"); w.EndArray();
  w.EndObject();
  w.EndObject();
  std::string id;
  try {
    auto c = call("POST", "/containers/create" + (rq.name.empty() ? std::string() : "?name=" + percent_encode(rq.name)),
                  std::string(buf.GetString(), buf.GetSize()), {}, left());
    if (c.status != 201) {
      res.failure = "container creation failed: " + daemon_message(c);
      return res;
    }
    rapidjson::Document d;
    if (parse_json(d, c.body) && d.IsObject())
      if (auto it = d.FindMember("Id"); it != d.MemberEnd() && it->value.IsString()) id = it->value.GetString();
    if (id.empty() || id.find_first_not_of("0123456789abcdef") != std::string::npos) {
      res.failure = "container creation failed: no container id in the daemon's answer";
      return res;
    }
  } catch (const Error& e) {
    res.failure = e.message();
    return res;
  }
  // From here on the container exists: it is removed whatever happens.
  struct Remove {
    const DockerClient& d;
    const std::string& id;
    ~Remove() {
      try {
        d.call("DELETE", "/containers/" + id + "?force=1&v=1", {}, {}, std::chrono::seconds(30));
      } catch (...) {
      }
    }
  } remove{*this, id};
  const int fd = connect_unix(socket_);
  if (fd < 0) {
    res.failure = "Docker daemon not available";
    return res;
  }
  struct Close { int fd; ~Close() { ::close(fd); } } close_fd{fd};
  const std::string req = std::string("POST ") + kApi + "/containers/" + id +
                          "/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\n"
                          "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n";
  auto wait_fd = [&](short ev) {
    pollfd p{fd, ev, 0};
    return ::poll(&p, 1, ms_left(deadline)) == 1;
  };
  std::size_t sent = 0;
  while (sent < req.size()) {
    if (!wait_fd(POLLOUT)) { res.failure = "attaching to the container timed out"; return res; }
    auto n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) { res.failure = "attaching to the container failed"; return res; }
    sent += static_cast<std::size_t>(n);
  }
  std::string in;  // the attach response, then the multiplexed stream
  char rb[65536];
  std::size_t head_end = std::string::npos;
  while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
    if (in.size() > 16384 || !wait_fd(POLLIN)) { res.failure = "attaching to the container failed"; return res; }
    auto n = ::recv(fd, rb, sizeof rb, 0);
    if (n <= 0) { res.failure = "attaching to the container failed"; return res; }
    in.append(rb, static_cast<std::size_t>(n));
  }
  if (in.rfind("HTTP/1.1 101", 0) != 0 && in.rfind("HTTP/1.1 200", 0) != 0) {
    res.failure = "attaching to the container failed: " + clean(in.substr(0, in.find("\r\n")), 100);
    return res;
  }
  in.erase(0, head_end + 4);
  try {
    auto s = call("POST", "/containers/" + id + "/start", {}, {}, left());
    if (s.status != 204 && s.status != 304) {
      res.failure = "container start failed: " + daemon_message(s);
      return res;
    }
  } catch (const Error& e) {
    res.failure = e.message();
    return res;
  }
  // Write STDIN and read the multiplexed STDOUT/STDERR at once (a container
  // that writes before reading all its input must not deadlock us).
  std::size_t written = 0;
  bool in_open = true;
  if (rq.input.empty()) {
    ::shutdown(fd, SHUT_WR);
    in_open = false;
  }
  bool eof = false;
  auto demux = [&] {
    while (in.size() >= 8) {
      const auto* p = reinterpret_cast<const unsigned char*>(in.data());
      const std::size_t len = (std::size_t(p[4]) << 24) | (std::size_t(p[5]) << 16) | (std::size_t(p[6]) << 8) | p[7];
      if (in.size() < 8 + len) break;
      std::string& dest = p[0] == 2 ? res.err : res.out;
      const std::size_t room = rq.max_output > dest.size() ? rq.max_output - dest.size() : 0;
      dest.append(in, 8, std::min(room, len));
      if (len > room && !res.failure) res.failure = "output exceeds " + std::to_string(rq.max_output) + " bytes";
      in.erase(0, 8 + len);
    }
  };
  demux();
  while (!eof && !res.failure) {
    pollfd p{fd, static_cast<short>(POLLIN | (in_open ? POLLOUT : 0)), 0};
    const int t = ms_left(deadline);
    if (t == 0) {
      res.failure = "timed out after " + std::to_string(rq.timeout.count()) + " s";
      break;
    }
    if (rq.cancelled && rq.cancelled()) {
      res.failure = "cancelled";
      break;
    }
    if (::poll(&p, 1, std::min(t, 250)) <= 0) continue;
    if (in_open && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
      auto n = ::send(fd, rq.input.data() + written, std::min<std::size_t>(rq.input.size() - written, 65536),
                      MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EINTR) written = rq.input.size();  // the container stopped reading
      if (written >= rq.input.size()) {
        ::shutdown(fd, SHUT_WR);
        in_open = false;
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      auto n = ::recv(fd, rb, sizeof rb, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) eof = true;
      if (n > 0) {
        in.append(rb, static_cast<std::size_t>(n));
        demux();
      }
    }
  }
  if (res.failure) {
    try {
      call("POST", "/containers/" + id + "/kill", {}, {}, std::chrono::seconds(10));
    } catch (...) {
    }
    return res;
  }
  try {
    auto wr = call("POST", "/containers/" + id + "/wait", {}, {}, left());
    rapidjson::Document d;
    if (wr.status == 200 && parse_json(d, wr.body) && d.IsObject())
      if (auto it = d.FindMember("StatusCode"); it != d.MemberEnd() && it->value.IsInt()) res.exit_code = it->value.GetInt();
    if (wr.status != 200) res.failure = "waiting for the container failed: " + daemon_message(wr);
  } catch (const Error& e) {
    res.failure = e.message();
  }
  return res;
}

std::string tar_directory(const fs::path& dir, std::size_t max_bytes) {
  auto refuse = [](const std::string& m) { throw Error(Errc::invalid_argument, m, "local_path"); };
  std::vector<fs::path> entries;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end; !ec && it != end;
       it.increment(ec)) {
    entries.push_back(it->path());
    if (entries.size() > 100000) refuse("the build context has more than 100000 entries");
  }
  if (ec) refuse("the build context could not be read");
  std::sort(entries.begin(), entries.end());
  std::string out;
  // width - 1 octal digits, zero-padded, then NUL (values that do not fit
  // were refused above: sizes are bounded by max_bytes).
  auto octal = [](char* field, std::size_t width, std::uint64_t v) {
    for (std::size_t i = width - 1; i-- > 0; v >>= 3) field[i] = static_cast<char>('0' + (v & 7));
    field[width - 1] = '\0';
  };
  for (const auto& p : entries) {
    struct stat st{};
    if (::lstat(p.c_str(), &st) != 0) refuse("the build context could not be read");
    char type;
    std::string data, link;
    if (S_ISREG(st.st_mode)) {
      type = '0';
      if (out.size() + static_cast<std::size_t>(st.st_size) > max_bytes)
        refuse("the build context is larger than " + std::to_string(max_bytes) + " bytes");
      std::ifstream f(p, std::ios::binary);
      if (!f) refuse("a file of the build context could not be read");
      data.assign(std::istreambuf_iterator<char>(f), {});
    } else if (S_ISDIR(st.st_mode)) {
      type = '5';
    } else if (S_ISLNK(st.st_mode)) {
      type = '2';
      link = fs::read_symlink(p, ec).string();
      if (ec || link.size() > 100) refuse("a symlink of the build context could not be stored");
    } else {
      continue;  // sockets, fifos, devices: nothing a build reads
    }
    // Lexically: fs::relative would resolve a symlink entry to its target.
    std::string name = p.lexically_relative(dir).generic_string();
    if (name.empty() || name.rfind("..", 0) == 0) refuse("the build context could not be read");
    if (type == '5') name += '/';
    char h[512] = {};
    std::string prefix;
    if (name.size() > 100) {
      const auto cut = name.rfind('/', std::min<std::size_t>(155, name.size() - 2));
      if (cut == std::string::npos || name.size() - cut - 1 > 100 || cut > 155)
        refuse("a path of the build context is too long for a tar header");
      prefix = name.substr(0, cut);
      name = name.substr(cut + 1);
    }
    std::memcpy(h, name.data(), name.size());
    octal(h + 100, 8, st.st_mode & 07777);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, data.size());
    octal(h + 136, 12, static_cast<std::uint64_t>(std::max<time_t>(0, st.st_mtime)));
    h[156] = type;
    std::memcpy(h + 157, link.data(), link.size());
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
    std::memcpy(h + 345, prefix.data(), prefix.size());
    std::memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    octal(h + 148, 7, sum);  // six digits, NUL, then the space already there
    h[155] = ' ';
    out.append(h, 512);
    out += data;
    out.append((512 - data.size() % 512) % 512, '\0');
    if (out.size() > max_bytes) refuse("the build context is larger than " + std::to_string(max_bytes) + " bytes");
  }
  out.append(1024, '\0');
  return out;
}

}  // namespace lucid::detail
