// Users, passwordless login, TOTP and sessions (include/lucidnode/users.hpp;
// schema: migration 7; choices: docs/decisions.md "API gateway").
#include "lucidnode/users.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "core/cluster_core.hpp"
#include "lucidnode/error.hpp"
#include "lucidnode/mail.hpp"
#include "lucidnode/options.hpp"
#include "util/encoding.hpp"
#include "util/utf8.hpp"

namespace lucid {

using detail::Conn;

// ---- TOTP (RFC 6238 over RFC 4226) ----

std::string totp_code(const std::string& key, std::int64_t unix_seconds, int digits) {
  if (digits < 6 || digits > 8) throw Error(Errc::invalid_argument, "digits must be 6..8", "digits");
  const std::uint64_t counter = static_cast<std::uint64_t>(unix_seconds / 30);
  unsigned char msg[8];
  for (int i = 7; i >= 0; --i) msg[7 - i] = static_cast<unsigned char>(counter >> (8 * i));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), msg, sizeof msg, mac, &len) || len != 20)
    throw Error(Errc::internal, "HMAC-SHA1 failed");
  const int off = mac[19] & 0x0f;
  const std::uint32_t bin = (static_cast<std::uint32_t>(mac[off] & 0x7f) << 24) |
                            (static_cast<std::uint32_t>(mac[off + 1]) << 16) |
                            (static_cast<std::uint32_t>(mac[off + 2]) << 8) | mac[off + 3];
  std::uint32_t mod = 1;
  for (int i = 0; i < digits; ++i) mod *= 10;
  char out[16];
  std::snprintf(out, sizeof out, "%0*u", digits, bin % mod);
  return out;
}

std::string base32_encode(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  std::uint32_t buf = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 5) {
      out += kAlphabet[(buf >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += kAlphabet[(buf << (5 - bits)) & 31];
  return out;
}

namespace {

// users.password_hash of accounts created since issue 12: not a libsodium
// hash string, so crypto_pwhash_str_verify refuses every password against it.
constexpr const char* kNoPasswordHash = "!unused: login is passwordless";
constexpr int kMaxFailures = 5;
constexpr auto kLockout = std::chrono::minutes(15);

std::int64_t to_us(Timestamp t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
Timestamp from_us(std::int64_t us) { return Timestamp(std::chrono::microseconds(us)); }

std::string blob(const detail::Digest& d) { return std::string(reinterpret_cast<const char*>(d.data()), d.size()); }

std::string column_blob(const detail::Column& c) {
  return std::string(c.as_blob());
}

User read_user(detail::Statement& q) {
  User u;
  u.id = q.column(0).as_text();
  u.email = q.column(1).as_text();
  u.username = q.column(2).as_text();
  u.first_name = q.column(3).as_text();
  u.last_name = q.column(4).as_text();
  u.role = parse_role(q.column(5).as_text()).value_or(Role::user);
  u.hardware_wallet_enabled = q.column(6).as_int() != 0;
  u.totp_enabled = q.column(7).as_int() != 0;
  u.created_at = parse_rfc3339(q.column(8).as_text()).value_or(Timestamp{});
  u.updated_at = parse_rfc3339(q.column(9).as_text()).value_or(Timestamp{});
  if (!q.column(10).is_null()) u.last_login = parse_rfc3339(q.column(10).as_text());
  if (!q.column(11).is_null()) u.locked_until = from_us(q.column(11).as_int64());
  return u;
}

[[noreturn]] void bad(const char* field, const std::string& msg, Reason r = Reason::invalid_format) {
  throw Error(Errc::invalid_argument, msg, field, r);
}

void check_text(const char* field, const std::string& s, std::size_t min_len, std::size_t max_len) {
  const auto n = detail::utf8_length(s);
  if (n < min_len || n > max_len)
    bad(field, std::string(field) + " must be " + std::to_string(min_len) + " to " + std::to_string(max_len) +
                   " characters");
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) bad(field, std::string(field) + " must not contain control characters");
}

}  // namespace

bool valid_email(std::string_view s) noexcept {
  if (s.size() < 3 || s.size() > 254) return false;
  const auto at = s.find('@');
  if (at == std::string_view::npos || at == 0 || at > 64 || s.find('@', at + 1) != std::string_view::npos) return false;
  const auto domain = s.substr(at + 1);
  const auto dot = domain.find('.');
  if (domain.empty() || dot == std::string_view::npos || dot == 0 || domain.back() == '.' ||
      domain.find("..") != std::string_view::npos)
    return false;
  for (unsigned char c : s)
    if (c <= 0x20 || c == 0x7f || std::string_view("<>(),;:\\\"[]").find(static_cast<char>(c)) != std::string_view::npos)
      return false;
  return true;
}

namespace {

std::string normalized_email(const std::string& email) {
  if (!valid_email(email)) bad("email", "email must be an email address", Reason::invalid_email);
  std::string out = email;
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

void check_password(const UserCreate& u) {
  const auto n = detail::utf8_length(u.password);
  if (n < 8) bad("password", "password must be at least 8 characters", Reason::weak_password);
  if (u.password.size() > 128) bad("password", "password must be at most 128 bytes", Reason::out_of_range);
  int lower = 0, upper = 0, digit = 0, other = 0;
  for (unsigned char c : u.password) {
    if (c >= 'a' && c <= 'z') lower = 1;
    else if (c >= 'A' && c <= 'Z') upper = 1;
    else if (c >= '0' && c <= '9') digit = 1;
    else other = 1;
  }
  if (lower + upper + digit + other < 2)
    bad("password", "password must mix at least two of: lower case, upper case, digits, other characters",
        Reason::weak_password);
  std::string lowered = u.password;
  std::transform(lowered.begin(), lowered.end(), lowered.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lowered == u.email || lowered == u.username || lowered.find("password") != std::string::npos)
    bad("password", "password is too easy to guess", Reason::weak_password);
}

bool six_digits(const std::string& s) {
  return s.size() == 6 && s.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

struct LUCID_HIDDEN Users::Impl {
  detail::ClusterCore& core;
  detail::Digest hash_key{};  // keys the hashes of codes, link tokens, refresh tokens
  unsigned char totp_key[crypto_secretbox_KEYBYTES] = {0};
  std::shared_ptr<Mailer> mailer;  // Options::login.mailer, or the outbox
  std::string outbox;               // resolved_outbox_dir(options)
  bool loaded = false;

  mutable std::shared_mutex mu;  // guards live
  // Session id -> expiry and the user's role when the session was opened
  // (a role change revokes the user's sessions, so a live session's role is
  // the user's current role).
  struct LiveSession {
    Timestamp expires;
    Role role;
  };
  std::unordered_map<std::string, LiveSession> live;

  // Users by id, for the hot read path (GET /users/me). Every write that
  // touches a user invalidates its entry after commit and bumps `generation`;
  // a reader caches what it read only if no invalidation happened meanwhile,
  // so a row read before a concurrent commit is never cached.
  static constexpr std::size_t kUserCacheMax = 10000;
  mutable std::shared_mutex cache_mu;
  mutable std::unordered_map<std::string, User> cache;
  mutable std::atomic<std::uint64_t> generation{0};

  void invalidate(const std::string& id) {
    std::unique_lock lock(cache_mu);
    generation.fetch_add(1);
    cache.erase(id);
  }

  explicit Impl(detail::ClusterCore& c) : core(c) {}
  ~Impl() { sodium_memzero(totp_key, sizeof totp_key); }

  void load() {
    if (loaded) return;
    load_sessions();
    hash_key = detail::hmac_sha256(core.code_key, "lucidnode gateway login hashes v1");
    const auto k = detail::hmac_sha256(core.code_key, "lucidnode gateway totp secrets v1");
    std::copy(k.begin(), k.end(), totp_key);
    outbox = resolved_outbox_dir(core.opts);
    mailer = core.opts.login.mailer ? core.opts.login.mailer : std::make_shared<OutboxMailer>(outbox);
    loaded = true;
  }

  // The live sessions (replaced) and revoked token ids (added) from the database.
  void load_sessions() {
    const auto now = to_us(core.clock->now());
    core.store->read([&](Conn& c) {
      auto& q = c.stmt(
          "SELECT s.id, s.expires_at_us, u.role FROM auth_sessions s JOIN users u ON u.id = s.user_id "
          "WHERE s.revoked_at_us IS NULL AND s.expires_at_us > ?");
      q.bind(1, static_cast<std::int64_t>(now));
      decltype(live) fresh;
      while (q.step())
        fresh[q.column(0).as_text()] = {from_us(q.column(1).as_int64()),
                                        parse_role(q.column(2).as_text()).value_or(Role::user)};
      {
        std::unique_lock lock(mu);
        live.swap(fresh);
      }
      // Revoked session-less tokens stay refused across restarts.
      if (core.auth) {
        auto& r = c.stmt("SELECT token_id, expires_at_us FROM revoked_tokens WHERE expires_at_us > ?");
        r.bind(1, static_cast<std::int64_t>(now));
        while (r.step()) core.auth->revoke_token_id(r.column(0).as_text(), from_us(r.column(1).as_int64()));
      }
    });
  }

  std::string keyed_hash(std::string_view secret) const { return blob(detail::hmac_sha256(hash_key, secret)); }

  std::string encrypt(const std::string& plain) const {
    std::string out(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plain.size(), '\0');
    auto* o = reinterpret_cast<unsigned char*>(out.data());
    randombytes_buf(o, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(o + crypto_secretbox_NONCEBYTES, reinterpret_cast<const unsigned char*>(plain.data()),
                          plain.size(), o, totp_key);
    return out;
  }

  std::string decrypt(const std::string& box) const {
    if (box.size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
      throw Error(Errc::storage, "stored TOTP secret is damaged");
    std::string plain(box.size() - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES, '\0');
    const auto* b = reinterpret_cast<const unsigned char*>(box.data());
    if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()), b + crypto_secretbox_NONCEBYTES,
                                   box.size() - crypto_secretbox_NONCEBYTES, b, totp_key) != 0)
      throw Error(Errc::storage, "stored TOTP secret cannot be decrypted with this server key");
    return plain;
  }

  // The TOTP step (±1 around now) that `code` matches, above `last_step`, or -1.
  std::int64_t totp_match(const std::string& secret, const std::string& code, std::int64_t last_step) const {
    const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(core.clock->now().time_since_epoch()).count();
    std::int64_t found = -1;
    for (std::int64_t d = -1; d <= 1; ++d) {
      const std::int64_t step = now / 30 + d;
      const std::string expect = totp_code(secret, step * 30);
      // Every candidate is compared (no early exit) in constant time.
      if (step > last_step && detail::equal_ct(expect, code)) found = step;
    }
    return found;
  }

  std::optional<User> user_by(Conn& c, const char* sql, const std::string& key) const {
    auto& q = c.stmt(sql);
    q.bind(1, key);
    if (!q.step()) return std::nullopt;
    return read_user(q);
  }

  std::optional<User> by_id(Conn& c, const std::string& id) const {
    return user_by(c, "SELECT id, email, username, first_name, last_name, role, hardware_wallet, totp_secret IS NOT NULL, "
                      "created_at, updated_at, last_login, locked_until_us FROM users WHERE id = ?", id);
  }
  std::optional<User> by_email(Conn& c, const std::string& email) const {
    return user_by(c, "SELECT id, email, username, first_name, last_name, role, hardware_wallet, totp_secret IS NOT NULL, "
                      "created_at, updated_at, last_login, locked_until_us FROM users WHERE email = ?", email);
  }

  // Opens a session for `user` inside the caller's transaction.
  AuthTokens open_session(Conn& c, const User& user) const {
    const auto now = core.clock->now();
    AuthTokens t;
    t.session_id = detail::random_uuid();
    auto& ins = c.stmt("INSERT INTO auth_sessions (id, user_id, created_at_us, expires_at_us) VALUES (?, ?, ?, ?)");
    ins.bind(1, t.session_id);
    ins.bind(2, user.id);
    ins.bind(3, static_cast<std::int64_t>(to_us(now)));
    ins.bind(4, static_cast<std::int64_t>(to_us(now + core.opts.login.refresh_token_ttl)));
    ins.run();
    issue(c, t, user, now + core.opts.login.refresh_token_ttl);
    return t;
  }

  // A new refresh token in session t.session_id and an access token.
  void issue(Conn& c, AuthTokens& t, const User& user, Timestamp session_expiry) const {
    const auto now = core.clock->now();
    t.refresh_token = "lrt_" + detail::base64url_encode(detail::random_bytes(32));
    auto& ins = c.stmt("INSERT INTO refresh_tokens (token_hash, session_id, expires_at_us) VALUES (?, ?, ?)");
    const std::string h = keyed_hash(t.refresh_token);
    ins.bind_blob(1, h);
    ins.bind(2, t.session_id);
    ins.bind(3, static_cast<std::int64_t>(to_us(std::min(session_expiry, now + core.opts.login.refresh_token_ttl))));
    ins.run();
    t.expires_in = core.opts.login.access_token_ttl;
    t.access_token = core.require_auth().issue_token(user.id, user.role, core.opts.login.access_token_ttl, {}, t.session_id);
    t.user = user;
  }

  void revoke_sessions_of(Conn& c, const std::string& user_id, const char* reason, std::vector<std::string>& out) {
    auto& q = c.stmt("SELECT id FROM auth_sessions WHERE user_id = ? AND revoked_at_us IS NULL");
    q.bind(1, user_id);
    while (q.step()) out.push_back(q.column(0).as_text());
    auto& u = c.stmt("UPDATE auth_sessions SET revoked_at_us = ?, revoke_reason = ? WHERE user_id = ? AND revoked_at_us IS NULL");
    u.bind(1, static_cast<std::int64_t>(to_us(core.clock->now())));
    u.bind(2, reason);
    u.bind(3, user_id);
    u.run();
  }

  void forget(const std::vector<std::string>& sessions) {
    if (sessions.empty()) return;
    std::unique_lock lock(mu);
    for (const auto& s : sessions) live.erase(s);
    lock.unlock();
    core.broadcast_change("users");
  }

  void remember(const AuthTokens& t) {
    std::unique_lock lock(mu);
    live[t.session_id] = {core.clock->now() + core.opts.login.refresh_token_ttl, t.user.role};
    lock.unlock();
    core.broadcast_change("users");
  }

  enum class Outcome { ok, invalid_credentials, totp_invalid, login_expired, account_locked };

  // Checks a code or a link token for `email`; counts failures. One
  // transaction whatever the outcome, so a failure's count is committed.
  AuthTokens verify(const std::string& email_in, const std::string& secret, bool is_link) {
    const std::string email = normalized_email(email_in);
    AuthTokens tokens;
    const auto now = core.clock->now();
    std::string touched;
    const Outcome outcome = core.store->write([&](Conn& c) -> Outcome {
      auto user = by_email(c, email);
      if (!user) return Outcome::invalid_credentials;
      touched = user->id;
      if (user->locked_until && *user->locked_until > now) return Outcome::account_locked;
      bool matched = false;
      bool had_login = false;
      bool expired = false;
      auto& q = c.stmt("SELECT code_hash, token_hash, expires_at_us FROM login_attempts WHERE user_id = ?");
      q.bind(1, user->id);
      if (q.step()) {
        if (from_us(q.column(2).as_int64()) <= now) {
          expired = true;
        } else {
          had_login = true;
          const std::string stored = column_blob(q.column(is_link ? 1 : 0));
          matched = detail::equal_ct(stored, keyed_hash(secret));
        }
      }
      q.reset();
      if (expired || matched) {
        auto& d = c.stmt("DELETE FROM login_attempts WHERE user_id = ?");
        d.bind(1, user->id);
        d.run();
      }
      std::int64_t totp_step = -1;
      if (!matched && !is_link && user->totp_enabled) {
        auto& t = c.stmt("SELECT totp_secret, totp_last_step FROM users WHERE id = ?");
        t.bind(1, user->id);
        if (t.step()) totp_step = totp_match(decrypt(column_blob(t.column(0))), secret, t.column(1).as_int64());
        t.reset();
        matched = totp_step >= 0;
      }
      if (!matched) {
        if (!had_login && !user->totp_enabled) return Outcome::login_expired;  // nothing to guess
        auto& f = c.stmt(
            "UPDATE users SET failed_attempts = failed_attempts + 1 WHERE id = ? RETURNING failed_attempts");
        f.bind(1, user->id);
        const int failures = f.step() ? f.column(0).as_int() : 0;
        f.reset();
        if (failures >= kMaxFailures) {
          auto& l = c.stmt("UPDATE users SET failed_attempts = 0, locked_until_us = ? WHERE id = ?");
          l.bind(1, static_cast<std::int64_t>(to_us(now + kLockout)));
          l.bind(2, user->id);
          l.run();
          // A lock also ends the pending login: a new one must be requested.
          auto& d = c.stmt("DELETE FROM login_attempts WHERE user_id = ?");
          d.bind(1, user->id);
          d.run();
          return Outcome::account_locked;
        }
        if (expired) return Outcome::login_expired;
        return user->totp_enabled && !is_link ? Outcome::totp_invalid : Outcome::invalid_credentials;
      }
      auto& ok = c.stmt(
          "UPDATE users SET failed_attempts = 0, locked_until_us = NULL, last_login = ?1, "
          "totp_last_step = CASE WHEN totp_last_step > ?2 THEN totp_last_step ELSE ?2 END WHERE id = ?3");
      ok.bind(1, format_rfc3339(now));
      ok.bind(2, static_cast<std::int64_t>(totp_step));
      ok.bind(3, user->id);
      ok.run();
      user->last_login = now;
      user->locked_until.reset();
      tokens = open_session(c, *user);
      return Outcome::ok;
    });
    if (!touched.empty()) invalidate(touched);
    switch (outcome) {
      case Outcome::ok: remember(tokens); return tokens;
      case Outcome::invalid_credentials:
        throw Error(Errc::unauthenticated, "Invalid credentials", {}, Reason::invalid_credentials);
      case Outcome::totp_invalid: throw Error(Errc::unauthenticated, "TOTP code invalid", {}, Reason::totp_invalid);
      case Outcome::login_expired:
        throw Error(Errc::unauthenticated, "No login in progress or the login expired; request a new one", {},
                    Reason::login_expired);
      case Outcome::account_locked:
        throw Error(Errc::unauthenticated, "Account locked after too many failed attempts; try again later", {},
                    Reason::account_locked);
    }
    throw Error(Errc::internal, "unreachable");
  }
};

Users::Users(detail::ClusterCore& core) : impl_(std::make_unique<Impl>(core)) {}
Users::~Users() = default;

void Users::load() { impl_->load(); }

void Users::reload_sessions() { impl_->load_sessions(); }

User Users::create(const UserCreate& in) {
  UserCreate u = in;
  u.email = normalized_email(u.email);
  check_text("username", u.username, 3, 50);
  check_text("first_name", u.first_name, 0, 100);
  check_text("last_name", u.last_name, 0, 100);
  check_password(u);
  // Login is passwordless: no endpoint ever checks this password, so it is
  // not kept at all (docs/decisions.md "issue 12: one client cannot starve
  // everyone"). Hashing it with Argon2id (64 MiB, ~0.1 s of CPU per sign-up)
  // let anonymous sign-ups exhaust memory and CPU, and a stored hash would
  // only be something to crack after a leak. The NOT NULL column holds a
  // marker that no password hash verification accepts.
  const char* hash = kNoPasswordHash;
  const std::string id = detail::random_uuid();
  const std::string now = format_rfc3339(impl_->core.clock->now());
  return impl_->core.store->write([&](Conn& c) {
    auto& dup = c.stmt("SELECT email = ? FROM users WHERE email = ? OR username = ? LIMIT 1");
    dup.bind(1, u.email);
    dup.bind(2, u.email);
    dup.bind(3, u.username);
    if (dup.step()) {
      const bool email = dup.column(0).as_int() != 0;
      throw Error(Errc::conflict, email ? "A user with that email already exists" : "That username is taken",
                  email ? "email" : "username", Reason::already_exists);
    }
    dup.reset();
    auto& ins = c.stmt(
        "INSERT INTO users (id, email, username, first_name, last_name, role, password_hash, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    ins.bind(1, id);
    ins.bind(2, u.email);
    ins.bind(3, u.username);
    ins.bind(4, u.first_name);
    ins.bind(5, u.last_name);
    ins.bind(6, role_name(u.role));
    ins.bind(7, hash);
    ins.bind(8, now);
    ins.bind(9, now);
    ins.run();
    return *impl_->by_id(c, id);
  });
}

User Users::get(const std::string& id) const {
  {
    std::shared_lock lock(impl_->cache_mu);
    auto it = impl_->cache.find(id);
    if (it != impl_->cache.end()) return it->second;
  }
  const std::uint64_t gen = impl_->generation.load();
  auto u = impl_->core.store->read([&](Conn& c) { return impl_->by_id(c, id); });
  if (!u) throw Error(Errc::not_found, "User not found");
  std::unique_lock lock(impl_->cache_mu);
  if (impl_->generation.load() == gen) {
    if (impl_->cache.size() >= Impl::kUserCacheMax) impl_->cache.clear();
    impl_->cache.emplace(id, *u);
  }
  return *u;
}

std::optional<User> Users::find_by_email(const std::string& email) const {
  const std::string e = normalized_email(email);
  return impl_->core.store->read([&](Conn& c) { return impl_->by_email(c, e); });
}

std::vector<User> Users::list(const UserQuery& q, std::int64_t* total) const {
  if (q.page < 1 || q.limit < 1 || q.limit > 100) throw Error(Errc::invalid_argument, "bad page or limit", "limit");
  const std::string role = q.role ? role_name(*q.role) : "";
  return impl_->core.store->read([&](Conn& c) {
    std::vector<User> out;
    auto& n = c.stmt("SELECT COUNT(*) FROM users WHERE (? = '' OR role = ?)");
    n.bind(1, role);
    n.bind(2, role);
    if (total) *total = n.step() ? n.column(0).as_int64() : 0;
    n.reset();
    auto& s = c.stmt(
        "SELECT id, email, username, first_name, last_name, role, hardware_wallet, totp_secret IS NOT NULL, "
        "created_at, updated_at, last_login, locked_until_us FROM users WHERE (? = '' OR role = ?) "
        "ORDER BY created_at, id LIMIT ? OFFSET ?");
    s.bind(1, role);
    s.bind(2, role);
    s.bind(3, static_cast<std::int64_t>(q.limit));
    s.bind(4, static_cast<std::int64_t>((q.page - 1) * q.limit));
    while (s.step()) out.push_back(read_user(s));
    return out;
  });
}

User Users::update(const std::string& id, const UserUpdate& u) {
  if (u.username) check_text("username", *u.username, 3, 50);
  if (u.first_name) check_text("first_name", *u.first_name, 0, 100);
  if (u.last_name) check_text("last_name", *u.last_name, 0, 100);
  std::vector<std::string> revoked;
  auto out = impl_->core.store->write([&](Conn& c) {
    auto cur = impl_->by_id(c, id);
    if (!cur) throw Error(Errc::not_found, "User not found");
    if (u.username && *u.username != cur->username) {
      auto& dup = c.stmt("SELECT 1 FROM users WHERE username = ? AND id <> ?");
      dup.bind(1, *u.username);
      dup.bind(2, id);
      if (dup.step()) throw Error(Errc::conflict, "That username is taken", "username", Reason::already_exists);
      dup.reset();
    }
    auto& up = c.stmt(
        "UPDATE users SET username = ?, first_name = ?, last_name = ?, hardware_wallet = ?, role = ?, updated_at = ? "
        "WHERE id = ?");
    up.bind(1, u.username.value_or(cur->username));
    up.bind(2, u.first_name.value_or(cur->first_name));
    up.bind(3, u.last_name.value_or(cur->last_name));
    up.bind(4, u.hardware_wallet_enabled.value_or(cur->hardware_wallet_enabled) ? 1 : 0);
    up.bind(5, role_name(u.role.value_or(cur->role)));
    up.bind(6, format_rfc3339(impl_->core.clock->now()));
    up.bind(7, id);
    up.run();
    // Access tokens carry the role: a changed role ends the user's sessions.
    if (u.role && *u.role != cur->role) impl_->revoke_sessions_of(c, id, "role changed", revoked);
    return *impl_->by_id(c, id);
  });
  impl_->invalidate(id);
  impl_->forget(revoked);
  return out;
}

void Users::remove(const std::string& id) {
  std::vector<std::string> revoked;
  impl_->core.store->write([&](Conn& c) {
    impl_->revoke_sessions_of(c, id, "user deleted", revoked);
    auto& d = c.stmt("DELETE FROM users WHERE id = ?");
    d.bind(1, id);
    d.run();
    if (c.changes() == 0) throw Error(Errc::not_found, "User not found");
  });
  impl_->invalidate(id);
  impl_->forget(revoked);
}

std::chrono::seconds Users::start_login(const std::string& email_in) {
  const std::string email = normalized_email(email_in);
  const auto ttl = impl_->core.opts.login.code_ttl;
  const auto now = impl_->core.clock->now();
  // 6 uniformly random digits and a 256-bit link token.
  char code[8];
  std::snprintf(code, sizeof code, "%06u", randombytes_uniform(1000000));
  const std::string token = detail::base64url_encode(detail::random_bytes(32));
  const bool known = impl_->core.store->write([&](Conn& c) {
    auto user = impl_->by_email(c, email);
    if (!user) return false;
    auto& ins = c.stmt(
        "INSERT INTO login_attempts (user_id, code_hash, token_hash, expires_at_us) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(user_id) DO UPDATE SET code_hash = excluded.code_hash, token_hash = excluded.token_hash, "
        "expires_at_us = excluded.expires_at_us");
    const std::string ch = impl_->keyed_hash(code), th = impl_->keyed_hash(token);
    ins.bind(1, user->id);
    ins.bind_blob(2, ch);
    ins.bind_blob(3, th);
    ins.bind(4, static_cast<std::int64_t>(to_us(now + ttl)));
    ins.run();
    return true;
  });
  if (known) {
    // Every query value percent-encoded: "a+tag@x" would otherwise arrive as
    // "a tag@x" ('+' is a space in a query).
    std::string link = impl_->core.opts.login.public_url + "/api/v1/auth/verify?email=" + detail::percent_encode(email) +
                       "&token=" + detail::percent_encode(token);
    MailMessage m;
    m.to = email;
    m.subject = "Your lucidnode sign-in code: " + std::string(code);
    m.body = "Your sign-in code is " + std::string(code) + "\n\nOr open this link to sign in:\n" + link +
             "\n\nBoth expire in " + std::to_string(ttl.count() / 60) +
             " minutes and work once. If you did not ask to sign in, ignore this message.\n";
    // The mailer is shared: it outlives this call even if the cluster closes first.
    impl_->core.post_or_run([mailer = impl_->mailer, m = std::move(m)] { mailer->deliver(m); });
  }
  sodium_memzero(code, sizeof code);
  return ttl;
}

AuthTokens Users::verify_code(const std::string& email, const std::string& code) {
  if (!six_digits(code)) bad("code", "code must be 6 digits");
  return impl_->verify(email, code, false);
}

AuthTokens Users::verify_link(const std::string& email, const std::string& token) {
  if (token.empty() || token.size() > 128) bad("token", "token must be 1..128 characters");
  return impl_->verify(email, token, true);
}

AuthTokens Users::refresh(const std::string& refresh_token) {
  if (refresh_token.empty() || refresh_token.size() > 256)
    throw Error(Errc::unauthenticated, "Refresh token invalid", {}, Reason::refresh_token_invalid);
  enum class Outcome { ok, invalid, reused };
  const auto now = impl_->core.clock->now();
  AuthTokens tokens;
  std::string session;
  const std::string h = impl_->keyed_hash(refresh_token);
  const Outcome outcome = impl_->core.store->write([&](Conn& c) -> Outcome {
    auto& q = c.stmt(
        "SELECT r.session_id, r.expires_at_us, r.rotated_at_us, s.revoked_at_us, s.expires_at_us, s.user_id "
        "FROM refresh_tokens r JOIN auth_sessions s ON s.id = r.session_id WHERE r.token_hash = ?");
    q.bind_blob(1, h);
    if (!q.step()) return Outcome::invalid;
    session = q.column(0).as_text();
    const auto expires = from_us(q.column(1).as_int64());
    const bool rotated = !q.column(2).is_null();
    const bool revoked = !q.column(3).is_null();
    const auto session_expires = from_us(q.column(4).as_int64());
    const std::string user_id = q.column(5).as_text();
    q.reset();
    if (revoked) return Outcome::invalid;
    if (rotated) {
      auto& r = c.stmt(
          "UPDATE auth_sessions SET revoked_at_us = ?, revoke_reason = 'refresh token reuse' WHERE id = ?");
      r.bind(1, static_cast<std::int64_t>(to_us(now)));
      r.bind(2, session);
      r.run();
      return Outcome::reused;
    }
    if (expires <= now || session_expires <= now) return Outcome::invalid;
    auto user = impl_->by_id(c, user_id);
    if (!user) return Outcome::invalid;
    auto& m = c.stmt("UPDATE refresh_tokens SET rotated_at_us = ? WHERE token_hash = ?");
    m.bind(1, static_cast<std::int64_t>(to_us(now)));
    m.bind_blob(2, h);
    m.run();
    tokens.session_id = session;
    impl_->issue(c, tokens, *user, session_expires);
    return Outcome::ok;
  });
  if (outcome == Outcome::ok) return tokens;
  if (outcome == Outcome::reused) {
    impl_->forget({session});
    throw Error(Errc::unauthenticated, "Refresh token was already used; the session is revoked", {},
                Reason::refresh_token_invalid);
  }
  throw Error(Errc::unauthenticated, "Refresh token invalid or expired", {}, Reason::refresh_token_invalid);
}

void Users::logout(const std::string& session_id) {
  impl_->core.store->write([&](Conn& c) {
    auto& r = c.stmt("UPDATE auth_sessions SET revoked_at_us = ?, revoke_reason = 'logout' WHERE id = ? AND revoked_at_us IS NULL");
    r.bind(1, static_cast<std::int64_t>(to_us(impl_->core.clock->now())));
    r.bind(2, session_id);
    r.run();
  });
  impl_->forget({session_id});
}

void Users::revoke_token(const Claims& claims) {
  if (!claims.session_id.empty())
    throw Error(Errc::conflict, "This token belongs to a login session: log the session out");
  if (claims.token_id.empty() || claims.token_id.size() > 128)
    throw Error(Errc::invalid_argument, "This token carries no token id (jti) to revoke");
  impl_->core.store->write([&](Conn& c) {
    auto& r = c.stmt("INSERT INTO revoked_tokens (token_id, expires_at_us) VALUES (?, ?) ON CONFLICT DO NOTHING");
    r.bind(1, claims.token_id);
    r.bind(2, static_cast<std::int64_t>(to_us(claims.expires_at)));
    r.run();
  });
  // After the write: a failed write leaves the token valid, as it reported.
  impl_->core.require_auth().revoke_token_id(claims.token_id, claims.expires_at);
  impl_->core.broadcast_change("users");
}

User Users::ensure_subject_user(const std::string& subject, const std::string& email) {
  if (subject.empty() || subject.size() > 64 ||
      !std::all_of(subject.begin(), subject.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; }))
    bad("subject", "a token subject must be 1..64 visible ASCII characters");
  const std::string mail = normalized_email(email);
  const std::string now = format_rfc3339(impl_->core.clock->now());
  const std::string id = impl_->core.store->write([&](Conn& c) -> std::string {
    // A link whose user was deleted is dropped: the record is made anew.
    auto& stale = c.stmt("DELETE FROM token_subjects WHERE subject = ? AND user_id NOT IN (SELECT id FROM users)");
    stale.bind(1, subject);
    stale.run();
    auto& linked = c.stmt("SELECT user_id FROM token_subjects WHERE subject = ?");
    linked.bind(1, subject);
    if (linked.step()) return linked.column(0).as_text();
    linked.reset();
    auto& taken = c.stmt("SELECT 1 FROM users WHERE email = ?");
    taken.bind(1, mail);
    if (taken.step())
      throw Error(Errc::conflict, "A user with that email already exists; give the bootstrap admin another", "email",
                  Reason::already_exists);
    taken.reset();
    std::string username = subject.size() >= 3 && subject.size() <= 43 ? subject : "admin";
    auto& name_taken = c.stmt("SELECT 1 FROM users WHERE username = ?");
    name_taken.bind(1, username);
    const bool clash = name_taken.step();
    name_taken.reset();
    if (clash) username += "-" + detail::to_hex(detail::random_bytes(3));
    const std::string uid = detail::random_uuid();
    auto& ins = c.stmt(
        "INSERT INTO users (id, email, username, first_name, last_name, role, password_hash, created_at, updated_at) "
        "VALUES (?, ?, ?, '', '', ?, ?, ?, ?)");
    ins.bind(1, uid);
    ins.bind(2, mail);
    ins.bind(3, username);
    ins.bind(4, role_name(Role::super_admin));
    ins.bind(5, kNoPasswordHash);
    ins.bind(6, now);
    ins.bind(7, now);
    ins.run();
    auto& link = c.stmt("INSERT INTO token_subjects (subject, user_id) VALUES (?, ?)");
    link.bind(1, subject);
    link.bind(2, uid);
    link.run();
    return uid;
  });
  return get(id);
}

std::optional<User> Users::user_for_subject(const std::string& subject) const {
  auto id = impl_->core.store->read([&](Conn& c) -> std::optional<std::string> {
    auto& q = c.stmt("SELECT user_id FROM token_subjects WHERE subject = ?");
    q.bind(1, subject);
    if (!q.step()) return std::nullopt;
    return q.column(0).as_text();
  });
  if (!id) return std::nullopt;
  try {
    return get(*id);
  } catch (const Error& e) {
    if (e.code() == Errc::not_found) return std::nullopt;
    throw;
  }
}

bool Users::session_active(std::string_view session_id) const { return session_role(session_id).has_value(); }

std::optional<Role> Users::session_role(std::string_view session_id) const {
  {
    std::shared_lock lock(impl_->mu);
    auto it = impl_->live.find(std::string(session_id));
    if (it != impl_->live.end()) {
      if (it->second.expires <= impl_->core.clock->now()) return std::nullopt;
      return it->second.role;
    }
  }
  // With replicas, a session another server just created may not have
  // reached this one's cache yet (its "users" message is on the way): the
  // database decides, and the cache learns it. The token was verified
  // before this is asked, so only signed session ids cost a read.
  if (!impl_->core.replicated() || session_id.empty() || session_id.size() > 128) return std::nullopt;
  const auto now = impl_->core.clock->now();
  auto found = impl_->core.store->read([&](Conn& c) -> std::optional<Impl::LiveSession> {
    auto& q = c.stmt(
        "SELECT s.expires_at_us, u.role FROM auth_sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.id = ? AND s.revoked_at_us IS NULL AND s.expires_at_us > ?");
    q.bind(1, std::string(session_id));
    q.bind(2, static_cast<std::int64_t>(to_us(now)));
    if (!q.step()) return std::nullopt;
    return Impl::LiveSession{from_us(q.column(0).as_int64()), parse_role(q.column(1).as_text()).value_or(Role::user)};
  });
  if (!found) return std::nullopt;
  std::unique_lock lock(impl_->mu);
  impl_->live[std::string(session_id)] = *found;
  return found->role;
}

void Users::prune() {
  const auto now = impl_->core.clock->now();
  const auto us = static_cast<std::int64_t>(to_us(now));
  impl_->core.store->write([&](Conn& c) {
    auto& a = c.stmt("DELETE FROM login_attempts WHERE expires_at_us <= ?");
    a.bind(1, us);
    a.run();
    auto& r = c.stmt("DELETE FROM refresh_tokens WHERE expires_at_us <= ?");
    r.bind(1, us);
    r.run();
    auto& s = c.stmt("DELETE FROM auth_sessions WHERE expires_at_us <= ?");
    s.bind(1, us);
    s.run();
    auto& t = c.stmt("DELETE FROM revoked_tokens WHERE expires_at_us <= ?");
    t.bind(1, us);
    t.run();
  });
  std::unique_lock lock(impl_->mu);
  std::erase_if(impl_->live, [&](const auto& kv) { return kv.second.expires <= now; });
}

std::int64_t Users::live_sessions() const {
  const auto now = impl_->core.clock->now();
  std::shared_lock lock(impl_->mu);
  return static_cast<std::int64_t>(
      std::count_if(impl_->live.begin(), impl_->live.end(), [&](const auto& kv) { return kv.second.expires > now; }));
}

std::string Users::outbox_dir() const { return impl_->outbox; }
std::string Users::mail_delivery() const { return impl_->mailer->describe(); }

TotpEnrollment Users::enroll_totp(const std::string& id, bool activate) {
  const std::string secret = detail::random_bytes(20);  // 160 bits, RFC 4226's recommendation
  const std::string box = impl_->encrypt(secret);
  auto user = impl_->core.store->write([&](Conn& c) {
    auto u = impl_->by_id(c, id);
    if (!u) throw Error(Errc::not_found, "User not found");
    auto& s = c.stmt(activate ? "UPDATE users SET totp_secret = ?, totp_pending = NULL, totp_last_step = 0 WHERE id = ?"
                              : "UPDATE users SET totp_pending = ? WHERE id = ?");
    s.bind_blob(1, box);
    s.bind(2, id);
    s.run();
    return *u;
  });
  impl_->invalidate(id);
  TotpEnrollment e;
  e.secret_base32 = base32_encode(secret);
  std::string label;
  for (unsigned char ch : user.email) {
    if (std::isalnum(ch) || ch == '.' || ch == '-' || ch == '_') label += static_cast<char>(ch);
    else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", ch);
      label += buf;
    }
  }
  e.otpauth_uri = "otpauth://totp/lucidnode:" + label + "?secret=" + e.secret_base32 +
                  "&issuer=lucidnode&algorithm=SHA1&digits=6&period=30";
  return e;
}

void Users::confirm_totp(const std::string& id, const std::string& code) {
  if (!six_digits(code)) bad("code", "code must be 6 digits");
  const bool ok = impl_->core.store->write([&](Conn& c) {
    auto& q = c.stmt("SELECT totp_pending FROM users WHERE id = ?");
    q.bind(1, id);
    if (!q.step()) throw Error(Errc::not_found, "User not found");
    if (q.column(0).is_null()) throw Error(Errc::conflict, "No TOTP enrolment is pending; start one first");
    const std::string box = column_blob(q.column(0));
    q.reset();
    const std::int64_t step = impl_->totp_match(impl_->decrypt(box), code, 0);
    if (step < 0) return false;
    auto& s = c.stmt("UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = ? WHERE id = ?");
    s.bind(1, static_cast<std::int64_t>(step));
    s.bind(2, id);
    s.run();
    return true;
  });
  impl_->invalidate(id);
  if (!ok) throw Error(Errc::unauthenticated, "TOTP code invalid", "code", Reason::totp_invalid);
}

void Users::disable_totp(const std::string& id) {
  impl_->core.store->write([&](Conn& c) {
    auto& s = c.stmt("UPDATE users SET totp_secret = NULL, totp_pending = NULL WHERE id = ?");
    s.bind(1, id);
    s.run();
    if (c.changes() == 0) throw Error(Errc::not_found, "User not found");
  });
  impl_->invalidate(id);
}

}  // namespace lucid
