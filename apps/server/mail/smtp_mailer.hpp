// SMTP delivery of login mail through libcurl: lucid-server's lucid::Mailer
// (Options::login.mailer). It lives here, not in liblucidnode, so that embedding
// the library does not pull libcurl and its ~30 libraries into a process.
#pragma once

#include <memory>
#include <string>

#include <lucidnode/mail.hpp>

namespace lucid::server {

// Thread-safe: deliver() may run concurrently (one curl handle per call).
class SmtpMailer final : public Mailer {
 public:
  // `url`: "smtp://host:port" or "smtps://user:pass@host"; `from`: the sender
  // address; `fallback`: where a message that SMTP could not deliver is
  // written, with an X-Lucid-Delivery-Error header (nothing is lost silently).
  // Throws Error(invalid_argument) for another scheme or a from without '@'.
  SmtpMailer(std::string url, std::string from, std::shared_ptr<OutboxMailer> fallback);
  // Blocking, bounded by a 10 s connect and 30 s total timeout. Returns false
  // (after writing the fallback copy) when SMTP failed.
  bool deliver(const MailMessage& message) override;
  // "SMTP via smtp://... from <from>": the URL's credentials are not shown.
  std::string describe() const override;

 private:
  bool send(const std::string& payload, const std::string& to, std::string& error) const;

  std::string url_;
  std::string from_;
  std::shared_ptr<OutboxMailer> fallback_;
};

}  // namespace lucid::server
