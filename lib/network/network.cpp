// The network-node capability (include/lucidnode/network.hpp).
#include "lucidnode/network.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sodium.h>

#include <algorithm>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "core/cluster_core.hpp"
#include "lucidnode/error.hpp"
#include "network/peer_id.hpp"
#include "core/clock_text.hpp"
#include "util/checks.hpp"
#include "store/stored.hpp"
#include "nodes/node_cache.hpp"

namespace lucid {

namespace detail {

struct NetworkState {
  // Outstanding challenges: decoded bytes -> (expiry, sequence, client);
  // `order` holds them oldest first so the bound drops the oldest.
  struct Outstanding {
    Timestamp expiry;
    std::uint64_t seq;
    std::string client;  // who asked (a client address), "" when unknown
  };
  std::mutex ch_mu;
  std::unordered_map<std::string, Outstanding> challenges;
  std::deque<std::pair<std::uint64_t, std::string>> order;
  std::uint64_t next_seq = 1;
  // [limits] Each non-empty client's outstanding challenges, oldest first (at
  // most Options::network.max_challenges_per_client): a client at its cap replaces its
  // own oldest, so one address cannot push out everyone else's.
  std::unordered_map<std::string, std::vector<std::string>> by_client;

  // Removes a challenge and its by_client entry. Caller holds ch_mu.
  void drop_challenge(std::unordered_map<std::string, Outstanding>::iterator it) {
    if (!it->second.client.empty()) {
      auto c = by_client.find(it->second.client);
      if (c != by_client.end()) {
        auto& v = c->second;
        if (auto pos = std::find(v.begin(), v.end(), it->first); pos != v.end()) v.erase(pos);
        if (v.empty()) by_client.erase(c);
      }
    }
    challenges.erase(it);
  }

  // Login principals: peer id -> the registered owner of its key, memoized
  // from the database for the per-request principal check. A change made in
  // this process (keys, node approval, key rotation) clears it and bumps
  // `pr_gen`; a reader caches what it read only if the generation did not
  // move meanwhile, so a row read before a concurrent commit is never kept.
  // An entry is read again after kPrincipalTtl: a change another process
  // made to the database (lucidctl keys remove) is seen within it. Bounded;
  // cleared when full.
  std::shared_mutex pr_mu;
  struct Principal {
    bool registered = false;  // false: the key is not (or no longer) registered
    Role role = Role::user;
    std::int64_t node_id = 0;
    std::chrono::steady_clock::time_point read_at;
  };
  std::unordered_map<std::string, Principal> principals;
  std::uint64_t pr_gen = 0;

  // The blacklist's peer ids and refused node ids (the database is the truth;
  // updated after each commit).
  std::shared_mutex bl_mu;
  std::unordered_set<std::string> blacklisted;
  std::unordered_set<std::int64_t> refused_nodes;

  // When PEER_CAPABILITIES_UPDATED was last published for a peer id after a
  // read (peer_capabilities): at most once a second per peer, so readers
  // cannot make the server broadcast at their request rate. Bounded; cleared
  // when full.
  std::mutex caps_mu;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> caps_published;

  std::string self_peer_id;
  std::string dht_node_id;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

}  // namespace detail

using detail::ClusterCore;
using detail::Conn;
using detail::from_hex;
using detail::to_hex;

namespace {

constexpr std::size_t kMaxPrincipalCache = 100000;
// How long a principal read from the database is trusted (the stream tick).
constexpr auto kPrincipalTtl = std::chrono::seconds(1);
constexpr auto kLoginTokenTtl = std::chrono::hours(24);
// A login without public_key tries at most this many registered keys: an
// anonymous caller can make the server verify at most this many signatures
// per challenge it obtained (challenges and logins are rate-limited per
// client address by the routes). Beyond it, clients must name their key.
constexpr std::size_t kMaxKeylessLoginKeys = 64;

[[noreturn]] void bad_challenge() { throw Error(Errc::unauthenticated, "Invalid or expired challenge"); }
[[noreturn]] void auth_failed() { throw Error(Errc::unauthenticated, "Authentication failed"); }
[[noreturn]] void not_relay_mode() { throw Error(Errc::permission_denied, "Node is not in relay mode"); }
[[noreturn]] void not_nat_mode() { throw Error(Errc::permission_denied, "Node is not in NAT mode"); }

std::string key_bytes(std::string_view hex, const char* field) {
  auto k = hex.size() == 64 ? from_hex(hex) : std::nullopt;
  if (!k) detail::invalid(field, std::string(field) + " must be 64 hex characters (a 32-byte Ed25519 public key)");
  if (crypto_core_ed25519_is_valid_point(reinterpret_cast<const unsigned char*>(k->data())) != 1)
    detail::invalid(field, std::string(field) + " is not a valid Ed25519 public key");
  return *k;
}

void check_peer_id(std::string_view peer_id) {
  if (peer_id.empty() || peer_id.size() > 128) detail::invalid("peer_id", "peer_id must be 1..128 characters");
  for (unsigned char c : peer_id)
    if (c <= 0x20 || c >= 0x7f) detail::invalid("peer_id", "peer_id must be printable ASCII without spaces");
}

// {"action", "peer_id", "reason"?}: the BLACKLIST_UPDATED payload.
std::string blacklist_event(const char* action, const std::string& peer_id, const std::string* reason) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("action"); w.String(action);
  w.Key("peer_id"); w.String(peer_id.c_str(), static_cast<rapidjson::SizeType>(peer_id.size()));
  if (reason) { w.Key("reason"); w.String(reason->c_str(), static_cast<rapidjson::SizeType>(reason->size())); }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::int64_t unix_seconds(Timestamp t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

struct KeyOwner {
  Role role = Role::user;    // an admin-registered key's role; unused for node keys
  std::int64_t node_id = 0;  // a node's own key: the node, which acts only as itself
};

// The registered owner of a 32-byte key: an admin-registered key (with the
// role the admin gave it), or the key of an active node (a node principal,
// never an operator role: docs/decisions.md "Roles and principals").
std::optional<KeyOwner> find_key(Conn& c, const std::string& key) {
  auto& a = c.stmt("SELECT role FROM network_keys WHERE public_key = ?");
  a.bind_blob(1, key);
  if (a.step()) {
    KeyOwner o;
    o.role = parse_role(a.column(0).as_text()).value_or(Role::user);
    return o;
  }
  auto& n = c.stmt(
      "SELECT k.node_id FROM poot_keys k JOIN nodes n ON n.id = k.node_id WHERE k.public_key = ? AND n.status = 'active'");
  n.bind_blob(1, key);
  if (n.step()) return KeyOwner{Role::user, n.column(0).as_int64()};
  return std::nullopt;
}

}  // namespace

Network::Network(ClusterCore& core) : core_(core), st_(std::make_unique<detail::NetworkState>()) {}
Network::~Network() = default;

void Network::reset() {
  {
    std::lock_guard lock(st_->ch_mu);
    st_->challenges.clear();
    st_->order.clear();
    st_->by_client.clear();
  }
  forget_principals();
  std::unordered_set<std::string> bl;
  std::unordered_set<std::int64_t> nodes;
  core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT peer_id, node_id FROM network_blacklist");
    while (q.step()) {
      bl.insert(q.column(0).as_text());
      if (!q.column(1).is_null()) nodes.insert(q.column(1).as_int64());
    }
  });
  std::unique_lock lock(st_->bl_mu);
  st_->blacklisted = std::move(bl);
  st_->refused_nodes = std::move(nodes);
  // A read-only open without the key has no identity (and serves no logins).
  if (st_->self_peer_id.empty() && core_.auth) {
    auto pk = from_hex(core_.auth->public_key_hex());
    st_->self_peer_id = peer_id_from_public_key(*pk);
    st_->dht_node_id = to_hex(detail::random_bytes(20));
  }
}

const std::string& Network::self_peer_id() const { return st_->self_peer_id; }

bool Network::is_local_peer(std::string_view peer_id) {
  if (peer_id.empty() || peer_id == kLocalPeerMarker || peer_id == st_->self_peer_id) return true;
  if (peer_id.size() > 128) return false;
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT 1 FROM network_keys WHERE peer_id = ?");
    q.bind(1, std::string(peer_id));
    return q.step();
  });
}

// ---- challenge login ----

Challenge Network::issue_challenge(std::string_view client) {
  std::string bytes = detail::random_bytes(32);
  const auto expiry = core_.clock->now() + core_.opts.network.challenge_ttl;
  {
    std::lock_guard lock(st_->ch_mu);
    auto& s = *st_;
    // [limits] The client's own bound first: at its cap, its oldest goes.
    if (!client.empty()) {
      auto c = s.by_client.find(std::string(client));
      const auto cap = std::min(core_.opts.network.max_challenges_per_client, core_.opts.network.max_challenges);
      if (c != s.by_client.end() && c->second.size() >= cap) {
        auto it = s.challenges.find(c->second.front());
        if (it != s.challenges.end()) s.drop_challenge(it);  // (the order entry turns stale)
      }
    }
    // The order queue also holds entries of challenges already gone
    // (consumed, swept, or replaced by their client's newer ones, which may
    // sit in its middle): at twice the bound, drop those (at least half of
    // it, so this is amortized O(1)), never a live one.
    if (s.order.size() >= 2 * core_.opts.network.max_challenges) {
      std::erase_if(s.order, [&](const auto& e) {
        const auto it = s.challenges.find(e.second);
        return it == s.challenges.end() || it->second.seq != e.first;
      });
    }
    // The bound: drop the oldest entries (live or already gone) until the
    // live map is within it.
    while (!s.order.empty() && s.challenges.size() >= core_.opts.network.max_challenges) {
      auto [seq, old] = std::move(s.order.front());
      s.order.pop_front();
      auto it = s.challenges.find(old);
      if (it != s.challenges.end() && it->second.seq == seq) s.drop_challenge(it);
    }
    const auto seq = s.next_seq++;
    s.challenges[bytes] = {expiry, seq, std::string(client)};
    if (!client.empty()) s.by_client[std::string(client)].push_back(bytes);
    s.order.emplace_back(seq, bytes);
  }
  return Challenge{to_hex(bytes), std::chrono::duration_cast<std::chrono::seconds>(core_.opts.network.challenge_ttl)};
}

void Network::sweep() {
  const auto now = core_.clock->now();
  std::lock_guard lock(st_->ch_mu);
  auto& s = *st_;
  while (!s.order.empty()) {
    auto it = s.challenges.find(s.order.front().second);
    if (it != s.challenges.end() && it->second.seq == s.order.front().first) {
      if (it->second.expiry > now) break;  // oldest live one not yet expired: the rest are younger
      s.drop_challenge(it);
    }
    s.order.pop_front();
  }
}

LoginResult Network::login(std::string_view challenge_hex, std::string_view signature_hex,
                           std::string_view public_key_hex) {
  // Consume first: any attempt spends the challenge, whatever else is wrong.
  auto challenge = challenge_hex.size() == 64 ? from_hex(challenge_hex) : std::nullopt;
  if (!challenge) bad_challenge();
  {
    std::lock_guard lock(st_->ch_mu);
    auto it = st_->challenges.find(*challenge);
    if (it == st_->challenges.end()) bad_challenge();
    const bool expired = it->second.expiry <= core_.clock->now();
    st_->drop_challenge(it);
    if (expired) bad_challenge();
  }
  auto sig = signature_hex.size() == 2 * crypto_sign_BYTES ? from_hex(signature_hex) : std::nullopt;
  if (!sig) auth_failed();

  auto verifies = [&](const std::string& k) {
    // Constant-time in the key and signature (libsodium); keys are 32 bytes
    // as stored (checked on registration).
    return k.size() == crypto_sign_PUBLICKEYBYTES &&
           crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig->data()),
                                       reinterpret_cast<const unsigned char*>(challenge->data()), challenge->size(),
                                       reinterpret_cast<const unsigned char*>(k.data())) == 0;
  };
  std::string key;
  std::optional<KeyOwner> owner;
  if (public_key_hex.empty()) {
    // No public_key (the network node's web UI never sends one): the
    // registered keys are tried in order, operators' keys first (highest
    // role first), then the active nodes' keys, at most
    // kMaxKeylessLoginKeys of them; the first that verifies the signature
    // logs in (docs/decisions.md "Issue 18: login without public_key").
    std::vector<std::string> candidates;
    core_.store->read([&](Conn& c) {
      auto& q = c.stmt(
          "SELECT public_key FROM ("
          " SELECT public_key, 0 AS kind, CASE role WHEN 'super_admin' THEN 0 WHEN 'admin' THEN 1"
          "  WHEN 'node_operator' THEN 2 WHEN 'viewer' THEN 3 ELSE 4 END AS rank, created_at AS at FROM network_keys"
          " UNION ALL"
          " SELECT k.public_key, 1, 0, k.registered_at FROM poot_keys k JOIN nodes n ON n.id = k.node_id"
          "  WHERE n.status = 'active') AS candidates"  // PostgreSQL (< 16) names every subquery
          " ORDER BY kind, rank, at, public_key LIMIT ?");
      q.bind(1, static_cast<std::int64_t>(kMaxKeylessLoginKeys));
      while (q.step()) candidates.push_back(q.column(0).as_text());
    });
    for (auto& k : candidates) {
      if (!verifies(k)) continue;
      key = std::move(k);
      owner = core_.store->read([&](Conn& c) { return find_key(c, key); });
      break;
    }
    if (!owner) auth_failed();
  } else {
    auto k = public_key_hex.size() == 64 ? from_hex(public_key_hex) : std::nullopt;
    if (!k) auth_failed();
    key = std::move(*k);
    owner = core_.store->read([&](Conn& c) { return find_key(c, key); });
    if (!owner || !verifies(key)) auth_failed();
  }
  LoginResult r;
  r.peer_id = peer_id_from_public_key(key);
  if (is_blacklisted(r.peer_id) || (owner->node_id && node_refused(owner->node_id))) auth_failed();
  r.role = owner->role;
  r.node_id = owner->node_id;
  r.token = core_.require_auth().issue_token("peer:" + r.peer_id, r.role, kLoginTokenTtl, {}, {}, r.node_id);
  return r;
}

namespace {

// The owner of a peer's key, from the principal cache or the database.
detail::NetworkState::Principal owner_of(ClusterCore& core, detail::NetworkState& st, std::string_view peer_id) {
  using Principal = detail::NetworkState::Principal;
  const std::string id(peer_id);
  const auto now = std::chrono::steady_clock::now();
  std::uint64_t gen;
  {
    std::shared_lock lock(st.pr_mu);
    auto it = st.principals.find(id);
    if (it != st.principals.end() && now - it->second.read_at < kPrincipalTtl) return it->second;
    gen = st.pr_gen;
  }
  Principal p;
  p.read_at = now;
  if (auto key = detail::public_key_from_peer_id(peer_id)) {
    if (auto owner = core.store->read([&](Conn& conn) { return find_key(conn, *key); }))
      p = Principal{true, owner->role, owner->node_id, now};
  }
  std::unique_lock lock(st.pr_mu);
  if (st.pr_gen == gen) {
    if (st.principals.size() >= kMaxPrincipalCache) st.principals.clear();
    st.principals.insert_or_assign(id, p);
  }
  return p;
}

}  // namespace

void Network::forget_principals() {
  std::unique_lock lock(st_->pr_mu);
  st_->principals.clear();
  ++st_->pr_gen;
}

const char* Network::principal_refusal(const Claims& c) {
  if (c.subject.rfind("peer:", 0) != 0) return nullptr;
  const std::string_view peer_id = std::string_view(c.subject).substr(5);
  if (is_blacklisted(peer_id)) return "Peer is blacklisted";
  detail::NetworkState::Principal owner;
  try {
    owner = owner_of(core_, *st_, peer_id);
  } catch (const std::exception&) {
    return "Key lookup failed";  // fail closed (a storage error)
  }
  if (!owner.registered) return "Key is no longer registered";
  // A node token speaks for exactly the node that owns the key, and only a
  // node's key makes one.
  if (c.node_id != owner.node_id) return "Unauthorized";
  if (owner.node_id) {
    if (node_refused(owner.node_id)) return "Peer is blacklisted";
  } else if (owner.role != c.role) {
    // An admin key removed and registered again with another role: tokens
    // of the old role go.
    return "Key role changed";
  }
  return nullptr;
}

void Network::check_claims(const Claims& c) {
  if (const char* why = principal_refusal(c)) throw Error(Errc::unauthenticated, why);
}

Claims Network::verify_token(std::string_view token) {
  // The cluster's principal check (principal_refusal) runs inside.
  return core_.require_auth().verify_token(token);
}

// ---- keys ----

NetworkKey Network::add_key(std::string_view public_key_hex, Role role, std::string_view label) {
  const std::string key = key_bytes(public_key_hex, "public_key");
  if (label.size() > 128 || detail::has_control_chars(label)) detail::invalid("label", "label must be at most 128 printable characters");
  NetworkKey k;
  k.public_key = to_hex(key);
  k.peer_id = peer_id_from_public_key(key);
  k.role = role;
  k.label = std::string(label);
  k.created_at = core_.clock->now();
  core_.store->write([&](Conn& c) {
    auto& q = c.stmt("SELECT 1 FROM network_keys WHERE public_key = ? UNION ALL SELECT 1 FROM poot_keys WHERE public_key = ?");
    q.bind_blob(1, key);
    q.bind_blob(2, key);
    if (q.step()) throw Error(Errc::conflict, "Key is already registered");
    q.reset();
    auto& ins = c.stmt("INSERT INTO network_keys(public_key, peer_id, role, label, created_at) VALUES (?, ?, ?, ?, ?)");
    ins.bind_blob(1, key);
    ins.bind(2, k.peer_id);
    ins.bind(3, role_name(role));
    ins.bind(4, k.label);
    ins.bind(5, format_rfc3339(k.created_at, true));
    ins.run();
  });
  forget_principals();
  return k;
}

void Network::remove_key(std::string_view public_key_hex) {
  auto key = public_key_hex.size() == 64 ? from_hex(public_key_hex) : std::nullopt;
  if (!key) detail::invalid("public_key", "public_key must be 64 hex characters");
  core_.store->write([&](Conn& c) {
    auto& q = c.stmt("DELETE FROM network_keys WHERE public_key = ?");
    q.bind_blob(1, *key);
    q.run();
    if (c.changes() == 0) throw Error(Errc::not_found, "Key not found");
  });
  // Its login tokens are refused from the next request on, on every surface.
  forget_principals();
}

std::vector<NetworkKey> Network::keys() {
  return core_.store->read([&](Conn& c) {
    std::vector<NetworkKey> out;
    auto& a = c.stmt("SELECT public_key, peer_id, role, label, created_at FROM network_keys ORDER BY created_at, peer_id");
    while (a.step()) {
      NetworkKey k;
      k.public_key = to_hex(a.column(0).as_text());
      k.peer_id = a.column(1).as_text();
      k.role = parse_role(a.column(2).as_text()).value_or(Role::user);
      k.label = a.column(3).as_text();
      k.created_at = detail::parse_stored(a.column(4).as_text());
      out.push_back(std::move(k));
    }
    auto& n = c.stmt("SELECT k.public_key, k.node_id, n.uid, k.registered_at FROM poot_keys k JOIN nodes n ON n.id = k.node_id ORDER BY k.node_id");
    while (n.step()) {
      NetworkKey k;
      const std::string raw = n.column(0).as_text();
      k.public_key = to_hex(raw);
      k.peer_id = peer_id_from_public_key(raw);
      k.role = Role::user;  // not an operator: a node principal (node_id)
      k.node_id = n.column(1).as_int64();
      k.label = n.column(2).as_text();
      k.created_at = detail::parse_stored(n.column(3).as_text());
      out.push_back(std::move(k));
    }
    return out;
  });
}

// ---- blacklist ----

std::vector<BlacklistEntry> Network::blacklist() {
  return core_.store->read([&](Conn& c) {
    std::vector<BlacklistEntry> out;
    auto& q = c.stmt("SELECT peer_id, reason, blacklisted_at FROM network_blacklist ORDER BY blacklisted_at, peer_id");
    while (q.step())
      out.push_back({q.column(0).as_text(), q.column(1).as_text(), detail::parse_stored(q.column(2).as_text())});
    return out;
  });
}

namespace {

// Inserts or updates a blacklist row inside the caller's transaction; the
// node whose key has this peer id, or 0.
std::int64_t blacklist_in(Conn& c, const std::string& peer_id, const std::string& reason, const std::string& at) {
  std::int64_t node_id = 0;
  if (auto key = detail::public_key_from_peer_id(peer_id)) {
    auto& q = c.stmt("SELECT node_id FROM poot_keys WHERE public_key = ?");
    q.bind_blob(1, *key);
    if (q.step()) node_id = q.column(0).as_int64();
    q.reset();
  }
  auto& ins = c.stmt(
      "INSERT INTO network_blacklist(peer_id, reason, node_id, blacklisted_at) VALUES (?, ?, ?, ?)"
      " ON CONFLICT(peer_id) DO UPDATE SET reason = excluded.reason, node_id = excluded.node_id");
  ins.bind(1, peer_id);
  ins.bind(2, reason);
  if (node_id) ins.bind(3, node_id); else ins.bind(3, nullptr);
  ins.bind(4, at);
  ins.run();
  return node_id;
}

}  // namespace

BlacklistEntry Network::add_to_blacklist(std::string_view peer_id, std::string_view reason) {
  check_peer_id(peer_id);
  if (reason.size() > 512 || detail::has_control_chars(reason)) detail::invalid("reason", "reason must be at most 512 printable characters");
  BlacklistEntry e{std::string(peer_id), reason.empty() ? "Manually blacklisted" : std::string(reason), core_.clock->now()};
  std::int64_t node_id = 0;
  core_.store->write([&](Conn& c) {
    node_id = blacklist_in(c, e.peer_id, e.reason, format_rfc3339(e.blacklisted_at, true));
    auto& q = c.stmt("SELECT blacklisted_at FROM network_blacklist WHERE peer_id = ?");
    q.bind(1, e.peer_id);
    if (q.step()) e.blacklisted_at = detail::parse_stored(q.column(0).as_text());
  });
  {
    std::unique_lock lock(st_->bl_mu);
    st_->blacklisted.insert(e.peer_id);
    if (node_id) st_->refused_nodes.insert(node_id);
  }
  core_.bus.publish(Event(EventKind::network, node_id, "BLACKLIST_UPDATED", blacklist_event("added", e.peer_id, &e.reason)));
  return e;
}

void Network::remove_from_blacklist(std::string_view peer_id) {
  check_peer_id(peer_id);
  std::optional<std::int64_t> node_id;
  core_.store->write([&](Conn& c) {
    auto& q = c.stmt("SELECT node_id FROM network_blacklist WHERE peer_id = ?");
    q.bind(1, std::string(peer_id));
    if (!q.step()) throw Error(Errc::not_found, "Peer not in blacklist");
    if (!q.column(0).is_null()) node_id = q.column(0).as_int64();
    q.reset();
    auto& d = c.stmt("DELETE FROM network_blacklist WHERE peer_id = ?");
    d.bind(1, std::string(peer_id));
    d.run();
  });
  {
    std::unique_lock lock(st_->bl_mu);
    st_->blacklisted.erase(std::string(peer_id));
    if (node_id) st_->refused_nodes.erase(*node_id);
  }
  core_.bus.publish(Event(EventKind::network, node_id.value_or(0), "BLACKLIST_UPDATED",
                          blacklist_event("removed", std::string(peer_id), nullptr)));
}

bool Network::is_blacklisted(std::string_view peer_id) {
  std::shared_lock lock(st_->bl_mu);
  return st_->blacklisted.count(std::string(peer_id)) > 0;
}

bool Network::node_refused(std::int64_t node_id) {
  std::shared_lock lock(st_->bl_mu);
  return st_->refused_nodes.count(node_id) > 0;
}

// ---- peers ----

namespace {

constexpr const char* kPeerSelect =
    "SELECT k.public_key, n.id, n.uid, r.is_relay, r.is_store, r.is_behind_nat, r.nat_type,"
    " r.connected_relay_id, r.capabilities, r.reported_at"
    " FROM poot_keys k JOIN nodes n ON n.id = k.node_id LEFT JOIN network_reports r ON r.node_id = n.id"
    " WHERE n.status = 'active'";

Peer peer_row(ClusterCore& core, detail::Statement& q) {
  Peer p;
  p.peer_id = peer_id_from_public_key(q.column(0).as_text());
  p.node_id = q.column(1).as_int64();
  p.dht_node_id = q.column(2).as_text();
  if (!q.column(3).is_null()) {
    p.is_relay = q.column(3).as_int() != 0;
    p.is_store = q.column(4).as_int() != 0;
    p.is_behind_nat = q.column(5).as_int() != 0;
    p.nat_type = q.column(6).as_text();
    p.connected_relay_id = q.column(7).as_text();
    p.capabilities_json = q.column(8).as_text();
    p.last_seen = detail::parse_stored(q.column(9).as_text());
  }
  const auto seen = core.node_cache().last_seen(p.node_id);
  if (seen && (!p.last_seen || *seen > *p.last_seen)) p.last_seen = seen;
  return p;
}

}  // namespace

std::vector<Peer> Network::peers() {
  return core_.store->read([&](Conn& c) {
    static const std::string sql = std::string(kPeerSelect) + " ORDER BY n.id";
    std::vector<Peer> out;
    auto& q = c.stmt(sql.c_str());
    while (q.step()) out.push_back(peer_row(core_, q));
    return out;
  });
}

Peer Network::peer(std::string_view peer_id) {
  auto key = detail::public_key_from_peer_id(peer_id);
  if (!key) throw Error(Errc::not_found, "Peer not found");
  return core_.store->read([&](Conn& c) {
    static const std::string sql = std::string(kPeerSelect) + " AND k.public_key = ?";
    auto& q = c.stmt(sql.c_str());
    q.bind_blob(1, *key);
    if (!q.step()) throw Error(Errc::not_found, "Peer not found");
    return peer_row(core_, q);
  });
}

namespace {

// {"peer_id", "capabilities"}: the PEER_CAPABILITIES_UPDATED payload.
std::string capabilities_event(const Peer& p) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("peer_id"); w.String(p.peer_id.c_str(), static_cast<rapidjson::SizeType>(p.peer_id.size()));
  w.Key("capabilities");
  w.RawValue(p.capabilities_json.data(), p.capabilities_json.size(), rapidjson::kObjectType);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

constexpr std::size_t kMaxCapsPublished = 10000;
constexpr auto kCapsPublishInterval = std::chrono::seconds(1);

}  // namespace

Peer Network::peer_capabilities(std::string_view peer_id) {
  Peer p = peer(peer_id);
  if (p.capabilities_json.empty()) return p;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(st_->caps_mu);
    auto& m = st_->caps_published;
    auto it = m.find(p.peer_id);
    if (it != m.end() && now - it->second < kCapsPublishInterval) return p;
    if (it == m.end() && m.size() >= kMaxCapsPublished) m.clear();
    m.insert_or_assign(p.peer_id, now);
  }
  core_.bus.publish(Event(EventKind::network, p.node_id, "PEER_CAPABILITIES_UPDATED", capabilities_event(p)));
  return p;
}

void Network::report(std::int64_t node_id, const AgentNetworkReport& r) {
  auto text = [](const std::string& v, std::size_t max, const char* field) {
    if (v.size() > max || detail::has_control_chars(v)) detail::invalid(field, std::string(field) + " must be at most " + std::to_string(max) + " printable characters");
  };
  text(r.endpoint, 255, "endpoint");
  text(r.nat_type, 32, "nat_type");
  text(r.connected_relay_id, 128, "connected_relay_id");
  if (r.latency_ms && (*r.latency_ms < 0 || *r.latency_ms > 600000)) detail::invalid("latency_ms", "latency_ms must be 0..600000");
  if (!(r.pricing_per_gb >= 0 && r.pricing_per_gb <= 1e9)) detail::invalid("pricing_per_gb", "pricing_per_gb must be 0..1e9");
  if (r.capacity < 0 || r.capacity > 1000000) detail::invalid("capacity", "capacity must be 0..1000000");
  if (r.relay_ingress_bytes < 0 || r.relay_egress_bytes < 0) detail::invalid("relay_ingress_bytes", "byte counts must not be negative");
  if (r.capabilities_json.size() > 65536) detail::invalid("capabilities", "capabilities must be at most 64 KiB");
  const auto now = core_.clock->now();
  const bool via_us = core_.opts.network.relay_mode && r.connected_relay_id == st_->self_peer_id;
  core_.store->write([&](Conn& c) {
    auto& q = c.stmt(
        "INSERT INTO network_reports(node_id, is_relay, is_store, endpoint, latency_ms, pricing_per_gb, capacity,"
        " is_behind_nat, nat_type, connected_relay_id, relay_ingress_bytes, relay_egress_bytes, capabilities, reported_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(node_id) DO UPDATE SET"
        " is_relay = excluded.is_relay, is_store = excluded.is_store, endpoint = excluded.endpoint,"
        " latency_ms = excluded.latency_ms, pricing_per_gb = excluded.pricing_per_gb, capacity = excluded.capacity,"
        " is_behind_nat = excluded.is_behind_nat, nat_type = excluded.nat_type,"
        " connected_relay_id = excluded.connected_relay_id, relay_ingress_bytes = excluded.relay_ingress_bytes,"
        " relay_egress_bytes = excluded.relay_egress_bytes, capabilities = excluded.capabilities,"
        " reported_at = excluded.reported_at");
    q.bind(1, node_id);
    q.bind(2, r.is_relay ? 1 : 0);
    q.bind(3, r.is_store ? 1 : 0);
    q.bind(4, r.endpoint);
    if (r.latency_ms) q.bind(5, *r.latency_ms); else q.bind(5, nullptr);
    q.bind(6, r.pricing_per_gb);
    q.bind(7, r.capacity);
    q.bind(8, r.is_behind_nat ? 1 : 0);
    q.bind(9, r.nat_type);
    q.bind(10, r.connected_relay_id);
    q.bind(11, r.relay_ingress_bytes);
    q.bind(12, r.relay_egress_bytes);
    q.bind(13, r.capabilities_json);
    q.bind(14, format_rfc3339(now, true));
    q.run();
    if (via_us) {
      auto& s = c.stmt(
          "INSERT INTO relay_sessions(session_id, node_id, start_time, last_keepalive, ingress_bytes, egress_bytes)"
          " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(node_id) DO UPDATE SET last_keepalive = excluded.last_keepalive,"
          " ingress_bytes = excluded.ingress_bytes, egress_bytes = excluded.egress_bytes");
      s.bind(1, "session-" + to_hex(detail::random_bytes(8)));
      s.bind(2, node_id);
      s.bind(3, unix_seconds(now));
      s.bind(4, unix_seconds(now));
      s.bind(5, r.relay_ingress_bytes);
      s.bind(6, r.relay_egress_bytes);
      s.run();
    } else {
      auto& d = c.stmt("DELETE FROM relay_sessions WHERE node_id = ?");
      d.bind(1, node_id);
      d.run();
    }
  });
  core_.bus.publish(Event(EventKind::network, node_id, "PEER_UPDATED", "{}"));
  if (r.is_relay) core_.bus.publish(Event(EventKind::network, node_id, "RELAY_CANDIDATES", "{}"));
  if (!r.capabilities_json.empty()) {
    // A new reading of the peer's full capabilities.
    Peer p;
    p.node_id = node_id;
    p.capabilities_json = r.capabilities_json;
    p.peer_id = core_.store->read([&](Conn& c) {
      auto& q = c.stmt("SELECT public_key FROM poot_keys WHERE node_id = ?");
      q.bind(1, node_id);
      return q.step() ? peer_id_from_public_key(q.column(0).as_text()) : std::string();
    });
    if (!p.peer_id.empty())
      core_.bus.publish(Event(EventKind::network, node_id, "PEER_CAPABILITIES_UPDATED", capabilities_event(p)));
  }
}

// ---- relay ----

std::vector<RelaySession> Network::relay_sessions() {
  if (!core_.opts.network.relay_mode) not_relay_mode();
  return core_.store->read([&](Conn& c) {
    std::vector<RelaySession> out;
    auto& q = c.stmt(
        "SELECT s.session_id, n.uid, k.public_key, s.start_time, s.last_keepalive, s.ingress_bytes, s.egress_bytes"
        " FROM relay_sessions s JOIN nodes n ON n.id = s.node_id LEFT JOIN poot_keys k ON k.node_id = s.node_id"
        " ORDER BY s.start_time, s.session_id");
    while (q.step()) {
      RelaySession s;
      s.session_id = q.column(0).as_text();
      s.client_node_id = q.column(1).as_text();
      if (!q.column(2).is_null()) s.client_peer_id = peer_id_from_public_key(q.column(2).as_text());
      s.start_time = q.column(3).as_int64();
      s.last_keepalive = q.column(4).as_int64();
      s.ingress_bytes = q.column(5).as_int64();
      s.egress_bytes = q.column(6).as_int64();
      s.earnings = static_cast<double>(s.ingress_bytes + s.egress_bytes) / 1e9 * core_.opts.network.relay_price_per_gb;
      out.push_back(std::move(s));
    }
    return out;
  });
}

void Network::disconnect_session(std::string_view session_id) {
  if (!core_.opts.network.relay_mode) not_relay_mode();
  core_.store->write([&](Conn& c) {
    auto& d = c.stmt("DELETE FROM relay_sessions WHERE session_id = ?");
    d.bind(1, std::string(session_id));
    d.run();
    if (c.changes() == 0) throw Error(Errc::not_found, "Session not found");
  });
  core_.bus.publish(Event(EventKind::network, 0, "PEER_UPDATED", "{}"));
}

void Network::blacklist_session(std::string_view session_id) {
  if (!core_.opts.network.relay_mode) not_relay_mode();
  std::string peer_id;
  std::int64_t node_id = 0;
  const auto now = core_.clock->now();
  core_.store->write([&](Conn& c) {
    auto& q = c.stmt(
        "SELECT s.node_id, k.public_key, n.uid FROM relay_sessions s JOIN nodes n ON n.id = s.node_id"
        " LEFT JOIN poot_keys k ON k.node_id = s.node_id WHERE s.session_id = ?");
    q.bind(1, std::string(session_id));
    if (!q.step()) throw Error(Errc::not_found, "Session not found");
    node_id = q.column(0).as_int64();
    if (q.column(1).is_null()) throw Error(Errc::internal, "Failed to blacklist peer: the session's node holds no key");
    peer_id = peer_id_from_public_key(q.column(1).as_text());
    q.reset();
    blacklist_in(c, peer_id, "Manual blacklist from relay session", format_rfc3339(now, true));
    auto& d = c.stmt("DELETE FROM relay_sessions WHERE session_id = ?");
    d.bind(1, std::string(session_id));
    d.run();
  });
  {
    std::unique_lock lock(st_->bl_mu);
    st_->blacklisted.insert(peer_id);
    st_->refused_nodes.insert(node_id);
  }
  static const std::string kReason = "Manual blacklist from relay session";
  core_.bus.publish(Event(EventKind::network, node_id, "BLACKLIST_UPDATED", blacklist_event("added", peer_id, &kReason)));
}

std::vector<RelayCandidate> Network::relay_candidates() {
  if (!core_.opts.network.nat_mode) not_nat_mode();
  const auto now = core_.clock->now();
  return core_.store->read([&](Conn& c) {
    std::string preferred;
    auto& p = c.stmt("SELECT peer_id FROM relay_preference WHERE id = 1");
    if (p.step()) preferred = p.column(0).as_text();
    p.reset();
    std::vector<RelayCandidate> out;
    auto& q = c.stmt(
        "SELECT n.uid, k.public_key, r.endpoint, r.latency_ms, s.score, r.pricing_per_gb, r.capacity, r.reported_at,"
        " n.lifecycle FROM network_reports r JOIN nodes n ON n.id = r.node_id JOIN poot_keys k ON k.node_id = r.node_id"
        " LEFT JOIN poot_scores s ON s.node_id = r.node_id WHERE r.is_relay = 1 AND n.status = 'active'"
        " ORDER BY r.latency_ms IS NULL, r.latency_ms, n.id");
    while (q.step()) {
      RelayCandidate rc;
      rc.node_id = q.column(0).as_text();
      rc.peer_id = peer_id_from_public_key(q.column(1).as_text());
      rc.endpoint = q.column(2).as_text();
      if (!q.column(3).is_null()) rc.latency_ms = q.column(3).as_int64();
      rc.reputation_score = q.column(4).is_null() ? 0 : std::clamp(q.column(4).as_double() / 100.0, 0.0, 1.0);
      rc.pricing_per_gb = q.column(5).as_double();
      rc.capacity = q.column(6).as_int64();
      const auto reported = detail::parse_stored(q.column(7).as_text());
      rc.last_seen = unix_seconds(reported);
      rc.is_preferred = rc.peer_id == preferred;
      const bool fresh = now - reported <= core_.opts.nodes.stale_after;
      const bool blocked = is_blacklisted(rc.peer_id);
      rc.is_available = fresh && !blocked && q.column(8).as_text() != "maintenance";
      rc.unavailable_msg = blocked ? "relay is blacklisted"
                           : !fresh ? "no report from the relay's agent within the stale window"
                           : !rc.is_available ? "relay node is in maintenance" : "";
      out.push_back(std::move(rc));
    }
    return out;
  });
}

void Network::prefer_relay(std::string_view peer_id) {
  if (!core_.opts.network.nat_mode) not_nat_mode();
  check_peer_id(peer_id);
  auto key = detail::public_key_from_peer_id(peer_id);
  core_.store->write([&](Conn& c) {
    bool known = false;
    if (key) {
      auto& q = c.stmt(
          "SELECT 1 FROM poot_keys k JOIN network_reports r ON r.node_id = k.node_id WHERE k.public_key = ? AND r.is_relay = 1");
      q.bind_blob(1, *key);
      known = q.step();
      q.reset();
    }
    if (!known) throw Error(Errc::not_found, "Relay candidate not found");
    auto& up = c.stmt(
        "INSERT INTO relay_preference(id, peer_id, set_at) VALUES (1, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET peer_id = excluded.peer_id, set_at = excluded.set_at");
    up.bind(1, std::string(peer_id));
    up.bind(2, format_rfc3339(core_.clock->now(), true));
    up.run();
  });
  core_.bus.publish(Event(EventKind::network, 0, "RELAY_CANDIDATES", "{}"));
}

void Network::connect_relay(std::string_view peer_id) {
  if (!core_.opts.network.nat_mode) not_nat_mode();
  check_peer_id(peer_id);
  throw Error(Errc::unavailable, "Relay connections are not available: this server does not perform NAT traversal");
}

void Network::disconnect_relay() {
  if (!core_.opts.network.nat_mode) not_nat_mode();
  throw Error(Errc::unavailable, "Relay connections are not available: this server does not perform NAT traversal");
}

NetworkStatus Network::status() {
  NetworkStatus s;
  s.peer_id = st_->self_peer_id;
  s.dht_node_id = st_->dht_node_id;
  s.uptime_seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - st_->started).count();
  s.known_peers = core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT COUNT(*) FROM poot_keys k JOIN nodes n ON n.id = k.node_id WHERE n.status = 'active'");
    q.step();
    return q.column(0).as_int64();
  });
  s.relay_mode = core_.opts.network.relay_mode;
  s.nat_mode = core_.opts.network.nat_mode;
  return s;
}

}  // namespace lucid
