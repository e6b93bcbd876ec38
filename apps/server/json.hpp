// JSON in and out for route handlers (RapidJSON inside).
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/http_server.hpp"
#include "lucidnode/clock.hpp"

namespace lucid::server {

// Thrown for a body that is not JSON at all (400); field errors are
// lucid::Error(invalid_argument) with the field named (422).
struct MalformedJson {
  std::string message;
};

// A request body that must be a JSON object in valid UTF-8. Accessors throw
// lucid::Error(invalid_argument, ..., field) for a missing or ill-typed field.
class JsonBody {
 public:
  explicit JsonBody(const http::Request& req);
  // The same rules for a JSON text that is not a request body (a WebSocket message).
  explicit JsonBody(std::string_view text);
  // The object member `field` of `parent`; an absent or null member is an
  // empty object, another type is invalid_argument (field named).
  JsonBody(const JsonBody& parent, const char* field);
  std::string required_string(const char* field, std::size_t max_len) const;
  std::optional<std::string> optional_string(const char* field, std::size_t max_len) const;
  double required_number(const char* field) const;
  std::optional<double> optional_number(const char* field) const;
  std::int64_t required_int(const char* field) const;
  std::optional<std::int64_t> optional_int(const char* field) const;
  const rapidjson::Value* member(const char* field) const;  // nullptr if absent or null
  const rapidjson::Value& root() const { return doc_; }

 private:
  rapidjson::Document doc_;
};

// An integer JSON value (3 or 3.0), or nullopt.
std::optional<std::int64_t> as_int(const rapidjson::Value& v);

// Query parameter helpers; errors name the field as "query:<name>".
std::optional<std::int64_t> query_int(const http::Request& req, const char* name, std::int64_t lo, std::int64_t hi);

// Path parameter that must be a positive integer id; not_found otherwise
// (a non-numeric id names no object).
std::int64_t path_id(const std::string& text, const char* what);

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

inline void write_string(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

inline void write_time(JsonWriter& w, Timestamp t) { write_string(w, format_rfc3339(t)); }
inline void write_time(JsonWriter& w, const std::optional<Timestamp>& t) {
  if (t) write_time(w, *t); else w.Null();
}
inline void write_opt(JsonWriter& w, const std::optional<double>& v) {
  if (v) w.Double(*v); else w.Null();
}
inline void write_opt(JsonWriter& w, const std::optional<std::int64_t>& v) {
  if (v) w.Int64(*v); else w.Null();
}
inline void write_opt(JsonWriter& w, const std::optional<std::string>& v) {
  if (v) write_string(w, *v); else w.Null();
}

// The request body parsed again with every number kept as its source text
// (kParseNumbersAsStringsFlag), so exact decimals never pass through a
// double. Throws MalformedJson like JsonBody.
rapidjson::Document parse_numbers_as_text(const http::Request& req);
// Integer micro-units as the shortest exact decimal JSON number (12.5, 100).
void write_micros(JsonWriter& w, std::int64_t micros);

// A 2xx JSON response from a writer's buffer.
http::Reply json_reply(int status, const rapidjson::StringBuffer& buf);

}  // namespace lucid::server
