#include <doctest/doctest.h>

#include <sodium.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>

#include "auth/key_file.hpp"
#include "lucidnode/auth.hpp"
#include "lucidnode/error.hpp"
#include "support.hpp"
#include "util/encoding.hpp"

using namespace lucid;
using testsupport::code_of;
using testsupport::field_of;
using detail::base64url_decode;
using detail::base64url_encode;

namespace {
std::shared_ptr<OffsetClock> clock_at_now() { return std::make_shared<OffsetClock>(); }


// Rebuilds a token with a different header/payload, signed by `sk`.
std::string sign_raw(const std::string& header, const std::string& payload, const std::string& sk) {
  std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                       reinterpret_cast<const unsigned char*>(sk.data()));
  return input + "." + base64url_encode(std::string(reinterpret_cast<char*>(sig), sizeof sig));
}
}  // namespace

TEST_CASE("auth: issued tokens verify with their claims") {
  auto clock = clock_at_now();
  Auth auth(clock, Auth::generate_secret_key());
  auto token = auth.issue_token("alice", Role::node_operator, std::chrono::hours(1), {"node:read"});
  auto c = auth.verify_token(token);
  CHECK(c.subject == "alice");
  CHECK(c.role == Role::node_operator);
  REQUIRE(c.scopes.size() == 1);
  CHECK(c.has_scope("node:read"));
  CHECK_FALSE(c.has_scope("node:write"));
  CHECK(c.has_role(Role::user));
  CHECK(c.has_role(Role::node_operator));
  CHECK_FALSE(c.has_role(Role::admin));
  CHECK(c.expires_at - c.issued_at == std::chrono::hours(1));
  CHECK(c.token_id.size() == 32);
}

TEST_CASE("auth: expired, tampered, foreign-key, alg none and HS256 tokens are rejected") {
  auto clock = clock_at_now();
  const std::string sk = Auth::generate_secret_key();
  Auth auth(clock, sk);
  auto token = auth.issue_token("bob", Role::user, std::chrono::seconds(60));

  SUBCASE("expired") {
    clock->advance(std::chrono::seconds(61));
    CHECK(code_of([&] { auth.verify_token(token); }) == Errc::unauthenticated);
  }
  SUBCASE("tampered payload") {
    auto d1 = token.find('.'), d2 = token.rfind('.');
    auto payload = *base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
    auto pos = payload.find("\"user\"");
    REQUIRE(pos != std::string::npos);
    payload.replace(pos, 6, "\"super_admin\"");
    std::string forged = token.substr(0, d1) + "." + base64url_encode(payload) + token.substr(d2);
    CHECK(code_of([&] { auth.verify_token(forged); }) == Errc::unauthenticated);
  }
  SUBCASE("signed by another key") {
    Auth other(clock, Auth::generate_secret_key());
    CHECK(code_of([&] { auth.verify_token(other.issue_token("bob", Role::super_admin, std::chrono::hours(1))); }) ==
          Errc::unauthenticated);
  }
  SUBCASE("alg none, unsigned") {
    auto d1 = token.find('.'), d2 = token.rfind('.');
    std::string none = base64url_encode(R"({"alg":"none","typ":"JWT"})") + token.substr(d1, d2 - d1) + ".";
    CHECK(code_of([&] { auth.verify_token(none); }) == Errc::unauthenticated);
  }
  SUBCASE("alg HS256 with a valid Ed25519 signature is still refused") {
    auto d1 = token.find('.'), d2 = token.rfind('.');
    auto payload = *base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
    auto forged = sign_raw(R"({"alg":"HS256","typ":"JWT"})", payload, sk);
    CHECK(code_of([&] { auth.verify_token(forged); }) == Errc::unauthenticated);
  }
  SUBCASE("unknown header member (crit) is refused") {
    auto d1 = token.find('.'), d2 = token.rfind('.');
    auto payload = *base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
    auto forged = sign_raw(R"({"alg":"EdDSA","crit":["x"]})", payload, sk);
    CHECK(code_of([&] { auth.verify_token(forged); }) == Errc::unauthenticated);
  }
  SUBCASE("our key, our alg, but an unknown role") {
    auto forged = sign_raw(R"({"alg":"EdDSA","typ":"JWT"})",
                           R"({"sub":"x","role":"god","iat":1,"exp":99999999999})", sk);
    CHECK(code_of([&] { auth.verify_token(forged); }) == Errc::unauthenticated);
  }
  SUBCASE("garbage") {
    for (const char* t : {"", "a", "a.b", "a.b.c", "..", "a.b.c.d", "eyJ.eyJ.===="})
      CHECK(code_of([&] { auth.verify_token(t); }) == Errc::unauthenticated);
    CHECK(code_of([&] { auth.verify_token(std::string(5000, 'a')); }) == Errc::unauthenticated);
  }
}

TEST_CASE("auth: issue_token validates its input") {
  Auth auth(clock_at_now(), Auth::generate_secret_key());
  CHECK(code_of([&] { auth.issue_token("", Role::user, std::chrono::hours(1)); }) == Errc::invalid_argument);
  CHECK(code_of([&] { auth.issue_token("a", Role::user, std::chrono::seconds(0)); }) == Errc::invalid_argument);
  CHECK(code_of([&] { auth.issue_token("a", Role::user, std::chrono::hours(24 * 400)); }) == Errc::invalid_argument);
  CHECK(code_of([&] { auth.issue_token("a", Role::user, std::chrono::hours(1), {"NODE:READ"}); }) ==
        Errc::invalid_argument);
  CHECK(code_of([&] { auth.issue_token("a", Role::user, std::chrono::hours(1), {"noscope"}); }) ==
        Errc::invalid_argument);
  CHECK_THROWS_AS(Auth(clock_at_now(), "short"), Error);
}

TEST_CASE("auth: roles parse and order") {
  CHECK(parse_role("super_admin") == Role::super_admin);
  CHECK(parse_role("node_operator") == Role::node_operator);
  CHECK(parse_role("viewer") == Role::viewer);
  CHECK_FALSE(parse_role("Super Admin").has_value());
  CHECK_FALSE(parse_role("node").has_value());  // a node is a principal, not a role
  CHECK(std::string(role_name(Role::admin)) == "admin");
  CHECK(std::string(role_name(Role::viewer)) == "viewer");
  for (Role r : {Role::user, Role::viewer, Role::node_operator, Role::admin, Role::super_admin})
    CHECK(parse_role(role_name(r)) == r);
  Claims v;
  v.role = Role::viewer;
  CHECK(v.has_role(Role::user));
  CHECK(v.has_role(Role::viewer));
  CHECK_FALSE(v.has_role(Role::node_operator));
}

TEST_CASE("auth: default scopes by role, user has no fleet scope, a node token none") {
  auto scopes_of = [](Role r) {
    Claims c;
    c.role = r;
    std::string out;
    for (const char* s : {"node:read", "poot:read", "payout:read", "node:write", "poot:write", "payout:write"})
      if (c.has_scope(s)) out += std::string(out.empty() ? "" : " ") + s;
    return out;
  };
  CHECK(scopes_of(Role::user) == "");
  CHECK(scopes_of(Role::viewer) == "node:read poot:read payout:read");
  CHECK(scopes_of(Role::node_operator) == "node:read poot:read payout:read node:write poot:write");
  CHECK(scopes_of(Role::admin) == "node:read poot:read payout:read node:write poot:write payout:write");
  CHECK(scopes_of(Role::super_admin) == scopes_of(Role::admin));
  Claims node;
  node.role = Role::node_operator;  // whatever the role claim says
  node.node_id = 7;
  CHECK(node.is_node());
  CHECK_FALSE(node.has_scope("node:read"));
  CHECK(std::string(node.role_label()) == "node");
}

TEST_CASE("auth: a node token carries its node id (nid)") {
  auto clock = clock_at_now();
  const std::string sk = Auth::generate_secret_key();
  Auth auth(clock, sk);
  auto c = auth.verify_token(auth.issue_token("peer:x", Role::user, std::chrono::hours(1), {}, {}, 42));
  CHECK(c.node_id == 42);
  CHECK(c.is_node());
  CHECK(auth.verify_token(auth.issue_token("admin", Role::admin, std::chrono::hours(1))).node_id == 0);
  CHECK(code_of([&] { auth.issue_token("a", Role::user, std::chrono::hours(1), {}, {}, -1); }) == Errc::invalid_argument);
  // a signed token whose nid is not a positive integer is malformed
  for (const char* nid : {"0", "-3", "\"7\"", "1.5"}) {
    const std::string payload = std::string(R"({"sub":"peer:x","role":"user","scopes":[],"iat":)") +
                                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                   clock->now().time_since_epoch()).count()) +
                                R"(,"exp":99999999999,"jti":"a","nid":)" + nid + "}";
    CHECK(code_of([&] { auth.verify_token(sign_raw(R"({"alg":"EdDSA","typ":"JWT"})", payload, sk)); }) ==
          Errc::unauthenticated);
  }
}

TEST_CASE("key file: created 0600, reloaded identically, refused when too open or corrupt") {
  testsupport::TempDir dir;
  const auto path = dir.file("k.key");
  auto a = detail::load_or_create_signing_key(path, true);
  struct stat st{};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(a.size() == 64);
  CHECK(detail::load_or_create_signing_key(path, false) == a);
  CHECK_THROWS_AS(detail::load_or_create_signing_key(dir.file("missing.key"), false), Error);
  ::chmod(path.c_str(), 0644);
  CHECK_THROWS_AS(detail::load_or_create_signing_key(path, false), Error);
  {
    std::ofstream f(dir.file("bad.key"));
    f << "not a key\n";
  }
  ::chmod(dir.file("bad.key").c_str(), 0600);
  CHECK_THROWS_AS(detail::load_or_create_signing_key(dir.file("bad.key"), false), Error);
}

TEST_CASE("key file: a hex key is created 0600 once - refused when too open, short or not hex") {
  testsupport::TempDir dir;
  const auto path = dir.file("w.key");
  const auto a = detail::load_or_create_hex_key(path, 32, true, "wallet key");
  CHECK(a.size() == 32);
  struct stat st{};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(detail::load_or_create_hex_key(path, 32, true, "wallet key") == a);  // kept, not remade
  CHECK(detail::load_or_create_hex_key(path, 32, false, "wallet key") == a);
  CHECK_THROWS_AS(detail::load_or_create_hex_key(dir.file("missing"), 32, false, "wallet key"), Error);
  ::chmod(path.c_str(), 0640);
  CHECK_THROWS_WITH_AS(detail::load_or_create_hex_key(path, 32, true, "wallet key"),
                       doctest::Contains("must not be readable by others"), Error);
  for (const char* text : {"abcd\n", "zz\n", ""}) {
    const auto bad = dir.file("bad-" + std::to_string(std::strlen(text)));
    {
      std::ofstream f(bad);
      f << text;
    }
    ::chmod(bad.c_str(), 0600);
    CHECK_THROWS_AS(detail::load_or_create_hex_key(bad, 32, true, "wallet key"), Error);
  }
  // read_secret_file: the first line, trailing CR/LF/spaces removed; invalid_argument with the field.
  const auto tok = dir.file("token");
  {
    std::ofstream f(tok);
    f << "secret-value \r\nsecond line\n";
  }
  ::chmod(tok.c_str(), 0600);
  CHECK(detail::read_secret_file(tok, "metrics token", "metrics_token_file") == "secret-value");
  ::chmod(tok.c_str(), 0604);
  try {
    detail::read_secret_file(tok, "metrics token", "metrics_token_file");
    FAIL("read a file others can read");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_argument);
    CHECK(e.field() == "metrics_token_file");
  }
  CHECK_THROWS_AS(detail::read_secret_file(dir.file("none"), "metrics token", "metrics_token_file"), Error);
  CHECK_THROWS_AS(detail::read_secret_file(dir.path.string(), "metrics token", "metrics_token_file"), Error);  // a directory
}

TEST_CASE("encoding: base64url is strict and canonical, hex round-trips") {
  CHECK(base64url_encode("hello") == "aGVsbG8");
  CHECK(*base64url_decode("aGVsbG8") == "hello");
  CHECK_FALSE(base64url_decode("aGVsbG8=").has_value());  // padding
  CHECK_FALSE(base64url_decode("aGVsbG9").has_value());   // non-canonical trailing bits
  CHECK_FALSE(base64url_decode("aG+sbG8").has_value());   // not the URL alphabet
  CHECK(detail::to_hex("\x01\xab") == "01ab");
  CHECK(*detail::from_hex("01AB") == std::string("\x01\xab"));
  CHECK_FALSE(detail::from_hex("0").has_value());
  CHECK_FALSE(detail::from_hex("zz").has_value());
  CHECK(detail::equal_ct("abc", "abc"));
  CHECK_FALSE(detail::equal_ct("abc", "abd"));
  CHECK_FALSE(detail::equal_ct("abc", "abcd"));
}

TEST_CASE("encoding: percent_encode keeps only unreserved characters") {
  CHECK(detail::percent_encode("") == "");
  CHECK(detail::percent_encode("AZaz09-._~") == "AZaz09-._~");
  CHECK(detail::percent_encode("a+tag@example.com") == "a%2Btag%40example.com");
  CHECK(detail::percent_encode("x y&z=1%#/?") == "x%20y%26z%3D1%25%23%2F%3F");
  CHECK(detail::percent_encode(std::string("\x00\xff\xc3\xa9", 4)) == "%00%FF%C3%A9");
}

TEST_CASE("time: RFC 3339 formats and parses, rejects malformed") {
  auto t = parse_rfc3339("2025-12-29T07:00:00Z");
  REQUIRE(t);
  CHECK(format_rfc3339(*t) == "2025-12-29T07:00:00Z");
  auto f = parse_rfc3339("2025-12-27T08:22:04.588990Z");
  REQUIRE(f);
  CHECK(format_rfc3339(*f, true) == "2025-12-27T08:22:04.588990Z");
  CHECK(parse_rfc3339("2025-12-29T07:00:00+00:00").has_value());
  CHECK(format_rfc3339(*parse_rfc3339("2025-12-29T09:30:00+02:30")) == "2025-12-29T07:00:00Z");
  CHECK(format_rfc3339(*parse_rfc3339("2025-12-29T02:00:00-05:00")) == "2025-12-29T07:00:00Z");
  for (const char* bad : {"", "2025-12-29", "2025-13-01T00:00:00Z", "2025-02-30T00:00:00Z", "2025-12-29T07:00:00",
                          "2025-12-29T07:00:00+2:00", "2025-12-29T07:00:00+24:00", "2025-12-29T25:00:00Z", "x025-12-29T07:00:00Z"})
    CHECK_FALSE(parse_rfc3339(bad).has_value());
}
