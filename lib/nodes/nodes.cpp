// Nodes: registration, keys, stats, liveness, quotas, sites, backups.
#include "lucidnode/nodes.hpp"

#include <arpa/inet.h>

#include <cmath>
#include <unordered_set>

#include "nodes/node_cache.hpp"
#include "nodes/node_rows.hpp"
#include "util/enum_names.hpp"

namespace lucid {

using namespace detail;

const char* node_status_name(NodeStatus s) noexcept { return s == NodeStatus::active ? "active" : "pending"; }

namespace {
constexpr EnumNames<Liveness, 3> kLivenessNames{
    {{Liveness::online, "online"}, {Liveness::stale, "stale"}, {Liveness::offline, "offline"}}};
}  // namespace

const char* liveness_name(Liveness l) noexcept { return enum_name(kLivenessNames, l, "offline"); }

Nodes::Nodes(detail::ClusterCore& core) : core_(core), cache_(std::make_unique<detail::NodeCache>()) {
  core_.set_node_cache(cache_.get());
}
Nodes::~Nodes() { core_.set_node_cache(nullptr); }

JoinResult Nodes::request_join(const JoinRequest& req_in) {
  JoinRequest req = req_in;
  check_text("hostname", req.hostname, 253, true);
  for (char& c : req.hostname) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
      invalid("hostname", "hostname may contain only letters, digits, '.', '-' and '_'");
    // Host names are case-insensitive (RFC 4343): one node per name, however spelled.
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (!std::isalnum(static_cast<unsigned char>(req.hostname.front())) ||
      !std::isalnum(static_cast<unsigned char>(req.hostname.back())))
    invalid("hostname", "hostname must start and end with a letter or digit");
  check_ip_address(req.ip_address);
  check_text("system_info", req.system_info, 1024, false);
  check_join_secret(req.join_secret);

  auto& core = core_;
  bool created = false;
  JoinResult result;
  std::vector<std::int64_t> expired;
  for (int attempt = 0;; ++attempt) {
    try {
      result = core.store->write([&](Conn& c) {
        JoinResult r;
        // An expired request is gone before anyone asks for its hostname.
        expired = delete_expired_joins(core, c);
        auto& q = c.stmt(
            "SELECT id, status, code_salt, join_secret_hash FROM nodes WHERE hostname = ?"
            " ORDER BY status = 'active' DESC, id DESC LIMIT 1");
        q.bind(1, req.hostname);
        if (q.step()) {
          r.request_id = q.column(0).as_int64();
          if (q.column(1).as_text() == "active") {
            r.registration_code = "ACTIVE";
            r.already_active = true;
            return r;
          }
          // The same pending hostname gets its code back only from its
          // joiner: anyone else asking would learn the code to approve.
          if (!join_secret_matches(q.column(3), req.join_secret))
            throw Error(Errc::conflict,
                        req.join_secret.empty()
                            ? "A join request for this hostname is pending; re-joining needs its join_secret"
                            : "join_secret does not match the pending join request for this hostname");
          r.registration_code = derive_code(core, q.column(2).as_text());
          return r;
        }
        auto& cnt = c.stmt("SELECT COUNT(*) FROM nodes WHERE status = 'pending'");
        cnt.step();
        if (cnt.column(0).as_int64() >= core.opts.nodes.max_pending_joins)
          throw Error(Errc::resource_exhausted, "too many pending join requests; try again later");
        const std::string salt = detail::random_bytes(16);
        const std::string code = derive_code(core, salt);
        const std::string secret = new_join_secret();
        const std::string uid = new_uid("node_");
        // The management view's name is the hostname, unless an admin already
        // gave that name to another node.
        auto& taken = c.stmt("SELECT 1 FROM nodes WHERE name = ?");
        taken.bind(1, req.hostname);
        const std::string name = taken.step() ? uid : req.hostname;
        taken.reset();
        auto& ins = c.stmt(
            "INSERT INTO nodes(uuid, hostname, ip_address, system_info, status, code_salt, code_hash,"
            " storage_quota_gb, created_at, uid, name, updated_at, join_secret_hash)"
            " VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
        const std::string now = now_text(core);
        ins.bind(9, uid);
        ins.bind(10, name);
        ins.bind(11, now);
        ins.bind(1, random_uuid());
        ins.bind(2, req.hostname);
        ins.bind(3, req.ip_address);
        ins.bind(4, req.system_info);
        ins.bind_blob(5, salt);
        const std::string h = code_lookup_hash(core, code);
        ins.bind_blob(6, h);
        ins.bind(7, core.opts.nodes.default_quota_gb);
        ins.bind(8, now);
        const std::string sh = join_secret_hash(secret);
        ins.bind_blob(12, sh);
        r.request_id = ins.run_returning_id();
        r.registration_code = code;
        r.join_secret = secret;
        cache_->put_card(r.request_id, {req.hostname, NodeStatus::pending, false, Lifecycle::inactive, false, std::nullopt});
        created = true;
        return r;
      });
      break;
    } catch (const Error& e) {
      // A code that collides with another pending request's (the UNIQUE
      // index on code_hash) is drawn again.
      if (e.code() == Errc::storage && e.message().find("UNIQUE") != std::string::npos && attempt < 5) continue;
      throw;
    }
  }
  forget_nodes(core, expired);
  if (created) core.bus.publish({EventKind::node_joined, result.request_id});
  return result;
}

CodePoll Nodes::poll_by_code(std::string_view code_in, std::string_view join_secret) {
  const std::string code = normalize_code(code_in);
  check_join_secret(join_secret);
  auto& core = core_;
  CodePoll out = core.store->write([&](Conn& c) {
    // An expired request is unknown at once, before the sweep removes it.
    auto& q = c.stmt("SELECT id, status, join_secret_hash FROM nodes WHERE code_hash = ?1 AND " LUCID_NOT_EXPIRED_JOIN);
    const std::string h = code_lookup_hash(core, code);
    q.bind_blob(1, h);
    q.bind(2, join_deadline(core));
    if (!q.step()) throw Error(Errc::not_found, "Registration code not found");
    const auto id = q.column(0).as_int64();
    CodePoll poll;
    if (q.column(1).as_text() != "active") return poll;
    poll.status = NodeStatus::active;
    // The key goes only to the joiner: without the secret the status is all
    // a poll learns, and the one-time delivery is not consumed.
    if (join_secret.empty()) return poll;
    if (!join_secret_matches(q.column(2), join_secret))
      throw Error(Errc::permission_denied, "join_secret does not match this registration code");
    q.reset();
    // Issued at first collection, not at approval: the key exists in clear
    // only in this response.
    std::string key = std::string(kApiKeyPrefix) + detail::base64url_encode(detail::random_bytes(32));
    const std::string kh = blob(detail::sha256(key));
    auto& up = c.stmt(
        "UPDATE nodes SET api_key_hash = ?, code_salt = NULL, code_hash = NULL, join_secret_hash = NULL WHERE id = ?");
    up.bind_blob(1, kh);
    up.bind(2, static_cast<std::int64_t>(id));
    up.run();
    cache_->put_key(kh, id);
    poll.api_key = std::move(key);
    return poll;
  });
  // After the commit: the other replicas' caches learn the new key (the
  // node may report to any of them next).
  if (out.api_key) core.broadcast_change("nodes");
  return out;
}

NodeStatus Nodes::status_of_request(std::int64_t request_id) {
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT status FROM nodes WHERE id = ?1 AND " LUCID_NOT_EXPIRED_JOIN);
    q.bind(1, static_cast<std::int64_t>(request_id));
    q.bind(2, join_deadline(core_));
    if (!q.step()) throw Error(Errc::not_found, "Join request not found");
    return q.column(0).as_text() == "active" ? NodeStatus::active : NodeStatus::pending;
  });
}

Node Nodes::approve(std::int64_t node_id) { return approve(node_id, std::string()); }

Node Nodes::approve(std::int64_t node_id, const std::string& ip_address) {
  auto& core = core_;
  core.store->write([&](Conn& c) {
    // An approved node is starting: its first stats report makes it active.
    auto& up = c.stmt(
        "UPDATE nodes SET status = 'active', approved_at = ?1,"
        // A node an admin put in maintenance stays there until taken out.
        " lifecycle = CASE WHEN lifecycle = 'maintenance' THEN 'maintenance' ELSE 'starting' END,"
        " lifecycle_at = CASE WHEN lifecycle = 'maintenance' THEN lifecycle_at ELSE ?1 END,"
        " updated_at = ?1 WHERE id = ?2 AND status = 'pending' AND created_at > ?3");
    up.bind(1, now_text(core));
    up.bind(2, static_cast<std::int64_t>(node_id));
    up.bind(3, join_deadline(core));  // an expired request cannot be approved
    up.run();
    if (c.changes() == 0) {
      auto& q = c.stmt("SELECT 1 FROM nodes WHERE id = ?1 AND " LUCID_NOT_EXPIRED_JOIN);
      q.bind(1, static_cast<std::int64_t>(node_id));
      q.bind(2, join_deadline(core));
      if (!q.step()) throw Error(Errc::not_found, "Node not found");
      throw Error(Errc::conflict, "Node is already active");
    }
    if (!ip_address.empty()) {
      auto& ip = c.stmt("UPDATE nodes SET ip_address = ? WHERE id = ?");
      ip.bind(1, ip_address);
      ip.bind(2, static_cast<std::int64_t>(node_id));
      ip.run();
    }
    cache_->mark_approved(node_id);
  });
  core.principals_changed();  // its key, if any, may log in now
  core.bus.publish({EventKind::node_approved, node_id});
  return get(node_id, 1);
}

Node Nodes::approve_by_code(std::string_view code_in, std::string_view ip_address) {
  const std::string code = normalize_code(code_in);
  check_ip_address(ip_address);
  const std::string h = code_lookup_hash(core_, code);
  const auto id = core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT id FROM nodes WHERE code_hash = ?1 AND " LUCID_NOT_EXPIRED_JOIN);
    q.bind_blob(1, h);
    q.bind(2, join_deadline(core_));
    if (!q.step()) throw Error(Errc::not_found, "No pending node with that registration code");
    return q.column(0).as_int64();
  });
  // The approver's address and the approval are one transaction: a refused
  // approval (expired, already active) leaves the address as it was.
  return approve(id, std::string(ip_address));
}

std::vector<Node> Nodes::list(const Page& page, std::optional<NodeStatus> status) {
  check_page(page, 5000);
  auto nodes = core_.store->read([&](Conn& c) {
    std::vector<Node> out;
    auto& q = c.stmt(status ? kSelectNodePageByStatus : kSelectNodePage);
    q.bind(1, static_cast<std::int64_t>(page.limit));
    q.bind(2, static_cast<std::int64_t>(page.skip));
    if (status) q.bind(3, std::string_view(node_status_name(*status)));
    while (q.step()) out.push_back(read_node(core_, q));
    return out;
  });
  cache_->attach_latest(nodes);
  for (auto& n : nodes) n.liveness = liveness_of(core_, n.last_seen);
  return nodes;
}

std::int64_t Nodes::count() {
  return core_.store->read([](Conn& c) {
    auto& q = c.stmt("SELECT COUNT(*) FROM nodes");
    q.step();
    return q.column(0).as_int64();
  });
}

Node Nodes::get(std::int64_t node_id, int stats_history) {
  if (stats_history < 0 || stats_history > 10000) invalid("stats_history", "stats_history must be 0..10000");
  flush_stats();  // so the history includes samples still buffered
  Node n = core_.store->read([&](Conn& c) {
    auto& q = c.stmt(kSelectNodeById);
    q.bind(1, static_cast<std::int64_t>(node_id));
    if (!q.step()) throw Error(Errc::not_found, "Node not found");
    Node node = read_node(core_, q);
    q.reset();
    if (stats_history > 0) {
      auto& s = c.stmt(
          "SELECT at, cpu_usage, disk_usage, active_backups, memory_percent, uptime_seconds, disk_total_gb"
          " FROM node_stats WHERE node_id = ? ORDER BY seq DESC LIMIT ?");
      s.bind(1, static_cast<std::int64_t>(node_id));
      s.bind(2, stats_history);
      while (s.step()) node.recent_stats.push_back(read_sample(s, 0));
    }
    return node;
  });
  if (auto seen = cache_->last_seen(n.id)) n.last_seen = seen;
  n.liveness = liveness_of(core_, n.last_seen);
  return n;
}

Node Nodes::set_quota(std::int64_t node_id, double gb) {
  if (!std::isfinite(gb) || gb <= 0 || gb > 1000000)
    invalid("storage_quota_gb", "storage_quota_gb must be greater than 0 and at most 1000000");
  core_.store->write([&](Conn& c) {
    auto& up = c.stmt("UPDATE nodes SET storage_quota_gb = ?, updated_at = ? WHERE id = ?");
    up.bind(1, gb);
    up.bind(2, now_text(core_));
    up.bind(3, static_cast<std::int64_t>(node_id));
    up.run();
    if (c.changes() == 0) throw Error(Errc::not_found, "Node not found");
  });
  core_.bus.publish({EventKind::node_updated, node_id});
  return get(node_id, 0);
}

QuotaStatus Nodes::quota_status(std::int64_t node_id) {
  return core_.store->read([&](Conn& c) {
    QuotaStatus st;
    auto& q = c.stmt("SELECT hostname, storage_quota_gb FROM nodes WHERE id = ?");
    q.bind(1, static_cast<std::int64_t>(node_id));
    if (!q.step()) throw Error(Errc::not_found, "Node not found");
    st.node_id = node_id;
    st.hostname = q.column(0).as_text();
    st.quota_gb = q.column(1).as_double();
    q.reset();
    std::int64_t used = 0;
    auto& s = c.stmt("SELECT id, node_id, name, used_bytes, quota_gb, updated_at FROM sites WHERE node_id = ? ORDER BY id");
    s.bind(1, static_cast<std::int64_t>(node_id));
    while (s.step()) {
      SiteQuota sq;
      sq.site = read_site(s);
      used += sq.site.used_bytes;
      sq.used_gb = round_to(static_cast<double>(sq.site.used_bytes) / kBytesPerGb, 2);
      if (sq.site.quota_gb && *sq.site.quota_gb > 0) {
        // Flags follow the percentage as shown (one decimal), so a site shown
        // at 80.0 % is a warning even if it is a hair below 80.
        const double pct =
            round_to(static_cast<double>(sq.site.used_bytes) / kBytesPerGb / *sq.site.quota_gb * 100.0, 1);
        sq.usage_percent = pct;
        sq.is_over_quota = pct > 100.0;
        sq.is_warning = !sq.is_over_quota && pct >= 80.0;
      }
      st.sites_over_quota += sq.is_over_quota ? 1 : 0;
      st.sites_warning += sq.is_warning ? 1 : 0;
      st.sites.push_back(std::move(sq));
    }
    const double used_gb = static_cast<double>(used) / kBytesPerGb;
    st.used_gb = round_to(used_gb, 2);
    const double pct = st.quota_gb > 0 ? used_gb / st.quota_gb * 100.0 : 0;
    st.usage_percent = round_to(pct, 1);
    st.is_over_quota = used_gb > st.quota_gb;
    return st;
  });
}

std::vector<Site> Nodes::sites(std::int64_t node_id, const Page& page, std::int64_t* total) {
  check_page(page, 1000);
  return core_.store->read([&](Conn& c) {
    require_node(c, node_id);
    std::vector<Site> out;
    auto& q = c.stmt(
        "SELECT id, node_id, name, used_bytes, quota_gb, updated_at FROM sites WHERE node_id = ?"
        " ORDER BY id LIMIT ? OFFSET ?");
    q.bind(1, static_cast<std::int64_t>(node_id));
    q.bind(2, static_cast<std::int64_t>(page.limit));
    q.bind(3, static_cast<std::int64_t>(page.skip));
    while (q.step()) out.push_back(read_site(q));
    q.reset();
    if (total) {
      auto& t = c.stmt("SELECT COUNT(*) FROM sites WHERE node_id = ?");
      t.bind(1, static_cast<std::int64_t>(node_id));
      t.step();
      *total = t.column(0).as_int64();
    }
    return out;
  });
}

std::vector<Backup> Nodes::backups(std::int64_t node_id, const Page& page, std::optional<std::int64_t> site_id,
                                   std::int64_t* total) {
  check_page(page, 500);
  return core_.store->read([&](Conn& c) {
    require_node(c, node_id);
    std::vector<Backup> out;
    // site_id NULL means "all sites": one statement for both cases.
    auto& q = c.stmt(
        "SELECT b.id, b.node_id, b.site_id, COALESCE(s.name, ''), b.filename, b.size_bytes, b.s3_path,"
        " b.created_at, b.backup_type, b.status, b.storage_provider"
        " FROM backups b LEFT JOIN sites s ON s.id = b.site_id"
        " WHERE b.node_id = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR b.site_id = ?2)"
        " ORDER BY b.created_at DESC, b.id DESC LIMIT ?3 OFFSET ?4");
    q.bind(1, static_cast<std::int64_t>(node_id));
    if (site_id) q.bind(2, static_cast<std::int64_t>(*site_id)); else q.bind(2, nullptr);
    q.bind(3, static_cast<std::int64_t>(page.limit));
    q.bind(4, static_cast<std::int64_t>(page.skip));
    while (q.step()) {
      Backup b;
      b.id = q.column(0).as_int64();
      b.node_id = q.column(1).as_int64();
      if (!q.column(2).is_null()) b.site_id = q.column(2).as_int64();
      b.site_name = q.column(3).as_text();
      b.filename = q.column(4).as_text();
      b.size_bytes = q.column(5).as_int64();
      b.s3_path = q.column(6).as_text();
      b.created_at = parse_stored(q.column(7).as_text());
      b.backup_type = q.column(8).as_text();
      b.status = q.column(9).as_text();
      b.storage_provider = q.column(10).as_text();
      out.push_back(std::move(b));
    }
    q.reset();
    if (total) {
      auto& t = c.stmt("SELECT COUNT(*) FROM backups WHERE node_id = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR site_id = ?2)");
      t.bind(1, static_cast<std::int64_t>(node_id));
      if (site_id) t.bind(2, static_cast<std::int64_t>(*site_id)); else t.bind(2, nullptr);
      t.step();
      *total = t.column(0).as_int64();
    }
    return out;
  });
}

std::int64_t Nodes::authenticate_key(std::string_view api_key) {
  if (api_key.empty() || api_key.size() > 256) throw Error(Errc::unauthenticated, "Invalid API key");
  // The map is keyed by SHA-256 of the key: lookup time depends only on the
  // hash, which tells an attacker nothing about any stored key.
  const std::string h = blob(detail::sha256(api_key));
  auto id = cache_->node_for_key(h);
  if (!id) throw Error(Errc::unauthenticated, "Invalid API key");
  return *id;
}

void Nodes::report_stats(std::int64_t node_id, StatsSample s) {
  // A read-only cluster never flushes: accepting the sample would lose it.
  if (core_.opts.read_only) throw Error(Errc::storage, "database is open read-only");
  check_range("cpu_usage", s.cpu_usage, 0, 100);
  check_range("disk_usage", s.disk_usage, 0, 100);
  if (s.active_backups < 0 || s.active_backups > 1000000) invalid("active_backups", "active_backups must be between 0 and 1000000");
  if (s.memory_percent) check_range("memory_percent", *s.memory_percent, 0, 100);
  if (s.uptime_seconds && (*s.uptime_seconds < 0 || *s.uptime_seconds > 10000000000LL))
    invalid("uptime_seconds", "uptime_seconds must be between 0 and 10000000000");
  if (s.disk_total_gb) check_range("disk_total_gb", *s.disk_total_gb, 0, 1e9);
  s.at = core_.clock->now();

  const bool became_active = cache_->record_sample(node_id, s, core_.opts.nodes.stats_queue_limit);
  if (became_active) {
    // Rare (once per start), so written at once rather than behind.
    core_.store->write([&](Conn& c) {
      auto& up = c.stmt(
          "UPDATE nodes SET lifecycle = 'active', lifecycle_at = ?1, updated_at = ?1 WHERE id = ?2 AND lifecycle = 'starting'");
      up.bind(1, format_rfc3339(s.at, true));
      up.bind(2, static_cast<std::int64_t>(node_id));
      up.run();
    });
    core_.bus.publish({EventKind::node_updated, node_id});
  }
  core_.bus.publish({EventKind::node_stats, node_id});
}

void Nodes::flush_stats() {
  if (core_.opts.read_only) return;
  const auto history = core_.opts.nodes.stats_history;
  cache_->flush(core_.opts.nodes.stats_queue_limit, [&](const std::vector<detail::NodeCache::QueuedSample>& batch) {
    core_.store->write([&](Conn& c) {
      std::unordered_map<std::int64_t, const StatsSample*> newest;
      // The stored sequence numbers continue the database's, not this
      // process's counter: with replicas, a node's samples reach several
      // servers, whose counters would collide on the same ring slots.
      // Writers are serialised, so MAX(seq) + 1 is this batch's next.
      std::unordered_map<std::int64_t, std::int64_t> next_seq;
      for (const auto& qs : batch) {
        if (next_seq.count(qs.node_id)) continue;
        auto& m = c.stmt("SELECT COALESCE(MAX(seq), 0) FROM node_stats WHERE node_id = ?");
        m.bind(1, static_cast<std::int64_t>(qs.node_id));
        next_seq[qs.node_id] = m.step() ? m.column(0).as_int64() + 1 : 1;
        m.reset();
      }
      for (const auto& qs : batch) {
        const std::int64_t seq = next_seq[qs.node_id]++;
        auto& ins = c.stmt(
            "INSERT INTO node_stats(node_id, slot, seq, at, cpu_usage, disk_usage, active_backups,"
            " memory_percent, uptime_seconds, disk_total_gb, at_us) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
            // A sample of a node removed since it was queued is dropped, not
            // retried forever against the foreign key.
            " WHERE EXISTS (SELECT 1 FROM nodes WHERE id = ?1)"
            " ON CONFLICT (node_id, slot) DO UPDATE SET seq = excluded.seq, at = excluded.at,"
            " cpu_usage = excluded.cpu_usage, disk_usage = excluded.disk_usage,"
            " active_backups = excluded.active_backups, memory_percent = excluded.memory_percent,"
            " uptime_seconds = excluded.uptime_seconds, disk_total_gb = excluded.disk_total_gb, at_us = excluded.at_us");
        ins.bind(1, static_cast<std::int64_t>(qs.node_id));
        ins.bind(2, static_cast<std::int64_t>(seq % history));
        ins.bind(3, seq);
        ins.bind(4, format_rfc3339(qs.sample.at, true));
        ins.bind(5, qs.sample.cpu_usage);
        ins.bind(6, qs.sample.disk_usage);
        ins.bind(7, static_cast<std::int64_t>(qs.sample.active_backups));
        if (qs.sample.memory_percent) ins.bind(8, *qs.sample.memory_percent); else ins.bind(8, nullptr);
        if (qs.sample.uptime_seconds) ins.bind(9, static_cast<std::int64_t>(*qs.sample.uptime_seconds)); else ins.bind(9, nullptr);
        if (qs.sample.disk_total_gb) ins.bind(10, *qs.sample.disk_total_gb); else ins.bind(10, nullptr);
        ins.bind(11, unix_us(qs.sample.at));
        ins.run();
        newest[qs.node_id] = &qs.sample;
      }
      for (const auto& [id, sample] : newest) {
        auto& up = c.stmt("UPDATE nodes SET last_seen = ? WHERE id = ?");
        up.bind(1, format_rfc3339(sample->at, true));
        up.bind(2, static_cast<std::int64_t>(id));
        up.run();
      }
    });
  });
}

std::vector<Site> Nodes::report_sites(std::int64_t node_id, const std::vector<SiteReport>& sites) {
  if (sites.size() > 1000) invalid("sites", "at most 1000 sites per report");
  std::unordered_set<std::string> seen;
  for (std::size_t i = 0; i < sites.size(); ++i) {
    // Fields are named by their place in the report: "sites.<i>.<field>".
    const auto& s = sites[i];
    const std::string at = "sites." + std::to_string(i) + ".";
    check_text(at + "site_name", s.name, 253, true);
    if (!seen.insert(s.name).second) invalid(at + "site_name", "duplicate site_name: " + s.name);
    if (s.used_bytes < 0 || s.used_bytes > 1000000000000000000LL)
      invalid(at + "used_bytes", "used_bytes must be between 0 and 10^18");
    if (s.quota_gb && (!std::isfinite(*s.quota_gb) || *s.quota_gb <= 0 || *s.quota_gb > 1000000))
      invalid(at + "quota_gb", "quota_gb must be greater than 0 and at most 1000000");
  }
  auto out = core_.store->write([&](Conn& c) {
    require_node(c, node_id);
    const std::string now = now_text(core_);
    for (const auto& s : sites) {
      auto& up = c.stmt(
          "INSERT INTO sites(node_id, name, used_bytes, quota_gb, updated_at) VALUES (?, ?, ?, ?, ?)"
          " ON CONFLICT(node_id, name) DO UPDATE SET used_bytes = excluded.used_bytes,"
          " quota_gb = COALESCE(excluded.quota_gb, sites.quota_gb), updated_at = excluded.updated_at");
      up.bind(1, static_cast<std::int64_t>(node_id));
      up.bind(2, s.name);
      up.bind(3, static_cast<std::int64_t>(s.used_bytes));
      if (s.quota_gb) up.bind(4, *s.quota_gb); else up.bind(4, nullptr);
      up.bind(5, now);
      up.run();
    }
    std::vector<Site> all;
    auto& q = c.stmt("SELECT id, node_id, name, used_bytes, quota_gb, updated_at FROM sites WHERE node_id = ? ORDER BY id");
    q.bind(1, static_cast<std::int64_t>(node_id));
    while (q.step()) all.push_back(read_site(q));
    return all;
  });
  core_.bus.publish({EventKind::node_updated, node_id});
  return out;
}

Backup Nodes::report_backup(std::int64_t node_id, const BackupReport& r) {
  check_text("site_name", r.site_name, 253, false);
  check_text("filename", r.filename, 512, true);
  check_text("s3_path", r.s3_path, 1024, false);
  check_text("storage_provider", r.storage_provider, 128, false);
  if (r.size_bytes < 0 || r.size_bytes > 1000000000000000000LL) invalid("size_bytes", "size_bytes must be between 0 and 10^18");
  if (r.backup_type != "full" && r.backup_type != "incremental" && r.backup_type != "differential")
    invalid("backup_type", "backup_type must be one of full, incremental, differential");
  if (r.status != "SUCCESS" && r.status != "FAILED" && r.status != "RUNNING")
    invalid("status", "status must be one of SUCCESS, FAILED, RUNNING");
  Backup b = core_.store->write([&](Conn& c) {
    require_node(c, node_id);
    Backup out;
    if (!r.site_name.empty()) {
      auto& q = c.stmt("SELECT id FROM sites WHERE node_id = ? AND name = ?");
      q.bind(1, static_cast<std::int64_t>(node_id));
      q.bind(2, r.site_name);
      if (!q.step()) invalid("site_name", "unknown site_name: report the site first");
      out.site_id = q.column(0).as_int64();
      out.site_name = r.site_name;
      q.reset();
    }
    out.node_id = node_id;
    out.filename = r.filename;
    out.size_bytes = r.size_bytes;
    out.s3_path = r.s3_path;
    out.created_at = r.created_at.value_or(core_.clock->now());
    out.backup_type = r.backup_type;
    out.status = r.status;
    out.storage_provider = r.storage_provider;
    auto& ins = c.stmt(
        "INSERT INTO backups(node_id, site_id, filename, size_bytes, s3_path, backup_type, status,"
        " storage_provider, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
    ins.bind(1, static_cast<std::int64_t>(node_id));
    if (out.site_id) ins.bind(2, static_cast<std::int64_t>(*out.site_id)); else ins.bind(2, nullptr);
    ins.bind(3, out.filename);
    ins.bind(4, static_cast<std::int64_t>(out.size_bytes));
    ins.bind(5, out.s3_path);
    ins.bind(6, out.backup_type);
    ins.bind(7, out.status);
    ins.bind(8, out.storage_provider);
    ins.bind(9, format_rfc3339(out.created_at, true));
    out.id = ins.run_returning_id();
    return out;
  });
  core_.bus.publish({EventKind::node_updated, node_id});
  return b;
}

std::vector<Nodes::LiveNode> Nodes::live_view() {
  auto out = cache_->live_nodes();
  for (auto& n : out) n.liveness = liveness_of(core_, n.last_seen);
  return out;
}

Nodes::LiveNode Nodes::live_view(std::int64_t node_id) {
  auto n = cache_->live_node(node_id);
  if (!n) throw Error(Errc::not_found, "Node not found");
  n->liveness = liveness_of(core_, n->last_seen);
  return *n;
}

}  // namespace lucid
