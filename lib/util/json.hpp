// The one way lucidnode reads JSON text: RapidJSON's iterative (non-recursive)
// reader behind a handler that counts nesting and stops the parse as soon as
// it passes a bound. Every request body, WebSocket message, stored JSON the
// core reads back, C ABI input and server answer read by lucidctl goes through
// parse_json or parse_json_sax, so no JSON value anywhere in the process is
// deeper than the bound and nothing that walks a value recursively (CopyFrom,
// Accept, a destructor) can exhaust the stack however the text is built.
//
// Thread-safety: the functions keep no state; each call is independent.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/utf8.hpp"

namespace lucid::detail {

// Containers (objects and arrays) that may enclose one another in any JSON the
// server accepts or stores: `[[1]]` is depth 2, a scalar is depth 0.
inline constexpr unsigned kJsonMaxDepth = 64;
// lucidctl and the agent read server answers, which wrap stored values (at most
// kJsonMaxDepth deep) in a few levels of envelope.
inline constexpr unsigned kJsonClientMaxDepth = 2 * kJsonMaxDepth;

// Options for parse_json / parse_json_sax (bit flags).
enum JsonOption : unsigned {
  kJsonStrict = 0,             // valid UTF-8 required (in the text and in every decoded string), numbers as numbers
  kJsonNumbersAsText = 1u << 0,  // keep every number as its source text (RapidJSON kParseNumbersAsStringsFlag)
  kJsonAnyBytes = 1u << 1,       // do not validate UTF-8 (text the process produced itself)
};

// The outcome of a parse. On failure `message` is RapidJSON's English text for
// the error (or "JSON nested deeper than N levels") and `offset` the byte offset.
struct JsonResult {
  bool ok = true;
  bool too_deep = false;
  std::size_t offset = 0;
  std::string message;
  explicit operator bool() const { return ok; }
  // "Malformed JSON: <message> at offset <offset>", the form the API surfaces answer.
  std::string describe() const;
};

// Why a DepthLimitedHandler ended a parse that RapidJSON itself would accept.
enum class JsonRefusal { none, too_deep, bad_string, number_too_big };

// Forwards every SAX event to `Inner`, refusing (ending the parse) when an
// object or array would open deeper than `max_depth`; when `check_strings`,
// a string or key whose decoded text is not valid UTF-8 (RapidJSON 1.1 lets a
// lone low surrogate escape such as "\udc00" through its validation); and a
// number that overflows a double. RapidJSON's fast (not full-precision) path
// turns "17976931348623158e292" into infinity without an error, and JSON has no
// text for infinity: the value could be stored but never written back
// (found by fuzz_json).
template <class Inner>
class DepthLimitedHandler {
 public:
  DepthLimitedHandler(Inner& inner, unsigned max_depth, bool check_strings)
      : inner_(inner), max_(max_depth), check_(check_strings) {}
  bool Null() { return inner_.Null(); }
  bool Bool(bool b) { return inner_.Bool(b); }
  bool Int(int i) { return inner_.Int(i); }
  bool Uint(unsigned u) { return inner_.Uint(u); }
  bool Int64(std::int64_t i) { return inner_.Int64(i); }
  bool Uint64(std::uint64_t u) { return inner_.Uint64(u); }
  bool Double(double d) {
    if (std::isfinite(d)) return inner_.Double(d);
    refusal_ = JsonRefusal::number_too_big;
    return false;
  }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) { return inner_.RawNumber(s, n, copy); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return text_ok(s, n) && inner_.String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return text_ok(s, n) && inner_.Key(s, n, copy); }
  bool StartObject() { return open() && inner_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) { --depth_; return inner_.EndObject(n); }
  bool StartArray() { return open() && inner_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) { --depth_; return inner_.EndArray(n); }
  JsonRefusal refusal() const { return refusal_; }

 private:
  bool text_ok(const char* s, rapidjson::SizeType n) {
    if (!check_ || utf8_valid(std::string_view(s, n))) return true;
    refusal_ = JsonRefusal::bad_string;
    return false;
  }
  bool open() {
    if (depth_ >= max_) {
      refusal_ = JsonRefusal::too_deep;
      return false;
    }
    ++depth_;
    return true;
  }
  Inner& inner_;
  unsigned max_;
  bool check_;
  unsigned depth_ = 0;
  JsonRefusal refusal_ = JsonRefusal::none;
};

namespace json_impl {
template <unsigned Flags, class Handler>
bool run(std::string_view text, Handler& h, rapidjson::ParseResult& pr) {
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(ms);
  rapidjson::Reader reader;
  // Not kParseFullPrecisionFlag: RapidJSON 1.1's full-precision path passes 0
  // to clz() for "0.000…0" with many digits (undefined behaviour, found by
  // fuzz_ws_message). Numbers that must be exact are read as text
  // (kJsonNumbersAsText); a double may differ from its text in the last place.
  pr = reader.Parse<Flags | rapidjson::kParseIterativeFlag>(is, h);
  // RapidJSON takes a NUL byte for the end of the text: "{}\0{" would parse.
  if (!pr.IsError() && is.Tell() != text.size()) pr.Set(rapidjson::kParseErrorDocumentRootNotSingular, is.Tell());
  return !pr.IsError();
}
JsonResult result(const rapidjson::ParseResult& pr, JsonRefusal refusal, unsigned max_depth);
}  // namespace json_impl

// Streams the SAX events of `text` (one JSON value, surrounding whitespace only)
// into `handler` without building a document. Never recurses; stops at the
// first error, at a container deeper than `max_depth`, or when `handler`
// returns false (reported as RapidJSON's "Terminate parsing due to Handler error").
template <class Handler>
JsonResult parse_json_sax(std::string_view text, Handler& handler, unsigned options = kJsonStrict,
                          unsigned max_depth = kJsonMaxDepth) {
  DepthLimitedHandler<Handler> h(handler, max_depth, !(options & kJsonAnyBytes));
  rapidjson::ParseResult pr;
  constexpr unsigned kV = rapidjson::kParseValidateEncodingFlag;
  constexpr unsigned kN = rapidjson::kParseNumbersAsStringsFlag;
  switch (options & (kJsonNumbersAsText | kJsonAnyBytes)) {
    case kJsonStrict: json_impl::run<kV>(text, h, pr); break;
    case kJsonNumbersAsText: json_impl::run<kV | kN>(text, h, pr); break;
    case kJsonAnyBytes: json_impl::run<0>(text, h, pr); break;
    default: json_impl::run<kN>(text, h, pr); break;
  }
  return json_impl::result(pr, h.refusal(), max_depth);
}

// Parses `text` into `doc` (replacing its value). On failure `doc` is left
// null and the result says why. Never recurses; allocation is bounded by the
// text's size.
JsonResult parse_json(rapidjson::Document& doc, std::string_view text, unsigned options = kJsonStrict,
                      unsigned max_depth = kJsonMaxDepth);

// A JSON array of the strings: how text columns store a list (tags, allowed
// task types, a service's arguments).
std::string string_array_json(const std::vector<std::string>& v);
// The strings of a JSON array of strings stored by string_array_json; empty
// when `text` is not an array, entries that are not strings skipped.
std::vector<std::string> parse_string_array(const std::string& text);

}  // namespace lucid::detail
