/* lucidnode C ABI: the control plane from C (and from anything with a C FFI,
 * such as Python's ctypes).
 *
 * Installed as <lucidnode/lucidnode.h>; the symbols live in liblucidnode
 * itself (shared and static), so a C program links -llucidnode (pkg-config
 * lucidnode).
 *
 * Conventions
 * - Every function returns a lucid_status; LUCID_OK (0) is success. No C++
 *   exception ever crosses this boundary: every failure becomes a status.
 * - On failure, lucid_last_error_message() / lucid_last_error_field() on the
 *   same thread describe it (dlerror() style, thread-local).
 * - A cluster is an opaque handle from lucid_cluster_open(), released with
 *   lucid_cluster_close(). A NULL handle or a NULL required pointer is an
 *   error (LUCID_INVALID_ARGUMENT), never a crash.
 * - Structured inputs and outputs are JSON text (UTF-8, NUL-terminated).
 *   Inputs are parsed strictly: malformed JSON, a wrong type or an unknown
 *   member is LUCID_INVALID_ARGUMENT with the member named by
 *   lucid_last_error_field().
 * - Outputs, one convention: a structured result is a library-allocated,
 *   NUL-terminated JSON string stored in *out_json, which the caller frees
 *   with lucid_free(). On failure *out_json is set to NULL (when out_json
 *   itself is not NULL), so freeing it unconditionally is always correct.
 *   Scalars (ids, counts, flags) go to typed out-parameters the same way.
 *   (ABI 2 also had caller buffers with a size query; ABI 3 dropped them.)
 * - Thread-safety: every function taking a lucid_cluster* may be called from
 *   any number of threads at once on the same handle, EXCEPT
 *   lucid_cluster_close(), which must not race with any other use of that
 *   handle (the caller guarantees no call is in flight and none follows).
 *   Functions without a handle are thread-safe.
 */
#ifndef LUCIDNODE_LUCIDNODE_H
#define LUCIDNODE_LUCIDNODE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LUCID_API __attribute__((visibility("default")))
#else
#define LUCID_API
#endif

/* Bumped when a function's signature or meaning changes incompatibly. */
#define LUCID_C_ABI_VERSION 3 /* 3: one output convention (library-allocated JSON);
                                 users, sessions, workflows, events, mail callback.
                                 2: lucid_node_poll takes the join secret */

typedef enum lucid_status {
  LUCID_OK = 0,
  /* 1..9 are lucid::Errc, value for value. */
  LUCID_INVALID_ARGUMENT = 1,   /* bad input, NULL pointer, malformed JSON */
  LUCID_NOT_FOUND = 2,          /* the addressed object does not exist */
  LUCID_CONFLICT = 3,           /* the object's state forbids the operation */
  LUCID_UNAUTHENTICATED = 4,    /* unknown or malformed credential (API key) */
  LUCID_PERMISSION_DENIED = 5,
  LUCID_RESOURCE_EXHAUSTED = 6, /* a bound was reached */
  LUCID_UNAVAILABLE = 7,        /* temporarily unable (queue full, no signing key) */
  LUCID_STORAGE = 8,            /* the database failed or refused (read-only, newer schema) */
  LUCID_INTERNAL = 9,           /* a bug: please report */
  /* C ABI only. (10 was ABI 2's buffer_too_small; it is not reused.) */
  LUCID_OUT_OF_MEMORY = 11
} lucid_status;

typedef struct lucid_cluster lucid_cluster;

/* ---- library ---- (thread-safe) */

/* "0.1.0": the version of the library actually loaded. */
LUCID_API const char* lucid_version(void);
/* LUCID_C_ABI_VERSION of the library actually loaded. */
LUCID_API int lucid_abi_version(void);
/* Stable lower-case name of a status ("ok", "not_found", "out_of_memory",
 * ...); "unknown" for a value that is not a lucid_status. */
LUCID_API const char* lucid_status_name(int status);
/* The message of the last failed call on this thread ("" after a success).
 * Valid until the next lucid_* call on this thread. */
LUCID_API const char* lucid_last_error_message(void);
/* The input field the last failure is about ("" when none), e.g.
 * "hostname" or "payout_requests.0.amount". Same lifetime. */
LUCID_API const char* lucid_last_error_field(void);
/* Frees a string returned in *out_json. NULL is fine. */
LUCID_API void lucid_free(char* p);

/* ---- cluster ---- */

/* Opens (creating and migrating when needed) a cluster. `options_json` is an
 * object; every member is optional except database_path:
 *   database_path (string), key_file (string; default database_path + ".key"),
 *   read_only (bool: no writes, no migration, the key file may be absent),
 *   executor_threads (int), stats_flush_interval_ms, block_time_ms,
 *   payout_interval_ms, poot_freshness_s, poot_window_s (ints),
 *   outbox_dir (string: where login mail is written; default "outbox" beside
 *   the database), public_url (string: the start of magic links),
 *   data_dir (string: workflow services' files; default "data" beside the
 *   database).
 * The options of a capability may instead be given in its group object, as
 * lucid::Options groups them (include/lucidnode/options.hpp):
 *   "nodes": {"stats_flush_interval_ms"}, "ledger": {"block_time_ms"},
 *   "payouts": {"interval_ms"}, "poot": {"freshness_s", "window_s"},
 *   "login": {"outbox_dir", "public_url"}.
 * One option given both ways is INVALID_ARGUMENT (field: the grouped key).
 * An option out of its bounds is INVALID_ARGUMENT naming the key as written
 * ("poot_window_s" or "poot.window_s").
 * Errors: INVALID_ARGUMENT (NULL, bad JSON or option), STORAGE (database or
 * key file unusable; read-only open of a missing database).
 * Thread-safe. */
LUCID_API lucid_status lucid_cluster_open(const char* options_json, lucid_cluster** out);

/* Delivers one login mail message (plain text, LF line ends). Called on the
 * cluster's background threads, possibly several at once; it must be quick
 * and thread-safe and must not call any lucid_* function on the cluster.
 * Returns nonzero when delivered, 0 when not (the library then reports the
 * failure to nobody: keep the message yourself if it matters). */
typedef int (*lucid_mail_fn)(void* user_data, const char* to, const char* subject, const char* body);
/* lucid_cluster_open, with login mail given to `mail` (with `user_data`)
 * instead of the outbox directory. `mail` NULL: as lucid_cluster_open.
 * `user_data` must stay valid until lucid_cluster_close returns. */
LUCID_API lucid_status lucid_cluster_open_with_mailer(const char* options_json, lucid_mail_fn mail, void* user_data,
                                                      lucid_cluster** out);
/* Flushes buffered writes, stops the background executor and frees the
 * handle. NULL is a no-op. Not thread-safe with other uses of the handle. */
LUCID_API void lucid_cluster_close(lucid_cluster* cluster);
/* Starts / stops the background executor (stats flushing, liveness, payout
 * processing, block sealing). Both idempotent. Thread-safe. */
LUCID_API lucid_status lucid_cluster_start(lucid_cluster* cluster);
LUCID_API lucid_status lucid_cluster_stop(lucid_cluster* cluster);

/* ---- nodes ---- (all thread-safe) */

/* A node asks to join: request_json {"hostname", "ip_address"?, "system_info"?,
 * "join_secret"?}. *out_json: {"request_id", "registration_code",
 * "already_active", "join_secret"?}: join_secret only when this call created
 * the request (shown once; keep it). A re-join of a pending hostname must
 * present that secret to get the code back.
 * Errors: INVALID_ARGUMENT, CONFLICT (pending hostname, secret missing or
 * wrong), RESOURCE_EXHAUSTED (too many pending joins). */
LUCID_API lucid_status lucid_node_join(lucid_cluster* cluster, const char* request_json, char** out_json);
/* The agent polls with its registration code and join secret (NULL: status
 * only). *out_json: {"status": "pending"|"active", "api_key"?}; api_key
 * appears exactly once, on the first poll after approval that presents the
 * secret; a poll without it never consumes the key. Errors:
 * INVALID_ARGUMENT, NOT_FOUND (unknown or expired code), PERMISSION_DENIED
 * (wrong secret), STORAGE (read-only). */
LUCID_API lucid_status lucid_node_poll(lucid_cluster* cluster, const char* code, const char* join_secret,
                                       char** out_json);
/* Approves a pending node by id. *out_json: the node (see lucid_nodes_list).
 * Errors: NOT_FOUND, CONFLICT (not pending). */
LUCID_API lucid_status lucid_node_approve(lucid_cluster* cluster, int64_t node_id, char** out_json);
/* Approves the pending node holding `code`. Errors: INVALID_ARGUMENT, NOT_FOUND,
 * UNAVAILABLE (read-only cluster opened without its key file), STORAGE (read-only). */
LUCID_API lucid_status lucid_node_approve_code(lucid_cluster* cluster, const char* code, char** out_json);
/* Resolves a node API key to the node's id. Errors: UNAUTHENTICATED. */
LUCID_API lucid_status lucid_node_authenticate(lucid_cluster* cluster, const char* api_key, int64_t* node_id);
/* Records a stats sample: stats_json {"cpu_usage", "disk_usage",
 * "active_backups"?, "memory_percent"?, "uptime_seconds"?, "disk_total_gb"?}.
 * Errors: INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE (write-behind queue full). */
LUCID_API lucid_status lucid_node_report_stats(lucid_cluster* cluster, int64_t node_id, const char* stats_json);
/* Nodes by id from `skip`, at most `limit` (1..1000). *out_json:
 * {"total": n, "nodes": [{"id", "uid", "uuid", "name", "hostname",
 * "ip_address", "status", "liveness", "lifecycle", "node_type", "pool_uid",
 * "storage_quota_gb", "created_at", "approved_at", "last_seen", "poot_score",
 * "latest_stats"}]} (absent values are null).
 * Errors: INVALID_ARGUMENT. */
LUCID_API lucid_status lucid_nodes_list(lucid_cluster* cluster, int64_t skip, int64_t limit, char** out_json);
/* One node by id, with up to 10 newest samples in "recent_stats".
 * Errors: NOT_FOUND. */
LUCID_API lucid_status lucid_node_get(lucid_cluster* cluster, int64_t node_id, char** out_json);

/* ---- pools ---- (all thread-safe) */

/* Creates a pool: pool_json {"name", "description"?, "max_nodes"?,
 * "max_cpu_cores"?, "max_memory_gb"?, "max_storage_gb"?}. *out_json: the pool
 * (as in lucid_pools_list). Errors: INVALID_ARGUMENT, CONFLICT (name taken). */
LUCID_API lucid_status lucid_pool_create(lucid_cluster* cluster, const char* pool_json, char** out_json);
/* Puts a node ("node_...") in a pool with a priority 1..100, moving it out of
 * any other pool. *out_json: the pool. Errors: INVALID_ARGUMENT, NOT_FOUND
 * (pool or node), RESOURCE_EXHAUSTED (the pool's limits). */
LUCID_API lucid_status lucid_pool_add_node(lucid_cluster* cluster, const char* pool_uid, const char* node_uid,
                                           int64_t priority, char** out_json);

/* Pools by creation, 1-based page of limit (1..100): {"total", "pools":
 * [{"uid", "name", "description", "node_count", "max_nodes", "max_cpu_cores",
 * "max_memory_gb", "max_storage_gb", "created_at"}]}.
 * Errors: INVALID_ARGUMENT. */
LUCID_API lucid_status lucid_pools_list(lucid_cluster* cluster, int64_t page, int64_t limit, char** out_json);

/* ---- PoOT ---- */

/* Validates and stores one proof: proof_json {"node_uid", "output_data"
 * (base64), "timestamp" (RFC 3339), "nonce", "signature"?}. An invalid proof
 * is an answer, not an error: *out_json {"node_uid", "valid", "status",
 * "output_hash", "failure", "reason", "validated_at", "nonce"}.
 * Errors: INVALID_ARGUMENT (malformed proof; nothing stored), NOT_FOUND
 * (unknown node). Thread-safe. */
LUCID_API lucid_status lucid_poot_validate(lucid_cluster* cluster, const char* proof_json, char** out_json);

/* ---- payouts ---- */

/* Records a batch of pending payouts: batch_json {"batch_id"?,
 * "payout_requests": [{"node_id" ("node_..."), "amount" (exact decimal as a
 * string, e.g. "12.5"), "currency"? ("USDT" | "LUCID"), "wallet_address"?}]}
 * (the names the payouts API document uses, so error fields match).
 * The background executor (or lucid_payouts_process) settles them.
 * *out_json: {"batch_id", "status", "payout_count", "pending", "processing",
 * "completed", "failed", "created"}. Errors: INVALID_ARGUMENT (field named,
 * e.g. "payout_requests.0.amount"), CONFLICT (batch_id reused with other
 * requests). Thread-safe; idempotent per batch_id. */
LUCID_API lucid_status lucid_payout_submit(lucid_cluster* cluster, const char* batch_json, char** out_json);
/* One batch's state (as above). Errors: NOT_FOUND. */
LUCID_API lucid_status lucid_payout_batch(lucid_cluster* cluster, const char* batch_id, char** out_json);
/* A node's payouts, newest first, 1-based page of limit (1..100):
 * {"total", "payouts": [{"payout_id", "node_uid", "amount", "currency",
 * "status", "failure_reason", "transaction_hash", "batch_id", "created_at"}]}.
 * Errors: INVALID_ARGUMENT, NOT_FOUND. */
LUCID_API lucid_status lucid_payouts_for_node(lucid_cluster* cluster, const char* node_uid, int64_t page,
                                              int64_t limit, char** out_json);
/* One processing round now (normally the executor's job); *settled (may be
 * NULL) receives how many payouts it settled. Errors: STORAGE. */
LUCID_API lucid_status lucid_payouts_process(lucid_cluster* cluster, size_t* settled);

/* ---- ledger ---- */

/* Seals pending ledger transactions into blocks now (normally the
 * executor's job); *blocks (may be NULL) receives how many were sealed.
 * Errors: STORAGE (read-only). */
LUCID_API lucid_status lucid_ledger_seal(lucid_cluster* cluster, int64_t* blocks);
/* Verifies the whole chain (works read-only, without the key file):
 * {"ok", "blocks", "transactions", "pending", "broken_height", "broken_hash",
 * "problem"}. A broken ledger is LUCID_OK with "ok": false.
 * Errors: STORAGE. */
LUCID_API lucid_status lucid_ledger_verify(lucid_cluster* cluster, char** out_json);

/* ---- tasks ---- (all thread-safe)
 *
 * The task queue and scheduler of lucid::Tasks (see lucidnode/tasks.hpp).
 * A task object, as in the cluster API's GET /api/v1/tasks/{id}:
 *   {"task_id", "task_type", "status", "priority", "payload", "requirements":
 *   {"min_cpu_cores", "min_memory_gb", "min_storage_gb", "required_platform",
 *   "required_role", "required_tags", "gpu_required", "internet_required",
 *   "timeout_seconds", "max_retries"}, "metadata", "device_id", "attempt",
 *   "retries", "progress", "progress_message", "status_reason",
 *   "cancel_requested", "result_data", "error", "exit_code",
 *   "execution_time_seconds", "created_at", "assigned_at", "started_at",
 *   "completed_at"} (absent values are null). */

/* Queues a task: task_json is the cluster API's POST /api/v1/tasks body
 * {"task_type" (echo|sleep|system_info|http_request|command|python_eval),
 * "payload"? (any JSON), "priority"? (low|normal|high|urgent),
 * "requirements"? {as above, all optional}, "metadata"? (object)}.
 * Placement happens on the executor (lucid_cluster_start) or with
 * lucid_tasks_schedule. *out_json: the task.
 * Errors: INVALID_ARGUMENT (field named, e.g. "requirements.min_cpu_cores"). */
LUCID_API lucid_status lucid_task_submit(lucid_cluster* cluster, const char* task_json, char** out_json);
/* One task. Errors: INVALID_ARGUMENT (NULL task_id), NOT_FOUND. */
LUCID_API lucid_status lucid_task_get(lucid_cluster* cluster, const char* task_id, char** out_json);
/* A task's result, as GET /api/v1/tasks/{id}/result: {"task_id", "status",
 * "final" (true once success|failed|cancelled|timeout), "result_data",
 * "error", "exit_code", "execution_time_seconds", "worker_device_id",
 * "started_at", "completed_at"}. Errors: INVALID_ARGUMENT, NOT_FOUND. */
LUCID_API lucid_status lucid_task_result(lucid_cluster* cluster, const char* task_id, char** out_json);
/* One scheduling pass over the queue now (normally the executor's job).
 * Errors: STORAGE. */
LUCID_API lucid_status lucid_tasks_schedule(lucid_cluster* cluster);

/* ---- agent side, in-process ---- (all thread-safe)
 * node_id is an approved node's id (lucid_node_authenticate gives it from
 * the node's API key). */

/* The node's agent reports its device: device_json {"platform",
 * "role"?, "tags"? [..], "capabilities" {"cpu_count", "memory_total_gb",
 * "storage_total_gb", "has_gpu"? (false), "internet"? (false)},
 * "allowed_task_types" [..], "max_concurrent"? (1), "agent_version"?}.
 * *out_json: the device {"device_id", "node_id", "hostname", "ip_address",
 * "role", "platform", "reported", "online", "last_heartbeat", "capabilities",
 * "tags", "allowed_task_types", "max_concurrent", "agent_version",
 * "active_tasks"}. Errors: INVALID_ARGUMENT, NOT_FOUND (unknown or not
 * approved node). */
LUCID_API lucid_status lucid_device_report(lucid_cluster* cluster, int64_t node_id, const char* device_json,
                                           char** out_json);
/* Heartbeat plus what waits for the device now, without blocking (it takes
 * the work: a second call does not return the same tasks).
 * *out_json: {"tasks": [{"task_id", "task_type", "payload",
 * "timeout_seconds", "attempt"}], "cancel": [task ids], "pings": [ids]}.
 * Errors: INVALID_ARGUMENT, NOT_FOUND (no node with that id). */
LUCID_API lucid_status lucid_agent_take_work(lucid_cluster* cluster, int64_t node_id, char** out_json);
/* assigned -> running. *out_json: the task. Errors: INVALID_ARGUMENT,
 * NOT_FOUND, CONFLICT (not assigned to this node). */
LUCID_API lucid_status lucid_task_start(lucid_cluster* cluster, int64_t node_id, const char* task_id,
                                        char** out_json);
/* Stores the result once (a repeat returns the stored task unchanged):
 * result_json {"status" (completed|failed|timeout|cancelled), "result"?
 * (any JSON), "error"?, "exit_code"?, "duration_ms"}. *out_json: the task.
 * Errors: INVALID_ARGUMENT, NOT_FOUND, CONFLICT (never this node's task). */
LUCID_API lucid_status lucid_task_report_result(lucid_cluster* cluster, int64_t node_id, const char* task_id,
                                                const char* result_json, char** out_json);

/* ---- users and sessions ---- (all thread-safe; lucid::Users, users.hpp)
 *
 * A user object: {"id", "email", "username", "first_name", "last_name",
 * "role" ("user"|"viewer"|"node_operator"|"admin"|"super_admin"),
 * "hardware_wallet_enabled", "totp_enabled", "created_at", "updated_at",
 * "last_login", "locked_until"} (absent times are null).
 * Tokens, as a verified login or a refresh returns them: {"access_token",
 * "refresh_token", "expires_in" (seconds), "session_id", "user"}. */

/* Creates a user: user_json {"email", "username", "password", "first_name"?,
 * "last_name"?, "role"?}. The password is checked, never stored (login is
 * passwordless). *out_json: the user. Errors: INVALID_ARGUMENT (field named),
 * CONFLICT (email or username taken). */
LUCID_API lucid_status lucid_user_create(lucid_cluster* cluster, const char* user_json, char** out_json);
/* One user by id. Errors: INVALID_ARGUMENT, NOT_FOUND. */
LUCID_API lucid_status lucid_user_get(lucid_cluster* cluster, const char* user_id, char** out_json);
/* Starts a passwordless login: a 6-digit code and a link token are mailed
 * (mail callback or outbox). An unknown address gets the same answer and no
 * mail. *expires_in (may be NULL): their validity in seconds.
 * Errors: INVALID_ARGUMENT (not an email address). */
LUCID_API lucid_status lucid_login_start(lucid_cluster* cluster, const char* email, int64_t* expires_in);
/* Verifies the mailed code (or a TOTP code for a TOTP user) and opens a
 * session. *out_json: tokens. Errors: INVALID_ARGUMENT, UNAUTHENTICATED
 * (wrong or expired code, locked account: lucid_last_error_message says). */
LUCID_API lucid_status lucid_login_verify(lucid_cluster* cluster, const char* email, const char* code,
                                          char** out_json);
/* Rotates a refresh token. *out_json: new tokens. Reusing a rotated token
 * revokes its whole session. Errors: INVALID_ARGUMENT, UNAUTHENTICATED. */
LUCID_API lucid_status lucid_session_refresh(lucid_cluster* cluster, const char* refresh_token, char** out_json);
/* Revokes a session at once (idempotent: an unknown id is not an error).
 * Errors: INVALID_ARGUMENT. */
LUCID_API lucid_status lucid_session_logout(lucid_cluster* cluster, const char* session_id);
/* Verifies an access token (signature, expiry, live session). *out_json:
 * {"subject", "role", "session_id", "issued_at", "expires_at"}.
 * Errors: INVALID_ARGUMENT, UNAUTHENTICATED. */
LUCID_API lucid_status lucid_token_verify(lucid_cluster* cluster, const char* access_token, char** out_json);

/* ---- workflows ---- (all thread-safe; lucid::Workflows, workflows.hpp)
 *
 * A workflow runs standalone services (executables inside the data
 * directory) as a graph: each connection feeds the source job's STDOUT to
 * the target job's STDIN. */

/* Registers a standalone service: service_json {"name", "description"?,
 * "executable_path" (relative to the data directory, or absolute inside it),
 * "arguments"? [strings], "working_directory"?, "environment"? {name:
 * value}, "timeout_seconds"? (1..86400, default 300)}. *out_json: {"id",
 * "name", "service_type", "status", "executable_path", "arguments",
 * "timeout_seconds"}. Errors: INVALID_ARGUMENT (field named: a path outside
 * the data directory, not an executable file, a bad environment name). */
LUCID_API lucid_status lucid_service_create_standalone(lucid_cluster* cluster, const char* service_json,
                                                       char** out_json);
/* Defines a workflow in one call: definition_json {"name", "description"?,
 * "nodes": [{"service_id", "config"? (object)}] (1..1000), "connections"?:
 * [{"source": i, "target": j}] (indexes into "nodes")}. All of it is checked
 * before anything is stored, and a failure while storing removes what was
 * stored: a failed call leaves no workflow. *out_json: {"workflow_id",
 * "node_ids": [...], "connection_ids": [...]} (in input order).
 * Errors: INVALID_ARGUMENT (field named, e.g. "connections.0.target"),
 * NOT_FOUND (a service). */
LUCID_API lucid_status lucid_workflow_define(lucid_cluster* cluster, const char* definition_json, char** out_json);
/* Starts an execution of a workflow; returns at once (the jobs run on the
 * background executor). *out_json: the execution (as below).
 * Errors: NOT_FOUND, UNAVAILABLE (shutting down). */
LUCID_API lucid_status lucid_workflow_execute(lucid_cluster* cluster, int64_t workflow_id, char** out_json);
/* An execution's status: {"id", "workflow_id", "status"
 * ("RUNNING"|"COMPLETED"|"FAILED"), "progress" (0..100), "jobs_total",
 * "jobs_done", "error", "started_at", "completed_at", "jobs": [{"id",
 * "node_id", "service_id", "status", "exit_code", "error", "started_at",
 * "completed_at", "stdout", "stderr"}]} (stdout/stderr: what the job wrote,
 * bounded by the output limit; null until written). Errors: NOT_FOUND. */
LUCID_API lucid_status lucid_workflow_execution(lucid_cluster* cluster, int64_t execution_id, char** out_json);

/* ---- events ---- (lucid::EventBus, events.hpp) */

typedef struct lucid_subscription lucid_subscription;
/* Receives one event as JSON: {"kind" ("node_joined"|"node_approved"|
 * "node_updated"|"node_stats"|"network"), "node_id", "type", "payload"}
 * ("type"/"payload": the network event's message type and JSON object, else
 * "" and {}). The text is valid only during the call. Runs synchronously on
 * the thread that caused the event (possibly several at once): it must be
 * quick and thread-safe and must not call any lucid_* function. */
typedef void (*lucid_event_fn)(void* user_data, const char* event_json);
/* Subscribes `fn` to every event of the cluster until
 * lucid_subscription_close. Errors: INVALID_ARGUMENT. Thread-safe. */
LUCID_API lucid_status lucid_events_subscribe(lucid_cluster* cluster, lucid_event_fn fn, void* user_data,
                                              lucid_subscription** out);
/* Ends a subscription: when it returns, `fn` is not running and will not run
 * again. NULL is a no-op. Call it before lucid_cluster_close (it is safe
 * after, too). Must not be called from inside `fn`. */
LUCID_API void lucid_subscription_close(lucid_subscription* subscription);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* LUCIDNODE_LUCIDNODE_H */
