#include "ledger/sha256.hpp"

#include <openssl/evp.h>

#include <memory>

#include "lucidnode/error.hpp"

namespace lucid::detail {

namespace {

// Fetched once: an explicit fetch avoids OpenSSL 3's per-call implicit lookup.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (!md) throw Error(Errc::internal, "OpenSSL has no SHA-256");
  return md;
}

struct CtxDeleter {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};

struct ThreadCtx {
  std::unique_ptr<EVP_MD_CTX, CtxDeleter> work{EVP_MD_CTX_new()};
  // Initialised once: copying it is cheaper than a fresh init per digest.
  std::unique_ptr<EVP_MD_CTX, CtxDeleter> fresh{EVP_MD_CTX_new()};
  bool ready = false;
};

EVP_MD_CTX* thread_ctx() {
  thread_local ThreadCtx ctx;
  if (!ctx.ready) {
    if (!ctx.work || !ctx.fresh || EVP_DigestInit_ex2(ctx.fresh.get(), sha256_md(), nullptr) != 1)
      throw Error(Errc::internal, "OpenSSL could not set up a SHA-256 context");
    ctx.ready = true;
  }
  if (EVP_MD_CTX_copy_ex(ctx.work.get(), ctx.fresh.get()) != 1) throw Error(Errc::internal, "SHA-256 failed in OpenSSL");
  return ctx.work.get();
}

}  // namespace

Digest sha256_concat(std::initializer_list<std::string_view> parts) {
  EVP_MD_CTX* ctx = thread_ctx();
  Digest out{};
  unsigned int len = 0;
  bool ok = true;
  for (std::string_view p : parts) ok = ok && EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
  ok = ok && EVP_DigestFinal_ex(ctx, out.data(), &len) == 1 && len == out.size();
  if (!ok) throw Error(Errc::internal, "SHA-256 failed in OpenSSL");
  return out;
}

}  // namespace lucid::detail
