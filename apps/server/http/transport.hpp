// lucid::http internal: the byte stream under one connection — a plain TCP
// socket or TLS over it (asio::ssl::stream). The connection code calls the
// same operations either way; only the handshake at the start and the close
// at the end differ (Connection::start / graceful_close).
//
// Not thread-safe: like the socket it wraps, use it on its strand only.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <memory>
#include <optional>
#include <system_error>
#include <utility>

namespace lucid::http::detail {

template <class Socket>
class Transport {
 public:
  using executor_type = typename Socket::executor_type;
  using lowest_layer_type = Socket;

  // ctx null: plain TCP. Otherwise the connection speaks TLS with `ctx`
  // (which must outlive the Transport).
  Transport(Socket sock, asio::ssl::context* ctx) {
    if (ctx != nullptr) tls_.emplace(std::move(sock), *ctx);
    else plain_.emplace(std::move(sock));
  }

  bool is_tls() const { return tls_.has_value(); }
  Socket& lowest_layer() { return tls_ ? tls_->next_layer() : *plain_; }
  executor_type get_executor() { return lowest_layer().get_executor(); }

  // AsyncReadStream / AsyncWriteStream (asio::async_read/async_write work on it).
  template <class Buffers, class Handler>
  void async_read_some(const Buffers& b, Handler&& h) {
    if (tls_) tls_->async_read_some(b, std::forward<Handler>(h));
    else plain_->async_read_some(b, std::forward<Handler>(h));
  }
  template <class Buffers, class Handler>
  void async_write_some(const Buffers& b, Handler&& h) {
    if (tls_) tls_->async_write_some(b, std::forward<Handler>(h));
    else plain_->async_write_some(b, std::forward<Handler>(h));
  }

  // TLS only: the server side of the handshake; sending close_notify and
  // waiting for the peer's (or its EOF). Input arriving meanwhile is discarded.
  template <class Handler>
  void async_handshake(Handler&& h) {
    tls_->async_handshake(asio::ssl::stream_base::server, std::forward<Handler>(h));
  }
  template <class Handler>
  void async_shutdown(Handler&& h) {
    tls_->async_shutdown(std::forward<Handler>(h));
  }

  // Socket-level operations (on the TCP socket under TLS).
  template <class Option>
  void set_option(const Option& o, std::error_code& ec) {
    lowest_layer().set_option(o, ec);
  }
  auto remote_endpoint(std::error_code& ec) { return lowest_layer().remote_endpoint(ec); }
  void cancel(std::error_code& ec) { lowest_layer().cancel(ec); }
  void shutdown(asio::socket_base::shutdown_type what, std::error_code& ec) { lowest_layer().shutdown(what, ec); }
  void close(std::error_code& ec) { lowest_layer().close(ec); }

 private:
  std::optional<Socket> plain_;
  std::optional<asio::ssl::stream<Socket>> tls_;
};

}  // namespace lucid::http::detail
