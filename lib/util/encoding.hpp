// Byte encodings and hashing shared across the library (libsodium inside).
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace lucid::detail {

// Initialises libsodium once; safe to call from any thread, any number of times.
void ensure_sodium();

std::string to_hex(std::string_view bytes);
// Strict: even length, [0-9a-fA-F] only. nullopt otherwise.
std::optional<std::string> from_hex(std::string_view hex);

// RFC 3986 percent-encoding of one URI component (a query name or value, a
// path segment): every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~)
// becomes %XX with upper-case hex, so '+', '&', '=', '%', '#' and spaces
// survive a round trip through any query parser.
std::string percent_encode(std::string_view text);

// base64url without padding (RFC 4648 §5), as JWT uses.
std::string base64url_encode(std::string_view bytes);
// Strict: rejects padding, whitespace and non-canonical trailing bits.
std::optional<std::string> base64url_decode(std::string_view text);

// Base58 with the Bitcoin alphabet (peer ids, TRON addresses): each leading
// zero byte becomes a '1'. decode is strict (any other character, NUL
// included, is nullopt) and bounded: text over 256 characters is nullopt.
std::string base58_encode(std::string_view bytes);
std::optional<std::string> base58_decode(std::string_view text);

using Digest = std::array<unsigned char, 32>;
Digest sha256(std::string_view bytes);
// HMAC-SHA-256 keyed with a 32-byte key.
Digest hmac_sha256(const Digest& key, std::string_view message);
std::string random_bytes(std::size_t n);
// A random (version 4) UUID, lower-case 8-4-4-4-12, from libsodium's CSPRNG.
std::string random_uuid();
// The version 4 UUID made of 16 random bytes (the version and variant bits
// are set here): for callers with their own source of randomness. Throws
// std::invalid_argument unless `bytes16` is 16 bytes.
std::string uuid_v4(std::string_view bytes16);
// Constant-time equality of two equal-length byte strings (false if lengths differ).
bool equal_ct(std::string_view a, std::string_view b);

}  // namespace lucid::detail
