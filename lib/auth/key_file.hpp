#pragma once

#include <string>

namespace lucid::detail {

// Reads the 64-byte Ed25519 secret key from `path`, creating it (mode 0600,
// exclusively) when absent and `create` is set. Refuses a file readable or
// writable by group or others. Throws Error(storage) with a clear message.
std::string load_or_create_signing_key(const std::string& path, bool create);

}  // namespace lucid::detail
