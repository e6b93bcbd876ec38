// Peer ids: libp2p PeerIDs of Ed25519 keys (see network.hpp).
#include "network/peer_id.hpp"

#include <cstring>

#include "lucidnode/error.hpp"
#include "lucidnode/network.hpp"

namespace lucid {

namespace detail {
namespace {
// identity multihash (0x00, length 36) of protobuf PublicKey{Type=1 (Ed25519), Data=32 bytes}
constexpr unsigned char kPrefix[] = {0x00, 0x24, 0x08, 0x01, 0x12, 0x20};
}  // namespace

std::optional<std::string> public_key_from_peer_id(std::string_view peer_id) {
  auto raw = base58_decode(peer_id);
  if (!raw || raw->size() != sizeof kPrefix + 32 || std::memcmp(raw->data(), kPrefix, sizeof kPrefix) != 0)
    return std::nullopt;
  return raw->substr(sizeof kPrefix);
}

}  // namespace detail

std::string peer_id_from_public_key(std::string_view key) {
  if (key.size() != 32) throw Error(Errc::invalid_argument, "an Ed25519 public key is 32 bytes", "public_key");
  std::string raw(reinterpret_cast<const char*>(detail::kPrefix), sizeof detail::kPrefix);
  raw.append(key);
  return detail::base58_encode(raw);
}

}  // namespace lucid
