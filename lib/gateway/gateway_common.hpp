// Helpers shared by the gateway capabilities (sessions, wallets, trust
// policies). Internal.
#pragma once

#include <string>
#include <string_view>

#include "core/cluster_core.hpp"
#include "lucidnode/error.hpp"
#include "lucidnode/sessions.hpp"
#include "core/clock_text.hpp"
#include "util/checks.hpp"
#include "store/stored.hpp"

namespace lucid::detail {

// A canonical UUID (8-4-4-4-12 hex) lower-cased, or nullopt. Ids that are
// not UUIDs name no object (not_found), so callers need not validate first.
inline std::optional<std::string> canonical_uuid(std::string_view s) {
  if (s.size() != 36) return std::nullopt;
  std::string out(s);
  for (std::size_t i = 0; i < out.size(); ++i) {
    char& c = out[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return std::nullopt;
      continue;
    }
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  return out;
}

// The owner checks every gateway object shares (README "Gateway data",
// docs/decisions.md "Item 7: admins read other users' objects, owners change
// them"): its user may read and change it; an admin may read it, never change
// or delete it. Errors: permission_denied.
enum class Access { read, change };
inline void check_owner(const Principal& who, const std::string& owner, const char* what, Access access) {
  if (who.user_id == owner || (who.admin && access == Access::read)) return;
  throw Error(Errc::permission_denied, std::string("this ") + what + " belongs to another user" +
                                           (who.admin ? "; administrators may read it, only its owner may change it" : ""));
}

[[noreturn]] inline void invalid_as(const std::string& field, const std::string& msg, Reason reason) {
  throw Error(Errc::invalid_argument, msg, field, reason);
}

// Text of 1..max characters (min 0 when allow_empty), no control characters.
inline void check_text(const std::string& field, const std::string& value, std::size_t max, bool allow_empty) {
  const auto n = utf8_length(value);
  if ((!allow_empty && n == 0) || n > max)
    invalid_as(field, field + " must be " + (allow_empty ? "at most " : "1 to ") + std::to_string(max) + " characters",
               Reason::invalid_format);
}

}  // namespace lucid::detail
