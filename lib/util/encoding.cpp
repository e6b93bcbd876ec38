#include "util/encoding.hpp"

#include <sodium.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include "lucidnode/error.hpp"

namespace lucid::detail {

void ensure_sodium() {
  static const int rc = sodium_init();
  if (rc < 0) throw Error(Errc::internal, "libsodium failed to initialise");
}

std::string to_hex(std::string_view bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  out.pop_back();
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return std::nullopt;
  std::string out(hex.size() / 2, '\0');
  size_t len = 0;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(), hex.size(), nullptr,
                     &len, nullptr) != 0 ||
      len != out.size())
    return std::nullopt;
  return out;
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0x0f]);
    }
  }
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    variant);
  out.resize(out.size() - 1);  // drop the NUL
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  std::string out(text.size() * 3 / 4 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != text.data() + text.size())
    return std::nullopt;
  out.resize(len);
  // Canonical form only: re-encoding must give the same text, so one token
  // has exactly one spelling (no malleable trailing bits).
  if (base64url_encode(out) != text) return std::nullopt;
  return out;
}

Digest sha256(std::string_view bytes) {
  Digest d{};
  crypto_hash_sha256(d.data(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return d;
}

Digest hmac_sha256(const Digest& key, std::string_view message) {
  Digest d{};
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key.data(), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(message.data()), message.size());
  crypto_auth_hmacsha256_final(&st, d.data());
  return d;
}

std::string random_bytes(std::size_t n) {
  ensure_sodium();
  std::string out(n, '\0');
  randombytes_buf(out.data(), n);
  return out;
}

bool equal_ct(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_uuid() { return uuid_v4(random_bytes(16)); }

std::string uuid_v4(std::string_view bytes16) {
  if (bytes16.size() != 16) throw std::invalid_argument("uuid_v4 takes 16 bytes");
  std::string b(bytes16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  const std::string h = to_hex(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

namespace {
constexpr char kBase58Alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
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
  for (std::size_t i = digits.size() - len; i < digits.size(); ++i) out += kBase58Alphabet[digits[i]];
  return out;
}

std::optional<std::string> base58_decode(std::string_view text) {
  if (text.size() > 256) return std::nullopt;
  std::size_t zeros = 0;
  while (zeros < text.size() && text[zeros] == '1') ++zeros;
  std::vector<unsigned char> bytes(text.size() * 733 / 1000 + 1, 0);
  std::size_t len = 0;
  for (std::size_t i = zeros; i < text.size(); ++i) {
    const char* p = std::strchr(kBase58Alphabet, text[i]);
    if (!p || text[i] == '\0') return std::nullopt;
    int carry = static_cast<int>(p - kBase58Alphabet);
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

}  // namespace lucid::detail
