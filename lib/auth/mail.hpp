// Mail delivery for login messages: SMTP through libcurl when configured,
// otherwise files in an outbox directory (printed by `lucidctl mail outbox`).
// Internal to the library.
#pragma once

#include <string>

namespace lucid::detail {

struct MailMessage {
  std::string to;
  std::string subject;
  std::string body;  // plain text, LF line ends (converted to CRLF on the wire)
};

// Thread-safe: deliver() may run concurrently (one curl handle per call).
class Mailer {
 public:
  // `smtp_url` empty: outbox mode. `outbox_dir` is created when needed.
  Mailer(std::string smtp_url, std::string smtp_from, std::string outbox_dir);
  bool uses_smtp() const { return !smtp_url_.empty(); }
  const std::string& outbox_dir() const { return outbox_dir_; }
  // Blocking (bounded by a 30 s timeout): sends through SMTP, or writes
  // <outbox>/<time>-<random>.eml atomically (temp + fsync + rename). An SMTP
  // failure writes the message to the outbox with an X-Lucid-Delivery-Error
  // header instead, so nothing is lost silently. Returns false in that case.
  bool deliver(const MailMessage& m) const;

  // The RFC 5322 text of `m` (From/To/Subject/Date/Message-ID headers, CRLF).
  std::string render(const MailMessage& m, const std::string& extra_header = {}) const;

 private:
  bool send_smtp(const std::string& payload, const std::string& to, std::string& error) const;
  void write_outbox(const std::string& payload) const;

  std::string smtp_url_;
  std::string smtp_from_;
  std::string outbox_dir_;
};

}  // namespace lucid::detail
