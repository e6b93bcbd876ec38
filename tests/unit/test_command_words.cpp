// lib/util/command_words: a service's "entrypoint"/"cmd" string split into
// the argument vector the workflow executor runs.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "lucidnode/error.hpp"
#include "util/command_words.hpp"

using lucid::detail::command_words;
using Words = std::vector<std::string>;

namespace {
// The Error command_words throws for `text`.
lucid::Error failure(const std::string& text) {
  try {
    command_words(text, "cmd");
  } catch (const lucid::Error& e) {
    return e;
  }
  FAIL("no error for: " << text);
  return lucid::Error(lucid::Errc::internal, "unreachable");
}
}  // namespace

TEST_CASE("command_words: blanks separate words, runs of them count once") {
  CHECK(command_words("python3 -m http.server", "cmd") == Words{"python3", "-m", "http.server"});
  CHECK(command_words("  a \t b\n c  ", "cmd") == Words{"a", "b", "c"});
}

TEST_CASE("command_words: empty and blank text have no words") {
  CHECK(command_words("", "cmd").empty());
  CHECK(command_words(" \t\n", "cmd").empty());
}

TEST_CASE("command_words: quotes group words and empty quotes make an empty word") {
  CHECK(command_words("sh -c 'echo $HOME; ls'", "cmd") == Words{"sh", "-c", "echo $HOME; ls"});
  CHECK(command_words(R"(echo "a b" c)", "cmd") == Words{"echo", "a b", "c"});
  CHECK(command_words(R"(a '' "" b)", "cmd") == Words{"a", "", "", "b"});
  // Adjacent quoted and plain parts are one word, as in sh.
  CHECK(command_words(R"(--name="x y"z)", "cmd") == Words{"--name=x yz"});
  // Single quotes keep backslashes and double quotes literally.
  CHECK(command_words(R"('a\"b')", "cmd") == Words{R"(a\"b)"});
}

TEST_CASE("command_words: backslash escapes") {
  CHECK(command_words(R"(a\ b c)", "cmd") == Words{"a b", "c"});
  CHECK(command_words(R"(\'quoted\')", "cmd") == Words{"'quoted'"});
  // In double quotes only \" \\ \$ lose the backslash.
  CHECK(command_words(R"("q\"d \\ \$ \n")", "cmd") == Words{R"(q"d \ $ \n)"});
  // A trailing backslash stays.
  CHECK(command_words(R"(end\)", "cmd") == Words{R"(end\)"});
}

TEST_CASE("command_words: an unterminated quote is invalid_argument naming the field") {
  for (const char* text : {"echo 'abc", R"(echo "abc)", R"("a\")"}) {
    const auto e = failure(text);
    CHECK(e.code() == lucid::Errc::invalid_argument);
    CHECK(e.field() == "cmd");
    CHECK(e.message() == "cmd has an unterminated quote");
  }
}

TEST_CASE("command_words: a JSON array of strings is taken as is") {
  CHECK(command_words(R"(["sh", "-c", "a 'b'"])", "entrypoint") == Words{"sh", "-c", "a 'b'"});
  CHECK(command_words("[]", "cmd").empty());
  CHECK(failure("[1]").message() == "cmd must contain strings");
  CHECK(failure("[\"a\"").message() == "cmd is not a JSON array");
}
