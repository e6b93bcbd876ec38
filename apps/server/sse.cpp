#include "sse.hpp"

namespace lucid::server {

namespace {

struct Ticker : std::enable_shared_from_this<Ticker> {
  Ticker(std::shared_ptr<http::Stream> s, std::chrono::seconds i, EventProducer p, std::function<bool()> a)
      : stream(std::move(s)),
        timer(stream->executor()),
        auth_timer(stream->executor()),
        interval(i),
        producer(std::move(p)),
        authorized(std::move(a)) {}

  // Strand. False (and the stream closed) when the caller was revoked.
  bool still_authorized() {
    if (!authorized || authorized()) return true;
    stream->close();
    timer.cancel();
    auth_timer.cancel();
    return false;
  }

  void tick() {
    if (!stream->is_open() || !still_authorized()) return;
    std::optional<std::string> json;
    try {
      json = producer();
    } catch (...) {
      json.reset();  // the subject vanished (e.g. node removed): end the stream
    }
    if (!json) {
      stream->close();
      auth_timer.cancel();
      return;
    }
    std::string frame;
    frame.reserve(json->size() + 8);
    frame.append("data: ").append(*json).append("\n\n");
    stream->send(std::move(frame));  // false = dropped for a slow client; next tick retries
    timer.expires_after(interval);
    timer.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (!ec) self->tick();
    });
  }

  // Between events: revocation ends the stream within kStreamAuthTick even
  // when the event interval is longer.
  void auth_tick() {
    if (!authorized) return;
    auth_timer.expires_after(kStreamAuthTick);
    auth_timer.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || !self->stream->is_open() || !self->still_authorized()) return;
      self->auth_tick();
    });
  }

  std::shared_ptr<http::Stream> stream;
  asio::steady_timer timer;
  asio::steady_timer auth_timer;
  std::chrono::seconds interval;
  EventProducer producer;
  std::function<bool()> authorized;
};

}  // namespace

http::Reply sse_reply(std::chrono::seconds interval, EventProducer producer, std::function<bool()> authorized) {
  http::Reply r;
  r.response.status = 200;
  r.response.content_type = "text/event-stream";
  r.response.headers.emplace_back("X-Accel-Buffering", "no");
  r.stream = [interval, producer = std::move(producer),
              authorized = std::move(authorized)](std::shared_ptr<http::Stream> stream) {
    auto ticker = std::make_shared<Ticker>(stream, interval, producer, authorized);
    std::weak_ptr<Ticker> weak = ticker;
    stream->on_close([weak] {
      if (auto t = weak.lock())
        asio::post(t->timer.get_executor(), [t] {
          t->timer.cancel();
          t->auth_timer.cancel();
        });
    });
    asio::post(stream->executor(), [ticker] {
      ticker->tick();
      ticker->auth_tick();
    });
  };
  return r;
}

}  // namespace lucid::server
