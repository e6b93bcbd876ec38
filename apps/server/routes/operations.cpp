// Server operations outside the five documents: GET /metrics, the Prometheus
// text exposition (format 0.0.4) for a scraper. Authentication: an admin
// token or admin API key, or the scrape token of --metrics-token-file
// (AuthMode::scrape, router.cpp). The api-gateway document's own
// /api/v1/meta/metrics answers its JSON MetricsResponse (api_gateway.cpp).
#include <string>
#include <vector>

#include "router.hpp"
#include "routes/api_gateway_common.hpp"
#include "routes/routes.hpp"
#include "server_env.hpp"

namespace lucid::server {

namespace {

using Values = std::vector<std::pair<std::string, std::int64_t>>;

// `values` with every name of `known` present (0 when absent), known names
// first in their order, then any others: a gauge that drops to zero stays in
// the scrape instead of vanishing.
Values with_zeros(const Values& values, std::initializer_list<const char*> known) {
  Values out;
  for (const char* k : known) {
    std::int64_t v = 0;
    for (const auto& [name, n] : values)
      if (name == k) v = n;
    out.emplace_back(k, v);
  }
  for (const auto& [name, n] : values) {
    bool listed = false;
    for (const char* k : known) listed = listed || name == k;
    if (!listed) out.emplace_back(name, n);
  }
  return out;
}

void gauge_family(std::string& out, const char* name, const char* help, const char* label, const Values& values) {
  out += "# HELP " + std::string(name) + " " + help + "\n# TYPE " + name + " gauge\n";
  for (const auto& [k, v] : values)
    out += std::string(name) + "{" + label + "=\"" + prometheus_label_value(k) + "\"} " + std::to_string(v) + "\n";
}

void gauge(std::string& out, const char* name, const char* help, std::int64_t v) {
  out += "# HELP " + std::string(name) + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " +
         std::to_string(v) + "\n";
}

http::Reply prometheus_metrics(Context& ctx) {
  std::string out;
  if (ctx.env.router) ctx.env.router->write_prometheus(out);
  const Gauges g = ctx.cluster.gauges();
  gauge_family(out, "lucid_nodes", "Nodes by registration status.", "status",
               with_zeros(g.nodes_by_status, {"pending", "active"}));
  gauge_family(out, "lucid_nodes_health", "Nodes by health (liveness from their stats reports).", "health",
               with_zeros(g.nodes_by_health, {"online", "stale", "offline"}));
  gauge_family(out, "lucid_nodes_lifecycle", "Nodes by lifecycle state.", "state",
               with_zeros(g.nodes_by_lifecycle, {"inactive", "starting", "active", "stopping", "maintenance", "error"}));
  gauge_family(out, "lucid_devices", "Cluster devices by state (removed: key revoked).", "state",
               with_zeros(g.devices_by_state, {"registered", "removed"}));
  gauge_family(out, "lucid_tasks", "Tasks by status.", "status",
               with_zeros(g.tasks_by_status,
                          {"pending", "queued", "assigned", "running", "success", "failed", "cancelled", "timeout"}));
  gauge_family(out, "lucid_payouts", "Payouts by status.", "status", g.payouts_by_status);
  gauge_family(out, "lucid_queue_depth", "Work waiting in queues.", "queue",
               {{"tasks", g.task_queue},
                {"stats_samples", g.stats_queue},
                {"ledger_pending_transactions", g.pending_transactions}});
  // Replicas (docs/architecture.md "Replicas"): 1 on the server that runs
  // the cluster-wide background work (every SQLite server; one of the
  // servers of a PostgreSQL database).
  gauge(out, "lucid_leader", "1 when this server is the leader that runs the cluster-wide background work.",
        g.leader ? 1 : 0);
  gauge(out, "lucid_replicated", "1 when this server coordinates with other servers on its database (PostgreSQL).",
        g.replicated ? 1 : 0);
  gauge(out, "lucid_block_height", "Height of the newest ledger block.", g.block_height);
  gauge(out, "lucid_live_sessions", "Login sessions neither logged out nor expired.", g.live_sessions);
  gauge(out, "lucid_active_connections", "Open client connections.",
        ctx.env.active_connections ? static_cast<std::int64_t>(ctx.env.active_connections()) : 0);
  gauge(out, "lucid_uptime_seconds", "Seconds since the server started.",
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - ctx.env.started).count());
  http::Reply r;
  r.response.status = 200;
  r.response.body = std::move(out);
  // The one Content-Type (the HTTP layer writes content_type; a second one
  // in headers would make Prometheus 3 refuse the scrape).
  r.response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.response.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

const Route kRoutes[] = {
    {"GET", "/metrics", prometheus_metrics, AuthMode::scrape, Role::admin, nullptr, RateCategory::none, NodeAccess::deny},
};

}  // namespace

void add_operations_routes(Router& router) {
  router.add_surface("/metrics$", gw::gateway_error, kRoutes, std::size(kRoutes));
}

}  // namespace lucid::server
