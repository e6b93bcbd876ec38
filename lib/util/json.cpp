#include "util/json.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace lucid::detail {

std::string JsonResult::describe() const {
  return "Malformed JSON: " + message + " at offset " + std::to_string(offset);
}

namespace json_impl {
JsonResult result(const rapidjson::ParseResult& pr, JsonRefusal refusal, unsigned max_depth) {
  JsonResult r;
  if (!pr.IsError()) return r;
  r.ok = false;
  r.too_deep = refusal == JsonRefusal::too_deep;
  r.offset = pr.Offset();
  switch (refusal) {
    case JsonRefusal::too_deep: r.message = "JSON nested deeper than " + std::to_string(max_depth) + " levels"; break;
    case JsonRefusal::bad_string: r.message = rapidjson::GetParseError_En(rapidjson::kParseErrorStringInvalidEncoding); break;
    case JsonRefusal::number_too_big: r.message = rapidjson::GetParseError_En(rapidjson::kParseErrorNumberTooBig); break;
    case JsonRefusal::none: r.message = rapidjson::GetParseError_En(pr.Code()); break;
  }
  return r;
}
}  // namespace json_impl

JsonResult parse_json(rapidjson::Document& doc, std::string_view text, unsigned options, unsigned max_depth) {
  doc.SetNull();
  JsonResult r;
  // Document::Populate feeds the SAX events to the document's own handler and
  // moves the finished root into place only when the generator succeeded.
  auto generate = [&](rapidjson::Document& handler) {
    r = parse_json_sax(text, handler, options, max_depth);
    return r.ok;
  };
  doc.Populate(generate);
  return r;
}

std::string string_array_json(const std::vector<std::string>& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartArray();
  for (const auto& s : v) w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
  return std::string(b.GetString(), b.GetSize());
}

std::vector<std::string> parse_string_array(const std::string& text) {
  std::vector<std::string> out;
  rapidjson::Document d;
  if (!parse_json(d, text) || !d.IsArray()) return out;
  for (const auto& v : d.GetArray())
    if (v.IsString()) out.emplace_back(v.GetString(), v.GetStringLength());
  return out;
}

}  // namespace lucid::detail
