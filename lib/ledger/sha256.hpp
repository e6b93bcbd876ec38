// SHA-256 for the ledger's hot paths (transaction and Merkle hashing). Internal.
//
// OpenSSL's implementation, not libsodium's: libsodium 1.0.18 hashes in
// portable C, OpenSSL uses the CPU's SHA extensions (SHA-NI, ARMv8 SHA2)
// where present: about 4x the throughput of 200-byte transactions on the
// reference machine, which is what makes `ledger verify` reach 1M tx/s.
// The digest is the same SHA-256; util/encoding.hpp's sha256 stays the
// general-purpose one.
#pragma once

#include <initializer_list>
#include <string_view>

#include "util/encoding.hpp"

namespace lucid::detail {

// SHA-256 of the concatenation of `parts`. Thread-safe (one hashing context
// per thread). Throws Error(internal) if OpenSSL fails, which it does not for
// SHA-256 short of memory exhaustion.
Digest sha256_concat(std::initializer_list<std::string_view> parts);

inline std::string_view bytes_of(const Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

}  // namespace lucid::detail
