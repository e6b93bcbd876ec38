// Shared by the node-management document's route files: its JSON helpers.
// The error format itself lives in node_management.cpp (one place).
#pragma once

#include <cstdint>
#include <string>

#include "json.hpp"
#include "router.hpp"

namespace lucid::server::mgmt {

struct PageParams {
  std::int64_t page = 1;   // 1-based
  std::int64_t limit = 20; // 1..100
};

// ?page (>= 1, default 1) and ?limit (1..100, default 20). Errors name
// "query:page" / "query:limit".
PageParams page_params(const http::Request& req);

// The document's Pagination object: {page, limit, total, total_pages, has_next, has_prev}.
void write_pagination(JsonWriter& w, const PageParams& p, std::int64_t total);

// The {node_id} path parameter (already matched "node_..." by the router).
inline const std::string& node_uid(const Context& ctx) { return ctx.params.at(0); }

// Writes a Node as the document's schema, with our "schedulable" and
// "drain" (its running tasks asked of `cluster`).
void write_node(JsonWriter& w, const Node& n, Cluster& cluster);

}  // namespace lucid::server::mgmt
