#include "util/json_object.hpp"

#include <cmath>

#include "lucidnode/error.hpp"
#include "util/json.hpp"
#include "util/utf8.hpp"

namespace lucid::detail {

// `what` follows the field's name in the message: "<name> must be ...".
void JsonObject::bad_field(const char* field, const std::string& what) const {
  const std::string name = field_name(field);
  throw Error(Errc::invalid_argument, name + what, name);
}

void JsonObject::missing(const char* field) const {
  throw Error(Errc::invalid_argument, "field required", field_name(field));
}

JsonObject::JsonObject(const JsonObject& parent, const char* field) : prefix_(parent.prefix_) {
  const auto* v = parent.member(field);
  if (!v) {
    doc_.SetObject();
    return;
  }
  if (!v->IsObject()) parent.bad_field(field, " must be an object");
  doc_.CopyFrom(*v, doc_.GetAllocator());
}

JsonObject::JsonObject(const rapidjson::Value& object, std::string field_prefix) : prefix_(std::move(field_prefix)) {
  if (!object.IsObject()) throw Error(Errc::invalid_argument, "body must be a JSON object", "body");
  doc_.CopyFrom(object, doc_.GetAllocator());
}

JsonObject::JsonObject(std::string_view text) {
  if (text.empty()) throw MalformedJson{"Request body is empty; a JSON object is expected"};
  // Trailing garbage is an error; nesting deeper than kJsonMaxDepth is
  // refused while parsing (issue 12), like any other malformed text.
  if (auto r = parse_json(doc_, text); !r) throw MalformedJson{r.describe()};
  if (!doc_.IsObject()) throw Error(Errc::invalid_argument, "body must be a JSON object", "body");
}

const rapidjson::Value* JsonObject::member(const char* field) const {
  auto it = doc_.FindMember(field);
  if (it == doc_.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

std::optional<std::string> JsonObject::optional_string(const char* field, std::size_t max_len) const {
  const auto* v = member(field);
  if (!v) return std::nullopt;
  if (!v->IsString()) bad_field(field, " must be a string");
  if (utf8_length(std::string_view(v->GetString(), v->GetStringLength())) > max_len)
    bad_field(field, " must be at most " + std::to_string(max_len) + " characters");
  return std::string(v->GetString(), v->GetStringLength());
}

std::string JsonObject::required_string(const char* field, std::size_t max_len) const {
  auto s = optional_string(field, max_len);
  if (!s) missing(field);
  return *s;
}

std::optional<double> JsonObject::optional_number(const char* field) const {
  const auto* v = member(field);
  if (!v) return std::nullopt;
  if (!v->IsNumber()) bad_field(field, " must be a number");
  double d = v->GetDouble();
  if (!std::isfinite(d)) bad_field(field, " must be finite");
  return d;
}

double JsonObject::required_number(const char* field) const {
  auto d = optional_number(field);
  if (!d) missing(field);
  return *d;
}

std::optional<std::int64_t> as_int(const rapidjson::Value& v) {
  if (v.IsInt64()) return v.GetInt64();
  // 3.0 is accepted as 3 (clients in loosely typed languages send floats).
  if (v.IsDouble()) {
    double d = v.GetDouble();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

std::optional<std::int64_t> JsonObject::optional_int(const char* field) const {
  const auto* v = member(field);
  if (!v) return std::nullopt;
  if (auto i = as_int(*v)) return i;
  bad_field(field, " must be an integer");
}

std::int64_t JsonObject::required_int(const char* field) const {
  auto i = optional_int(field);
  if (!i) missing(field);
  return *i;
}

std::optional<std::int64_t> JsonObject::optional_exact_int(const char* field) const {
  const auto* v = member(field);
  if (!v) return std::nullopt;
  if (!v->IsInt64()) bad_field(field, " must be an integer");
  return v->GetInt64();
}

std::optional<bool> JsonObject::optional_bool(const char* field) const {
  const auto* v = member(field);
  if (!v) return std::nullopt;
  if (!v->IsBool()) bad_field(field, " must be true or false");
  return v->GetBool();
}

namespace {
// The member `key` of `obj` (null included), or nullptr when `obj` is not an
// object or has no such member.
const rapidjson::Value* find_member(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}
}  // namespace

std::optional<std::string> peek_string(const rapidjson::Value& obj, const char* key) {
  const auto* v = find_member(obj, key);
  if (!v || !v->IsString()) return std::nullopt;
  return std::string(v->GetString(), v->GetStringLength());
}

std::optional<int> peek_int(const rapidjson::Value& obj, const char* key) {
  const auto* v = find_member(obj, key);
  if (!v || !v->IsInt()) return std::nullopt;
  return v->GetInt();
}

std::optional<bool> peek_bool(const rapidjson::Value& obj, const char* key) {
  const auto* v = find_member(obj, key);
  if (!v || !v->IsBool()) return std::nullopt;
  return v->GetBool();
}

const rapidjson::Value* peek_array(const rapidjson::Value& obj, const char* key) {
  const auto* v = find_member(obj, key);
  return v && v->IsArray() ? v : nullptr;
}

const rapidjson::Value* peek_object(const rapidjson::Value& obj, const char* key) {
  const auto* v = find_member(obj, key);
  return v && v->IsObject() ? v : nullptr;
}

const rapidjson::Value* peek_member(const rapidjson::Value& obj, const char* key) {
  const auto* v = find_member(obj, key);
  return v && !v->IsNull() ? v : nullptr;
}

void reject_unknown_members(const rapidjson::Value& obj, std::initializer_list<const char*> known,
                            const std::string& prefix) {
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    const std::string name(it->name.GetString(), it->name.GetStringLength());
    bool ok = false;
    for (const char* k : known) ok = ok || name == k;
    if (!ok) throw Error(Errc::invalid_argument, "unknown field '" + name.substr(0, 64) + "'", prefix + name.substr(0, 64));
  }
}

std::vector<std::string> string_array(const rapidjson::Value& v, const std::string& field, std::size_t max_items) {
  if (!v.IsArray()) throw Error(Errc::invalid_argument, field + " must be an array of strings", field);
  if (v.Size() > max_items)
    throw Error(Errc::invalid_argument, field + " must have at most " + std::to_string(max_items) + " entries", field);
  std::vector<std::string> out;
  for (const auto& e : v.GetArray()) {
    if (!e.IsString()) throw Error(Errc::invalid_argument, field + " must be an array of strings", field);
    out.emplace_back(e.GetString(), e.GetStringLength());
  }
  return out;
}

}  // namespace lucid::detail
