// Peer-id decoding. Internal. (Base58btc itself is in util/encoding.hpp.)
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/encoding.hpp"

namespace lucid::detail {

// The 32-byte Ed25519 key inside a peer id made by peer_id_from_public_key,
// or nullopt for any other string.
std::optional<std::string> public_key_from_peer_id(std::string_view peer_id);

}  // namespace lucid::detail
