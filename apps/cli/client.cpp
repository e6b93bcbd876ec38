#include "client.hpp"
#include "util/json.hpp"

#include <httplib.h>
#include <rapidjson/document.h>

#include <stdexcept>

namespace lucidctl {

struct ApiClient::Impl {
  explicit Impl(const std::string& base) : cli(base) {}
  httplib::Client cli;
  httplib::Headers headers;
};

ApiClient::ApiClient(const std::string& base, std::string bearer) {
  if (base.rfind("http://", 0) != 0 && base.rfind("https://", 0) != 0)
    throw std::invalid_argument("server URL must start with http:// or https://: " + base);
  std::string b = base;
  while (!b.empty() && b.back() == '/') b.pop_back();
  impl_ = std::make_unique<Impl>(b);
  if (!impl_->cli.is_valid()) throw std::invalid_argument("invalid server URL: " + base);
  impl_->cli.set_connection_timeout(5, 0);
  impl_->cli.set_read_timeout(30, 0);
  impl_->cli.set_keep_alive(true);
  if (!bearer.empty()) impl_->headers.emplace("Authorization", "Bearer " + bearer);
}

ApiClient::~ApiClient() = default;

void ApiClient::set_header(const std::string& name, const std::string& value) {
  impl_->headers.erase(name);
  impl_->headers.emplace(name, value);
}

void ApiClient::set_timeout_seconds(int seconds) { impl_->cli.set_read_timeout(seconds, 0); }

namespace {
HttpResult convert(httplib::Result res) {
  HttpResult out;
  if (!res) {
    out.error = httplib::to_string(res.error());
    return out;
  }
  out.status = res->status;
  out.body = res->body;
  return out;
}
}  // namespace

HttpResult ApiClient::get(const std::string& path) { return convert(impl_->cli.Get(path.c_str(), impl_->headers)); }

HttpResult ApiClient::post(const std::string& path, const std::string& json) {
  return convert(impl_->cli.Post(path.c_str(), impl_->headers, json, "application/json"));
}

HttpResult ApiClient::put(const std::string& path, const std::string& json) {
  return convert(impl_->cli.Put(path.c_str(), impl_->headers, json, "application/json"));
}

void ApiClient::stop() { impl_->cli.stop(); }

std::string error_message(const HttpResult& r) {
  if (r.status == 0) return "cannot reach server: " + r.error;
  rapidjson::Document d;
  const bool parsed = static_cast<bool>(lucid::detail::parse_json(d, r.body, lucid::detail::kJsonStrict, lucid::detail::kJsonClientMaxDepth));
  if (parsed && d.IsObject() && d.HasMember("message") && d["message"].IsString() &&
      d.HasMember("error_code") && d["error_code"].IsString())
    return "HTTP " + std::to_string(r.status) + " " + d["error_code"].GetString() + ": " + d["message"].GetString();
  if (parsed && d.IsObject() && d.HasMember("detail")) {
    const auto& det = d["detail"];
    if (det.IsString()) return "HTTP " + std::to_string(r.status) + ": " + det.GetString();
    if (det.IsArray() && !det.Empty() && det[0].IsObject() && det[0].HasMember("msg") && det[0]["msg"].IsString()) {
      std::string where;
      if (det[0].HasMember("loc") && det[0]["loc"].IsArray())
        for (const auto& l : det[0]["loc"].GetArray())
          if (l.IsString()) where += (where.empty() ? "" : ".") + std::string(l.GetString());
      return "HTTP " + std::to_string(r.status) + ": " + where + ": " + det[0]["msg"].GetString();
    }
  }
  return "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 300);
}

}  // namespace lucidctl
