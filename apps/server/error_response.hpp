// The ErrorResponse body that node-management.md and api-gateway.md share:
// {"error": {code, message, details: {field, location}, request_id,
// timestamp[, service, version]}}. Each document keeps its own code table
// (their LUCID_ERR_5xxx mean different things); only the body is written here.
#pragma once

#include <string>

#include "router.hpp"

namespace lucid::server {

// Writes `code` and `message` for failure `f` (its field, split at ':' into
// location and field, goes into details). `service`/`version`, when given,
// are added after the timestamp. A 401 carries WWW-Authenticate: Bearer.
http::Response error_response(int status, const char* code, const std::string& message, const Failure& f,
                              const char* service = nullptr, const char* version = nullptr);

}  // namespace lucid::server
