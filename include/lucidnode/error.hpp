// lucid::Error — the one error type of the lucidnode library.
//
// Every public method that can fail throws lucid::Error (never another
// exception type, except std::bad_alloc). The code is stable: API surfaces map
// it to their own status codes and bodies; embedding programs may switch on it.
#pragma once

#include <exception>
#include <string>

namespace lucid {

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

class Error : public std::exception {
 public:
  Error(Errc code, std::string message, std::string field = {})
      : code_(code), message_(std::move(message)), field_(std::move(field)) {}

  Errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // For invalid_argument: the name of the offending input field, if known.
  const std::string& field() const noexcept { return field_; }
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  Errc code_;
  std::string message_;
  std::string field_;
};

}  // namespace lucid
