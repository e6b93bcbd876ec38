// lucid::http — the server's TLS configuration (OpenSSL through asio::ssl).
#pragma once

#include <memory>
#include <string>

namespace asio::ssl {
class context;
}

namespace lucid::http {

// Builds a TLS server context from a PEM certificate file (the server's
// certificate first, then any intermediates) and a PEM private key file.
// Settings: TLS 1.2 and 1.3 only; TLS 1.2 limited to ECDHE key exchange with
// AEAD ciphers (AES-GCM, ChaCha20-Poly1305), the server's order preferred; no
// compression; no renegotiation; OpenSSL's read/write buffers released while
// a connection is idle.
//
// Errors: throws std::runtime_error with a message naming the file when a
// file cannot be read, holds no PEM certificate / unencrypted PEM key, when
// the key does not belong to the certificate, or when the key file is
// accessible by others (any "other" permission bit) or writable by its group
// (mode 0600 or 0640 are accepted; 0640 is Debian's ssl-cert convention).
//
// Thread-safety: the returned context is immutable afterwards and may be
// shared by every connection.
//
// client_ca_file, when not empty: a PEM file of CA certificates; every client
// must then present a certificate issued by one of them (mutual TLS: the
// handshake fails without one). Errors as above when it cannot be read or
// holds no certificate.
std::shared_ptr<asio::ssl::context> make_server_tls_context(const std::string& cert_file, const std::string& key_file,
                                                            const std::string& client_ca_file = {});

}  // namespace lucid::http
