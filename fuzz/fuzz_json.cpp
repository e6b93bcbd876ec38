// libFuzzer target: the JSON readers every API surface shares — the
// depth-limited parser (lib/util/json), JsonObject and its accessors
// (lib/util/json_object: every surface's field reader, the server's request
// bodies and WebSocket messages included), parse_numbers_as_text (exact amounts) and query_int/path_id.
//
// Invariants checked besides "no crash, no sanitizer report": a parse that
// succeeds yields a value no deeper than the bound that serializes and parses
// again to a value of the same shape; a refusal for depth really is over the bound.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <string_view>

#include "json.hpp"
#include "lucidnode/error.hpp"
#include "util/json.hpp"
#include "util/json_object.hpp"

namespace {

using lucid::detail::kJsonMaxDepth;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_json invariant broken: %s\n", what);
  std::abort();
}

// Depth of a value, iteratively bounded: the parser guarantees <= kJsonMaxDepth,
// so this recursion is bounded by it too (and asserting it is the point).
unsigned depth_of(const rapidjson::Value& v) {
  unsigned d = 0;
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) d = std::max(d, depth_of(e));
    return d + 1;
  }
  if (v.IsObject()) {
    for (const auto& m : v.GetObject()) d = std::max(d, depth_of(m.value));
    return d + 1;
  }
  return 0;
}

std::string text_of(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  v.Accept(w);
  return std::string(b.GetString(), b.GetSize());
}

// Depth of the text's brackets outside strings (for checking refusals).
unsigned bracket_depth(std::string_view s) {
  unsigned d = 0, best = 0;
  bool in_str = false, esc = false;
  for (char c : s) {
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '[' || c == '{') best = std::max(best, ++d);
    else if ((c == ']' || c == '}') && d > 0) --d;
  }
  return best;
}

void check_parser(std::string_view text) {
  for (unsigned opts : {unsigned(lucid::detail::kJsonStrict), unsigned(lucid::detail::kJsonNumbersAsText),
                        unsigned(lucid::detail::kJsonAnyBytes)}) {
    rapidjson::Document d;
    auto r = lucid::detail::parse_json(d, text, opts);
    if (r.ok) {
      if (depth_of(d) > kJsonMaxDepth) fail("accepted a value deeper than the bound");
      if (opts == lucid::detail::kJsonStrict) {
        const std::string once = text_of(d);
        rapidjson::Document again;
        if (!lucid::detail::parse_json(again, once)) fail("serialized value does not parse again");
        // Not compared text for text: a double read without full precision may
        // move by one unit in the last place (lib/util/json.hpp says why).
        if (depth_of(again) != depth_of(d)) fail("serialize/parse changed the shape");
      }
    } else {
      if (!d.IsNull()) fail("refused parse left a value behind");
      if (r.too_deep && bracket_depth(text.substr(0, r.offset + 1)) <= kJsonMaxDepth)
        fail("refused for depth at or under the bound");
      if (r.offset > text.size()) fail("error offset past the end");
    }
  }
}

void check_body(std::string_view text) {
  try {
    lucid::detail::JsonObject b{text};
    // Field names the surfaces read (any type may arrive in any of them).
    for (const char* f : {"type", "hostname", "task_type", "name", "session_id", "token", "amount", "priority"}) {
      try { (void)b.optional_string(f, 64); } catch (const lucid::Error&) {}
      try { (void)b.optional_number(f); } catch (const lucid::Error&) {}
      try { (void)b.optional_int(f); } catch (const lucid::Error&) {}
      try { (void)b.required_string(f, 1 << 20); } catch (const lucid::Error&) {}
      try { (void)b.optional_exact_int(f); } catch (const lucid::Error&) {}
      try { (void)b.optional_bool(f); } catch (const lucid::Error&) {}
      if (const auto* v = b.member(f)) (void)lucid::detail::as_int(*v);
      // lucidctl's lenient reads of the same members (never throw).
      (void)lucid::detail::peek_string(b.root(), f);
      (void)lucid::detail::peek_int(b.root(), f);
      (void)lucid::detail::peek_bool(b.root(), f);
      if (const auto* a = lucid::detail::peek_array(b.root(), f))
        for (const auto& e : a->GetArray()) (void)lucid::detail::peek_member(e, f);
    }
    for (const char* f : {"payload", "config", "capabilities", "metadata", "data"}) {
      try {
        lucid::detail::JsonObject nested(b, f);
        (void)text_of(nested.root());
        try { (void)nested.required_int("chunk_index"); } catch (const lucid::Error&) {}
        // The C ABI's prefixed nested objects.
        if (const auto* o = lucid::detail::peek_object(b.root(), f)) {
          const lucid::detail::JsonObject prefixed(*o, std::string(f) + ".");
          try { (void)prefixed.optional_exact_int("cpu_count"); } catch (const lucid::Error&) {}
          try { prefixed.reject_unknown({"cpu_count"}); } catch (const lucid::Error&) {}
        }
      } catch (const lucid::Error&) {
      }
    }
  } catch (const lucid::detail::MalformedJson&) {
  } catch (const lucid::Error&) {
  }
  lucid::http::Request req;
  req.body.assign(text);
  try {
    auto d = lucid::server::parse_numbers_as_text(req);
    if (depth_of(d) > kJsonMaxDepth) fail("numbers-as-text accepted a value deeper than the bound");
  } catch (const lucid::detail::MalformedJson&) {
  }
}

void check_params(std::string_view text) {
  const std::string s(text.substr(0, 64));
  try { (void)lucid::server::path_id(s, "thing"); } catch (const lucid::Error&) {}
  lucid::http::Request req;
  req.query = "page=" + s + "&limit=" + s;
  try { (void)lucid::server::query_int(req, "page", 1, 1000); } catch (const lucid::Error&) {}
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_parser(text);
  check_body(text);
  check_params(text);
  return 0;
}
