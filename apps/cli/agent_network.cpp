#include "agent_network.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <iostream>

#include "auth/key_file.hpp"
#include "lucidnode/error.hpp"
#include "lucidnode/network.hpp"
#include "util/encoding.hpp"

namespace lucidctl {

namespace {

// Milliseconds of the last request to the server (what the agent measured).
long long g_last_rtt_ms = -1;

template <class Fn>
HttpResult timed(Fn&& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  HttpResult r = fn();
  if (r.status != 0)
    g_last_rtt_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace

std::string register_identity(ApiClient& api, const AgentOptions& o) {
  std::string public_hex;
  try {
    const std::string sk = lucid::detail::load_or_create_signing_key(o.identity_file, true);
    public_hex = lucid::detail::to_hex(std::string_view(sk).substr(32));
  } catch (const lucid::Error& e) {
    std::cout << "agent: identity key: " << e.message() << std::endl;
    return "";
  }
  const auto r = timed([&] { return api.put("/api/v1/stats/public-key", "{\"public_key\":\"" + public_hex + "\"}"); });
  if (r.status != 200) {
    std::cout << "agent: registering the identity key failed (" << error_message(r) << ")" << std::endl;
    return "";
  }
  std::cout << "agent: identity key " << o.identity_file << " registered; peer id "
            << lucid::peer_id_from_public_key(*lucid::detail::from_hex(public_hex)) << std::endl;
  return public_hex;
}

bool report_network(ApiClient& api, const AgentOptions& o) {
  const std::string caps = lucid::capabilities_json(lucid::probe_system(o.disk_path));
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("is_relay"); w.Bool(o.relay);
  w.Key("endpoint"); w.String(o.endpoint.c_str(), static_cast<rapidjson::SizeType>(o.endpoint.size()));
  if (g_last_rtt_ms >= 0) { w.Key("latency_ms"); w.Int64(g_last_rtt_ms); }
  w.Key("capabilities"); w.RawValue(caps.data(), caps.size(), rapidjson::kObjectType);
  w.EndObject();
  const auto r = timed([&] { return api.put("/api/agent/network", buf.GetString()); });
  if (r.status != 200) {
    std::cout << "agent: network info not sent (" << error_message(r) << ")" << std::endl;
    return false;
  }
  return true;
}

}  // namespace lucidctl
