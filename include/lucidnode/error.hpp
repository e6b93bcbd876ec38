// lucid::Error — the one error type of the lucidnode library.
//
// Every public method that can fail throws lucid::Error (never another
// exception type, except std::bad_alloc). The code is stable: API surfaces map
// it to their own status codes and bodies; embedding programs may switch on it.
#pragma once

#include <exception>
#include <string>

#include "lucidnode/export.hpp"

namespace lucid {
LUCID_PUBLIC_BEGIN

enum class Errc {
  invalid_argument = 1,   // a field has a bad value; field() names it
  not_found = 2,          // the addressed object does not exist
  conflict = 3,           // the object's state forbids the operation
  unauthenticated = 4,    // missing, malformed, expired or forged credential
  permission_denied = 5,  // credential valid but not allowed
  resource_exhausted = 6, // a bound was reached (pending requests, queue, ...)
  unavailable = 7,        // temporarily unable (shutting down, overloaded)
  storage = 8,            // the database failed or refused (e.g. newer schema)
  internal = 9,           // a bug: please report
};

// Stable lower-case name of a code ("not_found", ...).
const char* errc_name(Errc code) noexcept;

// What exactly went wrong, where a surface's error table distinguishes more
// than Errc does (node-management's LUCID_ERR_5001 "node not found" vs 5002
// "pool not found"). Stable; `none` when Errc says it all.
enum class Reason {
  none = 0,
  node_not_found,
  pool_not_found,
  invalid_node_status,  // a lifecycle transition that is not allowed
  resource_limit,       // a pool's max_nodes or resource_limits
  poot_failed,
  payout_failed,
  node_exists,
  pool_exists,
  invalid_allocation,
  batch_failed,
  payout_not_found,
  // api-gateway.md's registry (its encoder: apps/server/routes/api_gateway_common.hpp)
  invalid_format,         // 1003: a field has the wrong type or shape
  out_of_range,           // 1004
  invalid_uuid,           // 1005
  invalid_email,          // 1006
  invalid_date,           // 1008
  invalid_credentials,    // 2001: wrong login code / link token
  account_locked,         // 2005: too many failed logins
  login_expired,          // 2006: magic link / login code expired or used
  totp_invalid,           // 2007
  session_expired,        // 2009: the access token's session was logged out / revoked
  refresh_token_invalid,  // 2010: unknown, expired or reused refresh token
  bandwidth_exceeded,     // 3004
  already_exists,         // 4002
  insufficient_balance,   // 4004
  session_size_exceeded,  // 4005
  chunk_size_exceeded,    // 4006
  invalid_session_state,  // 4007
  transaction_failed,     // 4008
  weak_password,          // 1007
  hardware_wallet,        // 2008
  // With invalid_argument: well-formed but names nothing usable (a git
  // repository or branch that does not exist, a build that fails); the
  // network-node surface answers 422.
  unprocessable,
  // With unavailable: a remote server this request depends on failed or is
  // unreachable (a git remote); the network-node surface answers 502.
  upstream_failed,
  // With not_found: which object of the cluster API is missing (its document
  // answers TASK_NOT_FOUND / DEVICE_NOT_FOUND); field() names the input.
  task_not_found,
  device_not_found,
};

class Error : public std::exception {
 public:
  Error(Errc code, std::string message, std::string field = {}, Reason reason = Reason::none)
      : code_(code), message_(std::move(message)), field_(std::move(field)), reason_(reason) {}
  Error(Errc code, Reason reason, std::string message)
      : code_(code), message_(std::move(message)), reason_(reason) {}

  Errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // For invalid_argument: the name of the offending input field, if known.
  // The bare input name ("page", "task_id"); where the input came from (a
  // query parameter, a header, a JSON body) is the surface's to say.
  const std::string& field() const noexcept { return field_; }
  Reason reason() const noexcept { return reason_; }
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  Errc code_;
  std::string message_;
  std::string field_;
  Reason reason_ = Reason::none;
};

LUCID_PUBLIC_END
}  // namespace lucid
