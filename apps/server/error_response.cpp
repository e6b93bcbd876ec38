#include "error_response.hpp"

#include "json.hpp"

namespace lucid::server {

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
    std::string field = f.error->field();
    std::string where = "body";
    if (auto colon = field.find(':'); colon != std::string::npos) {
      where = field.substr(0, colon);
      field = field.substr(colon + 1);
    }
    w.Key("field"); write_string(w, field);
    w.Key("location"); write_string(w, where);
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
