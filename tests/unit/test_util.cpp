// lib/util: the helpers every area shares (one copy each): public-id shapes,
// UUIDs, base58, atomic file writes, host probing, enum name tables.
#include <doctest/doctest.h>

#include <set>
#include <stdexcept>
#include <string>

#include "support.hpp"
#include "util/encoding.hpp"
#include "util/ids.hpp"

using namespace lucid;

namespace {
bool uuid_shaped(const std::string& u) {
  if (u.size() != 36) return false;
  for (std::size_t i = 0; i < u.size(); ++i) {
    const char c = u[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return u[14] == '4' && (u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b');
}
}  // namespace

TEST_CASE("util: valid_uid is the documents' ^prefix[a-zA-Z0-9_-]+$, at most 64 characters") {
  CHECK(detail::valid_node_uid("node_a"));
  CHECK(detail::valid_node_uid("node_0123456789abcdef"));
  CHECK(detail::valid_node_uid("node_A-b_C"));
  CHECK(detail::valid_node_uid("node_" + std::string(59, 'x')));        // 64 in all
  CHECK_FALSE(detail::valid_node_uid("node_" + std::string(60, 'x')));  // 65
  CHECK_FALSE(detail::valid_node_uid("node_"));                         // nothing after the prefix
  CHECK_FALSE(detail::valid_node_uid("node"));
  CHECK_FALSE(detail::valid_node_uid(""));
  CHECK_FALSE(detail::valid_node_uid("Node_abc"));
  CHECK_FALSE(detail::valid_node_uid("pool_abc"));
  CHECK_FALSE(detail::valid_node_uid("node_a.b"));
  CHECK_FALSE(detail::valid_node_uid("node_a b"));
  CHECK_FALSE(detail::valid_node_uid("node_a/"));
  CHECK_FALSE(detail::valid_node_uid(std::string("node_a\0b", 8)));
  CHECK_FALSE(detail::valid_node_uid("node_\xc3\xa9"));  // é: not ASCII alphanumeric
  CHECK(detail::valid_pool_uid("pool_x"));
  CHECK_FALSE(detail::valid_pool_uid("node_x"));
  CHECK(detail::valid_uid("wf_1", "wf_"));
}

TEST_CASE("util: UUIDs are version 4, lower-case 8-4-4-4-12, and differ") {
  std::set<std::string> seen;
  for (int i = 0; i < 64; ++i) {
    const std::string u = detail::random_uuid();
    CHECK(uuid_shaped(u));
    seen.insert(u);
  }
  CHECK(seen.size() == 64);
  // The formatter sets the version and variant bits whatever the bytes are.
  CHECK(detail::uuid_v4(std::string(16, '\xff')) == "ffffffff-ffff-4fff-bfff-ffffffffffff");
  CHECK(detail::uuid_v4(std::string(16, '\0')) == "00000000-0000-4000-8000-000000000000");
  CHECK(detail::uuid_v4("\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef") ==
        "01234567-89ab-4def-8123-456789abcdef");
  CHECK_THROWS_AS(detail::uuid_v4("short"), std::invalid_argument);
  CHECK_THROWS_AS(detail::uuid_v4(std::string(17, 'a')), std::invalid_argument);
}

TEST_CASE("util: base58 round-trips, keeps leading zeros and refuses other characters") {
  CHECK(detail::base58_encode("") == "");
  CHECK(detail::base58_decode("") == std::string());
  CHECK(detail::base58_encode(std::string("\0\0\x01", 3)) == "112");
  CHECK(detail::base58_decode("112") == std::string("\0\0\x01", 3));
  CHECK(detail::base58_encode("hello world") == "StV1DL6CwTryKyV");  // the Bitcoin alphabet's vector
  CHECK(detail::base58_decode("StV1DL6CwTryKyV") == std::string("hello world"));
  CHECK(detail::base58_encode(std::string(1, '\xff')) == "5Q");
  for (const char* bad : {"0", "O", "I", "l", "1+", " 2"}) CHECK_FALSE(detail::base58_decode(bad));
  CHECK_FALSE(detail::base58_decode(std::string("1\0" "2", 3)));
  CHECK_FALSE(detail::base58_decode(std::string(257, '2')));  // bounded
  CHECK(detail::base58_decode(std::string(256, '2')));
  for (int n = 0; n < 40; ++n) {
    const std::string bytes = std::string(static_cast<std::size_t>(n % 3), '\0') + detail::random_bytes(static_cast<std::size_t>(n));
    CHECK(detail::base58_decode(detail::base58_encode(bytes)) == bytes);
  }
}
