// Peer ids: libp2p PeerIDs of Ed25519 keys (see network.hpp).
#include "network/peer_id.hpp"

#include <cstring>

#include "lucidnode/error.hpp"
#include "lucidnode/network.hpp"

namespace lucid {

namespace detail {
namespace {
constexpr char kAlphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
// identity multihash (0x00, length 36) of protobuf PublicKey{Type=1 (Ed25519), Data=32 bytes}
constexpr unsigned char kPrefix[] = {0x00, 0x24, 0x08, 0x01, 0x12, 0x20};
}  // namespace

std::string base58_encode(std::string_view bytes) {
  std::size_t zeros = 0;
  while (zeros < bytes.size() && bytes[zeros] == 0) ++zeros;
  std::vector<unsigned char> digits((bytes.size() - zeros) * 138 / 100 + 1, 0);
  std::size_t len = 0;
  for (std::size_t i = zeros; i < bytes.size(); ++i) {
    int carry = static_cast<unsigned char>(bytes[i]);
    std::size_t j = 0;
    for (auto it = digits.rbegin(); (carry != 0 || j < len) && it != digits.rend(); ++it, ++j) {
      carry += 256 * (*it);
      *it = static_cast<unsigned char>(carry % 58);
      carry /= 58;
    }
    len = j;
  }
  std::string out(zeros, '1');
  for (std::size_t i = digits.size() - len; i < digits.size(); ++i) out += kAlphabet[digits[i]];
  return out;
}

std::optional<std::string> base58_decode(std::string_view text) {
  if (text.size() > 256) return std::nullopt;
  std::size_t zeros = 0;
  while (zeros < text.size() && text[zeros] == '1') ++zeros;
  std::vector<unsigned char> bytes(text.size() * 733 / 1000 + 1, 0);
  std::size_t len = 0;
  for (std::size_t i = zeros; i < text.size(); ++i) {
    const char* p = std::strchr(kAlphabet, text[i]);
    if (!p || text[i] == '\0') return std::nullopt;
    int carry = static_cast<int>(p - kAlphabet);
    std::size_t j = 0;
    for (auto it = bytes.rbegin(); (carry != 0 || j < len) && it != bytes.rend(); ++it, ++j) {
      carry += 58 * (*it);
      *it = static_cast<unsigned char>(carry % 256);
      carry /= 256;
    }
    len = j;
  }
  std::string out(zeros, '\0');
  for (std::size_t i = bytes.size() - len; i < bytes.size(); ++i) out += static_cast<char>(bytes[i]);
  return out;
}

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
