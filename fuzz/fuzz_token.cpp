// libFuzzer target: the access-token parser, lucid::Auth::verify_token, with a
// fixed Ed25519 key. Two modes (first byte):
//  - even: the rest is a token as received (header.claims.signature, base64url);
//  - odd: the rest is "<header JSON>\n<claims JSON>", encoded and signed with
//    the fixed key, so the fuzzer reaches the claims parser behind a valid
//    signature (the parser must still refuse anything but our own claims).
// Every outcome is a Claims value or Error(unauthenticated); nothing else.
#include <sodium.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "lucidnode/auth.hpp"
#include "lucidnode/error.hpp"
#include "util/encoding.hpp"

namespace {

std::string fixed_key() {
  lucid::detail::ensure_sodium();
  unsigned char seed[crypto_sign_SEEDBYTES];
  for (auto& b : seed) b = 0x2a;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  std::string sk(crypto_sign_SECRETKEYBYTES, '\0');
  crypto_sign_seed_keypair(pk, reinterpret_cast<unsigned char*>(sk.data()), seed);
  return sk;
}

const lucid::Auth& auth() {
  static const auto* a = new lucid::Auth(std::make_shared<lucid::SystemClock>(), fixed_key());
  return *a;
}

std::string signed_token(std::string_view header, std::string_view claims) {
  static const std::string sk = fixed_key();
  const std::string input = lucid::detail::base64url_encode(header) + "." + lucid::detail::base64url_encode(claims);
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                       reinterpret_cast<const unsigned char*>(sk.data()));
  return input + "." + lucid::detail::base64url_encode(std::string_view(reinterpret_cast<char*>(sig), sizeof sig));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string token;
  if (data[0] & 1) {
    const auto nl = rest.find('\n');
    token = signed_token(rest.substr(0, nl), nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1));
  } else {
    token.assign(rest);
  }
  try {
    const auto c = auth().verify_token(token);
    (void)c.has_scope("node:read");
    (void)c.has_role(lucid::Role::admin);
  } catch (const lucid::Error& e) {
    if (e.code() != lucid::Errc::unauthenticated) {
      std::fprintf(stderr, "verify_token threw %d, not unauthenticated: %s\n", static_cast<int>(e.code()),
                   e.message().c_str());
      std::abort();
    }
  }
  return 0;
}
