#include "nodes/node_cache.hpp"

#include <algorithm>
#include <iterator>

#include "nodes/node_rows.hpp"

namespace lucid::detail {

std::optional<Lifecycle> NodeCache::lifecycle(std::int64_t node_id) const {
  std::shared_lock lock(mu_);
  auto it = cards_.find(node_id);
  if (it == cards_.end()) return std::nullopt;
  return it->second.lifecycle;
}

std::optional<Timestamp> NodeCache::last_seen(std::int64_t node_id) const {
  std::shared_lock lock(mu_);
  auto it = live_.find(node_id);
  if (it == live_.end()) return std::nullopt;
  return it->second.last_seen;
}

void NodeCache::forget_key(const std::string& key_hash) {
  std::unique_lock lock(mu_);
  keys_.erase(key_hash);
}

std::size_t NodeCache::queued_samples() const {
  std::lock_guard<std::mutex> lock(queue_mu_);
  return queue_.size();
}

void NodeCache::load(Store& store) {
  std::map<std::int64_t, Card> cards;
  std::unordered_map<std::int64_t, Live> live;
  std::unordered_map<std::string, std::int64_t> keys;
  store.read([&](Conn& c) {
    auto& q = c.stmt(
        "SELECT id, hostname, status, is_master, api_key_hash, last_seen, lifecycle, cordoned, drain_deadline FROM nodes");
    while (q.step()) {
      const auto id = q.column(0).as_int64();
      cards[id] = {q.column(1).as_text(),
                   q.column(2).as_text() == "active" ? NodeStatus::active : NodeStatus::pending,
                   q.column(3).as_int() != 0,
                   parse_lifecycle(q.column(6).as_text()).value_or(Lifecycle::error),
                   q.column(7).as_int() != 0,
                   parse_stored_opt(q.column(8))};
      if (!q.column(4).is_null()) keys[q.column(4).as_text()] = id;
      if (!q.column(5).is_null()) live[id].last_seen = parse_stored(q.column(5).as_text());
    }
    auto& s = c.stmt(
        "SELECT s.node_id, s.seq, s.at, s.cpu_usage, s.disk_usage, s.active_backups, s.memory_percent,"
        " s.uptime_seconds, s.disk_total_gb FROM node_stats s"
        " JOIN (SELECT node_id, MAX(seq) AS m FROM node_stats GROUP BY node_id) t"
        " ON s.node_id = t.node_id AND s.seq = t.m");
    while (s.step()) {
      auto& l = live[s.column(0).as_int64()];
      l.seq = s.column(1).as_int64();
      l.latest = read_sample(s, 2);
    }
  });
  std::unique_lock lock(mu_);
  cards_ = std::move(cards);
  live_ = std::move(live);
  keys_ = std::move(keys);
  sched_version_.fetch_add(1, std::memory_order_release);
}

void NodeCache::reload_cards(Store& store) {
  std::map<std::int64_t, Card> cards;
  std::unordered_map<std::string, std::int64_t> keys;
  store.read([&](Conn& c) {
    auto& q = c.stmt(
        "SELECT id, hostname, status, is_master, api_key_hash, lifecycle, cordoned, drain_deadline FROM nodes");
    while (q.step()) {
      const auto id = q.column(0).as_int64();
      cards[id] = {q.column(1).as_text(),
                   q.column(2).as_text() == "active" ? NodeStatus::active : NodeStatus::pending,
                   q.column(3).as_int() != 0,
                   parse_lifecycle(q.column(5).as_text()).value_or(Lifecycle::error),
                   q.column(6).as_int() != 0,
                   parse_stored_opt(q.column(7))};
      if (!q.column(4).is_null()) keys[q.column(4).as_text()] = id;
    }
  });
  {
    std::unique_lock lock(mu_);
    for (auto it = live_.begin(); it != live_.end();) it = cards.count(it->first) ? std::next(it) : live_.erase(it);
    cards_ = std::move(cards);
    keys_ = std::move(keys);
    sched_version_.fetch_add(1, std::memory_order_release);
  }
  schedulable_changed();
}

void NodeCache::put_card(std::int64_t id, Card card) {
  {
    std::unique_lock lock(mu_);
    cards_[id] = std::move(card);
    sched_version_.fetch_add(1, std::memory_order_release);
  }
  schedulable_changed();
}

void NodeCache::put_key(const std::string& key_hash, std::int64_t id) {
  std::unique_lock lock(mu_);
  keys_[key_hash] = id;
}

void NodeCache::mark_approved(std::int64_t id) {
  std::unique_lock lock(mu_);
  auto& card = cards_[id];
  card.status = NodeStatus::active;
  if (card.lifecycle != Lifecycle::maintenance) card.lifecycle = Lifecycle::starting;
  sched_version_.fetch_add(1, std::memory_order_release);
  lock.unlock();
  schedulable_changed();
}

void NodeCache::set_lifecycle(std::int64_t id, Lifecycle l) {
  std::unique_lock lock(mu_);
  auto it = cards_.find(id);
  if (it != cards_.end()) it->second.lifecycle = l;
  sched_version_.fetch_add(1, std::memory_order_release);
  lock.unlock();
  schedulable_changed();
}

void NodeCache::set_cordon(std::int64_t id, bool cordoned, std::optional<Timestamp> drain_deadline) {
  std::unique_lock lock(mu_);
  auto it = cards_.find(id);
  if (it != cards_.end()) {
    it->second.cordoned = cordoned;
    it->second.drain_deadline = drain_deadline;
  }
  sched_version_.fetch_add(1, std::memory_order_release);
  lock.unlock();
  schedulable_changed();
}

bool NodeCache::schedulable(std::int64_t node_id) const {
  std::shared_lock lock(mu_);
  auto it = cards_.find(node_id);
  return it != cards_.end() && !it->second.cordoned && it->second.lifecycle != Lifecycle::maintenance;
}

std::optional<Timestamp> NodeCache::drain_deadline(std::int64_t node_id) const {
  std::shared_lock lock(mu_);
  auto it = cards_.find(node_id);
  if (it == cards_.end()) return std::nullopt;
  return it->second.drain_deadline;
}

void NodeCache::forget(const std::vector<std::int64_t>& ids) {
  {
    // Samples still queued for a removed node would never write (its row is
    // gone): they go with it. queue_mu_ before mu_, as record_sample takes them.
    std::lock_guard<std::mutex> q(queue_mu_);
    std::unique_lock lock(mu_);
    for (auto id : ids) {
      cards_.erase(id);
      live_.erase(id);
    }
    queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                                [&](const QueuedSample& s) {
                                  return std::find(ids.begin(), ids.end(), s.node_id) != ids.end();
                                }),
                 queue_.end());
    sched_version_.fetch_add(1, std::memory_order_release);
  }
  schedulable_changed();
}

void NodeCache::schedulable_changed() const {
  if (!on_sched_change_) return;
  try {
    on_sched_change_();
  } catch (...) {
    // A listener's failure is not the cache's: the next pass syncs anyway.
  }
}

std::optional<std::int64_t> NodeCache::node_for_key(const std::string& key_hash) const {
  std::shared_lock lock(mu_);
  auto it = keys_.find(key_hash);
  if (it == keys_.end() || !equal_ct(it->first, key_hash)) return std::nullopt;
  return it->second;
}

void NodeCache::attach_live(Node& n) const {
  std::shared_lock lock(mu_);
  auto it = live_.find(n.id);
  if (it != live_.end()) {
    n.last_seen = it->second.last_seen;
    if (it->second.latest) n.recent_stats.assign(1, *it->second.latest);
  }
  auto card = cards_.find(n.id);
  // The card is updated by the stats path before the row (starting -> active).
  if (card != cards_.end()) n.lifecycle = card->second.lifecycle;
}

void NodeCache::attach_latest(std::vector<Node>& nodes) const {
  std::shared_lock lock(mu_);
  for (auto& n : nodes) {
    auto it = live_.find(n.id);
    if (it != live_.end()) {
      if (it->second.latest) n.recent_stats.push_back(*it->second.latest);
      n.last_seen = it->second.last_seen;
    }
  }
}

Nodes::LiveNode NodeCache::live_of(std::int64_t id, const Card& card) const {
  Nodes::LiveNode n;
  n.id = id;
  n.hostname = card.hostname;
  n.status = card.status;
  n.is_master = card.is_master;
  auto it = live_.find(id);
  if (it != live_.end()) {
    n.last_seen = it->second.last_seen;
    n.latest = it->second.latest;
  }
  return n;
}

std::vector<Nodes::LiveNode> NodeCache::live_nodes() const {
  std::vector<Nodes::LiveNode> out;
  std::shared_lock lock(mu_);
  out.reserve(cards_.size());
  for (const auto& [id, card] : cards_) out.push_back(live_of(id, card));
  return out;
}

std::optional<Nodes::LiveNode> NodeCache::live_node(std::int64_t id) const {
  std::shared_lock lock(mu_);
  auto c = cards_.find(id);
  if (c == cards_.end()) return std::nullopt;
  return live_of(id, c->second);
}

bool NodeCache::record_sample(std::int64_t node_id, const StatsSample& s, std::size_t queue_limit) {
  std::lock_guard<std::mutex> q(queue_mu_);
  if (queue_.size() >= queue_limit) throw Error(Errc::unavailable, "stats ingest is saturated; retry shortly");
  std::int64_t seq;
  bool became_active = false;
  {
    std::unique_lock lock(mu_);
    auto card = cards_.find(node_id);
    if (card == cards_.end()) throw Error(Errc::not_found, "Node not found");
    auto& live = live_[node_id];
    seq = ++live.seq;
    live.latest = s;
    live.last_seen = s.at;
    if (card->second.lifecycle == Lifecycle::starting) {
      card->second.lifecycle = Lifecycle::active;
      became_active = true;
    }
  }
  queue_.push_back({node_id, seq, s});
  return became_active;
}

void NodeCache::flush(std::size_t queue_limit, const std::function<void(const std::vector<QueuedSample>&)>& write) {
  std::lock_guard<std::mutex> flush_lock(flush_mu_);
  std::vector<QueuedSample> batch;
  {
    std::lock_guard<std::mutex> q(queue_mu_);
    batch.swap(queue_);
  }
  if (batch.empty()) return;
  try {
    write(batch);
  } catch (...) {
    // Put the batch back in front (newer samples keep their order), bounded
    // by the queue limit: on a long outage the oldest samples go first.
    std::lock_guard<std::mutex> q(queue_mu_);
    batch.insert(batch.end(), std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
    if (batch.size() > queue_limit)
      batch.erase(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(batch.size() - queue_limit));
    queue_.swap(batch);
    throw;
  }
}

}  // namespace lucid::detail
