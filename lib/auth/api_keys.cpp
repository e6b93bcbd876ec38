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
    q.bind(2, h.data(), static_cast<int>(h.size()));
    q.bind(3, role_name(role));
    q.bind(4, at);
    q.exec();
  });
  return key;
}

Claims ApiKeys::authenticate(std::string_view key) {
  if (key.size() < 8 || key.size() > 128) throw Error(Errc::unauthenticated, "Invalid API key");
  // Looked up by SHA-256 of the key: the lookup's timing depends on the hash only.
  const std::string h = detail::blob(detail::sha256(key));
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT id, role, key_hash FROM api_keys WHERE key_hash = ?");
    q.bind(1, h.data(), static_cast<int>(h.size()));
    if (!q.executeStep()) throw Error(Errc::unauthenticated, "Invalid API key");
    const std::string stored = q.getColumn(2).getString();
    if (!detail::equal_ct(stored, h)) throw Error(Errc::unauthenticated, "Invalid API key");
    Claims cl;
    cl.subject = "apikey:" + std::to_string(q.getColumn(0).getInt64());
    cl.role = parse_role(q.getColumn(1).getString()).value_or(Role::user);
    cl.issued_at = core_.clock->now();
    cl.expires_at = cl.issued_at + std::chrono::hours(1);
    return cl;
  });
}

}  // namespace lucid
