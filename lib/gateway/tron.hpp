// TRON addresses and wallet keys. Internal.
//
// A TRON account is a secp256k1 key pair; its address is
// base58check(0x41 || the last 20 bytes of Keccak-256(X || Y)), where X || Y
// is the 64-byte uncompressed public key without its 0x04 prefix, and the
// checksum is the first 4 bytes of SHA-256(SHA-256(0x41 || 20 bytes)).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace lucid::detail {

// Keccak-256 with the original Keccak padding (0x01 ... 0x80), as Ethereum
// and TRON use; not FIPS 202 SHA3-256. 32 raw bytes.
std::string keccak256(std::string_view data);
// base58check of 0x41 || account20.
std::string tron_address_from_account(std::string_view account20);
// The address of a 65-byte uncompressed public key (0x04 || X || Y).
std::string tron_address_of(std::string_view uncompressed_public_key);
// The 65-byte uncompressed public key of a 32-byte secp256k1 private key.
// Errors: invalid_argument (not a valid scalar), internal (OpenSSL).
std::string secp256k1_public_key(std::string_view private_key32);
// A fresh key pair: {address, 32-byte private key}. Errors: internal.
std::pair<std::string, std::string> generate_tron_key();

// nonce || crypto_secretbox_easy(plain) under a 32-byte key, and back.
// open_sealed: nullopt when the box does not authenticate.
std::string seal_secret(std::string_view key32, std::string_view plain);
std::optional<std::string> open_sealed(std::string_view key32, std::string_view sealed);

}  // namespace lucid::detail
