// The node-management view of nodes: uids, names, the lifecycle state
// machine, hardware and location, resources and metrics.
#include <algorithm>
#include <array>

#include "nodes/node_cache.hpp"
#include "nodes/node_rows.hpp"
#include "pools/pool_rules.hpp"
#include "util/ids.hpp"
#include "util/utf8.hpp"
#include "util/enum_names.hpp"

namespace lucid {

using namespace detail;

namespace {
constexpr EnumNames<Lifecycle, 6> kLifecycleNames{{{Lifecycle::inactive, "inactive"},
                                                   {Lifecycle::starting, "starting"},
                                                   {Lifecycle::active, "active"},
                                                   {Lifecycle::stopping, "stopping"},
                                                   {Lifecycle::maintenance, "maintenance"},
                                                   {Lifecycle::error, "error"}}};
constexpr EnumNames<NodeType, 4> kNodeTypeNames{{{NodeType::worker, "worker"},
                                                 {NodeType::validator, "validator"},
                                                 {NodeType::storage, "storage"},
                                                 {NodeType::compute, "compute"}}};
constexpr EnumNames<MetricType, 4> kMetricNames{
    {{MetricType::cpu, "cpu"}, {MetricType::memory, "memory"}, {MetricType::disk, "disk"}, {MetricType::network, "network"}}};
}  // namespace

const char* lifecycle_name(Lifecycle l) noexcept { return enum_name(kLifecycleNames, l, "inactive"); }
std::optional<Lifecycle> parse_lifecycle(std::string_view s) { return parse_enum(kLifecycleNames, s); }
const char* node_type_name(NodeType t) noexcept { return enum_name(kNodeTypeNames, t, "worker"); }
std::optional<NodeType> parse_node_type(std::string_view s) { return parse_enum(kNodeTypeNames, s); }
const char* metric_type_name(MetricType t) noexcept { return enum_name(kMetricNames, t, "cpu"); }
std::optional<MetricType> parse_metric_type(std::string_view s) { return parse_enum(kMetricNames, s); }

namespace {

[[noreturn]] void node_not_found() { throw Error(Errc::not_found, Reason::node_not_found, "Node not found"); }

void check_node_uid(std::string_view uid) {
  if (!valid_node_uid(uid)) node_not_found();
}

// A node's name is free text (issue 15: "separate from the hostname"), so
// operators may name machines in any script; bounded in code points by the
// document's Node.name maxLength.
constexpr std::size_t kMaxNodeName = 100;

void check_name(const std::string& field, const std::string& name) {
  if (!utf8_valid(name)) invalid(field, field + " must be valid UTF-8");
  check_text(field, name, kMaxNodeName, true);
}

// Whether `s` can be a hostname as joins accept it (1..253 of [A-Za-z0-9._-],
// alphanumeric at both ends).
bool hostname_shaped(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_') return false;
  return std::isalnum(static_cast<unsigned char>(s.front())) && std::isalnum(static_cast<unsigned char>(s.back()));
}

void validate(const HardwareInfo& h) {
  if (h.cpu_cores && (*h.cpu_cores < 1 || *h.cpu_cores > 4096)) invalid("hardware_info.cpu_cores", "cpu_cores must be 1..4096");
  if (h.memory_gb) check_range("hardware_info.memory_gb", *h.memory_gb, 0, 1e6);
  if (h.storage_gb) check_range("hardware_info.storage_gb", *h.storage_gb, 0, 1e9);
  if (h.gpu_count && (*h.gpu_count < 0 || *h.gpu_count > 64)) invalid("hardware_info.gpu_count", "gpu_count must be 0..64");
  if (h.gpu_model) check_text("hardware_info.gpu_model", *h.gpu_model, 100, false);
  if (h.architecture) check_text("hardware_info.architecture", *h.architecture, 32, false);
  if (h.os) check_text("hardware_info.os", *h.os, 100, false);
}

void validate(const NodeLocation& l) {
  if (l.region) check_text("location.region", *l.region, 64, false);
  if (l.city) check_text("location.city", *l.city, 100, false);
  if (l.country) {
    const auto& c = *l.country;
    if (c.size() != 2 || !std::isupper(static_cast<unsigned char>(c[0])) || !std::isupper(static_cast<unsigned char>(c[1])))
      invalid("location.country", "country must be an ISO 3166-1 alpha-2 code such as DE");
  }
  if (l.latitude) check_range("location.latitude", *l.latitude, -90, 90);
  if (l.longitude) check_range("location.longitude", *l.longitude, -180, 180);
}

template <class T>
void bind_opt(detail::Statement& q, int i, const std::optional<T>& v) {
  if (v) q.bind(i, *v); else q.bind(i, nullptr);
}

// Binds hardware to ?first..?first+6 and location to ?first+7..?first+11.
void bind_hw_loc(detail::Statement& q, int first, const HardwareInfo& h, const NodeLocation& l) {
  bind_opt(q, first, h.cpu_cores);
  bind_opt(q, first + 1, h.memory_gb);
  bind_opt(q, first + 2, h.storage_gb);
  bind_opt(q, first + 3, h.gpu_count);
  bind_opt(q, first + 4, h.gpu_model);
  bind_opt(q, first + 5, h.architecture);
  bind_opt(q, first + 6, h.os);
  bind_opt(q, first + 7, l.region);
  bind_opt(q, first + 8, l.country);
  bind_opt(q, first + 9, l.city);
  bind_opt(q, first + 10, l.latitude);
  bind_opt(q, first + 11, l.longitude);
}

std::optional<Node> find_by_uid(const ClusterCore& core, Conn& c, std::string_view uid) {
  auto& q = c.stmt(LUCID_NODE_SELECT "WHERE n.uid = ?");
  q.bind(1, std::string(uid));
  if (!q.step()) return std::nullopt;
  return read_node(core, q);
}

void set_card_lifecycle(ClusterCore& core, std::int64_t id, Lifecycle l) { core.node_cache().set_lifecycle(id, l); }

void attach_live(ClusterCore& core, Node& n) { core.node_cache().attach_live(n); }

}  // namespace

std::int64_t Nodes::resolve(std::string_view uid) {
  check_node_uid(uid);
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT id FROM nodes WHERE uid = ?");
    q.bind(1, std::string(uid));
    if (!q.step()) node_not_found();
    return q.column(0).as_int64();
  });
}

Node Nodes::create(const NodeCreate& req, std::string* code_out, std::string* join_secret_out) {
  check_name("name", req.name);
  // Without a hostname, a name shaped like one is the hostname too (as
  // before issue 15); any other name (free text) leaves the hostname to be
  // the node's uid, set below once it is drawn.
  const bool hostname_from_uid = req.hostname.empty() && !hostname_shaped(req.name);
  std::string hostname = req.hostname.empty() ? req.name : req.hostname;
  if (!hostname_from_uid) {
    check_text("hostname", hostname, 253, true);
    for (char& ch : hostname) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_')
        invalid("hostname", "hostname may contain only letters, digits, '.', '-' and '_'");
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    if (!std::isalnum(static_cast<unsigned char>(hostname.front())) ||
        !std::isalnum(static_cast<unsigned char>(hostname.back())))
      invalid("hostname", "hostname must start and end with a letter or digit");
  }
  validate(req.hardware);
  validate(req.location);

  auto& core = core_;
  std::int64_t id = 0;
  std::string code, secret;
  for (int attempt = 0;; ++attempt) {
    try {
      id = core.store->write([&](Conn& c) {
        const std::string uid = new_uid("node_");
        if (hostname_from_uid) hostname = uid;
        auto& dup = c.stmt("SELECT 1 FROM nodes WHERE name = ? OR hostname = ?");
        dup.bind(1, req.name);
        dup.bind(2, hostname);
        if (dup.step()) throw Error(Errc::conflict, Reason::node_exists, "Node already exists");
        dup.reset();
        const std::string salt = random_bytes(16);
        code = derive_code(core, salt);
        // The code alone does not collect the key: the admin hands the agent
        // this secret with it (docs/decisions.md, "Join secrets").
        secret = new_join_secret();
        const std::string sh = join_secret_hash(secret);
        const std::string h = code_lookup_hash(core, code);
        const std::string now = now_text(core);
        auto& ins = c.stmt(
            "INSERT INTO nodes(uuid, hostname, status, code_salt, code_hash, storage_quota_gb, created_at,"
            " approved_at, uid, name, lifecycle, lifecycle_at, node_type, updated_at,"
            " hw_cpu_cores, hw_memory_gb, hw_storage_gb, hw_gpu_count, hw_gpu_model, hw_architecture, hw_os,"
            " loc_region, loc_country, loc_city, loc_latitude, loc_longitude, join_secret_hash)"
            " VALUES (?1, ?2, 'active', ?3, ?4, ?5, ?6, ?6, ?7, ?8, 'inactive', ?6, ?9, ?6,"
            " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22) RETURNING id");
        ins.bind(1, random_uuid());
        ins.bind(2, hostname);
        ins.bind_blob(3, salt);
        ins.bind_blob(4, h);
        ins.bind(5, core.opts.nodes.default_quota_gb);
        ins.bind(6, now);
        ins.bind(7, uid);
        ins.bind(8, req.name);
        ins.bind(9, node_type_name(req.node_type));
        bind_hw_loc(ins, 10, req.hardware, req.location);
        ins.bind_blob(22, sh);
        const auto new_id = ins.run_returning_id();
        if (!req.pool_uid.empty()) detail::pool_add_node(core, c, req.pool_uid, new_id, 50);
        core.node_cache().put_card(new_id, {hostname, NodeStatus::active, false, Lifecycle::inactive, false, std::nullopt});
        return new_id;
      });
      break;
    } catch (const Error& e) {
      if (e.code() == Errc::storage && e.message().find("UNIQUE") != std::string::npos && attempt < 5) continue;
      throw;
    }
  }
  if (code_out) *code_out = code;
  if (join_secret_out) *join_secret_out = secret;
  core.bus.publish({EventKind::node_joined, id});
  return get(id, 0);
}

std::vector<Node> Nodes::query(const NodeQuery& q, std::int64_t* total) {
  if (q.page < 1 || q.page > 1000000) invalid("page", "page must be between 1 and 1000000");
  if (q.limit < 1 || q.limit > 100) invalid("limit", "limit must be between 1 and 100");
  auto nodes = core_.store->read([&](Conn& c) {
    std::vector<Node> out;
    auto bind_filters = [&](detail::Statement& st) {
      if (q.lifecycle) st.bind(1, lifecycle_name(*q.lifecycle)); else st.bind(1, nullptr);
      if (!q.pool_uid.empty()) st.bind(2, q.pool_uid); else st.bind(2, nullptr);
    };
    auto& s = c.stmt(kSelectNodeQuery);
    bind_filters(s);
    s.bind(3, static_cast<std::int64_t>(q.limit));
    s.bind(4, static_cast<std::int64_t>((q.page - 1) * q.limit));
    while (s.step()) out.push_back(read_node(core_, s));
    s.reset();
    if (total) {
      auto& t = c.stmt(kCountNodeQuery);
      bind_filters(t);
      t.step();
      *total = t.column(0).as_int64();
    }
    return out;
  });
  for (auto& n : nodes) {
    attach_live(core_, n);
    n.liveness = liveness_of(core_, n.last_seen);
  }
  return nodes;
}

Node Nodes::get(std::string_view uid) {
  check_node_uid(uid);
  auto n = core_.store->read([&](Conn& c) { return find_by_uid(core_, c, uid); });
  if (!n) node_not_found();
  attach_live(core_, *n);
  n->liveness = liveness_of(core_, n->last_seen);
  return *n;
}

Node Nodes::update(std::string_view uid, const NodeUpdate& req) {
  check_node_uid(uid);
  if (req.name) check_name("name", *req.name);
  if (req.hardware) validate(*req.hardware);
  if (req.location) validate(*req.location);
  if (req.lifecycle && *req.lifecycle != Lifecycle::maintenance && *req.lifecycle != Lifecycle::inactive)
    invalid("status", "status can be set to maintenance or inactive only; use start/stop for the rest");
  auto& core = core_;
  const auto id = core.store->write([&](Conn& c) {
    auto cur = find_by_uid(core, c, uid);
    if (!cur) node_not_found();
    attach_live(core, *cur);
    const std::string now = now_text(core);
    if (req.name && *req.name != cur->name) {
      auto& dup = c.stmt("SELECT 1 FROM nodes WHERE name = ? AND id <> ?");
      dup.bind(1, *req.name);
      dup.bind(2, cur->id);
      if (dup.step()) throw Error(Errc::conflict, Reason::node_exists, "Another node has that name");
      dup.reset();
    }
    Lifecycle next = cur->lifecycle;
    if (req.lifecycle && *req.lifecycle != cur->lifecycle) {
      const Lifecycle from = cur->lifecycle, to = *req.lifecycle;
      const bool ok = (to == Lifecycle::maintenance &&
                       (from == Lifecycle::inactive || from == Lifecycle::active || from == Lifecycle::error)) ||
                      (to == Lifecycle::inactive && from == Lifecycle::maintenance);
      if (!ok)
        throw Error(Errc::conflict, Reason::invalid_node_status,
                    std::string("Cannot change status from ") + lifecycle_name(from) + " to " + lifecycle_name(to));
      next = to;
    }
    const HardwareInfo hw = req.hardware ? *req.hardware : cur->hardware;
    const NodeLocation loc = req.location ? *req.location : cur->location;
    auto& up = c.stmt(
        "UPDATE nodes SET name = ?1, node_type = ?2, lifecycle = ?3,"
        " lifecycle_at = CASE WHEN lifecycle <> ?3 THEN ?4 ELSE lifecycle_at END, updated_at = ?4,"
        " hw_cpu_cores = ?5, hw_memory_gb = ?6, hw_storage_gb = ?7, hw_gpu_count = ?8, hw_gpu_model = ?9,"
        " hw_architecture = ?10, hw_os = ?11, loc_region = ?12, loc_country = ?13, loc_city = ?14,"
        " loc_latitude = ?15, loc_longitude = ?16 WHERE id = ?17");
    up.bind(1, req.name ? *req.name : cur->name);
    up.bind(2, node_type_name(req.node_type ? *req.node_type : cur->node_type));
    up.bind(3, lifecycle_name(next));
    up.bind(4, now);
    bind_hw_loc(up, 5, hw, loc);
    up.bind(17, cur->id);
    up.run();
    // A changed hardware record must still fit the node's pool.
    if (req.hardware && !cur->pool_uid.empty()) detail::pool_check_limits(c, cur->pool_uid);
    set_card_lifecycle(core, cur->id, next);
    return cur->id;
  });
  core.bus.publish({EventKind::node_updated, id});
  return get(uid);
}

LifecycleChange Nodes::start(std::string_view uid) {
  check_node_uid(uid);
  auto& core = core_;
  const auto now = core.clock->now();
  const auto id = core.store->write([&](Conn& c) {
    auto cur = find_by_uid(core, c, uid);
    if (!cur) node_not_found();
    attach_live(core, *cur);
    if (cur->status != NodeStatus::active)
      throw Error(Errc::conflict, Reason::invalid_node_status, "Node is not approved yet");
    if (cur->lifecycle != Lifecycle::inactive && cur->lifecycle != Lifecycle::error)
      throw Error(Errc::conflict, Reason::invalid_node_status,
                  std::string("Node cannot be started from status ") + lifecycle_name(cur->lifecycle));
    auto& up = c.stmt("UPDATE nodes SET lifecycle = 'starting', lifecycle_at = ?1, updated_at = ?1 WHERE id = ?2");
    up.bind(1, format_rfc3339(now, true));
    up.bind(2, cur->id);
    up.run();
    set_card_lifecycle(core, cur->id, Lifecycle::starting);
    return cur->id;
  });
  core.bus.publish({EventKind::node_updated, id});
  return {std::string(uid), Lifecycle::starting, now};
}

LifecycleChange Nodes::stop(std::string_view uid) {
  check_node_uid(uid);
  auto& core = core_;
  const auto now = core.clock->now();
  const auto id = core.store->write([&](Conn& c) {
    auto cur = find_by_uid(core, c, uid);
    if (!cur) node_not_found();
    attach_live(core, *cur);
    if (cur->lifecycle != Lifecycle::active && cur->lifecycle != Lifecycle::starting)
      throw Error(Errc::conflict, Reason::invalid_node_status,
                  std::string("Node cannot be stopped from status ") + lifecycle_name(cur->lifecycle));
    auto& up = c.stmt("UPDATE nodes SET lifecycle = 'stopping', lifecycle_at = ?1, updated_at = ?1 WHERE id = ?2");
    up.bind(1, format_rfc3339(now, true));
    up.bind(2, cur->id);
    up.run();
    set_card_lifecycle(core, cur->id, Lifecycle::stopping);
    return cur->id;
  });
  core.bus.publish({EventKind::node_updated, id});
  return {std::string(uid), Lifecycle::stopping, now};
}

namespace {

// Sets node `uid`'s cordon and drain deadline in one transaction (the
// cache with it, in commit order), then tells subscribers (the tasks
// scheduler among them). `deadline`: the new drain deadline; nullopt with
// `keep_deadline`: the current one stays; nullopt otherwise: not draining.
void set_cordon(ClusterCore& core, std::string_view uid, bool cordoned, std::optional<Timestamp> deadline,
                bool keep_deadline) {
  check_node_uid(uid);
  const auto id = core.store->write([&](Conn& c) {
    const auto node = node_id_of_uid(c, uid);
    auto& up = c.stmt(
        "UPDATE nodes SET cordoned = ?1, drain_deadline = CASE WHEN ?5 = 1 THEN drain_deadline ELSE ?2 END,"
        " updated_at = ?3 WHERE id = ?4 RETURNING drain_deadline");
    up.bind(1, cordoned ? 1 : 0);
    if (deadline) up.bind(2, format_rfc3339(*deadline, true)); else up.bind(2, nullptr);
    up.bind(3, now_text(core));
    up.bind(4, node);
    up.bind(5, keep_deadline ? 1 : 0);
    std::optional<Timestamp> now_deadline;
    if (up.step()) now_deadline = parse_stored_opt(up.column(0));
    up.reset();
    core.node_cache().set_cordon(node, cordoned, now_deadline);
    return node;
  });
  core.bus.publish({EventKind::node_updated, id});
}

}  // namespace

Node Nodes::cordon(std::string_view uid) {
  // A cordon of a draining node keeps its deadline: a drain is a cordon with more.
  set_cordon(core_, uid, true, std::nullopt, true);
  return get(uid);
}

Node Nodes::uncordon(std::string_view uid) {
  set_cordon(core_, uid, false, std::nullopt, false);
  return get(uid);
}

Node Nodes::drain(std::string_view uid, std::chrono::seconds deadline) {
  if (deadline < std::chrono::seconds(1) || deadline > std::chrono::hours(24))
    invalid("deadline_seconds", "deadline_seconds must be between 1 and 86400");
  set_cordon(core_, uid, true, core_.clock->now() + deadline, false);
  return get(uid);
}

void Nodes::sweep_lifecycle() {
  auto& core = core_;
  const auto now = core.clock->now();
  const std::string now_s = format_rfc3339(now, true);
  const std::string deadline = format_rfc3339(now - core.opts.nodes.start_timeout, true);
  std::vector<std::pair<std::int64_t, Lifecycle>> changed;
  std::vector<std::int64_t> expired;
  core.store->write([&](Conn& c) {
    expired = delete_expired_joins(core, c);
    // stopping completes on the next sweep: the node is told by its status
    // and stops taking work; nothing else has to be waited for.
    auto& stopping = c.stmt("SELECT id FROM nodes WHERE lifecycle = 'stopping'");
    while (stopping.step()) changed.emplace_back(stopping.column(0).as_int64(), Lifecycle::inactive);
    stopping.reset();
    // starting with no stats report since the start, past the timeout.
    auto& late = c.stmt("SELECT id FROM nodes WHERE lifecycle = 'starting' AND lifecycle_at <= ?");
    late.bind(1, deadline);
    while (late.step()) changed.emplace_back(late.column(0).as_int64(), Lifecycle::error);
    late.reset();
    for (auto& [id, to] : changed) {
      auto& up = c.stmt(
          "UPDATE nodes SET lifecycle = ?1, lifecycle_at = ?2, updated_at = ?2 WHERE id = ?3"
          " AND lifecycle IN ('stopping', 'starting')");
      up.bind(1, lifecycle_name(to));
      up.bind(2, now_s);
      up.bind(3, id);
      up.run();
      set_card_lifecycle(core, id, to);
    }
  });
  forget_nodes(core, expired);
  for (auto& [id, to] : changed) core.bus.publish({EventKind::node_updated, id});
}

NodeResources Nodes::resources(std::string_view uid, std::chrono::seconds range) {
  if (range.count() < 1 || range > std::chrono::hours(24 * 30)) invalid("time_range", "time_range must be 1s..30d");
  const auto id = resolve(uid);
  flush_stats();
  NodeResources r;
  r.uid = std::string(uid);
  r.range = range;
  const auto since = unix_us(core_.clock->now() - range);
  core_.store->read([&](Conn& c) {
    auto& q = c.stmt(
        "SELECT COUNT(*), AVG(cpu_usage), AVG(memory_percent), AVG(disk_usage),"
        " MAX(cpu_usage), MAX(memory_percent), MAX(disk_usage)"
        " FROM node_stats WHERE node_id = ? AND at_us >= ?");
    q.bind(1, id);
    q.bind(2, since);
    q.step();
    r.sample_count = q.column(0).as_int64();
    r.average = {opt_col<double>(q, 1), opt_col<double>(q, 2), opt_col<double>(q, 3)};
    r.peak = {opt_col<double>(q, 4), opt_col<double>(q, 5), opt_col<double>(q, 6)};
  });
  Node n = get(uid);
  if (!n.recent_stats.empty()) r.current = n.recent_stats.front();
  r.hardware = n.hardware;
  return r;
}

std::vector<MetricSeries> Nodes::metrics(std::string_view uid, std::optional<MetricType> type,
                                         std::chrono::seconds granularity, Timestamp start, Timestamp end) {
  if (granularity.count() < 1) invalid("granularity", "granularity must be positive");
  if (end <= start) invalid("end_time", "end_time must be after start_time");
  if ((end - start) / granularity > 10000)
    invalid("granularity", "at most 10000 buckets: widen the granularity or narrow the range");
  const auto id = resolve(uid);
  flush_stats();
  std::vector<MetricType> types = type ? std::vector<MetricType>{*type}
                                       : std::vector<MetricType>{MetricType::cpu, MetricType::memory, MetricType::disk};
  const std::int64_t g = granularity.count() * 1000000;
  const std::int64_t from = unix_us(start), to = unix_us(end);
  std::vector<MetricSeries> out;
  core_.store->read([&](Conn& c) {
    for (auto t : types) {
      MetricSeries series{t, {}};
      // Network is in the document's enum but agents report no network
      // figures: the series is honestly empty.
      const char* sql = nullptr;
      switch (t) {
        case MetricType::cpu:
          sql = "SELECT (at_us - ?3) / ?4, MIN(cpu_usage), AVG(cpu_usage), MAX(cpu_usage), COUNT(*) FROM node_stats"
                " WHERE node_id = ?1 AND at_us >= ?3 AND at_us < ?2 GROUP BY 1 ORDER BY 1";
          break;
        case MetricType::memory:
          sql = "SELECT (at_us - ?3) / ?4, MIN(memory_percent), AVG(memory_percent), MAX(memory_percent), COUNT(memory_percent)"
                " FROM node_stats WHERE node_id = ?1 AND at_us >= ?3 AND at_us < ?2 AND memory_percent IS NOT NULL"
                " GROUP BY 1 ORDER BY 1";
          break;
        case MetricType::disk:
          sql = "SELECT (at_us - ?3) / ?4, MIN(disk_usage), AVG(disk_usage), MAX(disk_usage), COUNT(*) FROM node_stats"
                " WHERE node_id = ?1 AND at_us >= ?3 AND at_us < ?2 GROUP BY 1 ORDER BY 1";
          break;
        case MetricType::network: break;
      }
      if (sql) {
        auto& q = c.stmt(sql);
        q.bind(1, id);
        q.bind(2, to);
        q.bind(3, from);
        q.bind(4, g);
        while (q.step()) {
          MetricBucket b;
          b.start = start + std::chrono::microseconds(q.column(0).as_int64() * g);
          b.min = q.column(1).as_double();
          b.avg = q.column(2).as_double();
          b.max = q.column(3).as_double();
          b.count = q.column(4).as_int64();
          series.buckets.push_back(b);
        }
      }
      out.push_back(std::move(series));
    }
  });
  return out;
}

}  // namespace lucid
