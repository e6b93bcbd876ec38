// Shared by the api-gateway.md route files (api_gateway.cpp: meta, auth, users;
// the sessions/manifests/trust/chain/wallets files). What is here:
//   - gateway_error(): the ONE ErrorResponse encoder of this surface, with the
//     document's own LUCID_ERR_ registry (its 5xxx are SYSTEM errors, unlike
//     node-management's). Pass it to Router::add_surface / add_prefix.
//     Mapping: lucid::Error's Reason first (see error.hpp: account_locked ->
//     2005, refresh_token_invalid -> 2010, invalid_session_state -> 4007, ...),
//     then Errc (invalid_argument -> 1002 "field required" / 1003, not_found ->
//     4001, conflict -> 4003, unauthenticated -> 2003/2002 "token expired",
//     permission_denied -> 2004, resource_exhausted -> 3002, storage -> 5002,
//     unavailable -> 5008, internal -> 5001); malformed JSON -> 1009, 413 ->
//     1010, rate limited -> 3001.
//   - validation helpers: each throws lucid::Error(invalid_argument, message,
//     field, reason) so the encoder picks the precise code (1002 missing, 1003
//     format, 1004 range, 1005 UUID, 1006 email, 1008 date).
//   - pagination (?page, ?limit; PaginationInfo {page, limit, total, pages}).
//   - the gateway's rate-limit tiers (configure_gateway_limits) on the shared
//     limiter: RateCategory::gw_public / gw_auth / gw_admin / gw_chain; and
//     the quotas handlers spend themselves (sign-ups per address, ledger
//     submissions per user, chunk bandwidth) with refused_reply() for the 429.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "json.hpp"
#include "router.hpp"

namespace lucid::server::gw {

// ---- errors ----

// The surface's ErrorResponse: {"error": {code, message, details, request_id,
// timestamp, service: "api-gateway", version: "v1"}}. details carries
// {field, location} for field errors. 401 answers add WWW-Authenticate.
http::Response gateway_error(const Failure& f);

// ---- validation (all throw lucid::Error(Errc::invalid_argument, ...)) ----

[[noreturn]] void missing(const std::string& field);                                 // 1002
[[noreturn]] void bad_format(const std::string& field, const std::string& message);  // 1003
[[noreturn]] void out_of_range(const std::string& field, const std::string& message);  // 1004

// A required string of min_len..max_len characters (UTF-8 code points):
// absent/null -> 1002, not a string or too short/long -> 1003.
std::string required_string(const JsonBody& body, const char* field, std::size_t min_len, std::size_t max_len);
std::optional<std::string> optional_string(const JsonBody& body, const char* field, std::size_t min_len,
                                           std::size_t max_len);
// One of `allowed` -> the value; otherwise 1003 naming the allowed values.
std::string required_enum(const JsonBody& body, const char* field, std::initializer_list<const char*> allowed);
std::optional<std::string> optional_enum(const JsonBody& body, const char* field,
                                         std::initializer_list<const char*> allowed);
// Numbers in [lo, hi]: not a number -> 1003, outside -> 1004.
double required_number(const JsonBody& body, const char* field, double lo, double hi);
std::optional<double> optional_number(const JsonBody& body, const char* field, double lo, double hi);
std::int64_t required_int(const JsonBody& body, const char* field, std::int64_t lo, std::int64_t hi);
std::optional<std::int64_t> optional_int(const JsonBody& body, const char* field, std::int64_t lo, std::int64_t hi);
std::optional<bool> optional_bool(const JsonBody& body, const char* field);  // not a bool -> 1003

// Canonical 8-4-4-4-12 hex UUID (any case; returned lower-case).
bool is_uuid(std::string_view s) noexcept;
// A UUID path/body value -> lower-case UUID, or 1005 naming `field`
// (e.g. "path:session_id").
std::string uuid_value(const std::string& text, const std::string& field);
std::string required_uuid(const JsonBody& body, const char* field);  // 1002 / 1005

// A syntactically valid address (local@domain, <= 254 chars, no spaces or
// control characters, one '@', a dot in the domain) -> lower-cased; else 1006.
bool is_email(std::string_view s) noexcept;
std::string required_email(const JsonBody& body, const char* field);  // 1002 / 1006
// RFC 3339 date-time -> Timestamp, or 1008.
Timestamp date_value(const std::string& text, const std::string& field);

// ---- pagination ----

struct Page {
  std::int64_t page = 1;    // >= 1
  std::int64_t limit = 20;  // 1..100
  std::int64_t offset() const { return (page - 1) * limit; }
};
// ?page (>= 1, default 1), ?limit (1..100, default 20); 1003/1004 naming
// "query:page" / "query:limit".
Page page_query(const http::Request& req);
// PaginationInfo: {page, limit, total, pages}.
void write_pagination(JsonWriter& w, const Page& p, std::int64_t total);

// ---- rate limits (api-gateway.md "Tiered Rate Limiting") ----

struct GatewayLimits {
  std::int64_t public_per_minute = 100, public_burst = 200;            // by client address
  std::int64_t authenticated_per_minute = 1000, authenticated_burst = 2000;  // by user
  std::int64_t admin_per_minute = 10000, admin_burst = 20000;
  std::int64_t blockchain_per_minute = 500, blockchain_burst = 1000;
  // Beyond the document (issue 12): self-service sign-ups per client address
  // per hour (kSignupQuota); ledger submissions per non-admin user per hour,
  // by count (kLedgerTxQuota) and by canonical payload bytes (kLedgerBytesQuota).
  std::int64_t signups_per_hour = 10;
  std::int64_t ledger_tx_per_hour = 120;
  std::int64_t ledger_bytes_per_hour = 1024 * 1024;
};
void configure_gateway_limits(RateLimiter& limiter, const GatewayLimits& limits);

// Limiter categories the handlers spend (keys: "ip:<address>" for sign-ups,
// the user id for the ledger).
inline constexpr const char* kSignupQuota = "gw_signup";
inline constexpr const char* kLedgerTxQuota = "gw_ledger_tx";
inline constexpr const char* kLedgerBytesQuota = "gw_ledger_bytes";

// The surface's 429 for a refused RateLimiter decision `d`: the ErrorResponse
// of `e` (its Reason/Errc decide the code, e.g. resource_exhausted -> 3002),
// or, when e is null, the tier's 3001 "Rate limit exceeded"; with Retry-After
// (at least 1 s). The router adds X-Request-ID.
http::Reply refused_reply(const Context& ctx, const RateDecision& d, const Error* e);

}  // namespace lucid::server::gw
