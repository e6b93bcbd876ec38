// Shape checks for the public ids the documents define ("node_...", "pool_...").
#pragma once

#include <cctype>
#include <cstddef>
#include <string_view>

namespace lucid::detail {

// The longest public uid (prefix included) any capability accepts.
inline constexpr std::size_t kMaxUidLength = 64;

// True when `uid` is `prefix` followed by one or more of [A-Za-z0-9_-] and is at
// most kMaxUidLength characters in all: the documents' ^node_[a-zA-Z0-9_-]+$
// (and its pool_ twin), bounded. An id of any other shape names nothing.
inline bool valid_uid(std::string_view uid, std::string_view prefix) {
  if (uid.size() <= prefix.size() || uid.size() > kMaxUidLength || uid.substr(0, prefix.size()) != prefix) return false;
  for (char c : uid.substr(prefix.size()))
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

inline bool valid_node_uid(std::string_view uid) { return valid_uid(uid, "node_"); }
inline bool valid_pool_uid(std::string_view uid) { return valid_uid(uid, "pool_"); }

}  // namespace lucid::detail
