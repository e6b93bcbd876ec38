// Secret files: the signing key, the wallet key, tokens an operator gives the
// server. Each is a regular file readable by its owner only (0600): a file
// readable or writable by group or others is refused.
#pragma once

#include <cstddef>
#include <string>

namespace lucid::detail {

// Reads the 64-byte Ed25519 secret key from `path`, creating it (mode 0600,
// exclusively) when absent and `create` is set. Refuses a file readable or
// writable by group or others. Throws Error(storage) with a clear message.
std::string load_or_create_signing_key(const std::string& path, bool create);

// Reads a key of `bytes` random bytes stored as hex on the first line of
// `path`, creating it (random, mode 0600, exclusively: a crash never leaves
// a partial file, a concurrent creator's key wins) when absent and `create`
// is set. `what` names the key in messages ("wallet key"). Throws
// Error(storage) for an unreadable, too open (not 0600) or malformed file.
std::string load_or_create_hex_key(const std::string& path, std::size_t bytes, bool create, const std::string& what);

// The first line of the secret file `path` (at most 4 KiB read, trailing
// CR/LF/space removed). Throws Error(invalid_argument, field `field`) when it
// is missing, not a regular file, or readable or writable by group or others.
std::string read_secret_file(const std::string& path, const std::string& what, const char* field);

}  // namespace lucid::detail
