// Length of UTF-8 text in code points: the documents' maxLength counts
// characters, not bytes.
#pragma once

#include <cstddef>
#include <string_view>

namespace lucid::detail {

// Code points in valid UTF-8 (continuation bytes 10xxxxxx are not counted).
inline std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace lucid::detail
