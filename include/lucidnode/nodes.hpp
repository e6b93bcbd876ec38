// Nodes: join requests and registration codes, approval, node API keys,
// stats ingest and liveness, storage quotas, sites and backups.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lucidnode/clock.hpp"
#include "lucidnode/export.hpp"

namespace lucid {

namespace detail { class ClusterCore; class NodeCache; }
LUCID_PUBLIC_BEGIN

// The record status of a node. Liveness (online/stale/offline) is separate:
// it is derived from when stats last arrived.
enum class NodeStatus { pending, active };
const char* node_status_name(NodeStatus s) noexcept;

enum class Liveness { online, stale, offline };
const char* liveness_name(Liveness l) noexcept;

// The node-management lifecycle (a state machine; see Nodes::start/stop/update).
enum class Lifecycle { inactive, starting, active, stopping, maintenance, error };
const char* lifecycle_name(Lifecycle l) noexcept;
std::optional<Lifecycle> parse_lifecycle(std::string_view name);

enum class NodeType { worker, validator, storage, compute };
const char* node_type_name(NodeType t) noexcept;
std::optional<NodeType> parse_node_type(std::string_view name);

// What a node is made of; every field optional.
struct HardwareInfo {
  std::optional<std::int64_t> cpu_cores;   // 1..4096
  std::optional<double> memory_gb;         // 0..1e6
  std::optional<double> storage_gb;        // 0..1e9
  std::optional<std::int64_t> gpu_count;   // 0..64
  std::optional<std::string> gpu_model;    // <= 100 chars
  std::optional<std::string> architecture; // <= 32 chars
  std::optional<std::string> os;           // <= 100 chars
};

// Where a node is; every field optional.
struct NodeLocation {
  std::optional<std::string> region;   // <= 64 chars
  std::optional<std::string> country;  // ISO 3166-1 alpha-2, upper case
  std::optional<std::string> city;     // <= 100 chars
  std::optional<double> latitude;      // -90..90
  std::optional<double> longitude;     // -180..180
};

// One stats report from a node's agent.
struct StatsSample {
  double cpu_usage = 0;                        // percent 0..100
  double disk_usage = 0;                       // percent 0..100
  std::int64_t active_backups = 0;             // >= 0
  std::optional<double> memory_percent;        // percent 0..100
  std::optional<std::int64_t> uptime_seconds;  // >= 0
  std::optional<double> disk_total_gb;         // >= 0, size of the node's data disk
  Timestamp at;                                // when the server received it
};

struct Node {
  std::int64_t id = 0;
  std::string uuid;
  std::string hostname;
  std::string ip_address;   // may be empty
  std::string system_info;  // may be empty
  NodeStatus status = NodeStatus::pending;
  bool is_master = false;
  double storage_quota_gb = 0;
  std::int64_t storage_used_bytes = 0;  // sum of the node's sites
  std::int64_t sites_count = 0;
  std::int64_t backups_count = 0;
  Timestamp created_at;
  std::optional<Timestamp> approved_at;
  std::optional<Timestamp> last_seen;  // last stats report
  Liveness liveness = Liveness::offline;
  std::vector<StatsSample> recent_stats;  // newest first; how many depends on the call
  // The node-management view of the same record:
  std::string uid;  // "node_" + 16 hex
  std::string name;
  Lifecycle lifecycle = Lifecycle::inactive;
  NodeType node_type = NodeType::worker;
  std::string pool_uid;  // empty when in no pool
  std::optional<std::int64_t> pool_priority;
  HardwareInfo hardware;
  NodeLocation location;
  Timestamp updated_at;
  std::optional<double> poot_score;  // latest PoOT score, when one was computed
  // Issue 15: an operator's hold on new work. Cordoned: the scheduler places
  // nothing new here (tasks already placed run on). Draining: cordoned, and
  // tasks still here at drain_deadline are requeued (Tasks::sweep).
  bool cordoned = false;
  std::optional<Timestamp> drain_deadline;  // set while draining
  // Whether the scheduler may place new work here: not cordoned (nor
  // draining) and not in maintenance.
  bool schedulable() const { return !cordoned && lifecycle != Lifecycle::maintenance; }
};

struct NodeCreate {
  std::string name;      // required, 1..100 code points of free text (no control characters), unique
  std::string hostname;  // optional; default: name, which must then be a valid hostname
  NodeType node_type = NodeType::worker;
  HardwareInfo hardware;
  NodeLocation location;
  std::string pool_uid;  // optional: join this pool at once (limits apply)
};

// Fields to change; absent ones stay.
struct NodeUpdate {
  std::optional<std::string> name;
  std::optional<NodeType> node_type;
  std::optional<HardwareInfo> hardware;  // replaces the whole record
  std::optional<NodeLocation> location;  // replaces the whole record
  // Only maintenance (from inactive, active or error) and inactive (from
  // maintenance) can be set here; start/stop do the rest.
  std::optional<Lifecycle> lifecycle;
};

struct NodeQuery {
  std::int64_t page = 1;   // 1-based
  std::int64_t limit = 20; // 1..100
  std::optional<Lifecycle> lifecycle;
  std::string pool_uid;    // empty: any
};

struct LifecycleChange {
  std::string uid;
  Lifecycle lifecycle;
  Timestamp at;
};

struct ResourceFigures {
  std::optional<double> cpu_percent, memory_percent, disk_percent;
};

struct NodeResources {
  std::string uid;
  std::chrono::seconds range{3600};
  std::optional<StatsSample> current;  // newest sample
  ResourceFigures average, peak;
  std::int64_t sample_count = 0;
  HardwareInfo hardware;
};

enum class MetricType { cpu, memory, disk, network };
const char* metric_type_name(MetricType t) noexcept;
std::optional<MetricType> parse_metric_type(std::string_view name);

struct MetricBucket {
  Timestamp start;
  double min = 0, avg = 0, max = 0;
  std::int64_t count = 0;
};

struct MetricSeries {
  MetricType type;
  std::vector<MetricBucket> buckets;  // only buckets with samples, oldest first
};

struct JoinRequest {
  std::string hostname;     // required, 1..253 chars of [A-Za-z0-9._-], alphanumeric at both ends;
                            // stored lower-case
  std::string ip_address;   // optional; an IPv4 or IPv6 literal
  std::string system_info;  // optional, <= 1024 chars
  // A re-join of a pending hostname: the join_secret the first join returned
  // (<= 128 chars). Ignored when the join creates a new request.
  std::string join_secret;
};

struct JoinResult {
  std::int64_t request_id = 0;
  std::string registration_code;  // 5 chars A-Z0-9, or "ACTIVE" if already active
  bool already_active = false;
  // Set only when this join created the request: "ljs_" + 43 base64url
  // characters (32 random bytes). Shown once; the server keeps its SHA-256.
  // Re-joins and key collection must present it.
  std::string join_secret;
};

struct CodePoll {
  NodeStatus status = NodeStatus::pending;
  // Set exactly once: the first poll after approval that presents the join
  // secret. A poll without the secret learns the status only.
  std::optional<std::string> api_key;
};

struct Site {
  std::int64_t id = 0;
  std::int64_t node_id = 0;
  std::string name;
  std::int64_t used_bytes = 0;
  std::optional<double> quota_gb;
  Timestamp updated_at;
};

struct SiteReport {
  std::string name;  // 1..253 chars, no control characters
  std::int64_t used_bytes = 0;
  std::optional<double> quota_gb;
};

struct Backup {
  std::int64_t id = 0;
  std::int64_t node_id = 0;
  std::optional<std::int64_t> site_id;
  std::string site_name;  // empty if not tied to a site
  std::string filename;
  std::int64_t size_bytes = 0;
  std::string s3_path;
  Timestamp created_at;
  std::string backup_type;  // "full" | "incremental" | "differential"
  std::string status;       // "SUCCESS" | "FAILED" | "RUNNING"
  std::string storage_provider;
};

struct BackupReport {
  std::string site_name;  // optional: must name a site the node reported
  std::string filename;   // required, <= 512 chars
  std::int64_t size_bytes = 0;
  std::string s3_path;    // <= 1024 chars
  std::optional<Timestamp> created_at;  // default: now
  std::string backup_type = "full";
  std::string status = "SUCCESS";
  std::string storage_provider;  // <= 128 chars
};

struct SiteQuota {
  Site site;
  double used_gb = 0;
  std::optional<double> usage_percent;  // absent when the site has no quota
  bool is_over_quota = false;
  bool is_warning = false;  // >= 80 % and not over
};

struct QuotaStatus {
  std::int64_t node_id = 0;
  std::string hostname;
  double used_gb = 0;
  double quota_gb = 0;
  double usage_percent = 0;
  bool is_over_quota = false;
  std::int64_t sites_over_quota = 0;
  std::int64_t sites_warning = 0;
  std::vector<SiteQuota> sites;
};

struct Page {
  std::int64_t skip = 0;
  std::int64_t limit = 50;
};

// Everything about nodes. Obtained from Cluster::nodes(); lives as long as the
// Cluster. Thread-safe: every method may be called concurrently. Each state
// change is one database transaction. Failures throw lucid::Error.
class Nodes {
 public:
  // Creates a pending node with a fresh registration code and join secret;
  // or, for a hostname with a pending request, returns that request's code
  // when req.join_secret matches the request's secret (compared in constant
  // time); or "ACTIVE" with the node's id when that hostname is already an
  // active node. A pending request older than Options::nodes.pending_join_ttl is
  // gone first (its hostname is free). Errors: invalid_argument (field
  // named), conflict (the hostname has a pending request and the secret is
  // missing or wrong), resource_exhausted when the number of pending
  // requests is at its bound.
  JoinResult request_join(const JoinRequest& req);

  // What an agent learns by polling with its code. Pending: the status.
  // Active with the key not yet issued: without a join secret, the status
  // only (nothing is consumed); with the node's join secret, issues the API
  // key, returns it, and clears the code (later polls: not_found).
  // Errors: invalid_argument (malformed code or secret), not_found (unknown
  // or expired code), permission_denied (a join secret that does not match).
  CodePoll poll_by_code(std::string_view code, std::string_view join_secret = {});

  // The status of a join request by its id (no key is ever returned here: an
  // id is guessable, a code is not). Errors: not_found.
  NodeStatus status_of_request(std::int64_t request_id);

  // Approves a pending node. Errors: not_found (also when expired), conflict (not pending).
  Node approve(std::int64_t node_id);
  // Approves the pending node holding `code`. A non-empty `ip_address` (an
  // IPv4 or IPv6 literal: the address the approver entered) replaces the
  // one the join request gave. Errors: invalid_argument, not_found (no
  // pending node has that code).
  Node approve_by_code(std::string_view code, std::string_view ip_address = {});

  // Nodes ordered by id from page.skip, at most page.limit (the caller
  // bounds it), each with its latest stats sample (at most one). Errors: storage.
  std::vector<Node> list(const Page& page);
  // How many nodes there are (pending and active). Errors: storage.
  std::int64_t count();
  // One node with up to `stats_history` newest samples. Errors: not_found.
  Node get(std::int64_t node_id, int stats_history = 10);

  // Sets the storage quota (0 < gb <= 1,000,000). Errors: invalid_argument, not_found.
  Node set_quota(std::int64_t node_id, double storage_quota_gb);
  // The node's storage use against its quota, per site. Errors: not_found.
  QuotaStatus quota_status(std::int64_t node_id);
  // The node's sites in creation order; `total` (may be null) receives the count.
  // Errors: not_found.
  std::vector<Site> sites(std::int64_t node_id, const Page& page, std::int64_t* total = nullptr);
  // Backups newest first (by created_at, then by id), optionally of one site;
  // `total` (may be null) receives the count. Errors: not_found.
  std::vector<Backup> backups(std::int64_t node_id, const Page& page,
                              std::optional<std::int64_t> site_id, std::int64_t* total = nullptr);

  // Resolves a node API key to its node id. Constant-time in the key's
  // content. Errors: unauthenticated.
  std::int64_t authenticate_key(std::string_view api_key);

  // Records a stats sample for the node (liveness becomes online). Samples are
  // written to the database in batches within flush_interval (Options); the
  // latest sample and liveness are visible at once. Errors: invalid_argument,
  // unavailable (write-behind queue full), not_found,
  // storage (read-only cluster).
  void report_stats(std::int64_t node_id, StatsSample sample);
  // Upserts the node's sites by name (at most 1000 per call); returns them.
  // A bad entry names its field as "sites.<index>.<field>".
  std::vector<Site> report_sites(std::int64_t node_id, const std::vector<SiteReport>& sites);
  // Records one backup. Errors: invalid_argument (unknown site_name, bad fields).
  Backup report_backup(std::int64_t node_id, const BackupReport& report);

  // Live view of every node for streams: id, hostname, status, is_master,
  // liveness, last_seen and the latest sample; cheap (served from memory).
  struct LiveNode {
    std::int64_t id = 0;
    std::string hostname;
    NodeStatus status = NodeStatus::pending;
    bool is_master = false;
    Liveness liveness = Liveness::offline;
    std::optional<Timestamp> last_seen;
    std::optional<StatsSample> latest;
  };
  std::vector<LiveNode> live_view();
  // One node's live view. Errors: not_found.
  LiveNode live_view(std::int64_t node_id);

  // Writes buffered stats samples now (normally done in the background).
  void flush_stats();

  // ---- the node-management view ----

  // Resolves "node_..." to the node's integer id. Errors: not_found (node_not_found).
  std::int64_t resolve(std::string_view uid);
  // Creates a node directly (approved, lifecycle inactive). It has a
  // registration code outstanding (`code_out`) and a join secret
  // (`join_secret_out`): its agent collects the key by polling with both
  // (`lucidctl agent --code C --join-secret S`); without the secret the key
  // cannot be collected. Joining by hostname answers "ACTIVE" as for any
  // active node. Errors: invalid_argument, conflict (node_exists), not_found
  // (pool_not_found), resource_exhausted (resource_limit).
  Node create(const NodeCreate& req, std::string* code_out = nullptr, std::string* join_secret_out = nullptr);
  // A page of nodes by id, filtered. `total` receives the filtered count.
  std::vector<Node> query(const NodeQuery& q, std::int64_t* total);
  // One node by uid, with its newest sample. Errors: not_found (node_not_found).
  Node get(std::string_view uid);
  // Errors: invalid_argument, not_found, conflict (node_exists for a taken
  // name; invalid_node_status for a lifecycle change that is not allowed).
  Node update(std::string_view uid, const NodeUpdate& req);
  // inactive|error -> starting; the node becomes active at its next stats
  // report, or error when none arrives within Options::nodes.start_timeout.
  // Errors: not_found, conflict (invalid_node_status; pending nodes cannot start).
  LifecycleChange start(std::string_view uid);
  // active|starting -> stopping -> inactive (completed on the executor).
  LifecycleChange stop(std::string_view uid);
  // ---- cordon and drain (issue 15; docs/decisions.md) ----
  // Each is one transaction, persisted (a reopened cluster keeps it), and
  // announced as node_updated; the tasks scheduler stops or resumes placing
  // work on the node from its next pass. Removing a node is
  // Tasks::remove_node (it requeues the node's tasks in the same transaction).

  // The node takes no new work; tasks already on it run on. Idempotent.
  // Errors: not_found (node_not_found).
  Node cordon(std::string_view uid);
  // Ends a cordon and any drain: the node takes work again (unless in
  // maintenance). Idempotent. Errors: not_found (node_not_found).
  Node uncordon(std::string_view uid);
  // Cordons the node and sets its drain deadline to now + `deadline`
  // (1 s..24 h): tasks still on the node then are requeued by Tasks::sweep.
  // A second drain sets a new deadline. Errors: invalid_argument
  // (deadline_seconds), not_found (node_not_found).
  Node drain(std::string_view uid, std::chrono::seconds deadline);

  // Completes lifecycle transitions that are due (stopping -> inactive,
  // starting past its deadline -> error) and removes pending join requests
  // older than Options::nodes.pending_join_ttl. Runs on the executor; callable directly.
  void sweep_lifecycle();
  // Utilisation over the trailing `range` (<= 30 days), from stored samples.
  NodeResources resources(std::string_view uid, std::chrono::seconds range);
  // min/avg/max per `granularity` bucket between start and end (at most
  // 10,000 buckets), computed in SQL. `type` empty: cpu, memory and disk.
  std::vector<MetricSeries> metrics(std::string_view uid, std::optional<MetricType> type,
                                    std::chrono::seconds granularity, Timestamp start, Timestamp end);

  explicit Nodes(detail::ClusterCore& core);
  ~Nodes();

 private:
  // approve(), also recording `ip_address` (already checked; empty: keep).
  Node approve(std::int64_t node_id, const std::string& ip_address);
  detail::ClusterCore& core_;  // which the constructor gives the cache (ClusterCore::node_cache())
  std::unique_ptr<detail::NodeCache> cache_;  // lib/nodes/node_cache.hpp
};

LUCID_PUBLIC_END
}  // namespace lucid
