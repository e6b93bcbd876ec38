#include "auth/mail.hpp"

#include <curl/curl.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>

#include "lucidnode/error.hpp"
#include "util/encoding.hpp"
#include "util/file.hpp"

namespace lucid::detail {

namespace {

std::string crlf(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 20);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') continue;
    if (text[i] == '\n') out += "\r\n";
    else out += text[i];
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

struct Upload {
  const std::string* data;
  std::size_t pos = 0;
};

std::size_t read_cb(char* buf, std::size_t size, std::size_t n, void* user) {
  auto* u = static_cast<Upload*>(user);
  const std::size_t room = size * n;
  const std::size_t left = u->data->size() - u->pos;
  const std::size_t take = left < room ? left : room;
  std::memcpy(buf, u->data->data() + u->pos, take);
  u->pos += take;
  return take;
}

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

Mailer::Mailer(std::string smtp_url, std::string smtp_from, std::string outbox_dir)
    : smtp_url_(std::move(smtp_url)), smtp_from_(std::move(smtp_from)), outbox_dir_(std::move(outbox_dir)) {
  if (!smtp_url_.empty()) {
    if (smtp_url_.rfind("smtp://", 0) != 0 && smtp_url_.rfind("smtps://", 0) != 0)
      throw Error(Errc::invalid_argument, "smtp_url must start with smtp:// or smtps://", "smtp_url");
    if (smtp_from_.empty() || smtp_from_.find('@') == std::string::npos)
      throw Error(Errc::invalid_argument, "smtp_from must be an email address when smtp_url is set", "smtp_from");
    curl_init_once();
  }
  if (smtp_from_.empty()) smtp_from_ = "lucidnode@localhost";
}

std::string Mailer::render(const MailMessage& m, const std::string& extra_header) const {
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  const std::string domain = smtp_from_.substr(smtp_from_.find('@') + 1);
  std::string text = "Date: " + std::string(date) + "\n";
  text += "From: " + header_value(smtp_from_) + "\n";
  text += "To: " + header_value(m.to) + "\n";
  text += "Subject: " + header_value(m.subject) + "\n";
  text += "Message-ID: <" + to_hex(random_bytes(12)) + "@" + header_value(domain) + ">\n";
  text += "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n";
  if (!extra_header.empty()) text += header_value(extra_header) + "\n";
  text += "\n" + m.body;
  if (text.back() != '\n') text += "\n";
  return crlf(text);
}

bool Mailer::send_smtp(const std::string& payload, const std::string& to, std::string& error) const {
  CURL* curl = curl_easy_init();
  if (!curl) {
    error = "curl_easy_init failed";
    return false;
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  Upload up{&payload};
  curl_slist* rcpt = curl_slist_append(nullptr, ("<" + to + ">").c_str());
  const std::string from = "<" + smtp_from_ + ">";
  curl_easy_setopt(curl, CURLOPT_URL, smtp_url_.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
  curl_easy_setopt(curl, CURLOPT_READDATA, &up);
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));  // STARTTLS when offered
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  const CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(rcpt);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    return false;
  }
  return true;
}

void Mailer::write_outbox(const std::string& payload) const {
  std::error_code ec;
  std::filesystem::create_directories(outbox_dir_, ec);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string name = outbox_dir_ + "/" + std::to_string(us) + "-" + to_hex(random_bytes(4)) + ".eml";
  if (!write_file_atomically(name, payload))
    throw Error(Errc::storage, "cannot write to the mail outbox " + outbox_dir_);
}

bool Mailer::deliver(const MailMessage& m) const {
  if (!uses_smtp()) {
    write_outbox(render(m));
    return true;
  }
  std::string error;
  if (send_smtp(render(m), m.to, error)) return true;
  write_outbox(render(m, "X-Lucid-Delivery-Error: SMTP delivery failed: " + error));
  return false;
}

}  // namespace lucid::detail
