// The generated part of the README's security model: one Markdown table per
// API document, one row per registered route, read from the route tables
// (Router::routes()). `lucid-server --print-security-model` prints it;
// scripts/gen-security-model puts it between the README's
// <!-- security-model:begin --> and <!-- security-model:end --> markers, and
// the ctest test docs.security_model fails when the README differs.
#pragma once

#include <string>

#include "router.hpp"

namespace lucid::server {

// Markdown for every route of `router`, grouped by document in registration
// order. Deterministic (no time, no paths); never throws except bad_alloc.
std::string security_model_markdown(const Router& router);

}  // namespace lucid::server
