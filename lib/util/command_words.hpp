// A command line given as one string (a service's "entrypoint" or "cmd",
// network-node.md) split into the argument vector the workflow executor runs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lucid::detail {

// The words of `text`, in one of two forms:
//   - a JSON array of strings (text starting with '['): its elements;
//   - otherwise shell-style words as POSIX sh splits them, without any
//     expansion: blanks (space, tab, newline) separate words; '...' keeps
//     everything literally; "..." keeps everything but \" \\ \$ (the
//     backslash dropped); outside quotes a backslash keeps the next
//     character literally (a trailing one is kept as is); '' and "" make an
//     empty word. Empty or blank text has no words.
// Errors: Error(invalid_argument, "<field> has an unterminated quote" /
// "<field> is not a JSON array" / "<field> must contain strings", field).
// Thread-safe (no state).
std::vector<std::string> command_words(std::string_view text, const char* field);

}  // namespace lucid::detail
