#include "ws/ws_hub.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <filesystem>
#include <map>

#include "json.hpp"
#include "util/encoding.hpp"
#include "poot/base64.hpp"
#include "ws/ws_engine.hpp"
#include "ws/ws_message.hpp"

namespace lucid::server::ws {

namespace fs = std::filesystem;

namespace {

constexpr auto kAuthTimeout = std::chrono::seconds(10);

std::string envelope(std::string_view type, std::string_view payload_json) {
  std::string out;
  out.reserve(type.size() + payload_json.size() + 32);
  out += R"({"type":")";
  out += type;
  out += R"(","payload":)";
  out += payload_json.empty() ? std::string_view("{}") : payload_json;
  out += '}';
  return out;
}

template <class Fn>
std::string json_object(Fn&& fill) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  fill(w);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string error_payload(std::string_view session_id, std::string_view message) {
  return json_object([&](JsonWriter& w) {
    if (!session_id.empty()) { w.Key("session_id"); write_string(w, session_id); }
    w.Key("error"); write_string(w, message);
  });
}

// A plain file name: no directory part, no leading dot, a safe alphabet.
bool plain_file_name(std::string_view n) {
  if (n.empty() || n.size() > 128 || n.front() == '.') return false;
  return std::all_of(n.begin(), n.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

// The upgrade request as text, for websocketpp's handshake parser.
std::string request_text(const http::Request& req) {
  std::string out = req.method + " " + req.target + " HTTP/1.1\r\n";
  for (const auto& [k, v] : req.headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  return out;
}

struct Upload {
  // The per-user quota reservation, given back when the upload goes.
  std::weak_ptr<Hub> hub;
  std::string owner;
  std::int64_t reserved = -1;  // -1: nothing reserved
  std::int64_t service_id = 0;
  std::string file_name;
  std::int64_t size = 0;
  std::int64_t chunk_size = 0;
  std::int64_t received = 0;
  std::int64_t next_chunk = 0;
  fs::path tmp;
  int fd = -1;
  ~Upload() {
    if (reserved >= 0)
      if (auto h = hub.lock()) h->release_upload(owner, reserved);
    if (fd >= 0) ::close(fd);
    if (!tmp.empty()) {
      std::error_code ec;
      fs::remove(tmp, ec);
    }
  }
};

}  // namespace

// One client. Every engine call runs on the connection's strand (the
// stream's executor): feed (on_data), attach, the posted flush and the timer.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Hub& hub, std::optional<Claims> claims, std::string token, std::string request, const Route* route)
      : hub_(hub), route_(route), claims_(std::move(claims)), token_(std::move(token)), request_(std::move(request)) {
    authed_.store(claims_.has_value());
  }
  ~Session() = default;

  // Before the session is visible to broadcasts (enqueue reads stream_).
  void set_stream(std::shared_ptr<http::Stream> stream) { stream_ = std::move(stream); }

  // Strand.
  void attach() {
    const auto& stream = stream_;
    std::weak_ptr<Session> weak = weak_from_this();
    engine_ = std::make_unique<Engine>(
        EngineCallbacks{
            [weak](std::string_view bytes) {
              if (auto s = weak.lock()) s->write(bytes);
            },
            [] {},
            [weak](std::string msg) {
              if (auto s = weak.lock()) s->on_text(std::move(msg));
            },
            [weak] {
              if (auto s = weak.lock()) s->stream_->close();
            }},
        hub_.options().max_message);
    Hub* hub = &hub_;
    Session* self = this;
    stream->on_close([hub, self, weak] {
      // On the strand, while the I/O context is alive: the timers go now.
      if (auto s = weak.lock()) {
        s->timer_.reset();
        s->recheck_.reset();
      }
      hub->remove(self);
    });
    engine_->feed(request_);
    request_.clear();
    if (authed_.load()) recheck_soon();
    if (!authed_.load()) {
      timer_ = std::make_unique<asio::steady_timer>(stream->executor(), kAuthTimeout);
      timer_->async_wait([weak](const asio::error_code& ec) {
        auto s = weak.lock();
        if (ec || !s || s->authed_.load()) return;
        s->close(1008, "authentication timeout");
      });
    }
  }

  // Strand.
  void feed(std::string_view bytes) {
    if (engine_) engine_->feed(bytes);
  }

  // Any thread: queue for the client; drop the client when the queue is full.
  void enqueue(const std::shared_ptr<const std::string>& text) {
    if (!authed_.load() || !stream_) return;
    if (stream_->queued_bytes() > hub_.options().max_pending_bytes) {
      // The client does not read: drop it now, without a closing handshake
      // (it would never be read either).
      std::lock_guard lock(qmu_);
      if (!dropped_) {
        dropped_ = true;
        stream_->abort();
      }
      return;
    }
    {
      std::lock_guard lock(qmu_);
      if (dropped_) return;
      if (queue_.size() >= hub_.options().max_queue) {
        dropped_ = true;
        queue_.clear();
      } else {
        queue_.push_back(text);
        if (flush_posted_) return;
      }
      flush_posted_ = true;
    }
    asio::post(stream_->executor(), [self = shared_from_this()] { self->flush(); });
  }

  std::optional<Claims> claims() const {
    std::lock_guard lock(cmu_);
    return claims_;
  }

  // Strand (posted from any thread through post_close).
  void close(int code, const std::string& reason) {
    if (engine_ && engine_->is_open()) engine_->close(code, reason);
    else if (stream_) stream_->close();
  }
  void post_close(int code, std::string reason) {
    if (!stream_) return;
    asio::post(stream_->executor(), [self = shared_from_this(), code, reason = std::move(reason)] {
      self->close(code, reason);
    });
  }

 private:
  void write(std::string_view bytes) {
    // A full socket queue means a slow client: drop it.
    if (!stream_->send(std::string(bytes))) stream_->abort();
  }

  void flush() {
    std::deque<std::shared_ptr<const std::string>> batch;
    bool dropped;
    {
      std::lock_guard lock(qmu_);
      flush_posted_ = false;
      batch.swap(queue_);
      dropped = dropped_;
    }
    if (dropped) return stream_->abort();
    for (const auto& m : batch)
      if (engine_) engine_->send_text(*m);
  }

  void send(std::string_view type, const std::string& payload) {
    if (engine_) engine_->send_text(envelope(type, payload));
  }

  void on_text(std::string msg) {
    std::string type;
    std::optional<JsonBody> payload;
    try {
      decode_message(msg, type, payload);
    } catch (const Error& e) {
      return send("ERROR", error_payload("", e.message()));
    } catch (const MalformedJson&) {
      return send("ERROR", error_payload("", "Invalid message"));
    }
    if (!authed_.load()) {
      if (type != "AUTH") {
        send("ERROR", error_payload("", "Unauthorized"));
        return close(1008, "unauthorized");
      }
      try {
        std::string token = payload->required_string("token", 4096);
        auto c = hub_.cluster().network().verify_token(token);
        if (route_) {
          try {
            authorize(*route_, c, {}, hub_.cluster());
          } catch (const Error& e) {
            send("ERROR", error_payload("", e.message()));
            return close(1008, "forbidden");
          }
        }
        token_ = std::move(token);
        std::lock_guard lock(cmu_);
        claims_ = std::move(c);
      } catch (const Error&) {
        send("ERROR", error_payload("", "Unauthorized"));
        return close(1008, "unauthorized");
      }
      authed_.store(true);
      if (timer_) timer_->cancel();
      recheck_soon();
      const auto c = claims();
      return send("AUTH_OK", json_object([&](JsonWriter& w) {
        w.Key("subject"); write_string(w, c->subject);
        w.Key("role"); w.String(c->role_label());
      }));
    }
    try {
      if (type == "FILE_UPLOAD_START") return upload_start(*payload);
      if (type == "FILE_UPLOAD_CHUNK") return upload_chunk(*payload);
      if (type == "FILE_UPLOAD_END") return upload_end(*payload);
      if (type == "SERVICE_SEARCH") return service_search(*payload);
      if (type == "AUTH") return send("ERROR", error_payload("", "Already authenticated"));
      send("ERROR", error_payload("", "Unknown message type: " + type));
    } catch (const Error& e) {
      std::string sid;
      if (auto v = payload->member("session_id"); v && v->IsString()) sid.assign(v->GetString(), std::min<std::size_t>(v->GetStringLength(), 64));
      if (type.rfind("FILE_UPLOAD_", 0) == 0) {
        uploads_.erase(sid);
        send("FILE_UPLOAD_ERROR", error_payload(sid, e.message()));
      } else {
        send("ERROR", error_payload("", e.message()));
      }
    }
  }

  // Strand. Every kStreamAuthTick the token is verified again (principal
  // check included): a revoked token (logout, role change, key removed,
  // peer blacklisted, expired) gets ERROR {"error": "Unauthorized",
  // "detail": why} and the socket is closed (1008).
  void recheck_soon() {
    if (!stream_ || token_.empty()) return;
    if (!recheck_) recheck_ = std::make_unique<asio::steady_timer>(stream_->executor());
    recheck_->expires_after(kStreamAuthTick);
    std::weak_ptr<Session> weak = weak_from_this();
    recheck_->async_wait([weak](const asio::error_code& ec) {
      auto s = weak.lock();
      if (ec || !s || !s->stream_->is_open()) return;
      try {
        s->hub_.cluster().network().verify_token(s->token_);
      } catch (const Error& e) {
        s->send("ERROR", json_object([&](JsonWriter& w) {
          w.Key("error"); w.String("Unauthorized");
          w.Key("detail"); write_string(w, e.message());
        }));
        return s->close(1008, "unauthorized");
      }
      s->recheck_soon();
    });
  }

  [[noreturn]] static void bad(const char* field, const std::string& msg) {
    throw Error(Errc::invalid_argument, msg, field);
  }

  // FILE_UPLOAD_*: what changing a service needs (admin; see ws_hub.hpp).
  void check_upload_allowed() const {
    const auto c = claims();
    if (!c || c->is_node() || !c->has_role(Role::admin))
      throw Error(Errc::permission_denied, "Uploading service files needs an administrator");
  }

  void upload_start(const JsonBody& p) {
    const auto& o = hub_.options();
    check_upload_allowed();
    auto sid = p.required_string("session_id", 64);
    if (sid.empty()) bad("session_id", "session_id must not be empty");
    if (uploads_.count(sid)) bad("session_id", "an upload with this session_id is in progress");
    if (static_cast<int>(uploads_.size()) >= o.max_uploads_per_client) bad("session_id", "too many concurrent uploads");
    auto u = std::make_unique<Upload>();
    u->service_id = p.required_int("service_id");
    if (u->service_id < 1) bad("service_id", "service_id must be a positive integer");
    hub_.cluster().workflows().get_service(u->service_id);  // not_found when absent
    u->file_name = p.required_string("file_name", 128);
    if (!plain_file_name(u->file_name)) bad("file_name", "file_name must be a plain file name ([A-Za-z0-9._-], no leading dot)");
    u->size = p.required_int("file_size");
    if (u->size < 0 || u->size > o.max_upload_bytes)
      bad("file_size", "file_size must be 0.." + std::to_string(o.max_upload_bytes));
    u->chunk_size = p.optional_int("chunk_size").value_or(262144);
    if (u->chunk_size < 1 || u->chunk_size > o.max_chunk_bytes)
      bad("chunk_size", "chunk_size must be 1.." + std::to_string(o.max_chunk_bytes));
    u->owner = claims()->subject;
    hub_.reserve_upload(u->owner, u->size);  // last check: nothing below refuses but I/O
    u->hub = hub_.weak_from_this();
    u->reserved = u->size;
    const fs::path dir = fs::path(o.data_dir) / "uploads" / ".partial";
    std::error_code ec;
    fs::create_directories(dir, ec);
    u->tmp = dir / detail::to_hex(detail::random_bytes(16));
    u->fd = ::open(u->tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (u->fd < 0) {
      u->tmp.clear();
      throw Error(Errc::internal, "Cannot create the upload file");
    }
    uploads_[sid] = std::move(u);
    send("FILE_UPLOAD_READY", json_object([&](JsonWriter& w) { w.Key("session_id"); write_string(w, sid); }));
  }

  Upload& upload_of(const JsonBody& p, std::string& sid) {
    sid = p.required_string("session_id", 64);
    auto it = uploads_.find(sid);
    if (it == uploads_.end()) throw Error(Errc::not_found, "No upload with this session_id");
    return *it->second;
  }

  void upload_chunk(const JsonBody& p) {
    check_upload_allowed();
    std::string sid;
    Upload& u = upload_of(p, sid);
    const auto index = p.required_int("chunk_index");
    if (index != u.next_chunk) bad("chunk_index", "expected chunk_index " + std::to_string(u.next_chunk));
    const auto b64 = p.required_string("data", static_cast<std::size_t>(u.chunk_size / 3 * 4 + 8));
    std::string data;
    if (!detail::base64_decode_strict(b64, data)) bad("data", "data must be standard base64");
    if (static_cast<std::int64_t>(data.size()) > u.chunk_size) bad("data", "chunk larger than chunk_size");
    if (u.received + static_cast<std::int64_t>(data.size()) > u.size) bad("data", "more data than file_size");
    std::size_t off = 0;
    while (off < data.size()) {
      auto n = ::write(u.fd, data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw Error(Errc::internal, "Writing the upload failed");
      off += static_cast<std::size_t>(n);
    }
    u.received += static_cast<std::int64_t>(data.size());
    ++u.next_chunk;
  }

  void upload_end(const JsonBody& p) {
    check_upload_allowed();
    std::string sid;
    Upload& u = upload_of(p, sid);
    if (u.received != u.size)
      bad("file_size", "received " + std::to_string(u.received) + " of " + std::to_string(u.size) + " bytes");
    if (::fsync(u.fd) != 0) throw Error(Errc::internal, "Writing the upload failed");
    ::close(u.fd);
    u.fd = -1;
    const fs::path dir = fs::path(hub_.options().data_dir) / "uploads" / std::to_string(u.service_id);
    std::error_code ec;
    fs::create_directories(dir, ec);
    fs::rename(u.tmp, dir / u.file_name, ec);  // atomic: readers see the old file or the whole new one
    if (ec) throw Error(Errc::internal, "Storing the upload failed");
    u.tmp.clear();
    const std::string rel = "uploads/" + std::to_string(u.service_id) + "/" + u.file_name;
    const std::string payload = json_object([&](JsonWriter& w) {
      w.Key("session_id"); write_string(w, sid);
      w.Key("service_id"); w.Int64(u.service_id);
      w.Key("file_name"); write_string(w, u.file_name);
      w.Key("file_size"); w.Int64(u.size);
      w.Key("path"); write_string(w, rel);
    });
    uploads_.erase(sid);
    send("FILE_UPLOAD_COMPLETE", payload);
  }

  // Searches this server's services (name, description, type; case-insensitive).
  void service_search(const JsonBody& p) {
    auto lower = [](std::string s) {
      for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return s;
    };
    const std::string q = lower(p.optional_string("query", 256).value_or(""));
    const std::string type = lower(p.optional_string("service_type", 32).value_or(""));
    const auto limit = p.optional_int("limit").value_or(100);
    if (limit < 1 || limit > 1000) bad("limit", "limit must be 1..1000");
    const auto all = hub_.cluster().workflows().list_services();
    const std::string self = hub_.cluster().network().self_peer_id();
    std::int64_t total = 0;
    const std::string payload = json_object([&](JsonWriter& w) {
      w.Key("query"); write_string(w, q);
      w.Key("services");
      w.StartArray();
      for (const auto& s : all) {
        if (!type.empty() && lower(s.service_type) != type) continue;
        if (!q.empty() && lower(s.name).find(q) == std::string::npos && lower(s.description).find(q) == std::string::npos)
          continue;
        if (++total > limit) continue;
        w.StartObject();
        w.Key("id"); w.Int64(s.id);
        w.Key("name"); write_string(w, s.name);
        w.Key("description"); write_string(w, s.description);
        w.Key("service_type"); write_string(w, s.service_type);
        w.Key("status"); write_string(w, s.status);
        w.Key("peer_id"); write_string(w, self);
        w.EndObject();
      }
      w.EndArray();
      w.Key("total"); w.Int64(total);
    });
    send("SERVICE_SEARCH_RESULT", payload);
  }

  Hub& hub_;
  const Route* route_;  // /api/ws: its policy decides who may authenticate
  mutable std::mutex cmu_;  // guards claims_ (read by the bus thread)
  std::optional<Claims> claims_;
  std::atomic<bool> authed_{false};
  std::string token_;  // the JWT that authenticated the client (strand)
  std::string request_;
  std::shared_ptr<http::Stream> stream_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<asio::steady_timer> timer_;
  std::unique_ptr<asio::steady_timer> recheck_;
  std::map<std::string, std::unique_ptr<Upload>> uploads_;

  std::mutex qmu_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  bool flush_posted_ = false;
  bool dropped_ = false;
};

Hub::Hub(Cluster& cluster, HubOptions opts) : cluster_(cluster), opts_(std::move(opts)) {}

Hub::~Hub() { sub_.reset(); }

void Hub::start() {
  std::weak_ptr<Hub> weak = weak_from_this();
  sub_ = cluster_.events().subscribe([weak](const Event& e) {
    if (e.kind != EventKind::network) return;
    auto hub = weak.lock();
    if (!hub) return;
    if (e.type == "BLACKLIST_UPDATED") {
      // Open sockets of a peer that is now blacklisted are closed.
      std::lock_guard lock(hub->mu_);
      for (auto& [p, s] : hub->sessions_) {
        const auto c = s->claims();
        if (c && c->subject.rfind("peer:", 0) == 0 &&
            hub->cluster_.network().is_blacklisted(std::string_view(c->subject).substr(5)))
          s->post_close(1008, "peer blacklisted");
      }
    }
    hub->broadcast(envelope(e.type, e.payload));
  });
}

http::Reply Hub::accept(Context& ctx, std::optional<Claims> claims) {
  // With claims, the route verified ?token=: the session re-verifies it every tick.
  std::string token = claims ? ctx.req.query_param("token").value_or("") : std::string();
  auto session = std::make_shared<Session>(*this, std::move(claims), std::move(token), request_text(ctx.req), ctx.route);
  http::Reply r;
  r.response.status = 101;
  std::weak_ptr<Hub> weak = weak_from_this();
  r.upgrade = [weak, session](std::shared_ptr<http::Stream> stream) {
    auto hub = weak.lock();
    if (!hub) return stream->close();
    session->set_stream(std::move(stream));
    hub->add(session);
    session->attach();
  };
  r.on_data = [session](std::string_view bytes) { session->feed(bytes); };
  return r;
}

void Hub::reserve_upload(const std::string& subject, std::int64_t bytes) {
  std::lock_guard lock(upload_mu_);
  auto& u = user_uploads_[subject];
  if (u.count >= opts_.max_uploads_per_user || bytes > opts_.max_upload_bytes_per_user - u.bytes) {
    const bool too_many = u.count >= opts_.max_uploads_per_user;
    if (u.count == 0) user_uploads_.erase(subject);
    throw Error(Errc::resource_exhausted,
                too_many ? "Upload quota: at most " + std::to_string(opts_.max_uploads_per_user) + " uploads open per user"
                         : "Upload quota: at most " + std::to_string(opts_.max_upload_bytes_per_user) +
                               " bytes in open uploads per user");
  }
  ++u.count;
  u.bytes += bytes;
}

void Hub::release_upload(const std::string& subject, std::int64_t bytes) {
  std::lock_guard lock(upload_mu_);
  auto it = user_uploads_.find(subject);
  if (it == user_uploads_.end()) return;
  it->second.bytes -= bytes;
  if (--it->second.count <= 0) user_uploads_.erase(it);
}

void Hub::add(std::shared_ptr<Session> s) {
  std::lock_guard lock(mu_);
  Session* key = s.get();
  sessions_.emplace(key, std::move(s));
}

void Hub::remove(Session* s) {
  std::shared_ptr<Session> keep;  // destroyed outside the lock
  std::lock_guard lock(mu_);
  auto it = sessions_.find(s);
  if (it == sessions_.end()) return;
  keep = std::move(it->second);
  sessions_.erase(it);
}

void Hub::broadcast(const std::string& text) {
  auto shared = std::make_shared<const std::string>(text);
  std::lock_guard lock(mu_);
  for (auto& [p, s] : sessions_) s->enqueue(shared);
}

void Hub::close_all() {
  std::lock_guard lock(mu_);
  for (auto& [p, s] : sessions_) s->post_close(1001, "server restarting");
}

std::size_t Hub::connection_count() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

}  // namespace lucid::server::ws
