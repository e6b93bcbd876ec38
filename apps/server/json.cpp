#include "json.hpp"

#include <charconv>

#include "lucidnode/error.hpp"
#include "lucidnode/payouts.hpp"
#include "util/json.hpp"

namespace lucid::server {

rapidjson::Document parse_numbers_as_text(const http::Request& req) {
  rapidjson::Document d;
  if (auto r = detail::parse_json(d, req.body, detail::kJsonNumbersAsText); !r) throw MalformedJson{r.describe()};
  return d;
}

void write_micros(JsonWriter& w, std::int64_t micros) {
  const std::string text = format_micros(micros);
  w.RawValue(text.data(), text.size(), rapidjson::kNumberType);
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
