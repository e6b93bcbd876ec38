// lucid::http — TLS server context (see tls.hpp).
#include "tls.hpp"

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace lucid::http {

namespace {

// Mozilla's "intermediate" TLS 1.2 suites without finite-field DHE (TLS 1.3
// uses OpenSSL's defaults, all AEAD).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

[[noreturn]] void fail(const std::string& message) { throw std::runtime_error(message); }

// Fails unless `path` can be opened for reading (so the message says why:
// OpenSSL's own errors do not name the system error).
void check_readable(const std::string& what, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot read the " + what + " " + path + ": " + std::strerror(errno));
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  ::close(fd);
  if (!regular) fail("the " + what + " " + path + " is not a regular file");
}

std::string why(const std::error_code& ec) {
  std::string m = ec.message();
  return m.empty() ? std::string("unknown OpenSSL error") : m;
}

}  // namespace

std::shared_ptr<asio::ssl::context> make_server_tls_context(const std::string& cert_file, const std::string& key_file,
                                                            const std::string& client_ca_file) {
  if (cert_file.empty() || key_file.empty()) fail("TLS needs both --tls-cert and --tls-key");
  check_readable("TLS certificate file", cert_file);
  check_readable("TLS key file", key_file);
  struct stat st {};
  if (::stat(key_file.c_str(), &st) != 0) fail("cannot read the TLS key file " + key_file + ": " + std::strerror(errno));
  if ((st.st_mode & 0027) != 0)
    fail("the TLS key file " + key_file + " must not be accessible by others (chmod 600, or 640 for its group)");

  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* c = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1) fail("OpenSSL refused TLS 1.2 as the minimum version");
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1) fail("OpenSSL refused the TLS 1.2 cipher list");
  // An encrypted key must not make OpenSSL prompt on the terminal: no passphrase.
  ctx->set_password_callback([](std::size_t, asio::ssl::context::password_purpose) { return std::string(); });

  std::error_code ec;
  // The key first: loading a certificate that does not match it drops the key
  // (the check below then names the mismatch), while loading a mismatching key
  // after the certificate fails with a less helpful message.
  ctx->use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) fail("the TLS key file " + key_file + " holds no usable (unencrypted) PEM private key: " + why(ec));
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) fail("the TLS certificate file " + cert_file + " holds no usable PEM certificate: " + why(ec));
  if (SSL_CTX_check_private_key(c) != 1)
    fail("the TLS key file " + key_file + " does not match the certificate in " + cert_file);
  if (!client_ca_file.empty()) {
    check_readable("TLS client CA file", client_ca_file);
    ctx->load_verify_file(client_ca_file, ec);
    if (ec) fail("the TLS client CA file " + client_ca_file + " holds no usable PEM certificate: " + why(ec));
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(client_ca_file.c_str());
    if (names == nullptr) fail("the TLS client CA file " + client_ca_file + " holds no usable PEM certificate");
    SSL_CTX_set_client_CA_list(c, names);  // takes ownership
    ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
    // Sessions resumed under verification need an id context.
    static constexpr unsigned char kSid[] = "lucid-server";
    SSL_CTX_set_session_id_context(c, kSid, sizeof kSid - 1);
  }
  return ctx;
}

}  // namespace lucid::http
