// Admin API keys for the cluster API (api-gateway.md /cluster/api-keys).
//
// A key is "lak_" + 43 base64url characters; only its SHA-256 is stored (the
// api_keys table, owned by lib/auth), so a key is shown once, when created.
#pragma once

#include <string>
#include <string_view>

#include "lucidnode/auth.hpp"
#include "lucidnode/export.hpp"

namespace lucid {

namespace detail { class ClusterCore; }
LUCID_PUBLIC_BEGIN

// Thread-safe: every method may be called concurrently.
class ApiKeys {
 public:
  explicit ApiKeys(detail::ClusterCore& core);
  ApiKeys(const ApiKeys&) = delete;
  ApiKeys& operator=(const ApiKeys&) = delete;

  // Creates a key with `role`, stores only its SHA-256, returns the key.
  // Errors: invalid_argument (name 1..100 characters, no control characters),
  // storage.
  std::string create(const std::string& name, Role role);
  // The claims of a key (subject "apikey:<id>", its role, issued now and
  // expiring in an hour; the key itself has no expiry). Errors:
  // unauthenticated for a malformed or unknown key, storage.
  Claims authenticate(std::string_view key);

 private:
  detail::ClusterCore& core_;
};

LUCID_PUBLIC_END
}  // namespace lucid
