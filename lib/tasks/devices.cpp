// Tasks: devices (what agents report, labels, removal), cluster stats, pings.
#include "lucidnode/tasks.hpp"

#include <algorithm>

#include "core/cluster_core.hpp"
#include "tasks/engine.hpp"
#include "tasks/tasks_internal.hpp"
#include "nodes/node_rows.hpp"
#include "util/ids.hpp"

namespace lucid {

using detail::Conn;
using detail::TaskEngine;
using namespace detail::task_impl;

Device Tasks::report_device(std::int64_t node_id, const DeviceReport& r) {
  check_name("platform", r.platform);
  if (r.role) check_name("role", *r.role);
  std::optional<std::vector<std::string>> tags;
  if (r.tags) tags = checked_tags("tags", *r.tags);
  const auto& caps = r.capabilities;
  if (caps.cpu_count < 1 || caps.cpu_count > 4096) invalid("capabilities.cpu_count", "cpu_count must be 1..4096");
  detail::check_range("capabilities.memory_total_gb", caps.memory_total_gb, 0, 1e6);
  detail::check_range("capabilities.storage_total_gb", caps.storage_total_gb, 0, 1e9);
  if (r.allowed_task_types.empty() || r.allowed_task_types.size() > 16)
    invalid("allowed_task_types", "allowed_task_types must have 1..16 entries");
  std::vector<std::string> types;
  for (const auto& t : r.allowed_task_types) {
    if (!detail::sched::task_type_bit(t)) invalid("allowed_task_types", "unknown task type '" + t.substr(0, 64) + "'");
    if (std::find(types.begin(), types.end(), t) == types.end()) types.push_back(t);
  }
  if (r.max_concurrent < 1 || r.max_concurrent > 256) invalid("max_concurrent", "max_concurrent must be 1..256");
  detail::check_text("agent_version", r.agent_version, 64, false);

  auto& e = *engine_;
  std::lock_guard<std::mutex> lock(e.mu);
  const std::string at = now_text(e.core);
  Device d = e.core.store->write([&](Conn& c) {
    auto& q = c.stmt(
        "INSERT INTO devices (node_id, platform, role, tags, cpu_count, memory_total_gb, storage_total_gb, has_gpu,"
        " internet, allowed_types, max_concurrent, agent_version, reported, last_heartbeat, updated_at)"
        " SELECT id, ?2, COALESCE(?3, 'worker'), COALESCE(?4, '[]'), ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1, ?13, ?13"
        " FROM nodes WHERE id = ?1 AND status = 'active'"
        " ON CONFLICT(node_id) DO UPDATE SET platform = excluded.platform, role = COALESCE(?3, devices.role),"
        " tags = COALESCE(?4, devices.tags), cpu_count = excluded.cpu_count, memory_total_gb = excluded.memory_total_gb,"
        " storage_total_gb = excluded.storage_total_gb, has_gpu = excluded.has_gpu, internet = excluded.internet,"
        " allowed_types = excluded.allowed_types, max_concurrent = excluded.max_concurrent,"
        " agent_version = excluded.agent_version, reported = 1, last_heartbeat = excluded.last_heartbeat,"
        " updated_at = excluded.updated_at WHERE devices.removed = 0");
    q.bind(1, node_id);
    q.bind(2, r.platform);
    if (r.role) q.bind(3, *r.role); else q.bind(3, nullptr);
    if (tags) q.bind(4, string_array_json(*tags)); else q.bind(4, nullptr);
    q.bind(5, caps.cpu_count);
    q.bind(6, caps.memory_total_gb);
    q.bind(7, caps.storage_total_gb);
    q.bind(8, caps.has_gpu ? 1 : 0);
    q.bind(9, caps.internet ? 1 : 0);
    q.bind(10, string_array_json(types));
    q.bind(11, r.max_concurrent);
    q.bind(12, r.agent_version);
    q.bind(13, at);
    q.run();
    if (c.changes() == 0) throw Error(Errc::not_found, "Device not found (node not approved or removed)", "device_id", Reason::device_not_found);
    auto& s = c.stmt(kDeviceById);
    s.bind(1, node_id);
    if (!s.step()) device_not_found();
    return read_device(s);
  });
  auto& m = e.devs[node_id];
  m.info = d;
  m.heartbeat = e.core.clock->now();
  m.heartbeat_dirty = false;
  e.placer.upsert(node_id, e.attrs_of(d), d.max_concurrent, m.online);
  e.placer.set_eligible(node_id, e.core.node_cache().schedulable(node_id));
  e.set_online(m, node_id, true, *m.heartbeat);
  e.trigger();
  return e.overlay(std::move(d));
}

std::vector<Device> Tasks::devices(const DeviceQuery& q, std::int64_t* total) {
  if (q.page < 1 || q.page > 1000000) invalid("page", "page must be >= 1");
  if (q.page_size < 1 || q.page_size > 100) invalid("page_size", "page_size must be 1..100");
  auto& e = *engine_;
  std::vector<Device> matched;
  {
    for (auto& x : all_devices(e)) {
      if (q.online && x.online != *q.online) continue;
      if (!q.role.empty() && x.role != q.role) continue;
      if (!q.platform.empty() && x.platform != q.platform) continue;
      bool tags_ok = true;
      for (const auto& t : q.tags)
        if (std::find(x.tags.begin(), x.tags.end(), t) == x.tags.end()) tags_ok = false;
      if (!tags_ok) continue;
      matched.push_back(std::move(x));
    }
  }
  if (total) *total = static_cast<std::int64_t>(matched.size());
  std::vector<Device> page;
  const std::size_t from = static_cast<std::size_t>((q.page - 1) * q.page_size);
  for (std::size_t i = from; i < matched.size() && page.size() < static_cast<std::size_t>(q.page_size); ++i)
    page.push_back(std::move(matched[i]));
  return page;
}

Device Tasks::device(std::string_view device_id) {
  auto& e = *engine_;
  auto d = e.core.store->read([&](Conn& c) { return find_device(c, device_id); });
  if (!d) device_not_found();
  std::lock_guard<std::mutex> lock(e.mu);
  return e.overlay(std::move(*d));
}

Device Tasks::set_device_labels(std::string_view device_id, const std::optional<std::string>& role,
                                const std::optional<std::vector<std::string>>& tags_in) {
  if (role) check_name("role", *role);
  std::optional<std::vector<std::string>> tags;
  if (tags_in) tags = checked_tags("tags", *tags_in);
  auto& e = *engine_;
  std::lock_guard<std::mutex> lock(e.mu);
  const std::string at = now_text(e.core);
  Device d = e.core.store->write([&](Conn& c) {
    auto found = find_device(c, device_id);
    if (!found) device_not_found();
    auto& q = c.stmt(
        "INSERT INTO devices (node_id, role, tags, updated_at) VALUES (?1, COALESCE(?2, 'worker'), COALESCE(?3, '[]'), ?4)"
        " ON CONFLICT(node_id) DO UPDATE SET role = COALESCE(?2, devices.role), tags = COALESCE(?3, devices.tags), updated_at = ?4");
    q.bind(1, found->node_id);
    if (role) q.bind(2, *role); else q.bind(2, nullptr);
    if (tags) q.bind(3, string_array_json(*tags)); else q.bind(3, nullptr);
    q.bind(4, at);
    q.run();
    auto& s = c.stmt(kDeviceById);
    s.bind(1, found->node_id);
    if (!s.step()) device_not_found();
    return read_device(s);
  });
  auto it = e.devs.find(d.node_id);
  if (it != e.devs.end() && d.reported) {
    it->second.info = d;
    e.placer.upsert(d.node_id, e.attrs_of(d), d.max_concurrent, it->second.online);
    e.trigger();
  }
  return e.overlay(std::move(d));
}

void Tasks::remove_device(std::string_view device_id) {
  auto& e = *engine_;
  std::lock_guard<std::mutex> lock(e.mu);
  const std::string at = now_text(e.core);
  std::vector<TaskEngine::Active*> requeued;
  std::vector<std::string> dropped;
  std::int64_t node = 0;
  std::string key_hash;
  e.core.store->write([&](Conn& c) {
    auto found = find_device(c, device_id);
    if (!found) device_not_found();
    node = found->node_id;
    key_hash = detail::revoke_node_key(c, node);
    auto& q = c.stmt(
        "INSERT INTO devices (node_id, removed, updated_at) VALUES (?1, 1, ?2)"
        " ON CONFLICT(node_id) DO UPDATE SET removed = 1, reported = 0, updated_at = ?2");
    q.bind(1, node);
    q.bind(2, at);
    q.run();
    auto it = e.devs.find(node);
    if (it != e.devs.end()) e.lose_tasks_locked(c, node, it->second, "device removed", requeued, dropped);
  });
  e.apply_lost(node, requeued, dropped);
  detail::forget_node_key(e.core, key_hash);  // the key no longer authenticates
  auto it = e.devs.find(node);
  if (it != e.devs.end()) {
    for (auto& w : it->second.waiters) {
      w->finished = true;
      if (w->timer) w->timer->cancel();
      auto done = w->done;
      e.core.post([done] { done(AgentWork{}); });
    }
    e.devs.erase(it);
  }
  e.placer.remove(node);
  if (!requeued.empty()) e.trigger();
}

void Tasks::remove_node(std::string_view node_uid) {
  if (!detail::valid_node_uid(node_uid)) throw Error(Errc::not_found, Reason::node_not_found, "Node not found");
  auto& e = *engine_;
  std::vector<TaskEngine::Active*> requeued;
  std::vector<std::string> dropped;
  std::int64_t node = 0;
  std::string key_hash;
  std::vector<std::shared_ptr<TaskEngine::Waiter>> waiters;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    // One transaction: the tasks go back to the queue and the node row goes
    // (its key with it), or nothing changes.
    e.core.store->write([&](Conn& c) {
      node = detail::node_id_of_uid(c, node_uid);
      auto it = e.devs.find(node);
      if (it != e.devs.end())
        e.lose_tasks_locked(c, node, it->second, "node removed", requeued, dropped, /*count_retry=*/false);
      key_hash = detail::delete_node(c, node);
    });
    e.apply_lost(node, requeued, dropped, /*count_retry=*/false);
    auto it = e.devs.find(node);
    if (it != e.devs.end()) {
      for (auto& w : it->second.waiters) {
        w->finished = true;
        if (w->timer) w->timer->cancel();
        waiters.push_back(w);
      }
      e.devs.erase(it);
    }
    e.placer.remove(node);
  }
  // After the commit: the key stops authenticating, the node leaves the
  // cache and the streams (node_updated for an id that is gone), and cached
  // principals are dropped.
  detail::forget_node_key(e.core, key_hash);
  detail::forget_nodes(e.core, {node});
  e.core.principals_changed();
  for (auto& w : waiters) {
    auto done = w->done;
    e.core.post([done] { done(AgentWork{}); });
  }
  if (!requeued.empty()) e.trigger();
}

std::int64_t Tasks::tasks_on(std::int64_t node_id) {
  auto& e = *engine_;
  std::lock_guard<std::mutex> lock(e.mu);
  auto it = e.devs.find(node_id);
  return it == e.devs.end() ? 0 : static_cast<std::int64_t>(it->second.tasks.size());
}

ClusterStats Tasks::cluster_stats() {
  ClusterStats s;
  for (const auto& d : all_devices(*engine_)) {
    ++s.total_devices;
    s.by_role[d.role]++;
    s.by_platform[d.platform]++;
    s.by_status[d.online ? "online" : "offline"]++;
    if (!d.online) continue;
    ++s.online_devices;
    s.cpu_cores += d.capabilities.cpu_count;
    s.memory_gb += d.capabilities.memory_total_gb;
    s.storage_gb += d.capabilities.storage_total_gb;
    if (d.capabilities.has_gpu) ++s.gpu_devices;
    s.active_tasks += d.active_tasks;
    s.capacity += d.max_concurrent;
  }
  s.offline_devices = s.total_devices - s.online_devices;
  s.health_percentage =
      s.total_devices ? detail::round_to(100.0 * static_cast<double>(s.online_devices) / static_cast<double>(s.total_devices), 1) : 0;
  s.tasks_by_status = statistics().by_status;
  return s;
}

void Tasks::ping(std::string_view device_id, std::chrono::milliseconds timeout, std::function<void(bool)> done) {
  auto& e = *engine_;
  const std::int64_t node = device_node(e, device_id);
  auto p = std::make_shared<TaskEngine::PingState>();
  p->node = node;
  p->done = std::move(done);
  const std::string id = detail::random_uuid();
  std::vector<std::pair<std::shared_ptr<TaskEngine::Waiter>, AgentWork>> woken;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    p->timer = std::make_unique<asio::steady_timer>(e.core.io());
    p->timer->expires_after(timeout);
    e.pings[id] = p;
    e.devs[node].pings_out.push_back(id);
    p->timer->async_wait([&e, id](const asio::error_code&) {
      std::shared_ptr<TaskEngine::PingState> mine;
      {
        std::lock_guard<std::mutex> lock(e.mu);
        auto it = e.pings.find(id);
        if (it == e.pings.end() || it->second->finished) return;
        mine = it->second;
        mine->finished = true;
        e.pings.erase(it);
        auto d = e.devs.find(mine->node);
        if (d != e.devs.end()) {
          auto& out = d->second.pings_out;
          out.erase(std::remove(out.begin(), out.end(), id), out.end());
        }
      }
      mine->done(false);
    });
    e.wake_locked(node, woken);
  }
  TaskEngine::fire(woken);
}

void Tasks::ack_ping(std::int64_t node_id, std::string_view ping_id) {
  auto& e = *engine_;
  std::shared_ptr<TaskEngine::PingState> p;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    auto it = e.pings.find(std::string(ping_id));
    if (it == e.pings.end() || it->second->node != node_id || it->second->finished)
      throw Error(Errc::not_found, "Ping not found or expired", "ping_id");
    p = it->second;
    p->finished = true;
    e.pings.erase(it);
    if (p->timer) p->timer->cancel();
  }
  p->done(true);
}

}  // namespace lucid
