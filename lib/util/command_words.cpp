#include "util/command_words.hpp"

#include "lucidnode/error.hpp"
#include "util/json.hpp"

namespace lucid::detail {

namespace {
[[noreturn]] void bad(const char* field, const char* what) {
  throw Error(Errc::invalid_argument, std::string(field) + what, field);
}
}  // namespace

std::vector<std::string> command_words(std::string_view s, const char* field) {
  std::vector<std::string> out;
  if (!s.empty() && s.front() == '[') {
    rapidjson::Document d;
    if (!parse_json(d, s) || !d.IsArray()) bad(field, " is not a JSON array");
    for (const auto& e : d.GetArray()) {
      if (!e.IsString()) bad(field, " must contain strings");
      out.emplace_back(e.GetString(), e.GetStringLength());
    }
    return out;
  }
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quote == '\'') {
      if (c == '\'') quote = 0; else cur += c;
    } else if (quote == '"') {
      if (c == '"') quote = 0;
      else if (c == '\\' && i + 1 < s.size() && (s[i + 1] == '"' || s[i + 1] == '\\' || s[i + 1] == '$')) cur += s[++i];
      else cur += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < s.size()) {
      cur += s[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote) bad(field, " has an unterminated quote");
  if (in_word) out.push_back(std::move(cur));
  return out;
}

}  // namespace lucid::detail
