// Login mail the library delivers itself: rendering and the outbox
// (include/lucidnode/mail.hpp). Transports such as SMTP live outside the
// library (lucid-server's smtp_mailer.cpp) and plug in as a lucid::Mailer.
#include "lucidnode/mail.hpp"

#include <chrono>
#include <ctime>
#include <filesystem>

#include "lucidnode/database.hpp"
#include "lucidnode/error.hpp"
#include "lucidnode/options.hpp"
#include "util/encoding.hpp"
#include "util/file.hpp"

namespace lucid {

namespace {

std::string crlf(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 20);
  for (char c : text) {
    if (c == '\r') continue;
    if (c == '\n') out += "\r\n";
    else out += c;
  }
  return out;
}

// Header values come from our own code and validated addresses; strip CR/LF
// anyway so no value can start a new header.
std::string header_value(const std::string& s) {
  std::string out;
  for (char c : s)
    if (c != '\r' && c != '\n') out += c;
  return out;
}

}  // namespace

Mailer::~Mailer() = default;

std::string render_mail(const MailMessage& m, const std::string& from, const std::string& extra_header) {
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  const auto at = from.find('@');
  const std::string domain = at == std::string::npos ? "localhost" : from.substr(at + 1);
  std::string text = "Date: " + std::string(date) + "\n";
  text += "From: " + header_value(from) + "\n";
  text += "To: " + header_value(m.to) + "\n";
  text += "Subject: " + header_value(m.subject) + "\n";
  text += "Message-ID: <" + detail::to_hex(detail::random_bytes(12)) + "@" + header_value(domain) + ">\n";
  text += "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n";
  if (!extra_header.empty()) text += header_value(extra_header) + "\n";
  text += "\n" + m.body;
  if (text.back() != '\n') text += "\n";
  return crlf(text);
}

std::string resolved_outbox_dir(const Options& options) {
  if (!options.login.outbox_dir.empty()) return options.login.outbox_dir;
  // Same rule as the Cluster's (lib/core/cluster_core.cpp): a PostgreSQL
  // database has no directory, so "outbox" in the working directory.
  const DatabaseSpec db = parse_database(options.database_path);
  if (db.kind == DatabaseKind::postgres) return "outbox";
  const auto dir = std::filesystem::path(db.target).parent_path();
  return ((dir.empty() ? std::filesystem::path(".") : dir) / "outbox").string();
}

OutboxMailer::OutboxMailer(std::string dir, std::string from) : dir_(std::move(dir)), from_(std::move(from)) {
  if (dir_.empty()) throw Error(Errc::invalid_argument, "the outbox directory is empty", "outbox_dir");
  if (from_.empty()) from_ = "lucidnode@localhost";
}

void OutboxMailer::write(const std::string& text) const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string name = dir_ + "/" + std::to_string(us) + "-" + detail::to_hex(detail::random_bytes(4)) + ".eml";
  if (!detail::write_file_atomically(name, text))
    throw Error(Errc::storage, "cannot write to the mail outbox " + dir_);
}

bool OutboxMailer::deliver(const MailMessage& m) {
  write(render_mail(m, from_));
  return true;
}

std::string OutboxMailer::describe() const { return "the outbox " + dir_; }

}  // namespace lucid
