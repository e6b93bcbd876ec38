// websocketpp behind ws_engine.hpp. Built as C++17 (see the header).
#include "ws/ws_engine.hpp"

#include <websocketpp/config/core.hpp>
#include <websocketpp/server.hpp>

namespace lucid::server::ws {

namespace {

// The core config without logging to stdout (our access log has the request)
// and with our own message bound.
struct Config : public websocketpp::config::core {
  typedef Config type;
  typedef websocketpp::config::core base;
  static const websocketpp::log::level elog_level = websocketpp::log::elevel::none;
  static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;
  struct transport_config : public base::transport_config {
    typedef Config::concurrency_type concurrency_type;
    typedef Config::alog_type alog_type;
    typedef Config::elog_type elog_type;
    typedef Config::request_type request_type;
    typedef Config::response_type response_type;
  };
  typedef websocketpp::transport::iostream::endpoint<transport_config> transport_type;
};

using WsServer = websocketpp::server<Config>;

}  // namespace

struct Engine::Impl {
  EngineCallbacks cb;
  WsServer server;
  WsServer::connection_ptr con;
  bool open = false;
  bool closed = false;

  void closed_once() {
    open = false;
    if (closed) return;
    closed = true;
    if (cb.on_closed) cb.on_closed();
  }
};

Engine::Engine(EngineCallbacks cb, std::size_t max_message) : impl_(std::make_unique<Impl>()) {
  impl_->cb = std::move(cb);
  auto* impl = impl_.get();
  impl->server.clear_access_channels(websocketpp::log::alevel::all);
  impl->server.clear_error_channels(websocketpp::log::elevel::all);
  impl->server.set_max_message_size(max_message);
  impl->server.set_open_handler([impl](websocketpp::connection_hdl) {
    impl->open = true;
    if (impl->cb.on_open) impl->cb.on_open();
  });
  impl->server.set_message_handler([impl](websocketpp::connection_hdl, WsServer::message_ptr msg) {
    if (msg->get_opcode() != websocketpp::frame::opcode::text) return;  // binary: ignored
    if (impl->cb.on_text) impl->cb.on_text(std::move(msg->get_raw_payload()));
  });
  impl->server.set_close_handler([impl](websocketpp::connection_hdl) { impl->closed_once(); });
  impl->server.set_fail_handler([impl](websocketpp::connection_hdl) { impl->closed_once(); });
  impl->con = impl->server.get_connection();
  impl->con->set_write_handler([impl](websocketpp::connection_hdl, char const* data, std::size_t len) {
    if (impl->cb.write) impl->cb.write(std::string_view(data, len));
    return websocketpp::lib::error_code();
  });
  impl->con->start();
}

Engine::~Engine() {
  // Nothing may call back into a half-destroyed owner.
  impl_->cb = EngineCallbacks{};
}

void Engine::feed(std::string_view bytes) {
  std::size_t done = 0;
  while (done < bytes.size() && !impl_->closed) {
    const std::size_t n = impl_->con->read_some(bytes.data() + done, bytes.size() - done);
    if (n == 0) break;
    done += n;
  }
}

bool Engine::send_text(std::string_view text) {
  if (!impl_->open) return false;
  return !impl_->con->send(text.data(), text.size(), websocketpp::frame::opcode::text);
}

void Engine::close(int code, const std::string& reason) {
  if (!impl_->open) return;
  websocketpp::lib::error_code ec;
  impl_->con->close(static_cast<websocketpp::close::status::value>(code), reason, ec);
}

bool Engine::is_open() const { return impl_->open; }

}  // namespace lucid::server::ws
