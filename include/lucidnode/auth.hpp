// Authentication: signed access tokens (JWT, EdDSA/Ed25519) and roles.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lucidnode/clock.hpp"
#include "lucidnode/export.hpp"

namespace lucid {
LUCID_PUBLIC_BEGIN

// Roles, lowest to highest. The order is the privilege order: a role satisfies
// every requirement of the roles below it. Roles are stored and carried by
// name (tokens, the database, the C ABI), never by these integer values.
//   user          a self-service account (the gateway's public sign-up):
//                 gateway-personal routes only, no fleet reads.
//   viewer        granted by an admin: the registration document's "All
//                 Users", the read side of the fleet.
//   node_operator "Node Admin+": fleet operations.
//   admin, super_admin.
// A node acting as itself is not on this ladder: its token carries
// Claims::node_id and the route tables' node rule decides (README
// "Security model: principals and roles").
enum class Role { user = 0, viewer = 1, node_operator = 2, admin = 3, super_admin = 4 };

const char* role_name(Role r) noexcept;
// Parses "user", "viewer", "node_operator", "admin", "super_admin". nullopt otherwise.
std::optional<Role> parse_role(std::string_view name);

// The verified content of an access token.
struct Claims {
  std::string subject;              // "sub"
  Role role = Role::user;           // "role"
  std::vector<std::string> scopes;  // "scopes"; empty means "the role's default scopes"
  Timestamp issued_at;              // "iat"
  Timestamp expires_at;             // "exp"
  std::string token_id;             // "jti", random
  std::string session_id;           // "sid": a login session (lucid::Users), empty for other tokens
  std::int64_t node_id = 0;         // "nid": the node a node token acts as; 0 for every other token

  // A node principal (the network-node Ed25519 login with a node's own key):
  // it may act only as itself, whatever its role claim says.
  bool is_node() const { return node_id != 0; }
  // "node" for a node token, else the role's name (for responses that show a caller's role).
  const char* role_label() const { return is_node() ? "node" : role_name(role); }

  bool has_role(Role at_least) const { return static_cast<int>(role) >= static_cast<int>(at_least); }
  // True when `scopes` lists `scope`, or, when `scopes` is empty, when the
  // role's default scopes include it: user none of them; viewer reads
  // (node:read, poot:read, payout:read); node_operator also writes nodes and
  // PoOT; admin and super_admin have every scope. A node token has no default
  // scope.
  bool has_scope(std::string_view scope) const;
};

// Issues and verifies access tokens with the cluster's Ed25519 key.
// Thread-safe: every method may be called concurrently.
class Auth {
 public:
  // `secret_key`: the 64-byte libsodium Ed25519 secret key (seed || public key).
  // Throws Error(invalid_argument) if it is not 64 bytes.
  Auth(std::shared_ptr<const Clock> clock, std::string secret_key);
  ~Auth();
  Auth(const Auth&) = delete;
  Auth& operator=(const Auth&) = delete;

  // Issues a token for `subject` with `role`, valid for `ttl` from the clock's now.
  // Throws Error(invalid_argument) for an empty/overlong subject, a ttl that is
  // not positive or exceeds 366 days, or a scope that is not [a-z_]+:[a-z_]+.
  // A non-empty `session_id` (a login session of lucid::Users) is carried
  // as the "sid" claim, and verify_token then also requires the session to
  // be live. A positive `node_id` makes a node token (the "nid" claim, see
  // Claims::node_id); a negative one is invalid_argument.
  std::string issue_token(const std::string& subject, Role role, std::chrono::seconds ttl,
                          const std::vector<std::string>& scopes = {}, const std::string& session_id = {},
                          std::int64_t node_id = 0) const;

  // Verifies signature, algorithm ("EdDSA" exactly), structure and time,
  // for tokens with a "sid", that the session is live (not logged out or
  // revoked: Error(unauthenticated, Reason::session_expired)), and that the
  // principal check (set_principal_check) accepts the claims.
  // Throws Error(unauthenticated) with a short reason for anything else:
  // malformed, another or no algorithm, bad signature, expired, not yet valid.
  // Verified signatures are cached (bounded), so repeated verification of a
  // token costs a hash lookup; expiry, the session and the principal are
  // checked every time.
  Claims verify_token(std::string_view token) const;

  // Sets the predicate deciding whether a session id is live. Call before
  // concurrent use (the cluster sets it at open); not thread-safe itself.
  void set_session_check(std::function<bool(std::string_view)> live);

  // Decides whether the principal a token names still stands: returns
  // nullptr when it does, else a short static reason ("Peer is blacklisted",
  // "Key is no longer registered", ...), which verify_token throws as
  // Error(unauthenticated, reason). Runs on every verification, cached
  // signature or not, after the time and session checks, so revocation
  // (key removal, blacklist, role change) takes effect on the next use of
  // the token on every surface. It must be cheap (in-memory) and must not
  // throw. Call before concurrent use (the cluster sets it at open); not
  // thread-safe itself. An empty function accepts every principal.
  using PrincipalCheck = std::function<const char*(const Claims&)>;
  void set_principal_check(PrincipalCheck check);

  // Refuses every token whose "jti" is `token_id` (verify_token throws
  // Error(unauthenticated, "Token revoked")) until `until` (its expiry),
  // after which the entry is dropped. In memory: lucid::Users persists
  // revocations and replays them at open. Ignores an empty id.
  // Thread-safe.
  void revoke_token_id(const std::string& token_id, Timestamp until);

  // Hex of the Ed25519 public key that verifies our tokens.
  std::string public_key_hex() const;

  // Generates a fresh 64-byte Ed25519 secret key (for new clusters and tests).
  static std::string generate_secret_key();

 private:
  struct LUCID_HIDDEN_FWD Impl;
  std::unique_ptr<Impl> impl_;
};

LUCID_PUBLIC_END
}  // namespace lucid
