// Handlers of the node-management document that live in their own files;
// node_management.cpp declares them in the document's one route table.
#pragma once

#include "router.hpp"

namespace lucid::server {

// PoOT (node_management_poot.cpp)
http::Reply poot_score(Context& ctx);
http::Reply poot_validate(Context& ctx);
http::Reply poot_batch_validate(Context& ctx);

// Payouts (node_management_payouts.cpp)
http::Reply node_payouts(Context& ctx);
http::Reply payouts_batch(Context& ctx);

}  // namespace lucid::server
