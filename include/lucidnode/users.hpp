// Users and passwordless login (api-gateway.md /auth/*, /users*).
//
// A login sends a single-use, 5-minute magic link token and a 6-digit code by
// mail; verifying either (or, for users with TOTP enrolled, an RFC 6238 code)
// opens a session: an access token (our EdDSA JWT with a "sid" claim) and a
// rotating refresh token. Reusing a rotated refresh token revokes the whole
// session (the token family). Logging out revokes the session at once: Auth
// rejects access tokens of a revoked session. Codes, link and refresh tokens
// are stored as keyed hashes and compared in constant time; TOTP secrets are
// encrypted at rest with a key derived from the server's signing key.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lucidnode/auth.hpp"
#include "lucidnode/clock.hpp"
#include "lucidnode/export.hpp"

namespace lucid {

namespace detail { class ClusterCore; class ClusterImpl; }
LUCID_PUBLIC_BEGIN

struct User {
  std::string id;  // UUID
  std::string email;
  std::string username;
  std::string first_name;
  std::string last_name;
  Role role = Role::user;
  Timestamp created_at;
  Timestamp updated_at;
  std::optional<Timestamp> last_login;
  bool hardware_wallet_enabled = false;
  bool totp_enabled = false;
  std::optional<Timestamp> locked_until;
};

struct UserCreate {
  std::string email;     // valid address; stored lower-case; unique
  std::string username;  // 3..50 characters; unique
  std::string password;  // 8..128 characters, not all of one class; checked, never stored (login is passwordless)
  std::string first_name, last_name;  // <= 100 characters
  Role role = Role::user;
};

struct UserUpdate {
  std::optional<std::string> username, first_name, last_name;
  std::optional<bool> hardware_wallet_enabled;
  std::optional<Role> role;  // admin only (the caller decides)
};

struct UserQuery {
  std::int64_t page = 1, limit = 20;
  std::optional<Role> role;
};

// What a verified login or a refresh returns.
struct AuthTokens {
  std::string access_token;
  std::string refresh_token;
  std::chrono::seconds expires_in{0};
  std::string session_id;
  User user;
};

struct TotpEnrollment {
  std::string secret_base32;  // RFC 4648 base32, no padding
  std::string otpauth_uri;    // otpauth://totp/lucidnode:<email>?secret=...&issuer=lucidnode
};

// RFC 6238 TOTP (HMAC-SHA1, 6 digits) of `key` at Unix time `unix_seconds`
// with a 30 s step. Pure; thread-safe.
std::string totp_code(const std::string& key, std::int64_t unix_seconds, int digits = 6);
std::string base32_encode(const std::string& bytes);
// A syntactically valid email address (local@domain.tld, <= 254 bytes, no
// spaces, control or special characters). Thread-safe.
bool valid_email(std::string_view s) noexcept;

// Thread-safe: every method may be called concurrently.
class Users {
 public:
  explicit Users(detail::ClusterCore& core);
  ~Users();
  Users(const Users&) = delete;
  Users& operator=(const Users&) = delete;

  // Errors: invalid_argument (field named; Reason::invalid_email, ...),
  // conflict/Reason::already_exists for a taken email or username.
  User create(const UserCreate& u);
  // not_found for an unknown id.
  User get(const std::string& id) const;
  std::optional<User> find_by_email(const std::string& email) const;
  std::vector<User> list(const UserQuery& q, std::int64_t* total) const;
  // A role change or deletion revokes the user's sessions.
  User update(const std::string& id, const UserUpdate& u);
  void remove(const std::string& id);

  // Starts a login for `email`: stores a hashed 6-digit code and link token
  // (single-use, Options::login.code_ttl) and queues the mail on the executor. Unknown
  // addresses get the same answer and no mail (no account enumeration).
  // Returns the validity in seconds. Errors: invalid_argument (Reason::invalid_email).
  std::chrono::seconds start_login(const std::string& email);
  // Verifies the emailed code, the link token, or a TOTP code. Errors:
  // unauthenticated with Reason::invalid_credentials (wrong code),
  // totp_invalid (wrong code for a TOTP user), login_expired (no login in
  // progress / expired), account_locked (5 failures: locked for 15 minutes).
  AuthTokens verify_code(const std::string& email, const std::string& code);
  AuthTokens verify_link(const std::string& email, const std::string& token);
  // Rotates a refresh token. Reuse of a rotated one revokes its session.
  // Errors: unauthenticated/Reason::refresh_token_invalid.
  AuthTokens refresh(const std::string& refresh_token);
  // Revokes a session (idempotent).
  void logout(const std::string& session_id);
  // Revokes one access token that has no login session (a `lucidctl admin
  // create-token` token): stored, and refused by every verification at once
  // (Auth::revoke_token_id), until its expiry; survives a restart.
  // Idempotent. Errors: invalid_argument when the claims carry no token id
  // (jti), conflict when they carry a session (use logout), storage.
  void revoke_token(const Claims& claims);

  // The bootstrap admin's user record: the token subject `subject` (not a
  // user id: "admin", what `lucidctl admin create-token` signs by default)
  // stands for a user, so the gateway's user routes (/users/me) work with
  // such a token. Creates the user (role super_admin, username `subject`, or
  // `subject`-<6 hex> when taken; email `email`, normalized) and the link
  // when the subject has none; an existing link is kept as it is (`email`
  // then unused). Returns the user. Errors: invalid_argument (bad email or
  // subject: 1..64 visible ASCII characters), conflict (the email belongs to
  // another user), storage.
  User ensure_subject_user(const std::string& subject, const std::string& email);
  // The user a non-UUID token subject stands for (ensure_subject_user), or
  // nullopt. Errors: storage.
  std::optional<User> user_for_subject(const std::string& subject) const;
  // True when `session_id` names a live session (in-memory lookup).
  bool session_active(std::string_view session_id) const;
  // The role of a live session's user (in-memory lookup); nullopt when the
  // session is not live. A role change revokes the user's sessions, so this
  // is the user's current role.
  std::optional<Role> session_role(std::string_view session_id) const;
  // Deletes expired logins, refresh tokens and sessions and forgets expired
  // sessions in memory (the cluster runs it every minute). Errors: storage.
  void prune();
  // Sessions currently live (in-memory count).
  std::int64_t live_sessions() const;
  // The outbox directory (Options::login.outbox_dir resolved: "outbox" beside the
  // database when empty), whether or not the configured mailer uses it.
  std::string outbox_dir() const;
  // Where login mail goes, one line for logs (Mailer::describe()).
  std::string mail_delivery() const;

  // Generates and stores a new TOTP secret for the user (active at once when
  // `activate`, else pending until confirm_totp). not_found for unknown ids.
  TotpEnrollment enroll_totp(const std::string& id, bool activate);
  // Activates the pending secret when `code` matches it. totp_invalid otherwise.
  void confirm_totp(const std::string& id, const std::string& code);
  void disable_totp(const std::string& id);

 private:
  friend class detail::ClusterImpl;
  void load();  // keys, mailer, live sessions: called once by the cluster at open
  // Re-reads the live sessions and revoked token ids: another server
  // (replica) logged someone in or out, or revoked a token.
  void reload_sessions();
  struct LUCID_HIDDEN_FWD Impl;
  std::unique_ptr<Impl> impl_;
};

LUCID_PUBLIC_END
}  // namespace lucid
