// The inside of lucid::Cluster: the core every capability shares and the
// capabilities themselves, assembled and wired. Internal.
//
// This is the one place that knows every area (lib/cluster is the top of the
// graph, docs/architecture.md): it builds the capabilities on a ClusterCore,
// hands each the others it uses by reference (when the area graph has that
// edge) or connects them through the core's hooks (when it has not), and
// registers their background work.
#pragma once

#include <memory>

#include "core/cluster_core.hpp"
#include "lucidnode/cluster.hpp"

namespace lucid::detail {

class ClusterImpl {
 public:
  // Opens the core (options, store), then the signing key, then builds and
  // loads the capabilities. Errors: as Cluster::Cluster.
  explicit ClusterImpl(Options o);
  // Calls stop().
  ~ClusterImpl();
  ClusterImpl(const ClusterImpl&) = delete;
  ClusterImpl& operator=(const ClusterImpl&) = delete;

  // The executor's way to run workflow jobs on fleet nodes (Network and
  // Tasks behind it; defined in cluster.cpp).
  FleetDispatch fleet_dispatch();

  // Cluster::start / stop / restart (cluster.hpp documents them).
  void start();
  void stop();
  void restart();

  // Declared in dependency order: each member may use the ones above it
  // (and the members are destroyed after stop(), in reverse).
  ClusterCore core;
  std::unique_ptr<Auth> auth;  // null on a read-only open without the key file (core.auth)
  Nodes nodes{core};
  Pools pools{core, nodes};
  Ledger ledger{core};
  Payouts payouts{core, nodes};
  Poot poot{core, nodes};
  Sessions sessions{core};
  Wallets wallets{core};
  TrustPolicies trust_policies{core};
  Network network{core};
  Workflows workflows{core};
  RateLimiter rate_limiter{core.clock};
  Users users{core};
  ApiKeys api_keys{core};
  Settings settings{core, api_keys};
  Tasks tasks{core, settings};
};

}  // namespace lucid::detail
