#include "json.hpp"

#include <charconv>
#include <cmath>

#include "lucidnode/error.hpp"
#include "lucidnode/payouts.hpp"
#include "util/json.hpp"
#include "util/utf8.hpp"

namespace lucid::server {

namespace {
[[noreturn]] void bad_field(const char* field, const std::string& msg) {
  throw Error(Errc::invalid_argument, msg, field);
}
}  // namespace

JsonBody::JsonBody(const http::Request& req) : JsonBody(std::string_view(req.body)) {}

JsonBody::JsonBody(const JsonBody& parent, const char* field) {
  const auto* v = parent.member(field);
  if (!v) {
    doc_.SetObject();
    return;
  }
  if (!v->IsObject()) bad_field(field, std::string(field) + " must be an object");
  doc_.CopyFrom(*v, doc_.GetAllocator());
}

JsonBody::JsonBody(std::string_view text) {
  if (text.empty()) throw MalformedJson{"Request body is empty; a JSON object is expected"};
  // Trailing garbage is an error; nesting deeper than detail::kJsonMaxDepth is
  // refused while parsing (issue 12), like any other malformed text.
  if (auto r = detail::parse_json(doc_, text); !r) throw MalformedJson{r.describe()};
  if (!doc_.IsObject()) throw Error(Errc::invalid_argument, "body must be a JSON object", "body");
}

rapidjson::Document parse_numbers_as_text(const http::Request& req) {
  rapidjson::Document d;
  if (auto r = detail::parse_json(d, req.body, detail::kJsonNumbersAsText); !r) throw MalformedJson{r.describe()};
  return d;
}

void write_micros(JsonWriter& w, std::int64_t micros) {
  const std::string text = format_micros(micros);
  w.RawValue(text.data(), text.size(), rapidjson::kNumberType);
}

const rapidjson::Value* JsonBody::member(const char* field) const {
  auto it = doc_.FindMember(field);
  if (it == doc_.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

std::optional<std::string> JsonBody::optional_string(const char* field, std::size_t max_len) const {
  const auto* v = member(field);
  if (!v) return std::nullopt;
  if (!v->IsString()) bad_field(field, std::string(field) + " must be a string");
  if (detail::utf8_length(std::string_view(v->GetString(), v->GetStringLength())) > max_len)
    bad_field(field, std::string(field) + " must be at most " + std::to_string(max_len) + " characters");
  return std::string(v->GetString(), v->GetStringLength());
}

std::string JsonBody::required_string(const char* field, std::size_t max_len) const {
  auto s = optional_string(field, max_len);
  if (!s) bad_field(field, "field required");
  return *s;
}

std::optional<double> JsonBody::optional_number(const char* field) const {
  const auto* v = member(field);
  if (!v) return std::nullopt;
  if (!v->IsNumber()) bad_field(field, std::string(field) + " must be a number");
  double d = v->GetDouble();
  if (!std::isfinite(d)) bad_field(field, std::string(field) + " must be finite");
  return d;
}

double JsonBody::required_number(const char* field) const {
  auto d = optional_number(field);
  if (!d) bad_field(field, "field required");
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

std::optional<std::int64_t> JsonBody::optional_int(const char* field) const {
  const auto* v = member(field);
  if (!v) return std::nullopt;
  if (auto i = as_int(*v)) return i;
  bad_field(field, std::string(field) + " must be an integer");
}

std::int64_t JsonBody::required_int(const char* field) const {
  auto i = optional_int(field);
  if (!i) bad_field(field, "field required");
  return *i;
}

std::optional<std::int64_t> query_int(const http::Request& req, const char* name, std::int64_t lo, std::int64_t hi) {
  auto v = req.query_param(name);
  if (!v) return std::nullopt;
  std::int64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  const std::string field = std::string("query:") + name;
  if (ec != std::errc() || p != v->data() + v->size() || v->empty())
    throw Error(Errc::invalid_argument, std::string(name) + " must be an integer", field);
  if (out < lo || out > hi)
    throw Error(Errc::invalid_argument,
                std::string(name) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi), field);
  return out;
}

std::int64_t path_id(const std::string& text, const char* what) {
  std::int64_t out = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty() || out <= 0)
    throw Error(Errc::not_found, std::string(what) + " not found");
  return out;
}

http::Reply json_reply(int status, const rapidjson::StringBuffer& buf) {
  http::Reply r;
  r.response.status = status;
  r.response.body.assign(buf.GetString(), buf.GetSize());
  return r;
}

}  // namespace lucid::server
