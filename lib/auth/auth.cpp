// Access tokens: JWT (RFC 7519) signed with EdDSA over Ed25519 (RFC 8037).
#include "lucidnode/auth.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "lucidnode/error.hpp"
#include "util/encoding.hpp"
#include "util/enum_names.hpp"
#include "util/json.hpp"

namespace lucid {

using detail::base64url_decode;
using detail::base64url_encode;

constexpr detail::EnumNames<Role, 5> kRoleNames{{{Role::user, "user"},
                                                  {Role::viewer, "viewer"},
                                                  {Role::node_operator, "node_operator"},
                                                  {Role::admin, "admin"},
                                                  {Role::super_admin, "super_admin"}}};

const char* role_name(Role r) noexcept { return detail::enum_name(kRoleNames, r, "user"); }

std::optional<Role> parse_role(std::string_view name) { return detail::parse_enum(kRoleNames, name); }

bool Claims::has_scope(std::string_view scope) const {
  if (!scopes.empty()) return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
  if (is_node()) return false;  // a node's token acts by the route tables' node rule only
  switch (role) {
    case Role::user: return false;  // self-service: no fleet scope
    case Role::viewer: return scope.size() > 5 && scope.substr(scope.size() - 5) == ":read";
    case Role::node_operator:
      return (scope.size() > 5 && scope.substr(scope.size() - 5) == ":read") || scope == "node:write" ||
             scope == "poot:write";
    case Role::admin:
    case Role::super_admin: return true;
  }
  return false;
}

namespace {

// The only header we issue and the only algorithm we accept.
constexpr std::string_view kHeaderJson = R"({"alg":"EdDSA","typ":"JWT"})";

bool valid_scope(std::string_view s) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size() || s.size() > 64) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == colon) continue;
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

[[noreturn]] void reject(const char* why) { throw Error(Errc::unauthenticated, why); }

long long to_unix(Timestamp t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

struct LUCID_HIDDEN Auth::Impl {
  std::shared_ptr<const Clock> clock;
  std::function<bool(std::string_view)> session_live;
  PrincipalCheck principal;
  // Tokens whose signature and structure verified, by token text. Sharded;
  // a full shard is emptied (tokens are re-verified on their next use).
  static constexpr std::size_t kShards = 16, kShardCapacity = 2048;
  struct Shard {
    std::shared_mutex mu;
    std::unordered_map<std::string, Claims> verified;
  };
  mutable std::array<Shard, kShards> cache;
  // Revoked token ids and their expiry (revoke_token_id); `any_revoked`
  // spares the lock while there are none.
  mutable std::shared_mutex revoked_mu;
  std::unordered_map<std::string, Timestamp> revoked;
  std::atomic<bool> any_revoked{false};
  void check_revoked(const Claims& c) const {
    if (!any_revoked.load(std::memory_order_acquire) || c.token_id.empty()) return;
    std::shared_lock lock(revoked_mu);
    if (revoked.count(c.token_id)) reject("Token revoked");
  }
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  ~Impl() { sodium_memzero(sk, sizeof sk); }
};

Auth::Auth(std::shared_ptr<const Clock> clock, std::string secret_key) : impl_(std::make_unique<Impl>()) {
  detail::ensure_sodium();
  if (secret_key.size() != crypto_sign_SECRETKEYBYTES)
    throw Error(Errc::invalid_argument, "signing key must be 64 bytes");
  impl_->clock = clock ? std::move(clock) : std::make_shared<SystemClock>();
  std::copy(secret_key.begin(), secret_key.end(), impl_->sk);
  crypto_sign_ed25519_sk_to_pk(impl_->pk, impl_->sk);
  sodium_memzero(secret_key.data(), secret_key.size());
}

Auth::~Auth() = default;

std::string Auth::generate_secret_key() {
  detail::ensure_sodium();
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  std::string sk(crypto_sign_SECRETKEYBYTES, '\0');
  crypto_sign_keypair(pk, reinterpret_cast<unsigned char*>(sk.data()));
  return sk;
}

std::string Auth::public_key_hex() const {
  return detail::to_hex(std::string_view(reinterpret_cast<const char*>(impl_->pk), sizeof impl_->pk));
}

void Auth::set_session_check(std::function<bool(std::string_view)> live) { impl_->session_live = std::move(live); }
void Auth::set_principal_check(PrincipalCheck check) { impl_->principal = std::move(check); }

std::string Auth::issue_token(const std::string& subject, Role role, std::chrono::seconds ttl,
                              const std::vector<std::string>& scopes, const std::string& session_id,
                              std::int64_t node_id) const {
  if (subject.empty() || subject.size() > 128) throw Error(Errc::invalid_argument, "subject must be 1..128 characters", "sub");
  if (ttl.count() <= 0 || ttl > std::chrono::hours(24 * 366))
    throw Error(Errc::invalid_argument, "ttl must be between 1 second and 366 days", "ttl");
  if (scopes.size() > 32) throw Error(Errc::invalid_argument, "at most 32 scopes", "scopes");
  for (const auto& s : scopes)
    if (!valid_scope(s)) throw Error(Errc::invalid_argument, "invalid scope: " + s, "scopes");
  if (node_id < 0) throw Error(Errc::invalid_argument, "node id must be positive", "nid");

  const auto now = impl_->clock->now();
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("sub"); w.String(subject.c_str(), static_cast<rapidjson::SizeType>(subject.size()));
  w.Key("role"); w.String(role_name(role));
  w.Key("scopes"); w.StartArray();
  for (const auto& s : scopes) w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
  w.Key("iat"); w.Int64(to_unix(now));
  w.Key("exp"); w.Int64(to_unix(now + ttl));
  const std::string jti = detail::to_hex(detail::random_bytes(16));
  w.Key("jti"); w.String(jti.c_str());
  if (!session_id.empty()) {
    if (session_id.size() > 64) throw Error(Errc::invalid_argument, "session id too long", "sid");
    w.Key("sid"); w.String(session_id.c_str(), static_cast<rapidjson::SizeType>(session_id.size()));
  }
  if (node_id > 0) {
    w.Key("nid"); w.Int64(node_id);
  }
  w.EndObject();

  std::string signing_input = base64url_encode(kHeaderJson) + "." +
                              base64url_encode(std::string_view(buf.GetString(), buf.GetSize()));
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size(), impl_->sk);
  return signing_input + "." + base64url_encode(std::string_view(reinterpret_cast<const char*>(sig), sizeof sig));
}

namespace {
// Time and session (and, below, the principal): checked on every use, cached or not.
void check_live(const Claims& c, Timestamp now, const std::function<bool(std::string_view)>& session_live) {
  if (now >= c.expires_at) reject("token expired");
  if (c.issued_at > now + std::chrono::seconds(60)) reject("token not yet valid");
  if (!c.session_id.empty() && (!session_live || !session_live(c.session_id)))
    throw Error(Errc::unauthenticated, "Session expired or logged out", {}, Reason::session_expired);
}
void check_principal(const Claims& c, const Auth::PrincipalCheck& principal) {
  if (principal)
    if (const char* why = principal(c)) reject(why);
}
}  // namespace

Claims Auth::verify_token(std::string_view token) const {
  if (token.empty() || token.size() > 4096) reject("malformed token");
  auto& shard = impl_->cache[std::hash<std::string_view>{}(token) % Impl::kShards];
  {
    std::shared_lock lock(shard.mu);
    auto it = shard.verified.find(std::string(token));
    if (it != shard.verified.end()) {
      Claims c = it->second;
      lock.unlock();
      check_live(c, impl_->clock->now(), impl_->session_live);
      impl_->check_revoked(c);
      check_principal(c, impl_->principal);
      return c;
    }
  }
  const auto d1 = token.find('.');
  const auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d1 == std::string_view::npos || d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    reject("malformed token");

  auto header = base64url_decode(token.substr(0, d1));
  auto payload = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
  auto sig = base64url_decode(token.substr(d2 + 1));
  if (!header || !payload || !sig) reject("malformed token");

  rapidjson::Document h;
  if (!detail::parse_json(h, *header) || !h.IsObject()) reject("malformed token header");
  for (auto it = h.MemberBegin(); it != h.MemberEnd(); ++it) {
    std::string_view name(it->name.GetString(), it->name.GetStringLength());
    if (name == "alg") {
      if (!it->value.IsString() || std::string_view(it->value.GetString()) != "EdDSA") reject("unsupported token algorithm");
    } else if (name == "typ") {
      if (!it->value.IsString() || std::string_view(it->value.GetString()) != "JWT") reject("unsupported token type");
    } else {
      reject("unsupported token header");  // crit, jku, x5u, ...: nothing else is ours
    }
  }
  if (!h.HasMember("alg")) reject("unsupported token algorithm");

  if (sig->size() != crypto_sign_BYTES ||
      crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig->data()),
                                  reinterpret_cast<const unsigned char*>(token.data()), d2, impl_->pk) != 0)
    reject("invalid token signature");

  rapidjson::Document p;
  if (!detail::parse_json(p, *payload) || !p.IsObject()) reject("malformed token claims");
  auto str = [&](const char* k) -> std::string {
    if (!p.HasMember(k) || !p[k].IsString()) reject("malformed token claims");
    return std::string(p[k].GetString(), p[k].GetStringLength());
  };
  // Seconds since the epoch that a Timestamp can hold (system_clock counts
  // nanoseconds: about ±292 years); beyond, the conversion would overflow.
  constexpr long long kMaxSeconds = std::chrono::duration_cast<std::chrono::seconds>(Timestamp::duration::max()).count();
  auto num = [&](const char* k) -> long long {
    if (!p.HasMember(k) || !p[k].IsInt64()) reject("malformed token claims");
    const long long v = p[k].GetInt64();
    if (v < 0 || v > kMaxSeconds) reject("malformed token claims");
    return v;
  };
  Claims c;
  c.subject = str("sub");
  auto role = parse_role(str("role"));
  if (!role) reject("unknown role in token");
  c.role = *role;
  if (p.HasMember("scopes")) {
    if (!p["scopes"].IsArray()) reject("malformed token claims");
    for (const auto& s : p["scopes"].GetArray()) {
      if (!s.IsString()) reject("malformed token claims");
      c.scopes.emplace_back(s.GetString(), s.GetStringLength());
    }
  }
  c.issued_at = Timestamp(std::chrono::seconds(num("iat")));
  c.expires_at = Timestamp(std::chrono::seconds(num("exp")));
  if (p.HasMember("jti") && p["jti"].IsString()) c.token_id = p["jti"].GetString();
  if (p.HasMember("sid")) {
    if (!p["sid"].IsString() || p["sid"].GetStringLength() == 0 || p["sid"].GetStringLength() > 64)
      reject("malformed token claims");
    c.session_id = p["sid"].GetString();
  }
  if (p.HasMember("nid")) {
    if (!p["nid"].IsInt64() || p["nid"].GetInt64() <= 0) reject("malformed token claims");
    c.node_id = p["nid"].GetInt64();
  }
  check_live(c, impl_->clock->now(), impl_->session_live);
  {
    std::unique_lock lock(shard.mu);
    if (shard.verified.size() >= Impl::kShardCapacity) shard.verified.clear();
    shard.verified.emplace(std::string(token), c);
  }
  // After caching: a revoked principal's token is refused on every use
  // without costing a signature check each time.
  impl_->check_revoked(c);
  check_principal(c, impl_->principal);
  return c;
}

void Auth::revoke_token_id(const std::string& token_id, Timestamp until) {
  if (token_id.empty()) return;
  const Timestamp now = impl_->clock->now();
  std::unique_lock lock(impl_->revoked_mu);
  // Expired entries go as new ones come: an expired token is refused anyway.
  std::erase_if(impl_->revoked, [&](const auto& kv) { return kv.second <= now; });
  if (until > now) impl_->revoked[token_id] = until;
  impl_->any_revoked.store(!impl_->revoked.empty(), std::memory_order_release);
}

}  // namespace lucid
