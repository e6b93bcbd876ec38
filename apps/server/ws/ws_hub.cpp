#include "ws/ws_hub.hpp"

#include <algorithm>
#include <deque>

#include "json.hpp"
#include "routes/network_node_common.hpp"
#include "util/encoding.hpp"
#include "workflows/service_search.hpp"
#include "ws/ws_dialect.hpp"
#include "ws/ws_engine.hpp"
#include "ws/ws_message.hpp"

namespace lucid::server::ws {

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

// The upgrade request as text, for websocketpp's handshake parser.
std::string request_text(const http::Request& req) {
  std::string out = req.method + " " + req.target + " HTTP/1.1\r\n";
  for (const auto& [k, v] : req.headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  return out;
}

// The payload of the core's event `type` for the UI's dialect (a JSON
// object text), and the type it goes out as: the UI's shapes where they
// differ (docs/decisions.md "Issue 18: WebSocket dialects").
//  - BLACKLIST_UPDATED: the document's payload plus {"blacklist": [{peer_id,
//    reason, added_at}], "blacklist_total"}, the list as the UI renders it
//    (its first 1,000 entries).
//  - EXECUTION_UPDATED naming a job (job_id): JOB_STATUS_UPDATED
//    {job_execution_id, execution_id, workflow_id, status}.
//  - anything else: the document's payload.
std::pair<std::string, std::string> ui_event(Cluster& cluster, const Event& e) {
  const std::string payload = e.payload.empty() ? std::string("{}") : e.payload;
  if (e.type == "BLACKLIST_UPDATED") {
    rapidjson::Document d;
    d.Parse(payload.data(), payload.size());
    if (d.HasParseError() || !d.IsObject()) d.SetObject();
    auto& a = d.GetAllocator();
    rapidjson::Value list(rapidjson::kArrayType);
    const auto entries = cluster.network().blacklist();
    // Bounded: every UI client gets this with every change.
    constexpr std::size_t kMaxListed = 1000;
    for (const auto& b : entries) {
      if (list.Size() >= kMaxListed) break;
      rapidjson::Value o(rapidjson::kObjectType);
      o.AddMember("peer_id", rapidjson::Value(b.peer_id.c_str(), a), a);
      o.AddMember("reason", rapidjson::Value(b.reason.c_str(), a), a);
      o.AddMember("added_at", rapidjson::Value(static_cast<std::int64_t>(
                                  std::chrono::duration_cast<std::chrono::seconds>(b.blacklisted_at.time_since_epoch()).count())), a);
      list.PushBack(std::move(o), a);
    }
    d.AddMember("blacklist", std::move(list), a);
    d.AddMember("blacklist_total", rapidjson::Value(static_cast<std::int64_t>(entries.size())), a);
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    d.Accept(w);
    return {e.type, std::string(buf.GetString(), buf.GetSize())};
  }
  if (e.type == "EXECUTION_UPDATED") {
    rapidjson::Document d;
    d.Parse(payload.data(), payload.size());
    if (!d.HasParseError() && d.IsObject() && d.HasMember("job_id")) {
      auto num = [&](const char* k) { auto it = d.FindMember(k); return it != d.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0; };
      auto str = [&](const char* k) { auto it = d.FindMember(k); return it != d.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString()) : std::string(); };
      return {"JOB_STATUS_UPDATED", json_object([&](JsonWriter& w) {
                w.Key("job_execution_id"); w.Int64(num("job_id"));
                w.Key("execution_id"); w.Int64(num("execution_id"));
                w.Key("workflow_id"); w.Int64(num("workflow_id"));
                w.Key("status"); write_string(w, str("job_status"));
              })};
    }
  }
  return {e.type, payload};
}

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

  // The connection's dialect (any thread).
  Dialect dialect() const { return static_cast<Dialect>(dialect_.load()); }

  // Any thread: queue for the client (`ui_text` when it speaks the UI's
  // dialect, else `text`); drop the client when the queue is full.
  void enqueue(const std::shared_ptr<const std::string>& text, const std::shared_ptr<const std::string>& ui_text) {
    enqueue(dialect() == Dialect::ui && ui_text ? ui_text : text);
  }
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

  // Sends the document's message `type` in the connection's dialect.
  void send(std::string_view type, const std::string& payload) {
    if (engine_) engine_->send_text(envelope(wire_type(type, dialect()), payload));
  }

  // The first message decides the dialect (ws_dialect.hpp). The UI's gets
  // "connected" and a node.status snapshot once it is authenticated.
  void decide_dialect(std::string_view type) {
    if (dialect() != Dialect::undecided) return;
    const Dialect d = is_ui_type(type) ? Dialect::ui : Dialect::document;
    dialect_.store(static_cast<int>(d));
    if (d == Dialect::ui) hub_.ui_sessions_.fetch_add(1);
  }
  void greet_ui() {
    const auto c = claims();
    send("AUTH_OK", json_object([&](JsonWriter& w) {
      w.Key("message"); w.String("Connected");
      w.Key("peer_id"); write_string(w, hub_.cluster().network().self_peer_id());
      if (c) {
        w.Key("subject"); write_string(w, c->subject);
        w.Key("role"); w.String(c->role_label());
      }
    }));
    send("NODE_STATUS", nn::node_status_json(hub_.cluster(), static_cast<std::int64_t>(hub_.connection_count())));
  }

  void on_text(std::string msg) {
    std::string wire;
    std::optional<JsonBody> payload;
    try {
      decode_message(msg, wire, payload);
    } catch (const Error& e) {
      return send("ERROR", error_payload("", e.message()));
    } catch (const MalformedJson&) {
      return send("ERROR", error_payload("", "Invalid message"));
    }
    const bool first = dialect() == Dialect::undecided;
    decide_dialect(wire);
    const std::string type(canonical_type(wire, dialect()));
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
      if (dialect() == Dialect::ui) return greet_ui();
      const auto c = claims();
      return send("AUTH_OK", json_object([&](JsonWriter& w) {
        w.Key("subject"); write_string(w, c->subject);
        w.Key("role"); w.String(c->role_label());
      }));
    }
    if (first && dialect() == Dialect::ui) greet_ui();
    try {
      if (type == "PING") return send("PONG", "{}");
      if (type == "FILE_UPLOAD_START") return upload_start(*payload);
      if (type == "FILE_UPLOAD_CHUNK") return upload_chunk(*payload);
      if (type == "FILE_UPLOAD_END") return upload_end(*payload);
      if (type == "SERVICE_SEARCH") return service_search(*payload);
      if (type == "AUTH") return send("ERROR", error_payload("", "Already authenticated"));
      send("ERROR", error_payload("", "Unknown message type: " + wire));
    } catch (const Error& e) {
      std::string sid;
      if (auto v = payload->member("session_id"); v && v->IsString()) sid.assign(v->GetString(), std::min<std::size_t>(v->GetStringLength(), 64));
      // The UI shows the message alone: name the missing field in it.
      std::string message = e.message();
      if (dialect() == Dialect::ui && message == "field required" && !e.field().empty())
        message = "Missing required field: " + e.field();
      if (type.rfind("FILE_UPLOAD_", 0) == 0) {
        uploads_.drop(sid);
        send("FILE_UPLOAD_ERROR", error_payload(sid, message));
      } else {
        send("ERROR", error_payload("", message));
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

  // FILE_UPLOAD_*: what changing a service needs (admin; see ws_hub.hpp).
  void check_upload_allowed() const {
    const auto c = claims();
    if (!c || c->is_node() || !c->has_role(Role::admin))
      throw Error(Errc::permission_denied, "Uploading service files needs an administrator");
  }

  // The UI's file.upload.start {service_id, filename, total_size,
  // chunk_size?, session_id?} as the document's FILE_UPLOAD_START payload
  // (a session_id is made up when the UI sends none).
  static std::string ui_upload_start(const JsonBody& p) {
    std::string sid = p.optional_string("session_id", 64).value_or("");
    if (sid.empty()) sid = "upload-" + detail::to_hex(detail::random_bytes(12));
    return json_object([&](JsonWriter& w) {
      w.Key("session_id"); write_string(w, sid);
      w.Key("service_id"); w.Int64(p.required_int("service_id"));
      w.Key("file_name"); write_string(w, p.required_string("filename", 4096));
      w.Key("file_size"); w.Int64(p.required_int("total_size"));
      if (auto c = p.optional_int("chunk_size")) { w.Key("chunk_size"); w.Int64(*c); }
    });
  }

  void upload_start(const JsonBody& p) {
    check_upload_allowed();
    std::string sid;
    if (dialect() == Dialect::ui) {
      const std::string doc_payload = ui_upload_start(p);
      sid = uploads_.start(claims()->subject, JsonBody(std::string_view(doc_payload)));
      return send("FILE_UPLOAD_READY", progress_payload(sid, 0, 0, 1));
    }
    sid = uploads_.start(claims()->subject, p);
    send("FILE_UPLOAD_READY", json_object([&](JsonWriter& w) { w.Key("session_id"); write_string(w, sid); }));
  }

  static std::string progress_payload(const std::string& sid, std::int64_t chunks, std::int64_t bytes, std::int64_t size) {
    return json_object([&](JsonWriter& w) {
      w.Key("session_id"); write_string(w, sid);
      w.Key("chunks_received"); w.Int64(chunks);
      w.Key("bytes_uploaded"); w.Int64(bytes);
      w.Key("percentage"); w.Double(size > 0 ? 100.0 * static_cast<double>(bytes) / static_cast<double>(size) : 100.0);
    });
  }

  // The UI has no end message: its upload ends with the chunk that brings
  // the last byte (progress after each chunk, then file.upload.complete).
  void upload_chunk(const JsonBody& p) {
    check_upload_allowed();
    const auto progress = uploads_.chunk(p);
    if (dialect() != Dialect::ui) return;
    send("FILE_UPLOAD_PROGRESS",
         progress_payload(progress.session_id, progress.chunks_received, progress.bytes_received, progress.file_size));
    if (progress.bytes_received == progress.file_size) upload_end(p);
  }

  void upload_end(const JsonBody& p) {
    check_upload_allowed();
    const detail::StoredUpload u = uploads_.end(p);
    send("FILE_UPLOAD_COMPLETE", json_object([&](JsonWriter& w) {
      w.Key("session_id"); write_string(w, u.session_id);
      w.Key("service_id"); w.Int64(u.service_id);
      w.Key("file_name"); write_string(w, u.file_name);
      w.Key("file_size"); w.Int64(u.file_size);
      w.Key("path"); write_string(w, u.path);
    }));
  }

  // Searches this server's services (detail::search_services says how).
  void service_search(const JsonBody& p) {
    detail::ServiceSearch search;
    search.query = p.optional_string("query", 256).value_or("");
    search.service_type = p.optional_string("service_type", 32).value_or("");
    search.limit = p.optional_int("limit").value_or(100);
    const auto found = detail::search_services(hub_.cluster().workflows(), search);
    const std::string self = hub_.cluster().network().self_peer_id();
    // The UI's service.search.response is the same object with "complete"
    // (this server answers for itself at once: always the final answer).
    send("SERVICE_SEARCH_RESULT", json_object([&](JsonWriter& w) {
      w.Key("query"); write_string(w, found.query);
      w.Key("services");
      w.StartArray();
      for (const auto& s : found.services) {
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
      w.Key("total"); w.Int64(found.total);
      w.Key("complete"); w.Bool(true);
    }));
  }

  Hub& hub_;
  const Route* route_;  // /api/ws: its policy decides who may authenticate
  mutable std::mutex cmu_;  // guards claims_ (read by the bus thread)
  std::optional<Claims> claims_;
  std::atomic<bool> authed_{false};
  std::atomic<int> dialect_{static_cast<int>(Dialect::undecided)};  // Dialect; set once, by the first message
  std::string token_;  // the JWT that authenticated the client (strand)
  std::string request_;
  std::shared_ptr<http::Stream> stream_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<asio::steady_timer> timer_;
  std::unique_ptr<asio::steady_timer> recheck_;
  detail::UploadSet uploads_{hub_.uploads()};  // this connection's FILE_UPLOAD_* (strand)

  std::mutex qmu_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  bool flush_posted_ = false;
  bool dropped_ = false;
};

Hub::Hub(Cluster& cluster, HubOptions opts)
    : cluster_(cluster),
      opts_(std::move(opts)),
      uploads_(std::make_shared<detail::Uploads>(
          cluster.workflows(),
          detail::UploadLimits{opts_.data_dir, opts_.max_upload_bytes, opts_.max_chunk_bytes, opts_.max_uploads_per_client,
                               opts_.max_uploads_per_user, opts_.max_upload_bytes_per_user})) {}

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
    std::string ui;
    if (hub->ui_sessions_.load() > 0) {
      auto [type, payload] = ui_event(hub->cluster_, e);
      ui = envelope(wire_type(type, Dialect::ui), payload);
    }
    hub->broadcast(envelope(e.type, e.payload), ui);
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
  if (keep->dialect() == Dialect::ui) ui_sessions_.fetch_sub(1);
}

void Hub::broadcast(const std::string& text, const std::string& ui_text) {
  auto shared = std::make_shared<const std::string>(text);
  auto ui_shared = ui_text.empty() ? nullptr : std::make_shared<const std::string>(ui_text);
  std::lock_guard lock(mu_);
  for (auto& [p, s] : sessions_) s->enqueue(shared, ui_shared);
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
