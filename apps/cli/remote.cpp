#include "remote.hpp"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include "lucidnode/clock.hpp"
#include "util/json.hpp"
#include "util/json_object.hpp"

namespace lucidctl {

void usage_error(const std::string& message) { throw Failure(message, 2); }

namespace {

HttpResult send(const Remote& r, const std::string& method, const std::string& path, const std::string& body) {
  if (r.server.empty()) usage_error("no server: pass --server URL or set LUCID_SERVER");
  ApiClient api(r.server, r.token);
  if (method == "GET") return api.get(path);
  if (method == "POST") return api.post(path, body);
  if (method == "PUT") return api.put(path, body);
  if (method == "DELETE") return api.del(path);
  throw std::logic_error("unknown method " + method);
}

rapidjson::Document parse(const std::string& body) {
  rapidjson::Document d;
  if (body.empty()) return d;  // Null
  if (!lucid::detail::parse_json(d, body, lucid::detail::kJsonStrict, lucid::detail::kJsonClientMaxDepth))
    throw Failure("server sent malformed JSON", 1);
  return d;
}

}  // namespace

std::string request_text(const Remote& r, const std::string& method, const std::string& path,
                         const std::string& body) {
  HttpResult res = send(r, method, path, body);
  // A rate-limited read (a long list, a --watch) waits out a short
  // Retry-After a few times rather than fail halfway; a longer one, or a
  // write, is the caller's to decide (exit 1 with the server's message).
  for (int attempt = 0; res.status == 429 && method == "GET" && attempt < 5; ++attempt) {
    const int wait = res.retry_after < 0 ? 1 : res.retry_after;
    if (wait > 10) break;
    std::cerr << "lucidctl: rate limited; retrying in " << wait << " s\n";
    if (!watch_sleep(wait)) break;
    res = send(r, method, path, body);
  }
  if (res.status < 200 || res.status >= 300) throw Failure(error_message(res), exit_code_for(res));
  return res.body;
}

rapidjson::Document request(const Remote& r, const std::string& method, const std::string& path,
                            const std::string& body) {
  return parse(request_text(r, method, path, body));
}

rapidjson::Document list_all(const Remote& r, const Paging& paging, std::int64_t max_items) {
  using lucid::detail::peek_member;
  rapidjson::Document all;
  all.SetArray();
  auto& alloc = all.GetAllocator();
  std::int64_t offset = 0;
  std::int64_t expected_total = -1;  // the first page's total, when it says
  for (std::int64_t page = 1;; ++page) {
    rapidjson::Document d = request(r, "GET", paging.path(page, offset));
    const rapidjson::Value* items = paging.items.empty() ? &d : peek_member(d, paging.items.c_str());
    if (!items || !items->IsArray()) throw Failure("server sent no '" + paging.items + "' list", 1);
    const auto n = static_cast<std::int64_t>(items->Size());
    for (auto& item : const_cast<rapidjson::Value*>(items)->GetArray()) all.PushBack(rapidjson::Value(item, alloc), alloc);
    offset += n;
    if (offset > max_items)
      throw Failure("the list goes on past " + std::to_string(max_items) + " items; narrow it with a filter", 1);
    // Where the list ends, as the body tells it (three documents, three forms).
    std::optional<bool> more;
    std::int64_t total = -1;
    const rapidjson::Value* pg = peek_member(d, "pagination");
    if (!pg && !paging.items.empty()) pg = &d;  // {"services": [...], "total": N}
    if (pg && pg->IsObject()) {
      if (auto has_next = lucid::detail::peek_bool(*pg, "has_next")) more = *has_next;
      const rapidjson::Value* t = peek_member(*pg, "total");
      if (!t) t = peek_member(*pg, "total_items");
      if (t && t->IsInt64()) total = t->GetInt64();
      const rapidjson::Value* pages = peek_member(*pg, "pages");
      if (!pages) pages = peek_member(*pg, "total_pages");
      if (!more && pages && pages->IsInt64()) more = page < pages->GetInt64();
      if (!more && total >= 0) more = offset < total;
    }
    if (total >= 0 && expected_total < 0) expected_total = total;
    if (!more) more = n >= paging.page_size;
    if (n == 0 || !*more) break;
  }
  if (expected_total >= 0 && offset != expected_total)
    std::cerr << "lucidctl: the list changed while it was read: " << offset << " items listed, " << expected_total
              << " when listing began\n";
  return all;
}

namespace {

std::string number_text(const rapidjson::Value& v) {
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  if (v.IsUint64()) return std::to_string(v.GetUint64());
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v.GetDouble());
  return buf;
}

std::string scalar_text(const rapidjson::Value& v) {
  if (v.IsNull()) return "-";
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsBool()) return v.GetBool() ? "yes" : "no";
  if (v.IsNumber()) return number_text(v);
  if (v.IsArray()) {
    std::string out;
    for (const auto& e : v.GetArray()) {
      if (e.IsObject() || e.IsArray()) return "[" + std::to_string(v.Size()) + " items]";
      out += (out.empty() ? "" : ",") + scalar_text(e);
    }
    return out.empty() ? "-" : out;
  }
  return "{…}";
}

// A value shown in a table cell stays on one line, and a server's text
// (node names are free text) cannot drive the terminal: control characters
// (ESC sequences included) are shown as '?'.
std::string one_line(std::string s) {
  for (auto& c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    else if (u < 0x20 || u == 0x7f) c = '?';
  }
  if (s.size() > 200) s = s.substr(0, 197) + "...";
  return s;
}

const rapidjson::Value* at(const rapidjson::Value& v, const std::string& path) {
  const rapidjson::Value* cur = &v;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    cur = lucid::detail::peek_member(*cur, key.c_str());
    if (!cur) return nullptr;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return cur;
}

std::string age_of(lucid::Timestamp t) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - t).count();
  if (s < 0) return "0s";
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  if (s < 2 * 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

}  // namespace

std::string text_at(const rapidjson::Value& v, const std::string& path) {
  const rapidjson::Value* x = at(v, path);
  return x ? one_line(scalar_text(*x)) : "-";
}

std::string age_at(const rapidjson::Value& v, const std::string& path) {
  const rapidjson::Value* x = at(v, path);
  if (!x || !x->IsString()) return "-";
  const auto t = lucid::parse_rfc3339(std::string_view(x->GetString(), x->GetStringLength()));
  return t ? age_of(*t) : "-";
}

Column col(std::string head, std::string path, bool wide_only) {
  return Column{std::move(head), [path](const rapidjson::Value& v) { return text_at(v, path); }, wide_only};
}

void print_table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(head.size());
  for (std::size_t i = 0; i < head.size(); ++i) width[i] = head[i].size();
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (std::size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out.append(width[i] + 2 - std::min(width[i], r[i].size()), ' ');
    }
    std::cout << out << "\n";
  };
  line(head);
  for (const auto& r : rows) line(r);
}

void print_list(const Remote& r, const std::vector<Column>& columns, const rapidjson::Value& items) {
  if (r.json()) return print_json(items);
  std::vector<std::string> head;
  for (const auto& c : columns)
    if (!c.wide_only || r.wide()) head.push_back(c.head);
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : items.GetArray()) {
    std::vector<std::string> row;
    for (const auto& c : columns)
      if (!c.wide_only || r.wide()) row.push_back(c.get(item));
    rows.push_back(std::move(row));
  }
  print_table(head, rows);
}

namespace {
void flatten(const rapidjson::Value& v, const std::string& prefix, std::vector<std::vector<std::string>>& rows) {
  for (const auto& m : v.GetObject()) {
    const std::string key = prefix + std::string(m.name.GetString(), m.name.GetStringLength());
    if (m.value.IsObject() && !m.value.ObjectEmpty() && prefix.size() < 200)
      flatten(m.value, key + ".", rows);
    else
      rows.push_back({key, one_line(scalar_text(m.value))});
  }
}
}  // namespace

void print_object(const Remote& r, const rapidjson::Value& obj) {
  if (r.json()) return print_json(obj);
  if (!obj.IsObject()) {
    std::cout << one_line(scalar_text(obj)) << "\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  flatten(obj, "", rows);
  std::size_t w = 0;
  for (const auto& row : rows) w = std::max(w, row[0].size());
  for (const auto& row : rows) std::cout << row[0] << std::string(w + 2 - row[0].size(), ' ') << row[1] << "\n";
}

void print_json(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  std::cout << buf.GetString() << "\n";
}

namespace {
struct ExactPrinter : rapidjson::PrettyWriter<rapidjson::StringBuffer> {
  using Base = rapidjson::PrettyWriter<rapidjson::StringBuffer>;
  using Base::Base;
  bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
    return Base::RawValue(str, length, rapidjson::kNumberType);
  }
};
}  // namespace

bool print_exact_json(const std::string& body) {
  rapidjson::StringBuffer buf;
  ExactPrinter w(buf);
  if (!lucid::detail::parse_json_sax(body, w, lucid::detail::kJsonNumbersAsText, lucid::detail::kJsonClientMaxDepth))
    return false;
  std::cout << buf.GetString() << "\n";
  return true;
}

std::string json_quote(const std::string& s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return buf.GetString();
}

JsonBody& JsonBody::str(const std::string& key, const std::string& value) {
  members_.emplace_back(key, json_quote(value));
  return *this;
}
JsonBody& JsonBody::raw(const std::string& key, const std::string& json) {
  members_.emplace_back(key, json);
  return *this;
}
JsonBody& JsonBody::num(const std::string& key, double value) {
  std::ostringstream s;
  s << std::setprecision(17) << value;
  members_.emplace_back(key, s.str());
  return *this;
}
JsonBody& JsonBody::integer(const std::string& key, std::int64_t value) {
  members_.emplace_back(key, std::to_string(value));
  return *this;
}
JsonBody& JsonBody::boolean(const std::string& key, bool value) {
  members_.emplace_back(key, value ? "true" : "false");
  return *this;
}
std::string JsonBody::text() const {
  std::string out = "{";
  for (const auto& [k, v] : members_) out += (out.size() > 1 ? "," : "") + json_quote(k) + ":" + v;
  return out + "}";
}

std::string checked_json(const std::string& text, const std::string& what) {
  rapidjson::Document d;
  const auto res = lucid::detail::parse_json(d, text, lucid::detail::kJsonStrict, lucid::detail::kJsonMaxDepth);
  if (!res) usage_error(what + " is not JSON: " + res.describe());
  return text;
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

namespace {
std::atomic<bool> g_interrupted{false};
void on_watch_signal(int) { g_interrupted.store(true); }
}  // namespace

void install_watch_signals() {
  std::signal(SIGINT, on_watch_signal);
  std::signal(SIGTERM, on_watch_signal);
}

bool watch_interrupted() { return g_interrupted.load(); }

bool watch_sleep(double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!g_interrupted.load() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return !g_interrupted.load();
}

}  // namespace lucidctl
