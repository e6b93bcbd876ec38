#include "mail/smtp_mailer.hpp"

#include <curl/curl.h>

#include <cstring>
#include <mutex>

#include <lucidnode/error.hpp>

namespace lucid::server {

namespace {

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

SmtpMailer::SmtpMailer(std::string url, std::string from, std::shared_ptr<OutboxMailer> fallback)
    : url_(std::move(url)), from_(std::move(from)), fallback_(std::move(fallback)) {
  if (url_.rfind("smtp://", 0) != 0 && url_.rfind("smtps://", 0) != 0)
    throw Error(Errc::invalid_argument, "smtp_url must start with smtp:// or smtps://", "smtp_url");
  if (from_.empty() || from_.find('@') == std::string::npos)
    throw Error(Errc::invalid_argument, "smtp_from must be an email address when smtp_url is set", "smtp_from");
  if (!fallback_) throw Error(Errc::invalid_argument, "the SMTP mailer needs an outbox for undelivered mail", "outbox_dir");
  curl_init_once();
}

bool SmtpMailer::send(const std::string& payload, const std::string& to, std::string& error) const {
  CURL* curl = curl_easy_init();
  if (!curl) {
    error = "curl_easy_init failed";
    return false;
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  Upload up{&payload};
  curl_slist* rcpt = curl_slist_append(nullptr, ("<" + to + ">").c_str());
  const std::string from = "<" + from_ + ">";
  curl_easy_setopt(curl, CURLOPT_URL, url_.c_str());
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

bool SmtpMailer::deliver(const MailMessage& m) {
  std::string error;
  if (send(render_mail(m, from_), m.to, error)) return true;
  fallback_->write(render_mail(m, from_, "X-Lucid-Delivery-Error: SMTP delivery failed: " + error));
  return false;
}

std::string SmtpMailer::describe() const {
  return "SMTP via " + url_.substr(0, url_.find("://") + 3) + "... from " + from_ + " (undelivered mail to " +
         fallback_->dir() + ")";
}

}  // namespace lucid::server
