// The nodes capability's row module: the only code that writes the nodes
// table, and what its source files share. Internal.
//
// Other areas read nodes through read_node()/require_node() and change them
// only through the functions below, inside their own transaction (a Conn of
// the caller's store->write): the check tests/check_table_owners.py fails
// when a file outside lib/nodes writes the table. Every function taking a
// Conn throws what the store throws (Error(storage)) and takes no lock unless
// it says so.
#pragma once

#include <arpa/inet.h>

#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock_text.hpp"
#include "core/cluster_core.hpp"
#include "nodes/node_cache.hpp"
#include "lucidnode/error.hpp"
#include "lucidnode/nodes.hpp"
#include "util/checks.hpp"
#include "store/stored.hpp"
#include "util/utf8.hpp"

namespace lucid::detail {

constexpr std::string_view kCodeAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
constexpr std::size_t kCodeLength = 5;
constexpr const char* kApiKeyPrefix = "lnk_";

constexpr double kBytesPerGb = 1024.0 * 1024.0 * 1024.0;  // the document's size_gb is GiB

// The code shown to people, derived from a random salt and the server's code
// key: the database holds the salt and a keyed hash, never the code.
inline std::string derive_code(const ClusterCore& core, const std::string& salt) {
  std::string code;
  for (int round = 0; code.size() < kCodeLength; ++round) {
    Digest d = detail::hmac_sha256(core.require_code_key(), "code:" + std::to_string(round) + ":" + salt);
    for (unsigned char b : d) {
      if (b >= 252) continue;  // 252 = 7 * 36: rejection keeps the letters uniform
      code.push_back(kCodeAlphabet[b % 36]);
      if (code.size() == kCodeLength) break;
    }
  }
  return code;
}

inline std::string code_lookup_hash(const ClusterCore& core, const std::string& code) {
  return blob(detail::hmac_sha256(core.require_code_key(), "lookup:" + code));
}

// Upper-cases and checks a code typed or sent by someone.
inline std::string normalize_code(std::string_view code) {
  if (code.size() != kCodeLength) invalid("code", "registration code must be 5 characters A-Z or 0-9");
  std::string out(code);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (kCodeAlphabet.find(c) == std::string_view::npos)
      invalid("code", "registration code must be 5 characters A-Z or 0-9");
  }
  return out;
}

inline Liveness liveness_of(const ClusterCore& core, const std::optional<Timestamp>& last_seen) {
  if (!last_seen) return Liveness::offline;
  return core.clock->now() - *last_seen > core.opts.nodes.stale_after ? Liveness::stale : Liveness::online;
}

// Every column of a Node, for SELECT ... FROM nodes n LEFT JOIN pools p.
#define LUCID_NODE_SELECT                                                                                  \
  "SELECT n.id, n.uuid, n.hostname, n.ip_address, n.system_info, n.status, n.is_master, n.storage_quota_gb," \
  " n.created_at, n.approved_at, n.last_seen,"                                                              \
  " (SELECT COALESCE(SUM(used_bytes), 0) FROM sites WHERE node_id = n.id),"                                 \
  " (SELECT COUNT(*) FROM sites WHERE node_id = n.id),"                                                     \
  " (SELECT COUNT(*) FROM backups WHERE node_id = n.id),"                                                   \
  " n.uid, n.name, n.lifecycle, n.node_type, COALESCE(p.uid, ''), n.pool_priority,"                         \
  " n.hw_cpu_cores, n.hw_memory_gb, n.hw_storage_gb, n.hw_gpu_count, n.hw_gpu_model, n.hw_architecture,"    \
  " n.hw_os, n.loc_region, n.loc_country, n.loc_city, n.loc_latitude, n.loc_longitude, n.updated_at,"       \
  " (SELECT score FROM poot_scores WHERE node_id = n.id), n.cordoned, n.drain_deadline"                     \
  " FROM nodes n LEFT JOIN pools p ON p.id = n.pool_id "

constexpr const char* kSelectNodeById = LUCID_NODE_SELECT "WHERE n.id = ?";
constexpr const char* kSelectNodePage = LUCID_NODE_SELECT "ORDER BY n.id LIMIT ? OFFSET ?";
// GET /api/v1/nodes/?status=pending (the console's join requests; a partial
// index covers the pending ones).
constexpr const char* kSelectNodePageByStatus = LUCID_NODE_SELECT "WHERE n.status = ?3 ORDER BY n.id LIMIT ?1 OFFSET ?2";
// Filters are NULL for "any": one statement serves every combination.
constexpr const char* kSelectNodeQuery =
    LUCID_NODE_SELECT "WHERE (CAST(?1 AS TEXT) IS NULL OR n.lifecycle = ?1) AND (CAST(?2 AS TEXT) IS NULL OR p.uid = ?2) ORDER BY n.id LIMIT ?3 OFFSET ?4";
constexpr const char* kCountNodeQuery =
    "SELECT COUNT(*) FROM nodes n LEFT JOIN pools p ON p.id = n.pool_id"
    " WHERE (CAST(?1 AS TEXT) IS NULL OR n.lifecycle = ?1) AND (CAST(?2 AS TEXT) IS NULL OR p.uid = ?2)";

inline Node read_node(const ClusterCore& core, detail::Statement& q) {
  Node n;
  n.id = q.column(0).as_int64();
  n.uuid = q.column(1).as_text();
  n.hostname = q.column(2).as_text();
  n.ip_address = q.column(3).as_text();
  n.system_info = q.column(4).as_text();
  n.status = q.column(5).as_text() == "active" ? NodeStatus::active : NodeStatus::pending;
  n.is_master = q.column(6).as_int() != 0;
  n.storage_quota_gb = q.column(7).as_double();
  n.created_at = parse_stored(q.column(8).as_text());
  n.approved_at = parse_stored_opt(q.column(9));
  n.last_seen = parse_stored_opt(q.column(10));
  n.storage_used_bytes = q.column(11).as_int64();
  n.sites_count = q.column(12).as_int64();
  n.backups_count = q.column(13).as_int64();
  n.uid = q.column(14).as_text();
  n.name = q.column(15).as_text();
  n.lifecycle = parse_lifecycle(q.column(16).as_text()).value_or(Lifecycle::error);
  n.node_type = parse_node_type(q.column(17).as_text()).value_or(NodeType::worker);
  n.pool_uid = q.column(18).as_text();
  n.pool_priority = opt_col<std::int64_t>(q, 19);
  n.hardware.cpu_cores = opt_col<std::int64_t>(q, 20);
  n.hardware.memory_gb = opt_col<double>(q, 21);
  n.hardware.storage_gb = opt_col<double>(q, 22);
  n.hardware.gpu_count = opt_col<std::int64_t>(q, 23);
  n.hardware.gpu_model = opt_col<std::string>(q, 24);
  n.hardware.architecture = opt_col<std::string>(q, 25);
  n.hardware.os = opt_col<std::string>(q, 26);
  n.location.region = opt_col<std::string>(q, 27);
  n.location.country = opt_col<std::string>(q, 28);
  n.location.city = opt_col<std::string>(q, 29);
  n.location.latitude = opt_col<double>(q, 30);
  n.location.longitude = opt_col<double>(q, 31);
  n.updated_at = parse_stored(q.column(32).as_text());
  n.poot_score = opt_col<double>(q, 33);  // the latest stored PoOT score (lib/poot)
  n.cordoned = q.column(34).as_int() != 0;
  n.drain_deadline = parse_stored_opt(q.column(35));
  (void)core;
  return n;
}

inline StatsSample read_sample(detail::Statement& q, int first) {
  StatsSample s;
  s.at = parse_stored(q.column(first).as_text());
  s.cpu_usage = q.column(first + 1).as_double();
  s.disk_usage = q.column(first + 2).as_double();
  s.active_backups = q.column(first + 3).as_int64();
  if (!q.column(first + 4).is_null()) s.memory_percent = q.column(first + 4).as_double();
  if (!q.column(first + 5).is_null()) s.uptime_seconds = q.column(first + 5).as_int64();
  if (!q.column(first + 6).is_null()) s.disk_total_gb = q.column(first + 6).as_double();
  return s;
}

// Empty, or an IPv4 or IPv6 literal. Errors: invalid_argument (ip_address).
inline void check_ip_address(std::string_view ip) {
  if (ip.empty()) return;
  unsigned char buf[16];
  const std::string text(ip.substr(0, 46));
  if (ip.size() > 45 || (inet_pton(AF_INET, text.c_str(), buf) != 1 && inet_pton(AF_INET6, text.c_str(), buf) != 1))
    invalid("ip_address", "ip_address must be an IPv4 or IPv6 address");
}

inline void check_page(const Page& p, std::int64_t max_limit) {
  if (p.skip < 0) invalid("skip", "skip must be >= 0");
  if (p.limit < 1 || p.limit > max_limit) invalid("limit", "limit must be between 1 and " + std::to_string(max_limit));
}

inline Site read_site(detail::Statement& q) {
  Site s;
  s.id = q.column(0).as_int64();
  s.node_id = q.column(1).as_int64();
  s.name = q.column(2).as_text();
  s.used_bytes = q.column(3).as_int64();
  if (!q.column(4).is_null()) s.quota_gb = q.column(4).as_double();
  s.updated_at = parse_stored(q.column(5).as_text());
  return s;
}

// ---- join secrets (issue 12): the code and the key go only to the joiner ----

constexpr const char* kJoinSecretPrefix = "ljs_";
constexpr std::size_t kMaxJoinSecret = 128;

inline std::string new_join_secret() { return kJoinSecretPrefix + base64url_encode(random_bytes(32)); }

// A presented secret is bounded and printable; its content is checked only by
// comparing hashes.
inline void check_join_secret(std::string_view s) {
  if (s.size() > kMaxJoinSecret || has_control_chars(s))
    invalid("join_secret", "join_secret must be at most 128 printable characters");
}

inline std::string join_secret_hash(std::string_view secret) { return blob(sha256(secret)); }

// Whether `presented` is the secret whose SHA-256 is `stored` (NULL: none was
// ever issued, nothing matches). Constant-time in the hashes' content.
inline bool join_secret_matches(const detail::Column& stored, std::string_view presented) {
  if (stored.is_null() || presented.empty()) return false;
  return equal_ct(stored.as_text(), join_secret_hash(presented));
}

// Pending join requests created at or before this have expired.
inline std::string join_deadline(const ClusterCore& core) {
  return format_rfc3339(core.clock->now() - core.opts.nodes.pending_join_ttl, true);
}
// A WHERE condition on nodes: not an expired pending request (?2 = join_deadline()).
#define LUCID_NOT_EXPIRED_JOIN "NOT (status = 'pending' AND created_at <= ?2)"

// Deletes, in `c`, the pending join requests older than
// Options::nodes.pending_join_ttl and returns their ids; call forget_nodes() with
// them once the transaction committed. A pending node that payouts name is
// kept (the payout rows must keep their node).
inline std::vector<std::int64_t> delete_expired_joins(const ClusterCore& core, Conn& c) {
  const std::string deadline = join_deadline(core);
  std::vector<std::int64_t> ids;
  auto& q = c.stmt(
      "SELECT id FROM nodes WHERE status = 'pending' AND created_at <= ?"
      " AND NOT EXISTS (SELECT 1 FROM payouts WHERE payouts.node_id = nodes.id) LIMIT 10000");
  q.bind(1, deadline);
  while (q.step()) ids.push_back(q.column(0).as_int64());
  q.reset();
  for (auto id : ids) {
    auto& del = c.stmt("DELETE FROM nodes WHERE id = ? AND status = 'pending'");
    del.bind(1, static_cast<std::int64_t>(id));
    del.run();
  }
  return ids;
}

// Drops removed nodes from the in-memory view and tells subscribers.
inline void forget_nodes(ClusterCore& core, const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return;
  core.node_cache().forget(ids);
  for (auto id : ids) core.bus.publish({EventKind::node_updated, id});
}

inline void require_node(Conn& c, std::int64_t node_id) {
  auto& q = c.stmt("SELECT 1 FROM nodes WHERE id = ?");
  q.bind(1, static_cast<std::int64_t>(node_id));
  if (!q.step()) throw Error(Errc::not_found, "Node not found");
  q.reset();
}

// ---- writes other areas make, inside their own transaction ----

// Moves node `node_id` into pool row `pool_id` with `priority` (lib/pools).
// Returns false when there is no such node (nothing changed).
inline bool set_node_pool(Conn& c, std::int64_t node_id, std::int64_t pool_id, std::int64_t priority,
                          const std::string& at) {
  auto& up = c.stmt("UPDATE nodes SET pool_id = ?1, pool_priority = ?2, updated_at = ?3 WHERE id = ?4");
  up.bind(1, pool_id);
  up.bind(2, priority);
  up.bind(3, at);
  up.bind(4, node_id);
  up.run();
  return c.changes() != 0;
}

// Revokes node `node_id`'s API key (lib/tasks, removing a device) and returns
// the revoked key's hash ("" when it had none). Call forget_node_key() with it
// once the transaction committed.
inline std::string revoke_node_key(Conn& c, std::int64_t node_id) {
  std::string key_hash;
  auto& k = c.stmt("SELECT api_key_hash FROM nodes WHERE id = ?");
  k.bind(1, node_id);
  if (k.step() && !k.column(0).is_null()) key_hash = k.column(0).as_text();
  k.reset();
  auto& r = c.stmt("UPDATE nodes SET api_key_hash = NULL WHERE id = ?");
  r.bind(1, node_id);
  r.run();
  return key_hash;
}

// Deletes node `node_id` in `c` (lib/tasks, removing a node: issue 15), with
// what cascades from it (stats, sites, backups, its device, PoOT and network
// rows; tasks and attempts keep their history without the node). Returns its
// API key's hash ("" when it had none): after the commit, call
// forget_node_key() with it and forget_nodes() with the id. Errors:
// not_found (node_not_found); conflict when payouts name the node (money
// records keep their node, as for expired join requests).
inline std::string delete_node(Conn& c, std::int64_t node_id) {
  auto& k = c.stmt("SELECT api_key_hash FROM nodes WHERE id = ?");
  k.bind(1, node_id);
  if (!k.step()) throw Error(Errc::not_found, Reason::node_not_found, "Node not found");
  const std::string key_hash = k.column(0).is_null() ? std::string() : k.column(0).as_text();
  k.reset();
  auto& p = c.stmt("SELECT 1 FROM payouts WHERE node_id = ? LIMIT 1");
  p.bind(1, node_id);
  if (p.step())
    throw Error(Errc::conflict, "Node has payout records, which keep their node; cordon it instead");
  p.reset();
  auto& d = c.stmt("DELETE FROM nodes WHERE id = ?");
  d.bind(1, node_id);
  d.run();
  return key_hash;
}

// The id of the node with uid `uid`, in `c`. Errors: not_found (node_not_found).
inline std::int64_t node_id_of_uid(Conn& c, std::string_view uid) {
  auto& q = c.stmt("SELECT id FROM nodes WHERE uid = ?");
  q.bind(1, std::string(uid));
  if (!q.step()) throw Error(Errc::not_found, Reason::node_not_found, "Node not found");
  const auto id = q.column(0).as_int64();
  q.reset();
  return id;
}

// Drops a revoked key from the in-memory key cache: it no longer
// authenticates. Call after the commit.
inline void forget_node_key(ClusterCore& core, const std::string& key_hash) {
  if (!key_hash.empty()) core.node_cache().forget_key(key_hash);
}

}  // namespace lucid::detail
