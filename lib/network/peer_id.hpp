// Base58btc and peer-id decoding. Internal.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lucid::detail {

std::string base58_encode(std::string_view bytes);
std::optional<std::string> base58_decode(std::string_view text);
// The 32-byte Ed25519 key inside a peer id made by peer_id_from_public_key,
// or nullopt for any other string.
std::optional<std::string> public_key_from_peer_id(std::string_view peer_id);

}  // namespace lucid::detail
