#include "sse.hpp"

namespace lucid::server {

namespace {

struct Ticker : std::enable_shared_from_this<Ticker> {
  Ticker(std::shared_ptr<http::Stream> s, std::chrono::seconds i, EventProducer p)
      : stream(std::move(s)), timer(stream->executor()), interval(i), producer(std::move(p)) {}

  void tick() {
    if (!stream->is_open()) return;
    std::optional<std::string> json;
    try {
      json = producer();
    } catch (...) {
      json.reset();  // the subject vanished (e.g. node removed): end the stream
    }
    if (!json) {
      stream->close();
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

  std::shared_ptr<http::Stream> stream;
  asio::steady_timer timer;
  std::chrono::seconds interval;
  EventProducer producer;
};

}  // namespace

http::Reply sse_reply(std::chrono::seconds interval, EventProducer producer) {
  http::Reply r;
  r.response.status = 200;
  r.response.content_type = "text/event-stream";
  r.response.headers.emplace_back("X-Accel-Buffering", "no");
  r.stream = [interval, producer = std::move(producer)](std::shared_ptr<http::Stream> stream) {
    auto ticker = std::make_shared<Ticker>(stream, interval, producer);
    std::weak_ptr<Ticker> weak = ticker;
    stream->on_close([weak] {
      if (auto t = weak.lock()) asio::post(t->timer.get_executor(), [t] { t->timer.cancel(); });
    });
    asio::post(stream->executor(), [ticker] { ticker->tick(); });
  };
  return r;
}

}  // namespace lucid::server
