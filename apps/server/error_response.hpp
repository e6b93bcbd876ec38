// The ErrorResponse body that node-management.md and api-gateway.md share:
// {"error": {code, message, details: {field, location}, request_id,
// timestamp[, service, version]}}. Each document keeps its own code table
// (their LUCID_ERR_5xxx mean different things); only the body is written here.
#pragma once

#include <string>

#include "router.hpp"

namespace lucid::server {

// Where the input that f's Error::field() names came from, and its name.
// The core names bare inputs ("page", "X-Chunk-SHA256"); the server's own
// checks may give the location themselves ("query:page", "path:id"). A bare
// name is a query parameter when the request has one of that name, a header
// when it has one, else a body field ("body" names the body itself). A route
// that gives the core a default for an absent query parameter says so itself
// (node-management's metrics: located_in_query).
struct FieldLocation {
  std::string location;  // "body", "query", "header", "path"
  std::string name;
};
FieldLocation field_location(const Failure& f);

// Writes `code` and `message` for failure `f` (its field and location,
// field_location(), go into details). `service`/`version`, when given,
// are added after the timestamp. A 401 carries WWW-Authenticate: Bearer.
http::Response error_response(int status, const char* code, const std::string& message, const Failure& f,
                              const char* service = nullptr, const char* version = nullptr);

}  // namespace lucid::server
