// Gateway internals with published vectors: Keccak-256, TRON addresses from
// secp256k1 keys, sealed wallet keys.
#include <doctest/doctest.h>

#include "gateway/tron.hpp"
#include "payouts/payout_rules.hpp"
#include "util/encoding.hpp"

using namespace lucid::detail;

TEST_CASE("keccak256 matches the Keccak team's / Ethereum's vectors") {
  CHECK(to_hex(keccak256("")) == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
  CHECK(to_hex(keccak256("abc")) == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
  // Exactly one rate block (136 bytes) and more: the padding goes in a block of its own.
  CHECK(to_hex(keccak256(std::string(136, 'a'))) != to_hex(keccak256(std::string(135, 'a'))));
  CHECK(to_hex(keccak256("The quick brown fox jumps over the lazy dog")) ==
        "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15");
}

TEST_CASE("a secp256k1 private key gives the published address") {
  // web3.js documentation's example account: private key 0x4c0883a6...,
  // Ethereum address 0x2c7536E3605D9C16a7a3D7b1898e529396a65c23; its TRON
  // address is the same 20 bytes behind 0x41, base58check encoded.
  const auto priv = *from_hex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318");
  const std::string pub = secp256k1_public_key(priv);
  REQUIRE(pub.size() == 65);
  CHECK(to_hex(keccak256(pub.substr(1))).substr(24) == "2c7536e3605d9c16a7a3d7b1898e529396a65c23");
  CHECK(tron_address_of(pub) == "TE2H9hWjzYdwzDFRJfx9BFhr4MmjH1CHaz");
  CHECK(valid_tron_address(tron_address_of(pub)));
}

TEST_CASE("generated keys give valid, distinct addresses that match their private keys") {
  const auto [a1, k1] = generate_tron_key();
  const auto [a2, k2] = generate_tron_key();
  CHECK(valid_tron_address(a1));
  CHECK(valid_tron_address(a2));
  CHECK(a1 != a2);
  CHECK(tron_address_of(secp256k1_public_key(k1)) == a1);
}

TEST_CASE("sealed keys open only with their key") {
  const std::string key(32, 'k'), other(32, 'o'), secret = "0123456789abcdef0123456789abcdef";
  const std::string box = seal_secret(key, secret);
  CHECK(box.size() == 24 + 16 + 32);
  CHECK(box.find(secret) == std::string::npos);
  CHECK(open_sealed(key, box) == secret);
  CHECK_FALSE(open_sealed(other, box).has_value());
  std::string tampered = box;
  tampered.back() ^= 1;
  CHECK_FALSE(open_sealed(key, tampered).has_value());
  CHECK(seal_secret(key, secret) != box);  // fresh nonce each time
}
