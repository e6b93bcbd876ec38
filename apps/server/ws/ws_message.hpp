// Decoding of one inbound /api/ws text message, apart from any connection so
// it can be tested and fuzzed alone (fuzz/fuzz_ws_message.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "json.hpp"

namespace lucid::server::ws {

// {"type": string of at most 64 characters, "payload": object (absent or null:
// an empty object)}, other members ignored. Sets `type` and `payload`.
// Throws MalformedJson for text that is not JSON (or nests deeper than
// detail::kJsonMaxDepth) and lucid::Error(invalid_argument) for a missing or
// ill-typed member; the session answers both with an ERROR message.
inline void decode_message(std::string_view text, std::string& type, std::optional<JsonBody>& payload) {
  JsonBody body{text};
  type = body.required_string("type", 64);
  payload.emplace(body, "payload");
}

}  // namespace lucid::server::ws
