// Services and workflows: what this node offers (services), graphs of services
// (workflows), and the executor that runs a workflow's graph as child
// processes on the cluster's background executor (docs/workflows.md).
//
// Free-form objects the API carries without interpreting them (a service's
// capabilities, a workflow's definition, a node's config and GUI properties, a
// workflow's UI state) are held here as JSON text; the caller validates it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lucidnode/clock.hpp"
#include "lucidnode/export.hpp"

namespace lucid {

namespace detail { class ClusterCore; }
LUCID_PUBLIC_BEGIN

// Bounds on what callers may store (exceeding one is invalid_argument).
struct WorkflowLimits {
  static constexpr std::size_t name = 255;
  static constexpr std::size_t text = 4096;          // descriptions, paths, arguments, values
  static constexpr std::size_t json = 64 * 1024;      // one JSON text field
  static constexpr std::size_t list = 256;            // arguments, environment, interfaces
  static constexpr std::size_t nodes = 1000;          // nodes of one workflow
  static constexpr std::size_t connections = 10000;   // connections of one workflow
};

// STDIN, STDOUT, STDERR, LOGS, MOUNT, ENV, ARG.
struct ServiceInterface {
  std::int64_t id = 0;
  std::int64_t service_id = 0;
  std::string interface_type;
  std::string path;
  std::string mount_function;
  std::string description;
};

struct StandaloneDetails {
  std::int64_t id = 0;
  std::int64_t service_id = 0;
  std::string executable_path;  // canonical absolute path inside the data directory
  std::vector<std::string> arguments;
  std::string working_directory;  // canonical absolute path inside the data directory
  std::vector<std::pair<std::string, std::string>> environment;  // sorted by name
  std::int64_t timeout_seconds = 300;
  std::string run_as_user;
  std::string source;  // "local", "git", "upload"
};

struct DockerDetails {
  std::int64_t id = 0;
  std::int64_t service_id = 0;
  std::string image_name;
  std::string image_tag;
  std::string source;  // "registry", "git", "local"
  std::string compose_path;
  std::string entrypoint;  // JSON array text
  std::string cmd;         // JSON array text
};

struct DataDetails {
  std::int64_t id = 0;
  std::int64_t service_id = 0;
  std::string file_path;
  std::int64_t file_size = 0;
  std::string file_hash;  // sha256 hex
  std::string encryption_method;
};

struct Service {
  std::int64_t id = 0;
  std::string name;
  std::string description;
  std::string service_type;  // DATA, DOCKER, STANDALONE, RELAY
  std::string status;        // ACTIVE, INACTIVE
  std::string endpoint;
  double pricing_amount = 0;
  std::string pricing_type = "FREE";
  std::string pricing_interval;
  std::string pricing_unit;
  std::string capabilities_json = "{}";
  Timestamp created_at;
  Timestamp updated_at;
  std::vector<ServiceInterface> interfaces;
  std::optional<DockerDetails> docker;
  std::optional<StandaloneDetails> standalone;
};

// Generic create/update. Types are the document's: "storage" (DATA), "docker",
// "standalone", "relay"; statuses ACTIVE/INACTIVE ("available"/"unavailable"
// are accepted as their aliases).
struct ServiceCreate {
  std::string type;
  std::string name;
  std::string description;
  std::string endpoint;
  std::string status = "ACTIVE";
  std::string capabilities_json = "{}";
};
struct ServiceUpdate {
  std::optional<std::string> name, description, endpoint, status, capabilities_json;
};

// A standalone service. Paths are resolved against the data directory (a
// relative path) and must stay inside it after following every symlink.
struct StandaloneCreate {
  std::string name;
  std::string description;
  std::string executable_path;
  std::vector<std::string> arguments;
  std::string working_directory;  // empty: the executable's directory
  std::vector<std::pair<std::string, std::string>> environment;
  std::int64_t timeout_seconds = 300;  // 1..86400
  std::string run_as_user;             // empty or the server's own user
  std::string capabilities_json = "{}";
  std::vector<ServiceInterface> interfaces;  // custom_interfaces
};
struct StandaloneGitCreate {
  StandaloneCreate service;     // executable_path and working_directory relative to the clone
  std::string repo_url;         // https://, http://, git:// or ssh://; no leading '-'
  std::string branch;           // empty: the remote's default
  std::string build_command;    // run with /bin/sh -c in the clone; empty: none
  std::string username, password;  // used for the clone only, never stored
};

// Docker services (docs/workflows.md "Docker services"). Credentials are
// used for the pull or clone only, never stored.
struct DockerRegistryCreate {
  std::string name, description;
  std::string image_name;           // [host[:port]/]path, Docker's reference grammar
  std::string image_tag = "latest";
  std::string username, password;
  std::vector<ServiceInterface> interfaces;  // custom_interfaces; empty: the suggested ones
};
struct DockerLocalCreate {
  std::string name, description;
  std::string local_path;  // a directory inside the data directory holding a Dockerfile
  std::vector<ServiceInterface> interfaces;
};
struct DockerGitCreate {
  std::string name, description;
  std::string repo_url, branch, username, password;  // as StandaloneGitCreate
  std::vector<ServiceInterface> interfaces;
};
struct DockerCreated {
  Service service;
  std::vector<ServiceInterface> suggested;  // detected from the image
};

struct Workflow {
  std::int64_t id = 0;
  std::string name;
  std::string description;
  std::string definition_json = "{}";
  Timestamp created_at;
  Timestamp updated_at;
};

struct WorkflowNode {
  std::int64_t id = 0;
  std::int64_t workflow_id = 0;
  std::string node_type = "SERVICE";
  std::string peer_id;
  std::int64_t service_id = 0;
  std::string config_json = "{}";
  std::string gui_props_json = "{}";
};

// kThisNode (0) as a node id: this node's own side of the workflow (the
// network node UI's null from_node_id/to_node_id: input from, or results to,
// the local peer); at most one end may be it, and execution does not wait on
// or feed it. Interface types: "" or one of STDIN, STDOUT, STDERR, LOGS,
// MOUNT, ENV, ARG. destination_file_name: "" or a file name (no '/', at most
// 255 bytes, not "." or "..").
struct WorkflowConnection {
  static constexpr std::int64_t kThisNode = 0;
  std::int64_t id = 0;
  std::int64_t workflow_id = 0;
  std::int64_t source_node_id = 0;
  std::optional<std::int64_t> source_interface_id;
  std::int64_t target_node_id = 0;
  std::optional<std::int64_t> target_interface_id;
  std::string source_interface_type;
  std::string target_interface_type;
  std::string destination_file_name;
};

// RUNNING, COMPLETED, FAILED.
struct ExecutionInstance {
  std::int64_t id = 0;
  std::int64_t workflow_id = 0;
  std::string status;
  Timestamp started_at;
  std::optional<Timestamp> completed_at;
  std::optional<std::string> error;
  std::int64_t jobs_total = 0;
  std::int64_t jobs_done = 0;  // completed, failed or cancelled
  int progress() const { return jobs_total == 0 ? (status == "RUNNING" ? 0 : 100) : int(jobs_done * 100 / jobs_total); }
};

// PENDING, RUNNING, COMPLETED, FAILED, CANCELLED.
struct JobExecution {
  std::int64_t id = 0;
  std::int64_t workflow_execution_id = 0;
  std::int64_t workflow_id = 0;
  std::int64_t node_id = 0;
  std::int64_t service_id = 0;
  std::string status;
  Timestamp created_at;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> completed_at;
  std::optional<int> exit_code;
  std::optional<std::string> error;
};

// STDIN, STDOUT, STDERR of a job (the bytes, bounded by the output limit).
struct JobInterface {
  std::int64_t id = 0;
  std::int64_t job_execution_id = 0;
  std::string interface_type;
  std::string value;
};

// Thread-safe; every change is one transaction. Failures throw lucid::Error:
// invalid_argument (field named), not_found, unavailable (docker daemon
// absent), internal.
// How the executor hands a job to a fleet node's agent (docs/workflows.md
// "Jobs on fleet nodes"). lib/cluster sets it (Network resolves the peer,
// Tasks carries the job as a task pinned to that node); the executor calls
// it on its own threads, so each function must be thread-safe.
struct FleetTaskEnd {
  std::string status;                      // the task's final status: success, failed, timeout, cancelled
  std::optional<std::string> result_json;  // what the agent reported
  std::optional<std::string> error;
};
struct FleetSubmitted {
  std::string task_id;
  std::chrono::seconds give_up_after{0};  // no end by then: the executor cancels it and fails the job
};
struct FleetDispatch {
  // The node id of `peer_id` when it is an active, not blacklisted fleet
  // node whose agent allows `task_type` ("workflow_job", "workflow_docker").
  // Throws Error(invalid_argument) with a sentence saying why not.
  std::function<std::int64_t(std::string_view peer_id, const std::string& task_type)> check;
  // Queues the job as a task pinned to node `node_id`. Throws Error.
  std::function<FleetSubmitted(std::int64_t node_id, const std::string& task_type, const std::string& payload_json,
                               std::int64_t timeout_seconds, std::int64_t max_retries, const std::string& metadata_json)>
      submit;
  // The task's end; nullopt while it is queued or running. Throws Error(not_found).
  std::function<std::optional<FleetTaskEnd>(const std::string& task_id)> poll;
  // Cancels the task; nothing when it has already ended.
  std::function<void(const std::string& task_id)> cancel;
};

class Workflows {
 public:
  explicit Workflows(detail::ClusterCore& core);
  ~Workflows();
  Workflows(const Workflows&) = delete;
  Workflows& operator=(const Workflows&) = delete;

  // ---- services ----
  std::vector<Service> list_services();
  Service get_service(std::int64_t id);  // not_found
  Service create_service(const ServiceCreate& req);
  Service update_service(std::int64_t id, const ServiceUpdate& req);  // not_found
  void delete_service(std::int64_t id);                                // not_found
  // Deletes a STANDALONE service; invalid_argument (field "service_type") for another type.
  void delete_standalone_service(std::int64_t id);
  void set_service_status(std::int64_t id, const std::string& status);  // ACTIVE/INACTIVE only
  std::vector<ServiceInterface> service_interfaces(std::int64_t id);    // not_found
  // DATA services: the passphrase and the data file's record. not_found when
  // the service (or its data record) is absent; invalid_argument (field
  // "service_type") for another type.
  std::pair<std::string, DataDetails> service_passphrase(std::int64_t id);
  // Records the data file of a DATA service (the upload path calls this): the
  // file (inside the data directory) is hashed, a random passphrase created
  // and stored sealed with a key derived from the server key.
  DataDetails attach_data_file(std::int64_t service_id, const std::string& path);
  // Standalone services (paths confined to the data directory).
  Service create_standalone(const StandaloneCreate& req);
  // Clones with the git binary into <data>/services/git-<n>, runs the build
  // command (bounded by the timeout), then creates the service. The URL is
  // validated before anything runs; a failed clone or build leaves nothing
  // behind (internal with the tool's message).
  Service create_standalone_from_git(const StandaloneGitCreate& req);
  // Sets the executable and options of an existing STANDALONE service whose
  // files were uploaded into <data>/uploads/<service id>/ (paths relative to it).
  Service finalize_standalone(std::int64_t id, const StandaloneCreate& req);
  // `git ls-remote` against the URL (30 s bound). nullopt: reachable; else why not.
  std::optional<std::string> validate_git(const std::string& url, const std::string& username,
                                          const std::string& password);
  // Docker. The daemon's socket: Options::workflows.docker_socket, else DOCKER_HOST
  // (unix://), else /var/run/docker.sock (empty when DOCKER_HOST names a
  // non-unix host). docker_version: the daemon's version, nullopt when
  // nothing answers within 2 s.
  std::string docker_socket() const;
  std::optional<std::string> docker_version() const;
  bool docker_available() const;
  // Pulls the image, inspects it and records a DOCKER service (source
  // "registry"). Errors: invalid_argument (bad name, tag, interface);
  // resource_exhausted (too many Docker operations at once); internal,
  // message "Failed to create service: ..." (no daemon, pull refused, auth
  // failed). A failure leaves no service.
  DockerCreated create_docker_from_registry(const DockerRegistryCreate& req);
  // Builds the directory's Dockerfile (context confined to the data
  // directory; docker-compose projects are refused) as lucidnode/<name>-<hex>.
  // Errors as create_docker_from_registry; invalid_argument "local_path" for
  // a path outside the data directory.
  DockerCreated create_docker_from_local(const DockerLocalCreate& req);
  // Validates the request, then clones and builds on a background thread,
  // publishing DOCKER_OPERATION_START/PROGRESS/COMPLETE/ERROR events with the
  // returned operation id. Errors (synchronous): invalid_argument,
  // resource_exhausted.
  std::string create_docker_from_git(const DockerGitCreate& req);
  // The interfaces the service's image suggests now (STDIN, STDOUT, ENV from
  // its environment and exposed ports, MOUNT from its volumes). not_found
  // (not a docker service); internal "Failed to detect interfaces: ..." (no
  // daemon, image gone).
  std::vector<ServiceInterface> docker_suggested_interfaces(std::int64_t id);
  DockerDetails docker_details(std::int64_t id);  // not_found (not a docker service)
  void replace_interfaces(std::int64_t id, const std::vector<ServiceInterface>& interfaces);
  // entrypoint/cmd: shell-style words or a JSON array text (already parsed by
  // the caller into words); nullopt leaves one unchanged, empty clears it.
  void set_docker_config(std::int64_t id, const std::optional<std::vector<std::string>>& entrypoint,
                         const std::optional<std::vector<std::string>>& cmd);

  // ---- workflows ----
  std::vector<Workflow> list_workflows();
  Workflow get_workflow(std::int64_t id);  // not_found
  Workflow create_workflow(const std::string& name, const std::string& description, const std::string& definition_json);
  Workflow update_workflow(std::int64_t id, const std::string& name, const std::optional<std::string>& description,
                           const std::optional<std::string>& definition_json);
  void delete_workflow(std::int64_t id);  // not_found; removes nodes, connections, executions
  std::vector<WorkflowNode> nodes(std::int64_t workflow_id);  // not_found (workflow)
  // The service must exist (invalid_argument "service_id").
  WorkflowNode add_node(const WorkflowNode& node);
  void delete_node(std::int64_t workflow_id, std::int64_t node_id);  // not_found; connections stay (dangling)
  void set_node_gui_props(std::int64_t workflow_id, std::int64_t node_id, const std::string& json);
  void set_node_config(std::int64_t workflow_id, std::int64_t node_id, const std::string& json);
  std::vector<WorkflowConnection> connections(std::int64_t workflow_id);
  // Both nodes must belong to the workflow (invalid_argument).
  WorkflowConnection add_connection(const WorkflowConnection& c);
  void update_connection(const WorkflowConnection& c);  // not_found
  void delete_connection(std::int64_t workflow_id, std::int64_t connection_id);
  std::string ui_state(std::int64_t workflow_id);  // JSON text; "{}" when never set
  void set_ui_state(std::int64_t workflow_id, const std::string& json);

  // ---- execution ----
  // Which node peer ids run on this server (the rest would need dispatch to
  // remote peers, which this server does not do). The cluster sets it to
  // Network::is_local_peer; until set, only an empty peer_id is local. Set
  // before executions start (not synchronized with running executions).
  void set_local_peer_rule(std::function<bool(std::string_view)> is_local);
  // How jobs of nodes naming a fleet peer run (see FleetDispatch); until
  // set, such a node fails its execution. Set before executions start.
  void set_fleet_dispatch(FleetDispatch dispatch);

  // Records a RUNNING execution instance and queues it on the executor; returns
  // at once. The graph is validated there: a cycle, a dangling connection or a
  // node that cannot run fails the instance with a message saying which.
  ExecutionInstance execute(std::int64_t workflow_id);
  std::vector<ExecutionInstance> executions(std::int64_t workflow_id);
  ExecutionInstance execution(std::int64_t execution_id);                 // not_found
  std::vector<JobExecution> execution_jobs(std::int64_t execution_id);    // not_found
  std::vector<JobExecution> workflow_jobs(std::int64_t workflow_id);      // all instances
  std::vector<JobInterface> job_interfaces(std::int64_t job_execution_id);  // not_found

  // Internal: called by the cluster on stop (kills running children; their
  // instances fail with "server stopping") and at open (instances left
  // RUNNING by a previous process fail with the reason).
  void shutdown();
  void recover();
  // Internal: fails the RUNNING executions (and their pending and running
  // jobs) whose server process is gone, cancelling their fleet jobs' tasks;
  // returns how many executions failed. recover() at open; on replicas the
  // leader also runs it every few seconds, so a killed replica's executions
  // end. Throws what the store throws.
  std::size_t fail_abandoned();

  struct LUCID_HIDDEN_FWD Impl;

 private:
  detail::ClusterCore& core_;
  std::unique_ptr<Impl> impl_;
};

LUCID_PUBLIC_END
}  // namespace lucid
