// The nodes cache: what the hot paths know about nodes without the database.
// Internal; owned by lib/nodes (lucid::Nodes holds it), reached by other areas
// through ClusterCore::node_cache().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "lucidnode/nodes.hpp"

namespace lucid::detail {

class Store;

// In-memory state of nodes that the hot paths (stats ingest, API-key checks,
// streams) read without touching the database: a card per node (the few
// record fields streams show), the newest sample and last-seen time, the
// index of API-key hashes, and the queue of samples not yet written. The
// database stays the source of truth; lib/nodes loads this from it at open
// and changes it in the same call that commits a change.
//
// The first group of methods is the cross-area interface (poot, network,
// tasks, the cluster's gauges call it); the rest is for lib/nodes, the only
// area that changes nodes. Every method is thread-safe.
class NodeCache {
 public:
  struct Card {  // the few record fields streams show
    std::string hostname;
    NodeStatus status = NodeStatus::pending;
    bool is_master = false;
    Lifecycle lifecycle = Lifecycle::inactive;
    bool cordoned = false;                    // issue 15: no new work
    std::optional<Timestamp> drain_deadline;  // set while draining
  };
  struct QueuedSample {
    std::int64_t node_id;
    std::int64_t seq;  // samples received from the node so far; slot = seq % history
    StatsSample sample;
  };

  // ---- for every area ----

  // The node's lifecycle as the cache knows it (ahead of the row between a
  // first stats report and its write); nullopt for an unknown node.
  std::optional<Lifecycle> lifecycle(std::int64_t node_id) const;
  // When the node last reported; nullopt when never or unknown.
  std::optional<Timestamp> last_seen(std::int64_t node_id) const;
  // Forgets an API key (by its SHA-256) after its row went (a removed
  // device): the key stops authenticating at once.
  void forget_key(const std::string& key_hash);
  // How many samples wait for the background writer.
  std::size_t queued_samples() const;
  // Whether the scheduler may place new work on the node: known, not
  // cordoned or draining, not in maintenance.
  bool schedulable(std::int64_t node_id) const;
  // The node's drain deadline while it drains; nullopt otherwise.
  std::optional<Timestamp> drain_deadline(std::int64_t node_id) const;
  // Changes whenever the answer of schedulable() may have changed for some
  // node (a cordon, a lifecycle change, a node forgotten): the scheduler
  // re-reads schedulable() only then.
  std::uint64_t schedulable_version() const { return sched_version_.load(std::memory_order_acquire); }
  // Registers what to call (after the cache's lock is released) when
  // schedulable_version() moved: the tasks engine triggers a scheduling
  // pass, so an uncordon places waiting work at once. One listener; set at
  // open, before other threads use the cache, and cleared (empty) before
  // the listener goes.
  void on_schedulable_change(std::function<void()> fn) { on_sched_change_ = std::move(fn); }

  // ---- for lib/nodes ----

  // Replaces the whole cache with the database's view (at open, and after a
  // failed commit). Throws Error(storage) when the read fails; the cache is
  // unchanged then.
  void load(Store& store);
  // Replaces the cards and key index with the database's view, keeping the
  // live state (sequence numbers, latest samples, the write-behind queue) of
  // nodes still present: another server (replica) changed nodes. Throws
  // Error(storage); the cache is unchanged then.
  void reload_cards(Store& store);
  // Sets (adds or replaces) the card of node `id`.
  void put_card(std::int64_t id, Card card);
  // Indexes the key hash of node `id`.
  void put_key(const std::string& key_hash, std::int64_t id);
  // An approved node: status active and, unless in maintenance, lifecycle starting.
  void mark_approved(std::int64_t id);
  // Sets the card's lifecycle when the node is known.
  void set_lifecycle(std::int64_t id, Lifecycle l);
  // Sets the card's cordon and drain deadline when the node is known.
  void set_cordon(std::int64_t id, bool cordoned, std::optional<Timestamp> drain_deadline);
  // Drops removed nodes (their cards, samples and queued samples).
  void forget(const std::vector<std::int64_t>& ids);
  // The node whose key has SHA-256 `key_hash` (compared in constant time in
  // the hash's content); nullopt when none.
  std::optional<std::int64_t> node_for_key(const std::string& key_hash) const;
  // Gives `n` its newest sample (as recent_stats) and last-seen time, and the
  // card's lifecycle (updated by the stats path before the row).
  void attach_live(Node& n) const;
  // For each node: appends its newest sample to recent_stats and sets last_seen.
  void attach_latest(std::vector<Node>& nodes) const;
  // The live view of every node (liveness left for the caller), or of one
  // (nullopt when unknown).
  std::vector<Nodes::LiveNode> live_nodes() const;
  std::optional<Nodes::LiveNode> live_node(std::int64_t id) const;
  // Records a received sample: it becomes the node's newest and is queued for
  // the writer. Returns true when it moved the node's lifecycle from
  // starting to active (the caller writes that). Errors: unavailable when
  // `queue_limit` samples are waiting already, not_found for an unknown node.
  bool record_sample(std::int64_t node_id, const StatsSample& s, std::size_t queue_limit);
  // Takes the queued samples (one flush at a time, in order) and passes them
  // to `write`; when it throws, puts them back in front of newer ones, bounded
  // by `queue_limit` (the oldest go first), and rethrows.
  void flush(std::size_t queue_limit, const std::function<void(const std::vector<QueuedSample>&)>& write);

 private:
  struct Live {
    std::optional<StatsSample> latest;
    std::optional<Timestamp> last_seen;
    std::int64_t seq = 0;  // samples received so far
  };
  // Caller holds mu_ (shared).
  Nodes::LiveNode live_of(std::int64_t id, const Card& card) const;

  mutable std::shared_mutex mu_;  // guards cards_, live_, keys_
  std::map<std::int64_t, Card> cards_;
  std::unordered_map<std::int64_t, Live> live_;
  std::unordered_map<std::string, std::int64_t> keys_;  // sha256(api key) -> node id

  mutable std::mutex queue_mu_;  // guards queue_; taken before mu_ when both are
  std::vector<QueuedSample> queue_;
  std::mutex flush_mu_;  // one flush at a time, in order
  std::atomic<std::uint64_t> sched_version_{0};  // bumped under mu_ (unique)
  std::function<void()> on_sched_change_;
  // Calls on_sched_change_ (never throws). Call without mu_ held.
  void schedulable_changed() const;
};

}  // namespace lucid::detail
