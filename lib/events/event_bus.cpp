#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "lucidnode/events.hpp"

namespace lucid {

// Subscribers live in an immutable vector swapped atomically on (rare)
// subscribe/unsubscribe, so publish (hot: every stats report) takes no lock.
// Unsubscribe waits until no publish still holds the old list's callback, so
// that after Subscription::reset() the callback never runs again.
struct LUCID_HIDDEN EventBus::Impl {
  struct Entry {
    std::uint64_t id;
    std::shared_ptr<Callback> cb;
  };
  using List = std::vector<Entry>;
  std::mutex mu;  // serialises writers of `list`
  std::shared_ptr<const List> list = std::make_shared<const List>();
  std::uint64_t next_id = 1;
};

EventBus::EventBus() : impl_(std::make_shared<Impl>()) {}
EventBus::~EventBus() = default;

Subscription EventBus::subscribe(Callback cb) {
  auto shared_cb = std::make_shared<Callback>(std::move(cb));
  std::uint64_t id;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    id = impl_->next_id++;
    auto next = std::make_shared<Impl::List>(*std::atomic_load(&impl_->list));
    next->push_back({id, shared_cb});
    std::atomic_store(&impl_->list, std::shared_ptr<const Impl::List>(std::move(next)));
  }
  std::weak_ptr<Impl> weak = impl_;
  std::weak_ptr<Callback> weak_cb = shared_cb;
  shared_cb.reset();
  return Subscription([weak, weak_cb, id] {
    auto impl = weak.lock();
    if (!impl) return;
    {
      std::lock_guard<std::mutex> lock(impl->mu);
      auto next = std::make_shared<Impl::List>(*std::atomic_load(&impl->list));
      next->erase(std::remove_if(next->begin(), next->end(), [&](const Impl::Entry& e) { return e.id == id; }),
                  next->end());
      std::atomic_store(&impl->list, std::shared_ptr<const Impl::List>(std::move(next)));
    }
    // A publish that loaded the old list may still be calling the callback;
    // wait until it lets go (publishers hold the callback while calling it).
    while (!weak_cb.expired()) std::this_thread::yield();
  });
}

void EventBus::publish(const Event& e) const {
  auto list = std::atomic_load(&impl_->list);
  for (const auto& entry : *list) (*entry.cb)(e);
}

std::size_t EventBus::subscriber_count() const { return std::atomic_load(&impl_->list)->size(); }

}  // namespace lucid
