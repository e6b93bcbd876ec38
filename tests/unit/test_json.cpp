// lib/util/json: the one depth-limited JSON reader (issue 12 item 1), and the
// library surfaces that read JSON through it (tokens, the C ABI).
#include <doctest/doctest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sodium.h>

#include <chrono>
#include <string>

#include "lucidnode/auth.hpp"
#include "lucidnode/error.hpp"
#include "lucidnode/lucidnode.h"
#include "support.hpp"
#include "util/encoding.hpp"
#include "util/json.hpp"
#include "util/utf8.hpp"

using namespace lucid;
using detail::kJsonMaxDepth;
using detail::parse_json;

namespace {
// `depth` nested arrays around 1: nested(2) == "[[1]]".
std::string nested(std::size_t depth) { return std::string(depth, '[') + "1" + std::string(depth, ']'); }
// The issue's attack body: {"type":"AUTH","payload":{"x":[[[...]]]}}.
std::string attack(std::size_t depth) { return R"({"type":"AUTH","payload":{"x":)" + nested(depth) + "}}"; }
}  // namespace

TEST_CASE("json: depth 64 parses, 65 is refused as too deep") {
  rapidjson::Document d;
  auto ok = parse_json(d, nested(kJsonMaxDepth));
  CHECK(ok.ok);
  CHECK(d.IsArray());
  auto bad = parse_json(d, nested(kJsonMaxDepth + 1));
  CHECK_FALSE(bad.ok);
  CHECK(bad.too_deep);
  CHECK(d.IsNull());  // nothing half-built is left behind
  CHECK(bad.offset == kJsonMaxDepth);  // refused at the 65th '['
  CHECK(bad.describe() == "Malformed JSON: JSON nested deeper than 64 levels at offset 64");
  // Objects count like arrays.
  std::string obj;
  for (unsigned i = 0; i < kJsonMaxDepth; ++i) obj += R"({"a":)";
  obj += "1" + std::string(kJsonMaxDepth, '}');
  CHECK(parse_json(d, obj).ok);
  CHECK(parse_json(d, "[" + obj + "]").too_deep);
  // Depth is nesting, not the count of containers: many siblings are fine.
  std::string wide = "[";
  for (int i = 0; i < 10000; ++i) wide += nested(kJsonMaxDepth - 1) + ",";
  wide += "1]";
  CHECK(parse_json(d, wide).ok);
  CHECK(d.Size() == 10001);
}

TEST_CASE("json: 300,000 levels are refused quickly and without recursion") {
  rapidjson::Document d;
  const auto body = attack(300000);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = parse_json(d, body);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK_FALSE(r.ok);
  CHECK(r.too_deep);
  CHECK(took < std::chrono::milliseconds(100));
  // The SAX entry point stops just as early: no event after the refusal.
  struct Count : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Count> {
    std::size_t events = 0;
    bool Default() { ++events; return true; }
  } c;
  auto s = detail::parse_json_sax(body, c);
  CHECK(s.too_deep);
  CHECK(c.events < 100);
}

TEST_CASE("json: ordinary errors, options and bounds") {
  rapidjson::Document d;
  CHECK_FALSE(parse_json(d, "").ok);
  CHECK_FALSE(parse_json(d, "{} x").ok);  // trailing garbage
  auto trunc = parse_json(d, "[[[");
  CHECK_FALSE(trunc.ok);
  CHECK_FALSE(trunc.too_deep);
  CHECK_FALSE(parse_json(d, "\"\xff\"").ok);  // invalid UTF-8 refused by default
  CHECK(parse_json(d, "\"\xff\"", detail::kJsonAnyBytes).ok);
  REQUIRE(parse_json(d, R"({"n":12.50})", detail::kJsonNumbersAsText).ok);
  CHECK(std::string(d["n"].GetString()) == "12.50");
  REQUIRE(parse_json(d, R"({"n":12.50})").ok);
  CHECK(d["n"].IsDouble());
  // A caller-chosen bound (lucidctl reads answers with the client bound).
  CHECK(parse_json(d, nested(kJsonMaxDepth + 1), detail::kJsonStrict, detail::kJsonClientMaxDepth).ok);
  CHECK(parse_json(d, nested(3), detail::kJsonStrict, 2).too_deep);
  // Embedded NUL is not whitespace: the text is read by length, not as a C string.
  CHECK_FALSE(parse_json(d, std::string_view("{}\0{", 4)).ok);
  // A document parses again after a refusal and keeps working.
  CHECK(parse_json(d, nested(70)).too_deep);
  REQUIRE(parse_json(d, R"({"a":[1,2,3]})").ok);
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  d.Accept(w);
  CHECK(std::string(b.GetString()) == R"({"a":[1,2,3]})");
}

// Found by fuzz_json: RapidJSON 1.1 decodes a lone low surrogate escape into
// the bytes ED B0..BF xx (not UTF-8) even with encoding validation on, so the
// server stored and echoed invalid UTF-8. The strict parse now refuses it.
TEST_CASE("json: lone surrogate escapes are refused in strict parses") {
  rapidjson::Document d;
  for (const char* text : {R"(["\udc00"])", R"({"\ude00":1})", R"(["a\udfffb"])"}) {
    CAPTURE(text);
    auto r = parse_json(d, text);
    CHECK_FALSE(r.ok);
    CHECK(r.message == "Invalid encoding in string.");
  }
  CHECK_FALSE(parse_json(d, R"(["\ud800"])").ok);  // lone high surrogate: RapidJSON's own check
  REQUIRE(parse_json(d, R"(["\ud83d\ude00", "\u00e9"])").ok);  // a valid pair and a BMP escape
  CHECK(std::string(d[0].GetString()) == "\xF0\x9F\x98\x80");
  CHECK(parse_json(d, R"(["\udc00"])", detail::kJsonAnyBytes).ok);  // any bytes: the caller's choice
  CHECK(detail::utf8_valid("caf\xC3\xA9 \xF0\x9F\x98\x80"));
  CHECK_FALSE(detail::utf8_valid("\xED\xB8\x80"));  // encoded surrogate
  CHECK_FALSE(detail::utf8_valid("\xC0\xAF"));       // overlong
  CHECK_FALSE(detail::utf8_valid("\xF4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(detail::utf8_valid("\xE2\x82"));       // truncated
}

// Found by fuzz_token: claims signed with the server's key but with an "iat"
// or "exp" past what a Timestamp holds overflowed (signed integer UB) when
// converted; they are malformed claims now.
TEST_CASE("json: token times a Timestamp cannot hold are malformed claims") {
  auto clock = std::make_shared<OffsetClock>();
  const std::string sk = Auth::generate_secret_key();
  Auth auth(clock, sk);
  auto sign = [&](const std::string& claims) {
    const std::string input = detail::base64url_encode(R"({"alg":"EdDSA","typ":"JWT"})") + "." +
                              detail::base64url_encode(claims);
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                         reinterpret_cast<const unsigned char*>(sk.data()));
    return input + "." + detail::base64url_encode(std::string(reinterpret_cast<char*>(sig), sizeof sig));
  };
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(clock->now().time_since_epoch()).count();
  const std::string ok = R"({"sub":"a","role":"user","iat":)" + std::to_string(now) + R"(,"exp":)" +
                         std::to_string(now + 60) + "}";
  CHECK(auth.verify_token(sign(ok)).subject == "a");
  for (const char* bad : {R"({"sub":"a","role":"user","iat":17000001000,"exp":4102444800})",
                          R"({"sub":"a","role":"user","iat":1,"exp":9223372036854775807})",
                          R"({"sub":"a","role":"user","iat":-9223372036854775807,"exp":4102444800})"}) {
    CAPTURE(bad);
    try {
      auth.verify_token(sign(bad));
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::unauthenticated);
      CHECK(e.message() == "malformed token claims");
    }
  }
}

// Found by fuzz_ws_message while full-precision parsing was tried: RapidJSON
// 1.1 passed 0 to clz() for long zero fractions. Plain parsing reads them as 0.
TEST_CASE("json: long zero fractions and exponents parse as numbers") {
  rapidjson::Document d;
  REQUIRE(parse_json(d, "[0.00000000000000000000000000, 0e183, 0.0000000000000000000000000001e-400]").ok);
  CHECK(d[0].GetDouble() == 0.0);
  CHECK(d[1].GetDouble() == 0.0);
  CHECK(d[2].GetDouble() == 0.0);
  CHECK_FALSE(parse_json(d, "0e183e18").ok);
}

// Found by fuzz_json in CI: RapidJSON's fast number path turned these into
// infinity without an error; JSON cannot write infinity back, so a stored
// payload holding one would have been unreadable. They are refused as too big.
TEST_CASE("json: numbers that overflow a double are refused, in every option") {
  for (const std::string text : {"17976931348623158e292", "[1, 9999999999999999999e290]", "{\"x\": -1.7976931348623159e308}"}) {
    CAPTURE(text);
    rapidjson::Document d;
    const auto r = parse_json(d, text);
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.too_deep);
    CHECK(d.IsNull());
    CHECK(r.message == "Number too big to be stored in double.");
    CHECK_FALSE(parse_json(d, text, detail::kJsonAnyBytes).ok);
    // Kept as text, the digits are not a double and nothing overflows.
    CHECK(parse_json(d, text, detail::kJsonNumbersAsText).ok);
  }
  rapidjson::Document d;
  // An exponent past 308 RapidJSON refuses by itself, even when keeping text.
  CHECK(parse_json(d, "1e309").message == "Number too big to be stored in double.");
  CHECK_FALSE(parse_json(d, "1e309", detail::kJsonNumbersAsText).ok);
  REQUIRE(parse_json(d, "[1.7976931348623157e308, -1.7976931348623157e308, 5e-324]").ok);
  CHECK(d[0].GetDouble() == 1.7976931348623157e308);
}

TEST_CASE("json: a token whose header or claims nest deeply is refused, not a crash") {
  Auth auth(std::make_shared<OffsetClock>(), Auth::generate_secret_key());
  const std::string deep = detail::base64url_encode(nested(300000));
  const std::string sig = detail::base64url_encode(std::string(64, 'x'));
  const std::string ok_header = detail::base64url_encode(R"({"alg":"EdDSA","typ":"JWT"})");
  CHECK(testsupport::code_of([&] { auth.verify_token(deep + "." + deep + "." + sig); }) == Errc::unauthenticated);
  CHECK(testsupport::code_of([&] { auth.verify_token(ok_header + "." + deep + "." + sig); }) == Errc::unauthenticated);
}

TEST_CASE("json: C ABI inputs nesting deeply are INVALID_ARGUMENT, not a crash") {
  lucid_cluster* c = nullptr;
  const std::string deep = R"({"database_path":":memory:","x":)" + nested(300000) + "}";
  CHECK(lucid_cluster_open(deep.c_str(), &c) == LUCID_INVALID_ARGUMENT);
  CHECK(c == nullptr);
  CHECK(std::string(lucid_last_error_message()).find("nested deeper than 64") != std::string::npos);
  const std::string just = R"({"database_path":"x","x":)" + nested(kJsonMaxDepth - 1) + "}";
  CHECK(lucid_cluster_open(just.c_str(), &c) != LUCID_OK);  // parses; refused for the unknown option, not depth
  CHECK(std::string(lucid_last_error_message()).find("nested") == std::string::npos);
}
