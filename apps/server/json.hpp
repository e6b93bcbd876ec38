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
#include "util/json_object.hpp"

namespace lucid::server {

// The server's readers of JSON input are lib/util/json_object.hpp's (one
// reader for every surface); MalformedJson becomes 400, field errors 422.
using detail::MalformedJson;
using detail::as_int;

// A request body (or WebSocket message) that must be a JSON object in valid
// UTF-8: detail::JsonObject, constructible from the request.
class JsonBody : public detail::JsonObject {
 public:
  using detail::JsonObject::JsonObject;
  explicit JsonBody(const http::Request& req) : detail::JsonObject(std::string_view(req.body)) {}
};

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
