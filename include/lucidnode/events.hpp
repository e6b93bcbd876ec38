// The in-process event bus: capabilities publish, streams (SSE, WebSocket)
// and embedding programs subscribe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "lucidnode/export.hpp"

namespace lucid {
LUCID_PUBLIC_BEGIN

enum class EventKind {
  node_joined,     // a join request created a pending node
  node_approved,   // a pending node became active
  node_updated,    // quota, sites or other record fields changed
  node_stats,      // a node reported a stats sample
  network,         // a network-node API change: `type` and `payload` below
};

struct Event {
  Event(EventKind k, std::int64_t id = 0, std::string t = {}, std::string p = {})
      : kind(k), node_id(id), type(std::move(t)), payload(std::move(p)) {}
  EventKind kind;
  std::int64_t node_id = 0;
  // For EventKind::network: the WebSocket message type ("PEER_UPDATED", ...)
  // and its payload as JSON object text ("" means {}). Empty otherwise.
  std::string type;
  std::string payload;
};

// Keeps a subscription alive; destroying it unsubscribes (after it returns,
// the callback is not running and will not run again). One Subscription
// object is not to be used from two threads at once; distinct ones may.
class Subscription {
 public:
  Subscription() = default;
  explicit Subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
  Subscription(Subscription&& o) noexcept : cancel_(std::move(o.cancel_)) { o.cancel_ = nullptr; }
  Subscription& operator=(Subscription&& o) noexcept {
    if (this != &o) { reset(); cancel_ = std::move(o.cancel_); o.cancel_ = nullptr; }
    return *this;
  }
  ~Subscription() { reset(); }
  void reset() { if (cancel_) { auto c = std::move(cancel_); cancel_ = nullptr; c(); } }

 private:
  std::function<void()> cancel_;
};

// Thread-safe publish/subscribe. Callbacks run synchronously on the publisher's
// thread, so they must be quick and must not block or call back into the bus's
// subscribe/unsubscribe; typically they set a flag or post work elsewhere.
// Publishing never takes a lock (subscribers are a copy-on-write list).
class EventBus {
 public:
  EventBus();
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  using Callback = std::function<void(const Event&)>;
  // Subscribes to every event. Thread-safe.
  [[nodiscard]] Subscription subscribe(Callback cb);
  // Delivers `e` to every current subscriber. Thread-safe, lock-free.
  void publish(const Event& e) const;
  // Current number of subscribers. Thread-safe.
  std::size_t subscriber_count() const;

 private:
  struct LUCID_HIDDEN_FWD Impl;
  std::shared_ptr<Impl> impl_;
};

LUCID_PUBLIC_END
}  // namespace lucid
