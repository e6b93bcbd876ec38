// TRON addresses (Keccak-256, base58check) and sealed wallet keys.
#include "gateway/tron.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <sodium.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "ledger/sha256.hpp"
#include "lucidnode/error.hpp"
#include "util/encoding.hpp"

namespace lucid::detail {

namespace {

constexpr std::array<std::uint64_t, 24> kRoundConstants = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};
constexpr std::array<int, 24> kRotations = {1,  3,  6,  10, 15, 21, 28, 36, 45, 55, 2,  14,
                                            27, 41, 56, 8,  25, 43, 62, 18, 39, 61, 20, 44};
constexpr std::array<int, 24> kPi = {10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1};

std::uint64_t rotl(std::uint64_t x, int n) { return (x << n) | (x >> (64 - n)); }

void keccak_f(std::array<std::uint64_t, 25>& st) {
  std::uint64_t bc[5];
  for (std::uint64_t rc : kRoundConstants) {
    for (int i = 0; i < 5; ++i) bc[i] = st[i] ^ st[i + 5] ^ st[i + 10] ^ st[i + 15] ^ st[i + 20];
    for (int i = 0; i < 5; ++i) {
      const std::uint64_t t = bc[(i + 4) % 5] ^ rotl(bc[(i + 1) % 5], 1);
      for (int j = 0; j < 25; j += 5) st[j + i] ^= t;
    }
    std::uint64_t t = st[1];
    for (int i = 0; i < 24; ++i) {
      const int j = kPi[i];
      const std::uint64_t tmp = st[j];
      st[j] = rotl(t, kRotations[i]);
      t = tmp;
    }
    for (int j = 0; j < 25; j += 5) {
      for (int i = 0; i < 5; ++i) bc[i] = st[j + i];
      for (int i = 0; i < 5; ++i) st[j + i] ^= (~bc[(i + 1) % 5]) & bc[(i + 2) % 5];
    }
    st[0] ^= rc;
  }
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

[[noreturn]] void openssl_failed(const char* what) { throw Error(Errc::internal, std::string("OpenSSL: ") + what); }

std::string public_key_of(EVP_PKEY* key) {
  unsigned char buf[65];
  std::size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, sizeof buf, &len) != 1 ||
      len != 65 || buf[0] != 0x04)
    openssl_failed("cannot read the public key");
  return std::string(reinterpret_cast<const char*>(buf), len);
}

}  // namespace

std::string keccak256(std::string_view data) {
  constexpr std::size_t kRate = 136;
  std::array<std::uint64_t, 25> st{};
  auto absorb = [&](const unsigned char* block) {
    for (std::size_t i = 0; i < kRate / 8; ++i) {
      std::uint64_t lane = 0;
      for (int b = 7; b >= 0; --b) lane = (lane << 8) | block[i * 8 + static_cast<std::size_t>(b)];
      st[i] ^= lane;
    }
    keccak_f(st);
  };
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t left = data.size();
  while (left >= kRate) {
    absorb(p);
    p += kRate;
    left -= kRate;
  }
  unsigned char last[kRate] = {};
  std::memcpy(last, p, left);
  last[left] ^= 0x01;
  last[kRate - 1] ^= 0x80;
  absorb(last);
  std::string out(32, '\0');
  for (std::size_t i = 0; i < 32; ++i) out[i] = static_cast<char>((st[i / 8] >> (8 * (i % 8))) & 0xff);
  return out;
}

std::string tron_address_from_account(std::string_view account20) {
  std::string raw(1, '\x41');
  raw.append(account20);
  const Digest once = sha256_concat({raw});
  const Digest twice = sha256_concat({bytes_of(once)});
  raw.append(reinterpret_cast<const char*>(twice.data()), 4);
  return base58_encode(raw);
}

std::string tron_address_of(std::string_view uncompressed_public_key) {
  if (uncompressed_public_key.size() != 65 || uncompressed_public_key[0] != '\x04')
    throw Error(Errc::invalid_argument, "an uncompressed public key is 65 bytes starting with 0x04", "public_key");
  const std::string h = keccak256(uncompressed_public_key.substr(1));
  return tron_address_from_account(std::string_view(h).substr(12));
}

std::string secp256k1_public_key(std::string_view private_key32) {
  if (private_key32.size() != 32) throw Error(Errc::invalid_argument, "a private key is 32 bytes", "private_key");
  std::unique_ptr<BIGNUM, decltype(&BN_free)> priv(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(private_key32.data()), 32, nullptr), &BN_free);
  std::unique_ptr<EC_GROUP, decltype(&EC_GROUP_free)> group(EC_GROUP_new_by_curve_name(NID_secp256k1), &EC_GROUP_free);
  if (!priv || !group) openssl_failed("cannot set up secp256k1");
  if (BN_is_zero(priv.get()) || BN_cmp(priv.get(), EC_GROUP_get0_order(group.get())) >= 0)
    throw Error(Errc::invalid_argument, "the private key is not a valid secp256k1 scalar", "private_key");
  std::unique_ptr<EC_POINT, decltype(&EC_POINT_free)> pub(EC_POINT_new(group.get()), &EC_POINT_free);
  if (!pub || EC_POINT_mul(group.get(), pub.get(), priv.get(), nullptr, nullptr, nullptr) != 1)
    openssl_failed("cannot compute the public key");
  unsigned char buf[65];
  if (EC_POINT_point2oct(group.get(), pub.get(), POINT_CONVERSION_UNCOMPRESSED, buf, sizeof buf, nullptr) != 65)
    openssl_failed("cannot encode the public key");
  return std::string(reinterpret_cast<const char*>(buf), 65);
}

std::pair<std::string, std::string> generate_tron_key() {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp256k1"));
  if (!key) openssl_failed("cannot generate a secp256k1 key");
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1) openssl_failed("cannot read the private key");
  std::string priv(32, '\0');
  const int n = BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(priv.data()), 32);
  BN_clear_free(bn);
  if (n != 32) openssl_failed("cannot encode the private key");
  return {tron_address_of(public_key_of(key.get())), priv};
}

std::string seal_secret(std::string_view key32, std::string_view plain) {
  ensure_sodium();
  std::string out(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plain.size(), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(o, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(o + crypto_secretbox_NONCEBYTES, reinterpret_cast<const unsigned char*>(plain.data()),
                        plain.size(), o, reinterpret_cast<const unsigned char*>(key32.data()));
  return out;
}

std::optional<std::string> open_sealed(std::string_view key32, std::string_view sealed) {
  ensure_sodium();
  if (sealed.size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) return std::nullopt;
  std::string plain(sealed.size() - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES, '\0');
  const auto* s = reinterpret_cast<const unsigned char*>(sealed.data());
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()), s + crypto_secretbox_NONCEBYTES,
                                 sealed.size() - crypto_secretbox_NONCEBYTES, s,
                                 reinterpret_cast<const unsigned char*>(key32.data())) != 0)
    return std::nullopt;
  return plain;
}

}  // namespace lucid::detail
