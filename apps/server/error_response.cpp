#include "error_response.hpp"

#include <cctype>

#include "json.hpp"

namespace lucid::server {

FieldLocation field_location(const Failure& f) {
  FieldLocation out{"body", f.error ? f.error->field() : std::string()};
  if (auto colon = out.name.find(':'); colon != std::string::npos) {
    out.location = out.name.substr(0, colon);
    out.name = out.name.substr(colon + 1);
    return out;
  }
  const http::Request* req = f.request;
  if (!req || out.name.empty() || out.name == "body") return out;
  std::string lower = out.name;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (req->query_param(out.name)) out.location = "query";
  else if (req->header(lower)) out.location = "header";
  return out;
}

http::Response error_response(int status, const char* code, const std::string& message, const Failure& f,
                              const char* service, const char* version) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("code"); w.String(code);
  w.Key("message"); write_string(w, message);
  w.Key("details");
  w.StartObject();
  if (f.kind == FailureKind::error && !f.error->field().empty()) {
    const auto at = field_location(f);
    w.Key("field"); write_string(w, at.name);
    w.Key("location"); write_string(w, at.location);
  }
  w.EndObject();
  w.Key("request_id"); write_string(w, f.request_id);
  w.Key("timestamp"); write_time(w, f.at);
  if (service) { w.Key("service"); w.String(service); }
  if (version) { w.Key("version"); w.String(version); }
  w.EndObject();
  w.EndObject();
  http::Response r;
  r.status = status;
  r.body.assign(buf.GetString(), buf.GetSize());
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

}  // namespace lucid::server
