// Helpers shared by the nodes capability's source files. Internal.
#pragma once

#include <arpa/inet.h>

#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "core/cluster_core.hpp"
#include "lucidnode/error.hpp"
#include "lucidnode/nodes.hpp"
#include "util/utf8.hpp"

namespace lucid::detail {

constexpr std::string_view kCodeAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
constexpr std::size_t kCodeLength = 5;
constexpr const char* kApiKeyPrefix = "lnk_";

[[noreturn]] inline void invalid(const std::string& field, const std::string& msg) {
  throw Error(Errc::invalid_argument, msg, field);
}

inline std::string now_text(const ClusterCore& core) { return format_rfc3339(core.clock->now(), true); }

inline Timestamp parse_stored(const std::string& s) {
  auto t = parse_rfc3339(s);
  return t ? *t : Timestamp{};
}

inline std::optional<Timestamp> parse_stored_opt(const detail::Column& c) {
  if (c.is_null()) return std::nullopt;
  return parse_stored(c.as_text());
}

inline std::string blob(const Digest& d) { return std::string(reinterpret_cast<const char*>(d.data()), d.size()); }

inline bool has_control_chars(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

inline void check_text(const std::string& field, std::string_view v, std::size_t max, bool required) {
  if (required && v.empty()) invalid(field, field + " is required");
  if (utf8_length(v) > max) invalid(field, field + " must be at most " + std::to_string(max) + " characters");
  if (has_control_chars(v)) invalid(field, field + " must not contain control characters");
}

inline void check_range(const std::string& field, double v, double lo, double hi) {
  if (!std::isfinite(v) || v < lo || v > hi)
    invalid(field, field + " must be between " + std::to_string(static_cast<std::int64_t>(lo)) + " and " +
                       std::to_string(static_cast<std::int64_t>(hi)));
}

inline double round_to(double v, int decimals) {
  const double f = std::pow(10.0, decimals);
  return std::round(v * f) / f;
}

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
  return core.clock->now() - *last_seen > core.opts.stale_after ? Liveness::stale : Liveness::online;
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
  " (SELECT score FROM poot_scores WHERE node_id = n.id)"                                                    \
  " FROM nodes n LEFT JOIN pools p ON p.id = n.pool_id "

constexpr const char* kSelectNodeById = LUCID_NODE_SELECT "WHERE n.id = ?";
constexpr const char* kSelectNodePage = LUCID_NODE_SELECT "ORDER BY n.id LIMIT ? OFFSET ?";
// Filters are NULL for "any": one statement serves every combination.
constexpr const char* kSelectNodeQuery =
    LUCID_NODE_SELECT "WHERE (?1 IS NULL OR n.lifecycle = ?1) AND (?2 IS NULL OR p.uid = ?2) ORDER BY n.id LIMIT ?3 OFFSET ?4";
constexpr const char* kCountNodeQuery =
    "SELECT COUNT(*) FROM nodes n LEFT JOIN pools p ON p.id = n.pool_id"
    " WHERE (?1 IS NULL OR n.lifecycle = ?1) AND (?2 IS NULL OR p.uid = ?2)";

template <class T>
std::optional<T> opt_col(detail::Statement& q, int i);
template <>
inline std::optional<std::int64_t> opt_col(detail::Statement& q, int i) {
  if (q.column(i).is_null()) return std::nullopt;
  return q.column(i).as_int64();
}
template <>
inline std::optional<double> opt_col(detail::Statement& q, int i) {
  if (q.column(i).is_null()) return std::nullopt;
  return q.column(i).as_double();
}
template <>
inline std::optional<std::string> opt_col(detail::Statement& q, int i) {
  if (q.column(i).is_null()) return std::nullopt;
  return q.column(i).as_text();
}

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
  (void)core;
  return n;
}

inline std::string new_uid(const char* prefix) { return prefix + to_hex(random_bytes(8)); }

inline std::int64_t unix_us(Timestamp t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
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
  return format_rfc3339(core.clock->now() - core.opts.pending_join_ttl, true);
}
// A WHERE condition on nodes: not an expired pending request (?2 = join_deadline()).
#define LUCID_NOT_EXPIRED_JOIN "NOT (status = 'pending' AND created_at <= ?2)"

// Deletes, in `c`, the pending join requests older than
// Options::pending_join_ttl and returns their ids; call forget_nodes() with
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
  {
    std::unique_lock lock(core.nodes_state.mu);
    for (auto id : ids) {
      core.nodes_state.cards.erase(id);
      core.nodes_state.live.erase(id);
    }
  }
  for (auto id : ids) core.bus.publish({EventKind::node_updated, id});
}

inline void require_node(Conn& c, std::int64_t node_id) {
  auto& q = c.stmt("SELECT 1 FROM nodes WHERE id = ?");
  q.bind(1, static_cast<std::int64_t>(node_id));
  if (!q.step()) throw Error(Errc::not_found, "Node not found");
  q.reset();
}

}  // namespace lucid::detail
