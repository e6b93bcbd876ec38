// api-gateway.md: the surface's error encoder, validation helpers, pagination
// and rate tiers (see api_gateway_common.hpp).
#include "routes/api_gateway_common.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>

#include "error_response.hpp"
#include "util/encoding.hpp"
#include "util/utf8.hpp"

namespace lucid::server::gw {

namespace {

struct Code {
  int status;
  const char* code;
};

Code code_for(const Error& e) {
  switch (e.reason()) {
    case Reason::invalid_format: return {400, "LUCID_ERR_1003"};
    case Reason::out_of_range: return {400, "LUCID_ERR_1004"};
    case Reason::invalid_uuid: return {400, "LUCID_ERR_1005"};
    case Reason::invalid_email: return {400, "LUCID_ERR_1006"};
    case Reason::weak_password: return {400, "LUCID_ERR_1007"};
    case Reason::invalid_date: return {400, "LUCID_ERR_1008"};
    case Reason::invalid_credentials: return {401, "LUCID_ERR_2001"};
    case Reason::account_locked: return {423, "LUCID_ERR_2005"};
    case Reason::login_expired: return {401, "LUCID_ERR_2006"};
    case Reason::totp_invalid: return {401, "LUCID_ERR_2007"};
    case Reason::hardware_wallet: return {400, "LUCID_ERR_2008"};
    case Reason::session_expired: return {401, "LUCID_ERR_2009"};
    case Reason::refresh_token_invalid: return {401, "LUCID_ERR_2010"};
    case Reason::bandwidth_exceeded: return {429, "LUCID_ERR_3004"};
    case Reason::already_exists: return {409, "LUCID_ERR_4002"};
    case Reason::insufficient_balance: return {400, "LUCID_ERR_4004"};
    case Reason::session_size_exceeded: return {413, "LUCID_ERR_4005"};
    case Reason::chunk_size_exceeded: return {413, "LUCID_ERR_4006"};
    case Reason::invalid_session_state: return {409, "LUCID_ERR_4007"};
    case Reason::transaction_failed: return {400, "LUCID_ERR_4008"};
    // Reasons of the node-management document that can surface here.
    case Reason::node_not_found:
    case Reason::pool_not_found:
    case Reason::payout_not_found: return {404, "LUCID_ERR_4001"};
    case Reason::node_exists:
    case Reason::pool_exists: return {409, "LUCID_ERR_4002"};
    default: break;
  }
  switch (e.code()) {
    case Errc::invalid_argument:
      return {400, e.message() == "field required" ? "LUCID_ERR_1002" : "LUCID_ERR_1003"};
    case Errc::not_found: return {404, "LUCID_ERR_4001"};
    case Errc::conflict: return {409, "LUCID_ERR_4003"};
    case Errc::unauthenticated:
      return {401, e.message() == "token expired" ? "LUCID_ERR_2002" : "LUCID_ERR_2003"};
    case Errc::permission_denied: return {403, "LUCID_ERR_2004"};
    case Errc::resource_exhausted: return {429, "LUCID_ERR_3002"};
    case Errc::unavailable: return {503, "LUCID_ERR_5008"};
    case Errc::storage: return {503, "LUCID_ERR_5002"};
    case Errc::internal: break;
  }
  return {500, "LUCID_ERR_5001"};
}

[[noreturn]] void fail(const std::string& field, const std::string& message, Reason reason) {
  throw Error(Errc::invalid_argument, message, field, reason);
}

// Runs one of JsonObject's optional getters (the type rules of every
// surface live there): its Error, a wrong type, becomes this document's
// 1003 (Reason::invalid_format) with the same message and field. Ranges and
// "field required" (1002) are the callers'.
template <class Read>
auto read_as_format(Read read) -> decltype(read()) {
  try {
    return read();
  } catch (const Error& e) {
    fail(e.field(), e.message(), Reason::invalid_format);
  }
}

std::string join(std::initializer_list<const char*> allowed) {
  std::string out;
  for (const char* a : allowed) out += (out.empty() ? "" : ", ") + std::string(a);
  return out;
}

}  // namespace

http::Response gateway_error(const Failure& f) {
  Code c{500, "LUCID_ERR_5001"};
  std::string message = f.message;
  switch (f.kind) {
    case FailureKind::error: c = code_for(*f.error); break;
    case FailureKind::malformed_json: c = {400, "LUCID_ERR_1009"}; break;
    case FailureKind::route_not_found: c = {404, "LUCID_ERR_4001"}; break;
    case FailureKind::method_not_allowed: c = {405, "LUCID_ERR_4003"}; break;
    case FailureKind::rate_limited: c = {429, "LUCID_ERR_3001"}; break;
    case FailureKind::server_protocol:
      c = {f.status, f.status == 413 ? "LUCID_ERR_1010" : f.status >= 500 ? "LUCID_ERR_5001" : "LUCID_ERR_1001"};
      break;
    case FailureKind::internal: message = "Internal server error"; break;
  }
  return error_response(c.status, c.code, message, f, "api-gateway", "v1");
}

void missing(const std::string& field) { throw Error(Errc::invalid_argument, "field required", field); }
void bad_format(const std::string& field, const std::string& message) { fail(field, message, Reason::invalid_format); }
void out_of_range(const std::string& field, const std::string& message) { fail(field, message, Reason::out_of_range); }

std::optional<std::string> optional_string(const JsonBody& body, const char* field, std::size_t min_len,
                                           std::size_t max_len) {
  auto s = read_as_format(
      [&] { return body.optional_string(field, std::numeric_limits<std::size_t>::max()); });
  if (!s) return s;
  const auto n = detail::utf8_length(*s);
  if (n < min_len || n > max_len)
    bad_format(field, std::string(field) + " must be " + std::to_string(min_len) + " to " + std::to_string(max_len) +
                          " characters");
  return s;
}

std::string required_string(const JsonBody& body, const char* field, std::size_t min_len, std::size_t max_len) {
  auto s = optional_string(body, field, min_len, max_len);
  if (!s) missing(field);
  return *s;
}

std::optional<std::string> optional_enum(const JsonBody& body, const char* field,
                                         std::initializer_list<const char*> allowed) {
  auto s = optional_string(body, field, 0, 64);
  if (!s) return s;
  for (const char* a : allowed)
    if (*s == a) return s;
  bad_format(field, std::string(field) + " must be one of " + join(allowed));
}

std::string required_enum(const JsonBody& body, const char* field, std::initializer_list<const char*> allowed) {
  auto s = optional_enum(body, field, allowed);
  if (!s) missing(field);
  return *s;
}

std::optional<double> optional_number(const JsonBody& body, const char* field, double lo, double hi) {
  auto d = read_as_format([&] { return body.optional_number(field); });
  if (d && (*d < lo || *d > hi))
    out_of_range(field, std::string(field) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return d;
}

double required_number(const JsonBody& body, const char* field, double lo, double hi) {
  auto d = optional_number(body, field, lo, hi);
  if (!d) missing(field);
  return *d;
}

std::optional<std::int64_t> optional_int(const JsonBody& body, const char* field, std::int64_t lo, std::int64_t hi) {
  auto i = read_as_format([&] { return body.optional_int(field); });
  if (i && (*i < lo || *i > hi))
    out_of_range(field, std::string(field) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return i;
}

std::int64_t required_int(const JsonBody& body, const char* field, std::int64_t lo, std::int64_t hi) {
  auto i = optional_int(body, field, lo, hi);
  if (!i) missing(field);
  return *i;
}

std::optional<bool> optional_bool(const JsonBody& body, const char* field) {
  return read_as_format([&] { return body.optional_bool(field); });
}

bool is_uuid(std::string_view s) noexcept {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

std::string uuid_value(const std::string& text, const std::string& field) {
  if (!is_uuid(text)) fail(field, field.substr(field.find(':') + 1) + " must be a UUID", Reason::invalid_uuid);
  std::string out = text;
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string required_uuid(const JsonBody& body, const char* field) {
  return uuid_value(required_string(body, field, 0, 64), field);
}

bool is_email(std::string_view s) noexcept { return valid_email(s); }

std::string required_email(const JsonBody& body, const char* field) {
  auto s = required_string(body, field, 0, 254 * 4);
  if (!is_email(s)) fail(field, std::string(field) + " must be an email address", Reason::invalid_email);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

Timestamp date_value(const std::string& text, const std::string& field) {
  auto t = parse_rfc3339(text);
  if (!t) fail(field, field.substr(field.find(':') + 1) + " must be an RFC 3339 date-time", Reason::invalid_date);
  return *t;
}

Page page_query(const http::Request& req) {
  Page p;
  auto parse = [&](const char* name, std::int64_t lo, std::int64_t hi, std::int64_t& out) {
    auto v = req.query_param(name);
    if (!v) return;
    const std::string field = std::string("query:") + name;
    std::int64_t x = 0;
    auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
    if (ec != std::errc() || ptr != v->data() + v->size() || v->empty())
      bad_format(field, std::string(name) + " must be an integer");
    if (x < lo || x > hi)
      out_of_range(field, std::string(name) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    out = x;
  };
  parse("page", 1, 1000000, p.page);
  parse("limit", 1, 100, p.limit);
  return p;
}

void write_pagination(JsonWriter& w, const Page& p, std::int64_t total) {
  w.StartObject();
  w.Key("page"); w.Int64(p.page);
  w.Key("limit"); w.Int64(p.limit);
  w.Key("total"); w.Int64(total);
  w.Key("pages"); w.Int64((total + p.limit - 1) / p.limit);
  w.EndObject();
}

void configure_gateway_limits(RateLimiter& limiter, const GatewayLimits& l) {
  limiter.configure(rate_category_name(RateCategory::gw_public), {l.public_per_minute, std::chrono::seconds(60), l.public_burst});
  limiter.configure(rate_category_name(RateCategory::gw_auth),
                    {l.authenticated_per_minute, std::chrono::seconds(60), l.authenticated_burst});
  limiter.configure(rate_category_name(RateCategory::gw_admin), {l.admin_per_minute, std::chrono::seconds(60), l.admin_burst});
  limiter.configure(rate_category_name(RateCategory::gw_chain),
                    {l.blockchain_per_minute, std::chrono::seconds(60), l.blockchain_burst});
  limiter.configure(kSignupQuota, {l.signups_per_hour, std::chrono::seconds(3600), l.signups_per_hour});
  limiter.configure(kLedgerTxQuota, {l.ledger_tx_per_hour, std::chrono::seconds(3600), l.ledger_tx_per_hour});
  limiter.configure(kLedgerBytesQuota, {l.ledger_bytes_per_hour, std::chrono::seconds(3600), l.ledger_bytes_per_hour});
}

http::Reply refused_reply(const Context& ctx, const RateDecision& d, const Error* e) {
  Failure f;
  f.kind = e ? FailureKind::error : FailureKind::rate_limited;
  f.error = e;
  f.message = e ? e->message() : "Rate limit exceeded";
  f.request_id = ctx.request_id;
  f.at = ctx.cluster.clock().now();
  http::Reply r;
  r.response = gateway_error(f);
  r.response.headers.emplace_back("Retry-After", std::to_string(std::max<std::int64_t>(1, d.retry_after_seconds)));
  return r;
}

}  // namespace lucid::server::gw
