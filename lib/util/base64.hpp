// Strict standard base64 (RFC 4648 §4) decoding for PoOT output data. Internal.
//
// libsodium's decoder is constant-time, which output data does not need and
// which costs ~9 ns per character; this one is table-driven and accepts
// exactly what sodium_base642bin(..., sodium_base64_VARIANT_ORIGINAL) accepts
// when the whole input must be consumed: the standard alphabet, padding to a
// multiple of 4, canonical (zero) trailing bits, no whitespace.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace lucid::detail {

inline constexpr std::array<std::uint8_t, 256> kBase64Values = [] {
  std::array<std::uint8_t, 256> t{};
  for (auto& v : t) v = 0xff;
  constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (std::size_t i = 0; i < alphabet.size(); ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::uint8_t>(i);
  return t;
}();

// Decodes `in` into `out` (resized to the decoded length). False, with `out`
// unspecified, when `in` is not canonical padded standard base64. Empty input
// decodes to empty output.
inline bool base64_decode_strict(std::string_view in, std::string& out) {
  if (in.size() % 4 != 0) return false;
  if (in.empty()) {
    out.clear();
    return true;
  }
  std::size_t pad = 0;
  if (in.back() == '=') pad = in[in.size() - 2] == '=' ? 2 : 1;
  const std::size_t n = in.size() / 4 * 3 - pad;
  out.resize(in.size() / 4 * 3);
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  auto* d = reinterpret_cast<unsigned char*>(out.data());
  const std::size_t full = (in.size() - (pad ? 4 : 0)) / 4;  // quads without padding
  std::uint32_t bad = 0;
  for (std::size_t q = 0; q < full; ++q, s += 4, d += 3) {
    const std::uint32_t a = kBase64Values[s[0]], b = kBase64Values[s[1]], c = kBase64Values[s[2]],
                        e = kBase64Values[s[3]];
    bad |= a | b | c | e;
    const std::uint32_t v = (a << 18) | (b << 12) | (c << 6) | e;
    d[0] = static_cast<unsigned char>(v >> 16);
    d[1] = static_cast<unsigned char>(v >> 8);
    d[2] = static_cast<unsigned char>(v);
  }
  if (bad & 0xc0) return false;  // some character was outside the alphabet (0xff)
  if (pad) {
    const std::uint32_t a = kBase64Values[s[0]], b = kBase64Values[s[1]];
    if ((a | b) & 0xc0) return false;
    if (pad == 2) {
      if (b & 0x0f) return false;  // non-zero trailing bits
      d[0] = static_cast<unsigned char>((a << 2) | (b >> 4));
    } else {
      const std::uint32_t c = kBase64Values[s[2]];
      if ((c & 0xc0) || (c & 0x03)) return false;
      d[0] = static_cast<unsigned char>((a << 2) | (b >> 4));
      d[1] = static_cast<unsigned char>((b << 4) | (c >> 2));
    }
  }
  out.resize(n);
  return true;
}

}  // namespace lucid::detail
