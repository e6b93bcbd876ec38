// Admin API keys: the api_keys table's row module (its only writer).
#include "lucidnode/api_keys.hpp"

#include "core/cluster_core.hpp"
#include "core/clock_text.hpp"
#include "util/checks.hpp"
#include "store/stored.hpp"

namespace lucid {

using detail::Conn;
using detail::now_text;

ApiKeys::ApiKeys(detail::ClusterCore& core) : core_(core) {}

std::string ApiKeys::create(const std::string& name, Role role) {
  detail::check_text("name", name, 100, true);
  const std::string key = "lak_" + detail::base64url_encode(detail::random_bytes(32));
  const std::string at = now_text(core_);
  core_.store->write([&](Conn& c) {
    auto& q = c.stmt("INSERT INTO api_keys (name, key_hash, role, created_at) VALUES (?, ?, ?, ?)");
    q.bind(1, name);
    const std::string h = detail::blob(detail::sha256(key));
    q.bind_blob(2, h);
    q.bind(3, role_name(role));
    q.bind(4, at);
    q.run();
  });
  return key;
}

Claims ApiKeys::authenticate(std::string_view key) {
  if (key.size() < 8 || key.size() > 128) throw Error(Errc::unauthenticated, "Invalid API key");
  // Looked up by SHA-256 of the key: the lookup's timing depends on the hash only.
  const std::string h = detail::blob(detail::sha256(key));
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT id, role, key_hash FROM api_keys WHERE key_hash = ?");
    q.bind_blob(1, h);
    if (!q.step()) throw Error(Errc::unauthenticated, "Invalid API key");
    const std::string stored = q.column(2).as_text();
    if (!detail::equal_ct(stored, h)) throw Error(Errc::unauthenticated, "Invalid API key");
    Claims cl;
    cl.subject = "apikey:" + std::to_string(q.column(0).as_int64());
    cl.role = parse_role(q.column(1).as_text()).value_or(Role::user);
    cl.issued_at = core_.clock->now();
    cl.expires_at = cl.issued_at + std::chrono::hours(1);
    return cl;
  });
}

}  // namespace lucid
