// ClusterCore's replica coordination (cluster_core.hpp, "replicas"):
// leadership and cross-server messages through the store's Coordinator.
//
// One thread per started ClusterCore on a database that has a Coordinator
// (PostgreSQL). It keeps one coordination session: every ~1 s it tries to
// take (or proves it still holds) the leadership lock; in between it sends
// what this server publishes and receives what the others do. When the
// session is lost the lock goes with it (leader() false at once), every
// remote-change hook runs (a message may have been missed: caches are
// dropped), and it reconnects every second.
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>

#include <sodium.h>

#include "core/cluster_core.hpp"
#include "lucidnode/error.hpp"

namespace lucid::detail {

namespace {

// Messages waiting to be sent, at most; beyond it the oldest go and the
// others are told to resynchronise (drop every cache).
constexpr std::size_t kMaxOutgoing = 10000;
// PostgreSQL's NOTIFY payload limit is 8000 bytes.
constexpr std::size_t kMaxMessage = 7900;
constexpr auto kLeadershipPoll = std::chrono::milliseconds(1000);
constexpr char kSeparator = '\x1e';

// Set while a remote event is re-published here, so that the relay does not
// send it back.
thread_local bool t_relaying_remote = false;

// "e" kind "|" node_id "|" type "|" payload: an event; "c" topic: a change;
// "r": everything may have changed (a sender dropped messages).
std::string encode_event(const Event& e) {
  return "e" + std::to_string(static_cast<int>(e.kind)) + "|" + std::to_string(e.node_id) + "|" + e.type + "|" +
         e.payload;
}

std::optional<Event> decode_event(std::string_view m) {
  const auto a = m.find('|');
  if (a == std::string_view::npos) return std::nullopt;
  const auto b = m.find('|', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  const auto c = m.find('|', b + 1);
  if (c == std::string_view::npos) return std::nullopt;
  try {
    const int kind = std::stoi(std::string(m.substr(1, a - 1)));
    if (kind < 0 || kind > static_cast<int>(EventKind::network)) return std::nullopt;
    const auto node = std::stoll(std::string(m.substr(a + 1, b - a - 1)));
    return Event(static_cast<EventKind>(kind), node, std::string(m.substr(b + 1, c - b - 1)),
                 std::string(m.substr(c + 1)));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

struct ClusterCore::Replicas {
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  Coordinator* live = nullptr;  // the thread's session, for interrupt() (under mu)
  std::deque<std::string> outgoing;
  bool overflowed = false;
  Subscription relay;
};

void ClusterCore::ReplicasDeleter::operator()(Replicas* r) const noexcept { delete r; }

bool ClusterCore::leader() const { return !replicated_ || leader_.load(std::memory_order_acquire); }

void ClusterCore::every_leader(std::chrono::milliseconds interval, std::function<void()> task) {
  every(interval, [this, task = std::move(task)] {
    if (leader()) task();
  });
}

void ClusterCore::on_remote_change(std::string topic, std::function<void()> fn) {
  remote_hooks_.emplace_back(std::move(topic), std::move(fn));
}

void ClusterCore::broadcast_change(std::string_view topic) { send_remote("c" + std::string(topic)); }

void ClusterCore::send_remote(std::string message) {
  if (!replicas_) return;
  auto& r = *replicas_;
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.stopping) return;
  if (r.outgoing.size() >= kMaxOutgoing) {
    r.outgoing.pop_front();
    r.overflowed = true;
  }
  r.outgoing.push_back(std::move(message));
  if (r.live) r.live->interrupt();
}

void ClusterCore::run_remote_hooks(std::string_view topic) noexcept {
  for (const auto& [t, fn] : remote_hooks_) {
    if (!topic.empty() && t != topic) continue;
    try {
      fn();
    } catch (const std::exception& e) {
      report_failure("replica cache refresh", e);
    }
  }
}

void ClusterCore::receive_remote(const std::string& m) {
  if (m.empty()) return;
  if (m[0] == 'e') {
    if (auto e = decode_event(m)) {
      // A node another server created or changed: this one's cache of
      // nodes re-reads them before its subscribers hear of it.
      if (e->kind == EventKind::node_joined || e->kind == EventKind::node_approved ||
          e->kind == EventKind::node_updated)
        run_remote_hooks("nodes");
      struct Relaying {  // reset even when a subscriber throws
        Relaying() { t_relaying_remote = true; }
        ~Relaying() { t_relaying_remote = false; }
      } relaying;
      bus.publish(*e);
    }
  } else if (m[0] == 'c') {
    run_remote_hooks(std::string_view(m).substr(1));
  } else if (m[0] == 'r') {
    run_remote_hooks({});
  }
}

bool ClusterCore::instance_alive(Conn& c, std::int64_t id) const {
  if (id == instance_id_) return true;
  if (!replicated_ || id <= 0 || id > INT32_MAX) return false;
  // Free lock: no live session holds it, so the process is gone. Taking it
  // to find out, then giving it back, on the caller's session.
  auto& q = c.stmt("SELECT CASE WHEN pg_try_advisory_lock(CAST(?1 AS INTEGER), CAST(?2 AS INTEGER)) THEN 1 ELSE 0 END");
  q.bind(1, static_cast<std::int64_t>(kInstanceLockClass));
  q.bind(2, id);
  const bool free = q.step() && q.column(0).as_int() == 1;
  q.reset();
  if (!free) return true;
  auto& u = c.stmt("SELECT CASE WHEN pg_advisory_unlock(CAST(?1 AS INTEGER), CAST(?2 AS INTEGER)) THEN 1 ELSE 0 END");
  u.bind(1, static_cast<std::int64_t>(kInstanceLockClass));
  u.bind(2, id);
  u.step();
  u.reset();
  return false;
}

void ClusterCore::init_replicas() {
  instance_id_ = static_cast<std::int64_t>(randombytes_uniform(INT32_MAX - 1)) + 1;
  // SQLite serves one process (lucid-server refuses a second one on the
  // file): no coordination, always the leader. Read-only opens (reports,
  // `lucidctl ledger verify`) neither lead nor relay.
  if (opts.read_only || store->dialect() != Dialect::postgres) return;
  replicated_ = true;
  replicas_.reset(new Replicas);
}

void ClusterCore::start_replicas() {
  if (!replicas_) return;
  auto& r = *replicas_;
  if (r.thread.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    r.stopping = false;
  }
  r.relay = bus.subscribe([this](const Event& e) {
    if (t_relaying_remote) return;
    std::string m = encode_event(e);
    // An event too large for one notification is not relayed (network
    // events with big payloads; docs/decisions.md says so).
    if (m.size() <= kMaxMessage) send_remote(std::move(m));
  });
  // The first session is opened here, before the server takes requests, so
  // that the instance lock is held before this process can start anything
  // another server would otherwise take for abandoned. If the database is
  // unreachable now, the loop keeps trying as it does after a loss.
  std::unique_ptr<Coordinator> first;
  try {
    first = store->coordinate();
    if (first) first->hold_instance(static_cast<std::int32_t>(instance_id_));
  } catch (const std::exception& e) {
    report_failure("replica coordination", e);
    first.reset();
  }
  r.thread = std::thread([this, s = std::move(first)]() mutable { replica_loop(std::move(s)); });
}

void ClusterCore::stop_replicas() {
  if (!replicas_) return;
  auto& r = *replicas_;
  r.relay.reset();
  {
    std::lock_guard<std::mutex> lock(r.mu);
    r.stopping = true;
    r.outgoing.clear();
    if (r.live) r.live->interrupt();
  }
  r.cv.notify_all();
  if (r.thread.joinable()) r.thread.join();
  leader_.store(false, std::memory_order_release);
}

void ClusterCore::replica_loop(std::unique_ptr<Coordinator> session) {
  auto& r = *replicas_;
  auto next_poll = std::chrono::steady_clock::now();
  const auto lose = [&](const std::exception& e) {
    report_failure("replica coordination", e);
    leader_.store(false, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(r.mu);
      r.live = nullptr;
    }
    session.reset();  // closing the session frees the leadership lock at once
    run_remote_hooks({});
  };
  bool first = true;
  bool fresh = session != nullptr;  // start_replicas() opened it
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(r.mu);
      if (r.stopping) break;
      if (!session && !first) {
        // Reconnect once a second; a stop wakes the wait.
        r.cv.wait_for(lock, kLeadershipPoll, [&] { return r.stopping; });
        if (r.stopping) break;
      }
    }
    if (!session) {
      try {
        session = store->coordinate();
      } catch (const std::exception& e) {
        first = false;
        report_failure("replica coordination", e);
        continue;
      }
      if (!session) break;
      fresh = true;
    }
    first = false;
    if (fresh) {
      fresh = false;
      {
        std::lock_guard<std::mutex> lock(r.mu);
        r.live = session.get();
      }
      // Messages of the others may have been missed while there was no
      // session, and ours may not have reached them: both sides resync.
      run_remote_hooks({});
      {
        std::lock_guard<std::mutex> lock(r.mu);
        r.overflowed = true;
      }
      next_poll = std::chrono::steady_clock::now();
    }
    try {
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_poll) {
        // Taken at once on a new session, unless an old session of this
        // process (cut off, not yet ended by the database) still holds it.
        session->hold_instance(static_cast<std::int32_t>(instance_id_));
        const bool leads = session->hold_leadership();
        const bool gained = leads && !leader_.load(std::memory_order_acquire);
        leader_.store(leads, std::memory_order_release);
        // Work the previous leader left (payouts processing) is now ours.
        if (gained) run_remote_hooks("leader");
        next_poll = now + kLeadershipPoll;
      }
      std::deque<std::string> out;
      bool overflowed = false;
      {
        std::lock_guard<std::mutex> lock(r.mu);
        out.swap(r.outgoing);
        std::swap(overflowed, r.overflowed);
      }
      if (overflowed) session->notify("r");
      // Several messages per notification (one round trip each), separated
      // by ASCII RS (never in an encoded event: JSON escapes control
      // characters); a message repeated within the batch (a node's stats
      // events under load) is sent once.
      std::unordered_set<std::string_view> seen;
      std::string batch;
      for (const auto& m : out) {
        if (!seen.insert(m).second) continue;
        if (!batch.empty() && batch.size() + 1 + m.size() > kMaxMessage) {
          session->notify(batch);
          batch.clear();
        }
        if (!batch.empty()) batch += kSeparator;
        batch += m;
      }
      if (!batch.empty()) session->notify(batch);
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_poll - std::chrono::steady_clock::now());
      for (const auto& batch : session->wait(std::max(wait, std::chrono::milliseconds(0)))) {
        std::string_view rest = batch;
        while (!rest.empty()) {
          const auto end = rest.find(kSeparator);
          receive_remote(std::string(rest.substr(0, end)));
          if (end == std::string_view::npos) break;
          rest.remove_prefix(end + 1);
        }
      }
    } catch (const std::exception& e) {
      lose(e);
    }
  }
  {
    std::lock_guard<std::mutex> lock(r.mu);
    r.live = nullptr;
  }
  session.reset();
  leader_.store(false, std::memory_order_release);
}

}  // namespace lucid::detail
