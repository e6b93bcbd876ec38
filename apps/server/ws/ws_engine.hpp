// One WebSocket connection's protocol engine: websocketpp (Debian
// libwebsocketpp-dev) on its iostream transport, so that the bytes come from
// and go to our own HTTP server's connection (same port, no Boost, no second
// listener). websocketpp 0.8 does not compile as C++20, so ws_engine.cpp is
// built as C++17 and this header is the only thing the rest of the server
// sees of it (standard library only).
//
// Not thread-safe: call every method on one strand (the connection's).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace lucid::server::ws {

struct EngineCallbacks {
  std::function<void(std::string_view bytes)> write;  // bytes for the client, in order
  std::function<void()> on_open;                      // handshake done
  std::function<void(std::string message)> on_text;  // a complete text message
  std::function<void()> on_closed;                    // closed or failed (once)
};

class Engine {
 public:
  // max_message: larger messages close the connection (1009).
  Engine(EngineCallbacks cb, std::size_t max_message);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Bytes from the client. The first call must begin with the HTTP upgrade
  // request (rebuilt by the caller from the parsed request).
  void feed(std::string_view bytes);
  // Sends one text message; false when not open.
  bool send_text(std::string_view text);
  // Starts the closing handshake with `code` (1000 normal, 1008 policy, ...).
  void close(int code, const std::string& reason);
  bool is_open() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lucid::server::ws
