// Enum <-> wire name, table-driven: one table per enum instead of a switch
// for the name and a chain of ifs for the parse.
//
//   constexpr detail::EnumNames<Color, 2> kColorNames{{{Color::red, "red"}, {Color::blue, "blue"}}};
//   const char* color_name(Color c) noexcept { return detail::enum_name(kColorNames, c, "red"); }
//   std::optional<Color> parse_color(std::string_view s) { return detail::parse_enum(kColorNames, s); }
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace lucid::detail {

template <class E>
struct EnumName {
  E value;
  const char* name;
};

template <class E, std::size_t N>
using EnumNames = std::array<EnumName<E>, N>;

// The name of `v` in `table`, or `fallback` for a value the table lacks (a
// value cast from an out-of-range integer).
template <class E, std::size_t N>
constexpr const char* enum_name(const EnumNames<E, N>& table, E v, const char* fallback) noexcept {
  for (const auto& e : table)
    if (e.value == v) return e.name;
  return fallback;
}

// The value named exactly `name` (case-sensitive), or nullopt.
template <class E, std::size_t N>
constexpr std::optional<E> parse_enum(const EnumNames<E, N>& table, std::string_view name) noexcept {
  for (const auto& e : table)
    if (name == e.name) return e.value;
  return std::nullopt;
}

}  // namespace lucid::detail
