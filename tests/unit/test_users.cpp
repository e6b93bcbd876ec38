// Users, passwordless login, TOTP (RFC 6238 vectors), sessions and refresh rotation.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>
#include <vector>

#include "lucidnode/lucidnode.hpp"
#include "lucidnode/mail.hpp"
#include "lucidnode/users.hpp"
#include "mail/smtp_mailer.hpp"
#include "support.hpp"

using namespace lucid;
using testsupport::TempDir;

namespace {

Reason reason_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.reason();
  }
  return Reason::none;
}

// The newest outbox message's text.
std::string last_mail(const std::string& dir) {
  std::filesystem::path newest;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".eml" && (newest.empty() || e.path().filename() > newest.filename())) newest = e.path();
  REQUIRE(!newest.empty());
  std::ifstream f(newest);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string code_in(const std::string& mail) {
  std::smatch m;
  REQUIRE(std::regex_search(mail, m, std::regex("sign-in code is ([0-9]{6})")));
  return m[1];
}

struct Fixture {
  TempDir dir;
  std::shared_ptr<OffsetClock> clock = std::make_shared<OffsetClock>();
  std::unique_ptr<Cluster> cluster;
  Fixture() {
    Options o;
    o.database_path = dir.file("lucid.db");
    o.clock = clock;
    cluster = std::make_unique<Cluster>(o);
  }
  User make_user(const std::string& email = "ada@example.com") {
    UserCreate u;
    u.email = email;
    u.username = email.substr(0, email.find('@'));
    u.password = "correct horse 9";
    return cluster->users().create(u);
  }
  std::string login_code(const std::string& email) {
    cluster->users().start_login(email);
    return code_in(last_mail(cluster->outbox_dir()));
  }
};

}  // namespace

TEST_CASE("totp: RFC 6238 appendix B SHA-1 test vectors") {
  const std::string key = "12345678901234567890";
  CHECK(totp_code(key, 59, 8) == "94287082");
  CHECK(totp_code(key, 1111111109, 8) == "07081804");
  CHECK(totp_code(key, 1111111111, 8) == "14050471");
  CHECK(totp_code(key, 1234567890, 8) == "89005924");
  CHECK(totp_code(key, 2000000000, 8) == "69279037");
  CHECK(totp_code(key, 20000000000LL, 8) == "65353130");
  // Six digits are the same value modulo 10^6.
  CHECK(totp_code(key, 59) == "287082");
  CHECK(totp_code(key, 1111111109) == "081804");
  CHECK(base32_encode("12345678901234567890") == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
}

TEST_CASE("users: create validates, rejects duplicates") {
  Fixture fx;
  auto u = fx.make_user();
  CHECK(u.email == "ada@example.com");
  CHECK(u.role == Role::user);
  CHECK(fx.cluster->users().get(u.id).username == "ada");
  UserCreate bad;
  bad.email = "not-an-email";
  bad.username = "bob";
  bad.password = "abcdefg1";
  CHECK(reason_of([&] { fx.cluster->users().create(bad); }) == Reason::invalid_email);
  bad.email = "bob@example.com";
  bad.password = "abcdefgh";  // one character class
  CHECK(reason_of([&] { fx.cluster->users().create(bad); }) == Reason::weak_password);
  bad.password = "abcdefg1";
  bad.username = "ada";
  CHECK(reason_of([&] { fx.cluster->users().create(bad); }) == Reason::already_exists);
  bad.username = "bob";
  bad.email = "ADA@example.com";
  CHECK(reason_of([&] { fx.cluster->users().create(bad); }) == Reason::already_exists);
}

TEST_CASE("users: emailed code logs in once, tokens carry a live session") {
  Fixture fx;
  auto u = fx.make_user();
  const std::string code = fx.login_code("ada@example.com");
  auto t = fx.cluster->users().verify_code("ADA@example.com", code);
  CHECK(t.user.id == u.id);
  auto claims = fx.cluster->auth().verify_token(t.access_token);
  CHECK(claims.subject == u.id);
  CHECK(claims.session_id == t.session_id);
  // Single use.
  CHECK(reason_of([&] { fx.cluster->users().verify_code("ada@example.com", code); }) == Reason::login_expired);
  // Logout revokes the access token at once.
  fx.cluster->users().logout(t.session_id);
  CHECK(reason_of([&] { fx.cluster->auth().verify_token(t.access_token); }) == Reason::session_expired);
  CHECK(reason_of([&] { fx.cluster->users().refresh(t.refresh_token); }) == Reason::refresh_token_invalid);
}

TEST_CASE("users: login expires after 5 minutes") {
  Fixture fx;
  fx.make_user();
  const std::string code = fx.login_code("ada@example.com");
  fx.clock->advance(std::chrono::seconds(301));
  CHECK(reason_of([&] { fx.cluster->users().verify_code("ada@example.com", code); }) == Reason::login_expired);
}

TEST_CASE("users: 5 wrong codes lock the account for 15 minutes") {
  Fixture fx;
  fx.make_user();
  std::string code = fx.login_code("ada@example.com");
  const std::string wrong = code == "000000" ? "111111" : "000000";
  for (int i = 0; i < 4; ++i)
    CHECK(reason_of([&] { fx.cluster->users().verify_code("ada@example.com", wrong); }) == Reason::invalid_credentials);
  CHECK(reason_of([&] { fx.cluster->users().verify_code("ada@example.com", wrong); }) == Reason::account_locked);
  code = fx.login_code("ada@example.com");
  CHECK(reason_of([&] { fx.cluster->users().verify_code("ada@example.com", code); }) == Reason::account_locked);
  fx.clock->advance(std::chrono::minutes(15) + std::chrono::seconds(1));
  code = fx.login_code("ada@example.com");
  CHECK_NOTHROW(fx.cluster->users().verify_code("ada@example.com", code));
}

TEST_CASE("users: refresh rotates, reusing a rotated token revokes the family") {
  Fixture fx;
  fx.make_user();
  auto t1 = fx.cluster->users().verify_code("ada@example.com", fx.login_code("ada@example.com"));
  auto t2 = fx.cluster->users().refresh(t1.refresh_token);
  CHECK(t2.session_id == t1.session_id);
  CHECK(t2.refresh_token != t1.refresh_token);
  CHECK_NOTHROW(fx.cluster->auth().verify_token(t2.access_token));
  CHECK(reason_of([&] { fx.cluster->users().refresh(t1.refresh_token); }) == Reason::refresh_token_invalid);
  // The whole family is gone: the newer refresh token and the access tokens.
  CHECK(reason_of([&] { fx.cluster->users().refresh(t2.refresh_token); }) == Reason::refresh_token_invalid);
  CHECK(reason_of([&] { fx.cluster->auth().verify_token(t2.access_token); }) == Reason::session_expired);
}

TEST_CASE("users: TOTP enrolment, verification within ±1 step, no replay") {
  Fixture fx;
  auto u = fx.make_user();
  auto e = fx.cluster->users().enroll_totp(u.id, false);
  CHECK(e.otpauth_uri.find("otpauth://totp/lucidnode:ada%40example.com?secret=" + e.secret_base32) == 0);
  // Decode base32 to compute codes like an authenticator app.
  std::string key;
  std::uint32_t buf = 0;
  int bits = 0;
  for (char c : e.secret_base32) {
    buf = (buf << 5) | static_cast<std::uint32_t>(c >= 'A' ? c - 'A' : c - '2' + 26);
    bits += 5;
    if (bits >= 8) {
      key += static_cast<char>((buf >> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  auto now = [&] { return std::chrono::duration_cast<std::chrono::seconds>(fx.clock->now().time_since_epoch()).count(); };
  CHECK(reason_of([&] { fx.cluster->users().confirm_totp(u.id, totp_code(key, now() + 300)); }) == Reason::totp_invalid);
  fx.cluster->users().confirm_totp(u.id, totp_code(key, now()));
  CHECK(fx.cluster->users().get(u.id).totp_enabled);
  // The confirming code's step is used; the next step's code logs in.
  auto t = fx.cluster->users().verify_code("ada@example.com", totp_code(key, now() + 30));
  CHECK(!t.access_token.empty());
  CHECK(reason_of([&] { fx.cluster->users().verify_code("ada@example.com", totp_code(key, now() + 30)); }) ==
        Reason::totp_invalid);
  CHECK(reason_of([&] { fx.cluster->users().verify_code("ada@example.com", totp_code(key, now() + 120)); }) ==
        Reason::totp_invalid);
}

TEST_CASE("users: role change and deletion end sessions, sessions survive a restart") {
  TempDir dir;
  Options o;
  o.database_path = dir.file("lucid.db");
  std::string access, id;
  {
    Cluster c(o);
    UserCreate u;
    u.email = "ada@example.com";
    u.username = "ada";
    u.password = "correct horse 9";
    id = c.users().create(u).id;
    c.users().start_login("ada@example.com");
    auto t = c.users().verify_code("ada@example.com", code_in(last_mail(c.outbox_dir())));
    access = t.access_token;
  }
  Cluster c(o);
  CHECK_NOTHROW(c.auth().verify_token(access));
  UserUpdate up;
  up.role = Role::admin;
  c.users().update(id, up);
  CHECK(reason_of([&] { c.auth().verify_token(access); }) == Reason::session_expired);
  c.users().remove(id);
  CHECK(testsupport::code_of([&] { c.users().get(id); }) == Errc::not_found);
}

TEST_CASE("users: prune forgets expired sessions and logins") {
  Fixture fx;
  fx.make_user();
  auto t = fx.cluster->users().verify_code("ada@example.com", fx.login_code("ada@example.com"));
  fx.cluster->users().start_login("ada@example.com");
  CHECK(fx.cluster->users().live_sessions() == 1);
  fx.clock->advance(std::chrono::hours(24 * 31));
  fx.cluster->users().prune();
  CHECK(fx.cluster->users().live_sessions() == 0);
  CHECK(reason_of([&] { fx.cluster->users().refresh(t.refresh_token); }) == Reason::refresh_token_invalid);
}

TEST_CASE("users: a session-less token is revoked by its jti until it expires - across a restart") {
  TempDir dir;
  auto clock = std::make_shared<OffsetClock>();
  Options o;
  o.database_path = dir.file("lucid.db");
  o.clock = clock;
  std::string tok, other;
  {
    Cluster c(o);
    tok = c.auth().issue_token("admin", Role::super_admin, std::chrono::hours(1));
    other = c.auth().issue_token("admin", Role::super_admin, std::chrono::hours(1));
    const Claims claims = c.auth().verify_token(tok);
    c.users().revoke_token(claims);
    c.users().revoke_token(claims);  // idempotent
    CHECK(testsupport::code_of([&] { c.auth().verify_token(tok); }) == Errc::unauthenticated);
    CHECK_NOTHROW(c.auth().verify_token(other));
    // A session's token is logged out, not revoked this way; a token without a jti cannot be.
    Claims with_session = claims;
    with_session.session_id = "s";
    CHECK(testsupport::code_of([&] { c.users().revoke_token(with_session); }) == Errc::conflict);
    Claims no_jti = claims;
    no_jti.token_id.clear();
    CHECK(testsupport::code_of([&] { c.users().revoke_token(no_jti); }) == Errc::invalid_argument);
  }
  {
    Cluster c(o);  // replayed from revoked_tokens
    CHECK(testsupport::code_of([&] { c.auth().verify_token(tok); }) == Errc::unauthenticated);
    CHECK_NOTHROW(c.auth().verify_token(other));
    clock->advance(std::chrono::hours(2));
    c.users().prune();  // the expired row goes
  }
  Cluster c(o);
  CHECK(testsupport::code_of([&] { c.auth().verify_token(tok); }) == Errc::unauthenticated);  // expired anyway
  const auto fresh = c.auth().issue_token("admin", Role::super_admin, std::chrono::hours(1));
  CHECK_NOTHROW(c.auth().verify_token(fresh));
}

TEST_CASE("auth: revoke_token_id refuses cached and uncached verifications - entries lapse at their expiry") {
  auto clock = std::make_shared<OffsetClock>();
  Auth auth(clock, Auth::generate_secret_key());
  const auto a = auth.issue_token("s", Role::admin, std::chrono::seconds(60));
  const auto b = auth.issue_token("s", Role::admin, std::chrono::seconds(600));
  const Claims ca = auth.verify_token(a);  // now cached
  auth.revoke_token_id(ca.token_id, ca.expires_at);
  CHECK(testsupport::code_of([&] { auth.verify_token(a); }) == Errc::unauthenticated);
  CHECK_NOTHROW(auth.verify_token(b));
  auth.revoke_token_id("", ca.expires_at);  // ignored
  clock->advance(std::chrono::seconds(120));
  // A later revocation drops the lapsed entry; `a` is refused as expired.
  const Claims cb = auth.verify_token(b);
  auth.revoke_token_id(cb.token_id, cb.expires_at);
  CHECK(testsupport::code_of([&] { auth.verify_token(b); }) == Errc::unauthenticated);
  CHECK(testsupport::code_of([&] { auth.verify_token(a); }) == Errc::unauthenticated);
}

TEST_CASE("users: a token subject's user record is made once - and resolved") {
  Fixture fx;
  auto& users = fx.cluster->users();
  CHECK_FALSE(users.user_for_subject("admin").has_value());
  const User a = users.ensure_subject_user("admin", "Ops@Example.com");
  CHECK(a.email == "ops@example.com");
  CHECK(a.username == "admin");
  CHECK(a.role == Role::super_admin);
  // Made once: another call (another email) keeps the record.
  CHECK(users.ensure_subject_user("admin", "other@example.com").id == a.id);
  REQUIRE(users.user_for_subject("admin").has_value());
  CHECK(users.user_for_subject("admin")->id == a.id);
  CHECK_FALSE(users.user_for_subject("someone").has_value());
  // A taken username gets a suffix; a taken email is refused.
  const User b = users.ensure_subject_user("ada", "b@example.com");
  fx.make_user("xavier@example.com");
  CHECK(testsupport::code_of([&] { users.ensure_subject_user("ops", "xavier@example.com"); }) == Errc::conflict);
  fx.make_user("zed@example.com");
  const User z = users.ensure_subject_user("zed", "z2@example.com");
  CHECK(std::regex_match(z.username, std::regex("zed-[0-9a-f]{6}")));
  CHECK(b.username == "ada");
  // Bad subjects and emails.
  CHECK(testsupport::code_of([&] { users.ensure_subject_user("", "c@example.com"); }) == Errc::invalid_argument);
  CHECK(testsupport::code_of([&] { users.ensure_subject_user("a b", "c@example.com"); }) == Errc::invalid_argument);
  CHECK(testsupport::code_of([&] { users.ensure_subject_user(std::string(65, 's'), "c@example.com"); }) ==
        Errc::invalid_argument);
  CHECK(testsupport::code_of([&] { users.ensure_subject_user("c", "not-an-email"); }) == Errc::invalid_argument);
  // Deleting the user drops the link; the next call makes a new record.
  users.remove(a.id);
  CHECK_FALSE(users.user_for_subject("admin").has_value());
  CHECK(users.ensure_subject_user("admin", "ops2@example.com").id != a.id);
}

TEST_CASE("cluster: health names the part that failed") {
  TempDir dir;
  Options o;
  o.database_path = dir.file("lucid.db");
  Cluster c(o);
  auto h = c.health(std::chrono::milliseconds(200));
  CHECK(h.database);
  CHECK(!h.executor);
  CHECK(h.executor_error == "executor not started");
  c.start();
  h = c.health(std::chrono::milliseconds(2000));
  CHECK(h.database);
  CHECK(h.executor);
  c.stop();
}

TEST_CASE("mail: SMTP failure falls back to the outbox with the error") {
  TempDir dir;
  Options o;
  o.database_path = dir.file("lucid.db");
  // lucid-server's mailer (apps/server/mail), plugged in as any embedder's would be.
  o.login.mailer = std::make_shared<lucid::server::SmtpMailer>(
      "smtp://127.0.0.1:1", "login@example.com",  // nothing listens on port 1
      std::make_shared<OutboxMailer>(resolved_outbox_dir(o)));
  Cluster c(o);
  CHECK(c.users().mail_delivery().rfind("SMTP via smtp://... from login@example.com", 0) == 0);
  UserCreate u;
  u.email = "ada@example.com";
  u.username = "ada";
  u.password = "correct horse 9";
  c.users().create(u);
  c.users().start_login("ada@example.com");  // executor not started: delivered inline
  const std::string mail = last_mail(c.outbox_dir());
  CHECK(mail.find("X-Lucid-Delivery-Error: SMTP delivery failed") != std::string::npos);
  CHECK(mail.find("From: login@example.com") != std::string::npos);
  auto outbox = std::make_shared<OutboxMailer>(dir.file("outbox"));
  CHECK(testsupport::code_of([&] { lucid::server::SmtpMailer m("http://example.com", "a@b.c", outbox); }) ==
        Errc::invalid_argument);
  CHECK(testsupport::code_of([&] { lucid::server::SmtpMailer m("smtp://example.com", "nobody", outbox); }) ==
        Errc::invalid_argument);
  CHECK(testsupport::code_of([&] { lucid::server::SmtpMailer m("smtp://example.com", "a@b.c", nullptr); }) ==
        Errc::invalid_argument);
}

namespace {
// An embedder's mailer: keeps what it is given.
struct KeepingMailer final : lucid::Mailer {
  std::mutex mu;
  std::vector<lucid::MailMessage> sent;
  bool deliver(const lucid::MailMessage& m) override {
    std::lock_guard lock(mu);
    sent.push_back(m);
    return true;
  }
  std::string describe() const override { return "kept in memory"; }
};
}  // namespace

TEST_CASE("mail: Options::login.mailer gets login mail; no outbox file is written") {
  TempDir dir;
  Options o;
  o.database_path = dir.file("lucid.db");
  o.login.public_url = "https://fleet.test";
  auto mailer = std::make_shared<KeepingMailer>();
  o.login.mailer = mailer;
  Cluster c(o);
  CHECK(c.users().mail_delivery() == "kept in memory");
  UserCreate u;
  u.email = "ada@example.com";
  u.username = "ada";
  u.password = "correct horse 9";
  c.users().create(u);
  c.users().start_login("nobody@example.com");  // unknown: no mail
  c.users().start_login("Ada@Example.com");
  REQUIRE(mailer->sent.size() == 1);
  CHECK(mailer->sent[0].to == "ada@example.com");
  CHECK(mailer->sent[0].body.find("https://fleet.test/api/v1/auth/verify?email=ada%40example.com&token=") !=
        std::string::npos);
  const std::string code = mailer->sent[0].subject.substr(mailer->sent[0].subject.size() - 6);
  CHECK(!c.users().verify_code("ada@example.com", code).access_token.empty());
  CHECK(!std::filesystem::exists(c.outbox_dir()));
}

TEST_CASE("mail: render_mail keeps header values on one line") {
  lucid::MailMessage m{"ada@example.com", "hi\r\nBcc: eve@example.com", "line 1\nline 2"};
  const std::string text = lucid::render_mail(m, "login@example.com", "X-Extra: 1\r\nX-Injected: 2");
  CHECK(text.find("\r\nBcc:") == std::string::npos);
  CHECK(text.find("\r\nX-Injected:") == std::string::npos);
  CHECK(text.find("Subject: hiBcc: eve@example.com\r\n") != std::string::npos);
  CHECK(text.find("\r\n\r\nline 1\r\nline 2\r\n") != std::string::npos);
  CHECK(text.find("Message-ID: <") != std::string::npos);
  CHECK(text.find("@example.com>") != std::string::npos);
  CHECK(testsupport::code_of([] { lucid::OutboxMailer m(""); }) == Errc::invalid_argument);
}

TEST_CASE("users: cached reads follow every write") {
  Fixture fx;
  auto u = fx.make_user();
  CHECK(fx.cluster->users().get(u.id).first_name.empty());  // now cached
  UserUpdate up;
  up.first_name = "Ada";
  fx.cluster->users().update(u.id, up);
  CHECK(fx.cluster->users().get(u.id).first_name == "Ada");
  CHECK(!fx.cluster->users().get(u.id).last_login);
  fx.cluster->users().verify_code("ada@example.com", fx.login_code("ada@example.com"));
  CHECK(fx.cluster->users().get(u.id).last_login);
  fx.cluster->users().enroll_totp(u.id, true);
  CHECK(fx.cluster->users().get(u.id).totp_enabled);
  fx.cluster->users().disable_totp(u.id);
  CHECK(!fx.cluster->users().get(u.id).totp_enabled);
  fx.cluster->users().remove(u.id);
  CHECK(testsupport::code_of([&] { fx.cluster->users().get(u.id); }) == Errc::not_found);
}

TEST_CASE("api keys: created in auth, shown once, authenticate with their role") {
  Fixture f;
  auto& keys = f.cluster->api_keys();
  const std::string key = keys.create("ci runner", Role::admin);
  CHECK(key.rfind("lak_", 0) == 0);
  CHECK(key.size() == 4 + 43);
  const Claims c = keys.authenticate(key);
  CHECK(c.subject.rfind("apikey:", 0) == 0);
  CHECK(c.role == Role::admin);
  CHECK(c.expires_at - c.issued_at == std::chrono::hours(1));
  // The forwarding methods Settings keeps for source compatibility reach the same keys.
  CHECK(f.cluster->settings().authenticate_api_key(key).subject == c.subject);
  const std::string other = f.cluster->settings().create_api_key("viewer key", Role::viewer);
  CHECK(keys.authenticate(other).role == Role::viewer);
  CHECK(keys.authenticate(other).subject != c.subject);
  CHECK_THROWS_AS(keys.authenticate("lak_" + std::string(43, 'A')), Error);
  CHECK_THROWS_AS(keys.authenticate("short"), Error);
  try {
    keys.create("", Role::admin);
    FAIL("an empty name was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_argument);
    CHECK(e.field() == "name");
  }
  try {
    keys.authenticate(key.substr(0, key.size() - 1) + (key.back() == 'A' ? "B" : "A"));
    FAIL("a changed key authenticated");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::unauthenticated);
  }
}

TEST_CASE("mail: resolved_outbox_dir follows the database argument (issue 14)") {
  Options o;
  o.database_path = "/var/lib/lucid/lucid.db";
  CHECK(resolved_outbox_dir(o) == "/var/lib/lucid/outbox");
  o.database_path = "sqlite:/var/lib/lucid/lucid.db";  // the file, not a folder named "sqlite:"
  CHECK(resolved_outbox_dir(o) == "/var/lib/lucid/outbox");
  o.database_path = "lucid.db";
  CHECK(resolved_outbox_dir(o) == "./outbox");
  o.database_path = "postgresql://lucid@db.example/lucid";  // no file to sit beside
  CHECK(resolved_outbox_dir(o) == "outbox");
  o.login.outbox_dir = "/srv/mail";
  CHECK(resolved_outbox_dir(o) == "/srv/mail");
  o.login.outbox_dir.clear();
  o.database_path = "mysql://root@db/fleet";
  CHECK_THROWS_AS(resolved_outbox_dir(o), Error);
}
