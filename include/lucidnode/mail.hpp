// Login mail: how lucid::Users hands a message to whatever delivers it.
//
// The library itself only writes messages to an outbox directory (one .eml
// file per message, printed by `lucidctl mail outbox`). Real delivery is
// pluggable: an embedder passes its own Mailer in Options::login.mailer. lucid-server
// brings an SMTP mailer (libcurl) of its own, so the library does not link
// a mail transport into every embedding process.
#pragma once

#include <memory>
#include <string>

#include "lucidnode/export.hpp"

namespace lucid {
LUCID_PUBLIC_BEGIN

struct Options;

// One plain-text message.
struct MailMessage {
  std::string to;       // a validated address
  std::string subject;
  std::string body;     // plain text, LF line ends
};

// Delivers login mail. Implementations must be thread-safe: deliver() runs on
// the cluster's background executor, possibly on several threads at once,
// and must not call back into the Cluster.
class Mailer {
 public:
  virtual ~Mailer();
  // Delivers `message`; may block (keep it bounded: it occupies an executor
  // thread). Returns true when delivered, false when not (an implementation
  // should then keep the message somewhere, as SMTP-with-outbox-fallback
  // does, so nothing is lost silently). An exception it throws goes to
  // Options::info_log.
  virtual bool deliver(const MailMessage& message) = 0;
  // One line saying where messages go, for logs; never contains a secret.
  virtual std::string describe() const = 0;
};

// The RFC 5322 text of `message` from `from` (Date, From, To, Subject,
// Message-ID, MIME headers, then the body), CRLF line ends. Header values
// lose any CR/LF, so no value starts a header of its own; `extra_header`
// ("Name: value", may be empty) is added after the others. Thread-safe.
std::string render_mail(const MailMessage& message, const std::string& from, const std::string& extra_header = {});

// The outbox directory of `options`: options.login.outbox_dir, or when that is
// empty "outbox" beside the SQLite database ("outbox" in the working
// directory for PostgreSQL). Throws Error(invalid_argument) when
// options.database_path names no supported database (parse_database).
std::string resolved_outbox_dir(const Options& options);

// Writes each message to <dir>/<microseconds>-<random>.eml atomically (temp +
// fsync + rename); the directory is created when needed. The Mailer the
// library uses when Options::login.mailer is empty. Thread-safe.
class OutboxMailer final : public Mailer {
 public:
  // `from`: the From address written into messages.
  explicit OutboxMailer(std::string dir, std::string from = "lucidnode@localhost");
  // Always true; throws Error(storage) when the file cannot be written.
  bool deliver(const MailMessage& message) override;
  std::string describe() const override;
  // Writes already-rendered message text (render_mail) as one file: for a
  // mailer that keeps undelivered messages here. Throws Error(storage).
  void write(const std::string& rfc5322_text) const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string from_;
};

LUCID_PUBLIC_END
}  // namespace lucid
