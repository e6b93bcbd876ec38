// Settings: runtime heartbeat and server settings (the settings table).
#include "lucidnode/tasks.hpp"

#include "core/cluster_core.hpp"
#include "lucidnode/api_keys.hpp"
#include "core/clock_text.hpp"
#include "util/checks.hpp"
#include "store/stored.hpp"

namespace lucid {

using detail::Conn;
using detail::invalid;

// ---- Settings ----------------------------------------------------------------------

struct LUCID_HIDDEN Settings::Impl {
  mutable std::mutex mu;
  HeartbeatSettings heartbeat;
  ServerSettings server;
  HeartbeatSettings default_heartbeat;
  ServerSettings default_server;
  std::vector<std::function<void(const ServerSettings&)>> listeners;
};

Settings::Settings(detail::ClusterCore& core, ApiKeys& api_keys)
    : impl_(std::make_unique<Impl>()), core_(core), api_keys_(api_keys) {}
Settings::~Settings() = default;

void Settings::load() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->default_server.max_connections = core_.opts.tasks.max_connections;
  impl_->heartbeat = impl_->default_heartbeat;
  impl_->server = impl_->default_server;
  core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT key, value FROM settings");
    while (q.step()) {
      const std::string k = q.column(0).as_text();
      const std::int64_t v = q.column(1).as_int64();
      if (k == "heartbeat.interval") impl_->heartbeat.interval = v;
      else if (k == "heartbeat.timeout") impl_->heartbeat.timeout = v;
      else if (k == "heartbeat.max_missed") impl_->heartbeat.max_missed = v;
      else if (k == "server.max_connections") impl_->server.max_connections = v;
    }
  });
}

void Settings::reload() {
  load();
  std::vector<std::function<void(const ServerSettings&)>> ls;
  ServerSettings s;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    s = impl_->server;
    ls = impl_->listeners;
  }
  core_.broadcast_change("settings");
  for (auto& f : ls) f(s);
}

HeartbeatSettings Settings::heartbeat() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->heartbeat;
}

ServerSettings Settings::server() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->server;
}

namespace {
void check_setting(const char* field, std::optional<std::int64_t> v, std::int64_t lo, std::int64_t hi) {
  if (v && (*v < lo || *v > hi))
    invalid(field, std::string(field) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
}
void store_setting(Conn& c, const char* key, std::int64_t v) {
  auto& q = c.stmt("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  q.bind(1, key);
  q.bind(2, v);
  q.run();
}
}  // namespace

HeartbeatSettings Settings::update_heartbeat(std::optional<std::int64_t> interval, std::optional<std::int64_t> timeout,
                                             std::optional<std::int64_t> max_missed) {
  check_setting("interval", interval, 1, 3600);
  check_setting("timeout", timeout, 1, 86400);
  check_setting("max_missed", max_missed, 1, 100);
  std::lock_guard<std::mutex> lock(impl_->mu);
  HeartbeatSettings h = impl_->heartbeat;
  if (interval) h.interval = *interval;
  if (timeout) h.timeout = *timeout;
  if (max_missed) h.max_missed = *max_missed;
  if (h.timeout < h.interval) invalid(timeout ? "timeout" : "interval", "timeout must be at least interval");
  core_.store->write([&](Conn& c) {
    store_setting(c, "heartbeat.interval", h.interval);
    store_setting(c, "heartbeat.timeout", h.timeout);
    store_setting(c, "heartbeat.max_missed", h.max_missed);
  });
  impl_->heartbeat = h;
  core_.broadcast_change("settings");
  return h;
}

ServerSettings Settings::update_server(std::optional<std::int64_t> max_connections) {
  check_setting("max_connections", max_connections, 1, 1000000);
  std::vector<std::function<void(const ServerSettings&)>> ls;
  ServerSettings s;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    s = impl_->server;
    if (max_connections) s.max_connections = *max_connections;
    core_.store->write([&](Conn& c) { store_setting(c, "server.max_connections", s.max_connections); });
    impl_->server = s;
    ls = impl_->listeners;
  }
  core_.broadcast_change("settings");
  for (auto& f : ls) f(s);
  return s;
}

void Settings::reset() {
  std::vector<std::function<void(const ServerSettings&)>> ls;
  ServerSettings s;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    core_.store->write([&](Conn& c) { c.exec("DELETE FROM settings"); });
    impl_->heartbeat = impl_->default_heartbeat;
    impl_->server = impl_->default_server;
    s = impl_->server;
    ls = impl_->listeners;
  }
  for (auto& f : ls) f(s);
}

std::string Settings::create_api_key(const std::string& name, Role role) { return api_keys_.create(name, role); }

Claims Settings::authenticate_api_key(std::string_view key) { return api_keys_.authenticate(key); }

void Settings::on_server_change(std::function<void(const ServerSettings&)> fn) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->listeners.push_back(std::move(fn));
}

}  // namespace lucid
