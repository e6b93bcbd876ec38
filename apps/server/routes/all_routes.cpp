// add_all_routes: the one list of API surfaces (routes/routes.hpp).
#include "routes/routes.hpp"

namespace lucid::server {

void add_all_routes(Router& router, bool test_clock) {
  // The order is lucid-server's historical one; it matters only where two
  // tables hold paths of equal specificity (none today).
  router.begin_document("node-registration.md (+ agent reporting)");
  add_node_registration_routes(router);
  router.begin_document("node-management.md");
  add_node_management_routes(router);
  router.begin_document("api-gateway.md: sessions, manifests, trust, chain, wallets");
  add_api_gateway_data_routes(router);
  router.begin_document("network-node.md: services and workflows");
  add_network_node_workflow_routes(router);
  router.begin_document("network-node.md: auth, node, peers, blacklist, relay, WebSocket");
  add_network_node_routes(router);
  router.begin_document("cluster-devices-tasks.md (+ agent protocol)");
  add_cluster_routes(router);
  router.begin_document("api-gateway.md: meta, auth, users");
  add_api_gateway_routes(router);
  router.begin_document("server operations (README \"Operating the server\")");
  add_operations_routes(router);
  if (test_clock) {
    router.begin_document("test clock (--test-clock only)");
    add_test_clock_routes(router);
  }
  router.begin_document("");
}

}  // namespace lucid::server
