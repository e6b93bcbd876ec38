#include "lucidnode/pools.hpp"

#include "lucidnode/nodes.hpp"
#include "nodes/node_rows.hpp"
#include "pools/pool_rules.hpp"
#include "util/ids.hpp"

namespace lucid {

using namespace detail;

namespace {

[[noreturn]] void pool_not_found() { throw Error(Errc::not_found, Reason::pool_not_found, "Pool not found"); }

Pool read_pool(detail::Statement& q) {
  Pool p;
  p.uid = q.column(0).as_text();
  p.name = q.column(1).as_text();
  p.description = q.column(2).as_text();
  p.node_count = q.column(3).as_int64();
  p.max_nodes = opt_col<std::int64_t>(q, 4);
  p.limits.max_cpu_cores = opt_col<std::int64_t>(q, 5);
  p.limits.max_memory_gb = opt_col<double>(q, 6);
  p.limits.max_storage_gb = opt_col<double>(q, 7);
  p.created_at = parse_stored(q.column(8).as_text());
  p.updated_at = parse_stored(q.column(9).as_text());
  return p;
}

std::optional<Pool> find_pool(Conn& c, std::string_view uid) {
  auto& q = c.stmt("SELECT p.uid, p.name, p.description, (SELECT COUNT(*) FROM nodes WHERE pool_id = p.id),"
                   " p.max_nodes, p.limit_cpu_cores, p.limit_memory_gb, p.limit_storage_gb, p.created_at,"
                   " p.updated_at FROM pools p WHERE p.uid = ?");
  q.bind(1, std::string(uid));
  if (!q.step()) return std::nullopt;
  return read_pool(q);
}

void check_pool_uid(std::string_view uid) {
  if (!detail::valid_pool_uid(uid)) pool_not_found();
}

}  // namespace

namespace detail {

void pool_check_limits(Conn& c, std::string_view pool_uid) {
  auto& q = c.stmt(
      "SELECT p.max_nodes, p.limit_cpu_cores, p.limit_memory_gb, p.limit_storage_gb, COUNT(n.id),"
      " COALESCE(SUM(n.hw_cpu_cores), 0), COALESCE(SUM(n.hw_memory_gb), 0), COALESCE(SUM(n.hw_storage_gb), 0)"
      " FROM pools p LEFT JOIN nodes n ON n.pool_id = p.id WHERE p.uid = ? GROUP BY p.id");
  q.bind(1, std::string(pool_uid));
  if (!q.step()) pool_not_found();
  const auto max_nodes = opt_col<std::int64_t>(q, 0);
  const auto max_cpu = opt_col<std::int64_t>(q, 1);
  const auto max_mem = opt_col<double>(q, 2);
  const auto max_sto = opt_col<double>(q, 3);
  const auto count = q.column(4).as_int64();
  const auto cpu = q.column(5).as_int64();
  const double mem = q.column(6).as_double(), sto = q.column(7).as_double();
  q.reset();
  auto exceeded = [](const std::string& what) {
    throw Error(Errc::resource_exhausted, Reason::resource_limit, "Pool limit exceeded: " + what);
  };
  if (max_nodes && count > *max_nodes) exceeded("max_nodes " + std::to_string(*max_nodes));
  if (max_cpu && cpu > *max_cpu) exceeded("max_cpu_cores " + std::to_string(*max_cpu));
  if (max_mem && mem > *max_mem + 1e-9) exceeded("max_memory_gb");
  if (max_sto && sto > *max_sto + 1e-9) exceeded("max_storage_gb");
}

void pool_add_node(ClusterCore& core, Conn& c, std::string_view pool_uid, std::int64_t node_id, std::int64_t priority) {
  check_pool_uid(pool_uid);
  auto& p = c.stmt("SELECT id FROM pools WHERE uid = ?");
  p.bind(1, std::string(pool_uid));
  if (!p.step()) pool_not_found();
  const auto pool_id = p.column(0).as_int64();
  p.reset();
  if (!set_node_pool(c, node_id, pool_id, priority, now_text(core)))
    throw Error(Errc::not_found, Reason::node_not_found, "Node not found");
  pool_check_limits(c, pool_uid);
  auto& touch = c.stmt("UPDATE pools SET updated_at = ? WHERE id = ?");
  touch.bind(1, now_text(core));
  touch.bind(2, pool_id);
  touch.run();
}

}  // namespace detail

Pool Pools::create(const PoolCreate& req) {
  check_text("name", req.name, 100, true);
  check_text("description", req.description, 500, false);
  if (req.max_nodes && (*req.max_nodes < 1 || *req.max_nodes > 1000000)) invalid("max_nodes", "max_nodes must be 1..1000000");
  if (req.limits.max_cpu_cores && (*req.limits.max_cpu_cores < 1 || *req.limits.max_cpu_cores > 100000000))
    invalid("resource_limits.max_cpu_cores", "max_cpu_cores must be 1..100000000");
  if (req.limits.max_memory_gb) check_range("resource_limits.max_memory_gb", *req.limits.max_memory_gb, 0, 1e12);
  if (req.limits.max_storage_gb) check_range("resource_limits.max_storage_gb", *req.limits.max_storage_gb, 0, 1e15);
  const std::string uid = new_uid("pool_");
  core_.store->write([&](Conn& c) {
    auto& dup = c.stmt("SELECT 1 FROM pools WHERE name = ?");
    dup.bind(1, req.name);
    if (dup.step()) throw Error(Errc::conflict, Reason::pool_exists, "Pool already exists");
    dup.reset();
    const std::string now = now_text(core_);
    auto& ins = c.stmt(
        "INSERT INTO pools(uid, name, description, max_nodes, limit_cpu_cores, limit_memory_gb, limit_storage_gb,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    ins.bind(1, uid);
    ins.bind(2, req.name);
    ins.bind(3, req.description);
    if (req.max_nodes) ins.bind(4, *req.max_nodes); else ins.bind(4, nullptr);
    if (req.limits.max_cpu_cores) ins.bind(5, *req.limits.max_cpu_cores); else ins.bind(5, nullptr);
    if (req.limits.max_memory_gb) ins.bind(6, *req.limits.max_memory_gb); else ins.bind(6, nullptr);
    if (req.limits.max_storage_gb) ins.bind(7, *req.limits.max_storage_gb); else ins.bind(7, nullptr);
    ins.bind(8, now);
    ins.bind(9, now);
    ins.run();
  });
  return get(uid);
}

std::vector<Pool> Pools::list(std::int64_t page, std::int64_t limit, std::int64_t* total) {
  if (page < 1 || page > 1000000) invalid("page", "page must be between 1 and 1000000");
  if (limit < 1 || limit > 100) invalid("limit", "limit must be between 1 and 100");
  return core_.store->read([&](Conn& c) {
    std::vector<Pool> out;
    auto& q = c.stmt(
        "SELECT p.uid, p.name, p.description, (SELECT COUNT(*) FROM nodes WHERE pool_id = p.id), p.max_nodes,"
        " p.limit_cpu_cores, p.limit_memory_gb, p.limit_storage_gb, p.created_at, p.updated_at FROM pools p"
        " ORDER BY p.id LIMIT ? OFFSET ?");
    q.bind(1, limit);
    q.bind(2, (page - 1) * limit);
    while (q.step()) out.push_back(read_pool(q));
    q.reset();
    if (total) {
      auto& t = c.stmt("SELECT COUNT(*) FROM pools");
      t.step();
      *total = t.column(0).as_int64();
    }
    return out;
  });
}

Pool Pools::get(std::string_view uid) {
  check_pool_uid(uid);
  auto p = core_.store->read([&](Conn& c) { return find_pool(c, uid); });
  if (!p) pool_not_found();
  return *p;
}

Pool Pools::add_node(std::string_view pool_uid, std::string_view node_uid, std::int64_t priority) {
  if (priority < 1 || priority > 100) invalid("priority", "priority must be between 1 and 100");
  check_pool_uid(pool_uid);
  const auto node_id = nodes_.resolve(node_uid);
  core_.store->write([&](Conn& c) { pool_add_node(core_, c, pool_uid, node_id, priority); });
  core_.bus.publish({EventKind::node_updated, node_id});
  return get(pool_uid);
}

}  // namespace lucid
