// The one reader of JSON input fields: a JSON object (parsed with parse_json,
// so depth-bounded and valid UTF-8) with typed accessors that throw
// lucid::Error(invalid_argument, message, field) naming the bare field. Every
// surface reads its input through it (the server's request bodies and
// WebSocket messages, the C ABI's arguments, lucidctl's answers, the core's
// codecs); each surface maps the Error to its own status and body in its one
// error-format place.
//
// Thread-safety: a JsonObject is immutable after construction; const methods
// may be called from many threads at once.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lucid::detail {

// Thrown for text that is not JSON at all (the server answers 400); field
// errors are lucid::Error(invalid_argument) with the field named (422).
struct MalformedJson {
  std::string message;
};

// Refuses members of object `obj` other than `known`: Error(invalid_argument,
// "unknown field '<name>'", prefix + name) for the first one (its name cut
// at 64 bytes). Thread-safe.
void reject_unknown_members(const rapidjson::Value& obj, std::initializer_list<const char*> known,
                            const std::string& prefix);

// A JSON object. Accessors treat an absent member and a null one alike
// (absent); "field required" is the message of a missing required field.
class JsonObject {
 public:
  // Parses `text`. Throws MalformedJson for empty text, text that is not
  // JSON, or nests deeper than kJsonMaxDepth; Error(invalid_argument, "body
  // must be a JSON object", "body") for JSON that is not an object.
  explicit JsonObject(std::string_view text);
  // A copy of `object`, a value parse_json made (so within the depth bound)
  // that the caller already checked is an object (invalid_argument otherwise).
  // Errors name its fields `field_prefix` + field, in the field and the
  // message (the C ABI's "capabilities.cpu_count", "payout_requests.0.amount").
  explicit JsonObject(const rapidjson::Value& object, std::string field_prefix = {});
  // The object member `field` of `parent`; an absent or null member is an
  // empty object, another type is invalid_argument (field named). Its errors
  // name fields with the parent's prefix.
  JsonObject(const JsonObject& parent, const char* field);
  // A string of at most max_len characters (UTF-8 code points).
  std::string required_string(const char* field, std::size_t max_len) const;
  std::optional<std::string> optional_string(const char* field, std::size_t max_len) const;
  // A finite number.
  double required_number(const char* field) const;
  std::optional<double> optional_number(const char* field) const;
  // An integer (3 or 3.0; see as_int).
  std::int64_t required_int(const char* field) const;
  std::optional<std::int64_t> optional_int(const char* field) const;
  // An integer written as one (3, not 3.0), within int64: the C ABI's
  // strictness ("<field> must be an integer" otherwise).
  std::optional<std::int64_t> optional_exact_int(const char* field) const;
  // true or false ("<field> must be true or false" otherwise).
  std::optional<bool> optional_bool(const char* field) const;
  // Refuses members other than `known` (reject_unknown_members, the prefix
  // before the name).
  void reject_unknown(std::initializer_list<const char*> known) const { reject_unknown_members(doc_, known, prefix_); }
  // The name errors give `field`: the prefix (see the constructor) + field.
  std::string field_name(const char* field) const { return prefix_ + field; }
  // The member `field`; nullptr if absent or null. Never throws.
  const rapidjson::Value* member(const char* field) const;
  const rapidjson::Value& root() const { return doc_; }

 private:
  // Error(invalid_argument, "<name><what>", name), name = field_name(field).
  [[noreturn]] void bad_field(const char* field, const std::string& what) const;
  // Error(invalid_argument, "field required", field_name(field)).
  [[noreturn]] void missing(const char* field) const;

  rapidjson::Document doc_;
  std::string prefix_;
};

// An integer JSON value (3, or 3.0 below 9e15: clients in loosely typed
// languages send floats), or nullopt.
std::optional<std::int64_t> as_int(const rapidjson::Value& v);

// Lenient reads, for answers a client takes as they come (lucidctl and its
// agent read the server's answers and skip what they cannot use): the member
// `key` of `obj` when `obj` is an object and the member has the type, else
// nullopt. Never throw; thread-safe.
std::optional<std::string> peek_string(const rapidjson::Value& obj, const char* key);
std::optional<int> peek_int(const rapidjson::Value& obj, const char* key);  // a JSON integer within int
std::optional<bool> peek_bool(const rapidjson::Value& obj, const char* key);
// The member `key` of `obj` when `obj` is an object and the member is an
// array / an object / anything but null; else nullptr. Never throw;
// thread-safe.
const rapidjson::Value* peek_array(const rapidjson::Value& obj, const char* key);
const rapidjson::Value* peek_object(const rapidjson::Value& obj, const char* key);
const rapidjson::Value* peek_member(const rapidjson::Value& obj, const char* key);

// A JSON array of at most max_items strings. Errors: Error(invalid_argument,
// "<field> must be an array of strings" / "<field> must have at most
// <max_items> entries", field). Thread-safe.
std::vector<std::string> string_array(const rapidjson::Value& v, const std::string& field, std::size_t max_items);

}  // namespace lucid::detail
