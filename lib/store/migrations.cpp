#include "store/migrations.hpp"

namespace lucid::detail {

namespace {

// SQLite's DDL. Existing databases depend on this exact list.
const std::vector<Migration>& sqlite_migrations() {
  static const std::vector<Migration> all = {
      // Migration 2 is PoOT (lib/poot), 3 payouts and the ledger (lib/payouts, lib/ledger).
      {1, "nodes, pools, stats, sites, backups", R"SQL(
CREATE TABLE nodes (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  uuid              TEXT NOT NULL UNIQUE,
  hostname          TEXT NOT NULL,
  ip_address        TEXT NOT NULL DEFAULT '',
  system_info       TEXT NOT NULL DEFAULT '',
  status            TEXT NOT NULL CHECK (status IN ('pending', 'active')),
  is_master         INTEGER NOT NULL DEFAULT 0,
  -- While a registration code is outstanding: the random salt the code is
  -- derived from (with the server key) and a keyed hash of the code for
  -- lookup. The code itself is never stored.
  code_salt         BLOB,
  code_hash         BLOB UNIQUE,
  -- SHA-256 of the node API key; the key itself is shown once and not stored.
  api_key_hash      BLOB UNIQUE,
  storage_quota_gb  REAL NOT NULL,
  created_at        TEXT NOT NULL,
  approved_at       TEXT,
  last_seen         TEXT,
  -- The node-management view of the same row.
  uid               TEXT NOT NULL UNIQUE,          -- "node_" + 16 hex
  name              TEXT NOT NULL,
  lifecycle         TEXT NOT NULL DEFAULT 'inactive'
                    CHECK (lifecycle IN ('inactive', 'starting', 'active', 'stopping', 'maintenance', 'error')),
  lifecycle_at      TEXT,                          -- when lifecycle last changed
  node_type         TEXT NOT NULL DEFAULT 'worker'
                    CHECK (node_type IN ('worker', 'validator', 'storage', 'compute')),
  pool_id           INTEGER REFERENCES pools(id) ON DELETE SET NULL,
  pool_priority     INTEGER,
  hw_cpu_cores      INTEGER,
  hw_memory_gb      REAL,
  hw_storage_gb     REAL,
  hw_gpu_count      INTEGER,
  hw_gpu_model      TEXT,
  hw_architecture   TEXT,
  hw_os             TEXT,
  loc_region        TEXT,
  loc_country       TEXT,
  loc_city          TEXT,
  loc_latitude      REAL,
  loc_longitude     REAL,
  updated_at        TEXT NOT NULL
);
CREATE UNIQUE INDEX nodes_name ON nodes(name);
CREATE INDEX nodes_pool ON nodes(pool_id);
CREATE INDEX nodes_lifecycle ON nodes(lifecycle);

CREATE TABLE pools (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  uid               TEXT NOT NULL UNIQUE,          -- "pool_" + 16 hex
  name              TEXT NOT NULL UNIQUE,
  description       TEXT NOT NULL DEFAULT '',
  max_nodes         INTEGER,
  limit_cpu_cores   INTEGER,
  limit_memory_gb   REAL,
  limit_storage_gb  REAL,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL
);
CREATE UNIQUE INDEX nodes_one_pending_per_hostname ON nodes(hostname) WHERE status = 'pending';
CREATE INDEX nodes_hostname ON nodes(hostname);

-- A ring of the latest samples per node: slot = seq % history, so the table
-- is bounded without a pruning pass.
CREATE TABLE node_stats (
  node_id         INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
  slot            INTEGER NOT NULL,
  seq             INTEGER NOT NULL,
  at              TEXT NOT NULL,
  at_us           INTEGER NOT NULL,  -- the same instant in Unix microseconds, for range queries
  cpu_usage       REAL NOT NULL,
  disk_usage      REAL NOT NULL,
  active_backups  INTEGER NOT NULL,
  memory_percent  REAL,
  uptime_seconds  INTEGER,
  disk_total_gb   REAL,
  PRIMARY KEY (node_id, slot)
) WITHOUT ROWID;
CREATE INDEX node_stats_time ON node_stats(node_id, at_us);

CREATE TABLE sites (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  node_id     INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
  name        TEXT NOT NULL,
  used_bytes  INTEGER NOT NULL DEFAULT 0,
  quota_gb    REAL,
  updated_at  TEXT NOT NULL,
  UNIQUE (node_id, name)
);

CREATE TABLE backups (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  node_id           INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
  site_id           INTEGER REFERENCES sites(id) ON DELETE SET NULL,
  filename          TEXT NOT NULL,
  size_bytes        INTEGER NOT NULL,
  s3_path           TEXT NOT NULL DEFAULT '',
  backup_type       TEXT NOT NULL,
  status            TEXT NOT NULL,
  storage_provider  TEXT NOT NULL DEFAULT '',
  created_at        TEXT NOT NULL
);
CREATE INDEX backups_by_node ON backups(node_id, created_at, id);
CREATE INDEX backups_by_site ON backups(site_id, created_at, id);
)SQL"},
      {2, "poot", R"SQL(
-- One row per validated proof, valid or invalid (docs/poot.md).
CREATE TABLE poot_validations (
  id               INTEGER PRIMARY KEY,
  node_id          INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
  valid            INTEGER NOT NULL CHECK (valid IN (0, 1)),
  failure          TEXT NOT NULL DEFAULT '',  -- PootFailure name; '' when valid
  reason           TEXT NOT NULL DEFAULT '',
  output_hash      TEXT NOT NULL,             -- SHA-256 of the decoded output, hex
  nonce            TEXT NOT NULL,
  proof_timestamp  TEXT NOT NULL,             -- as the node sent (and signed) it
  validated_at     TEXT NOT NULL,
  validated_at_us  INTEGER NOT NULL           -- the same instant in Unix microseconds
);
-- A valid proof spends its nonce: at most one valid proof per (node, nonce).
CREATE UNIQUE INDEX poot_nonce_spent ON poot_validations(node_id, nonce) WHERE valid = 1;
-- The score's window scans. Time first, so a batch appends to it instead of
-- dirtying one page per node (docs/poot.md, "Storage").
CREATE INDEX poot_validations_by_time ON poot_validations(validated_at_us, node_id, valid);

CREATE TABLE poot_keys (
  node_id        INTEGER PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
  public_key     BLOB NOT NULL,  -- 32-byte Ed25519 public key
  registered_at  TEXT NOT NULL
);

-- The latest computed score per node (Node::poot_score).
CREATE TABLE poot_scores (
  node_id        INTEGER PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
  score          REAL NOT NULL,
  confidence     REAL NOT NULL,
  calculated_at  TEXT NOT NULL
);
)SQL"},
      {3, "payouts and ledger", R"SQL(
-- docs/ledger.md. batch_id is the client's idempotency key; request_hash is
-- SHA-256 of the normalised request list ("the same requests").
CREATE TABLE payout_batches (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  batch_id          TEXT NOT NULL UNIQUE,
  request_hash      BLOB NOT NULL,
  payout_count      INTEGER NOT NULL,
  created_at        TEXT NOT NULL
);

CREATE TABLE payouts (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,  -- processing order
  uid               TEXT NOT NULL UNIQUE,               -- "payout_" + 16 hex
  batch_id          INTEGER NOT NULL REFERENCES payout_batches(id),
  seq               INTEGER NOT NULL,                   -- index in the batch's request list
  node_id           INTEGER NOT NULL REFERENCES nodes(id),
  amount_micros     INTEGER NOT NULL CHECK (amount_micros > 0),
  currency          TEXT NOT NULL CHECK (currency IN ('USDT', 'LUCID')),
  wallet_address    TEXT NOT NULL DEFAULT '',
  status            TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
  failure_reason    TEXT,                               -- when failed
  transaction_hash  TEXT,                               -- hex, when completed
  created_at        TEXT NOT NULL,
  processed_at      TEXT,                               -- became processing
  completed_at      TEXT,                               -- completed or failed
  UNIQUE (batch_id, seq)
);
-- Open payouts only, in processing order (rows leave them when settled).
CREATE INDEX payouts_pending ON payouts(id) WHERE status = 'pending';
CREATE INDEX payouts_processing ON payouts(id) WHERE status = 'processing';
CREATE INDEX payouts_by_node ON payouts(node_id, id);
CREATE INDEX payouts_by_node_status ON payouts(node_id, status, id);

-- Hashes are 32-byte BLOBs; the canonical bytes they cover are in docs/ledger.md.
CREATE TABLE ledger_blocks (
  height            INTEGER PRIMARY KEY,                -- 0 is genesis
  hash              BLOB NOT NULL UNIQUE,
  previous_hash     BLOB NOT NULL,
  merkle_root       BLOB NOT NULL,
  timestamp_us      INTEGER NOT NULL,                   -- Unix microseconds
  tx_count          INTEGER NOT NULL
);

-- Row order (id) is ledger order: a block holds a contiguous run of ids, and
-- pending transactions (block_height NULL) are the ids after the last block.
CREATE TABLE ledger_transactions (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  hash              BLOB NOT NULL UNIQUE,               -- Merkle leaf hash of the canonical bytes
  type              TEXT NOT NULL,
  ref               TEXT UNIQUE,                        -- producer's key (a payout id): one transaction each
  timestamp_us      INTEGER NOT NULL,
  payload           TEXT NOT NULL,
  block_height      INTEGER REFERENCES ledger_blocks(height)
);
CREATE INDEX ledger_tx_by_block ON ledger_transactions(block_height, id);  -- NULL first: the pending ones
)SQL"},
      {4, "cluster devices, tasks, task attempts, settings", R"SQL(
-- One row per node whose agent reported a device (or an admin labelled it).
CREATE TABLE devices (
  node_id           INTEGER PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
  platform          TEXT NOT NULL DEFAULT 'unknown',
  role              TEXT NOT NULL DEFAULT 'worker',
  tags              TEXT NOT NULL DEFAULT '[]',          -- JSON array of strings
  cpu_count         INTEGER NOT NULL DEFAULT 0,
  memory_total_gb   REAL NOT NULL DEFAULT 0,
  storage_total_gb  REAL NOT NULL DEFAULT 0,
  has_gpu           INTEGER NOT NULL DEFAULT 0,
  internet          INTEGER NOT NULL DEFAULT 0,
  allowed_types     TEXT NOT NULL DEFAULT '[]',          -- JSON array of task types
  max_concurrent    INTEGER NOT NULL DEFAULT 0,
  agent_version     TEXT NOT NULL DEFAULT '',
  reported          INTEGER NOT NULL DEFAULT 0,
  removed           INTEGER NOT NULL DEFAULT 0,          -- DELETE /devices/{id}: key revoked
  last_heartbeat    TEXT,
  updated_at        TEXT NOT NULL
);

CREATE TABLE tasks (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,   -- FIFO order within a priority
  task_id           TEXT NOT NULL UNIQUE,                -- UUID
  task_type         TEXT NOT NULL,
  payload           TEXT NOT NULL,                       -- JSON
  priority          INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 3),
  status            TEXT NOT NULL CHECK (status IN ('pending', 'queued', 'assigned', 'running',
                                                    'success', 'failed', 'cancelled', 'timeout')),
  min_cpu_cores     INTEGER,
  min_memory_gb     REAL,
  min_storage_gb    REAL,
  required_platform TEXT NOT NULL DEFAULT '',
  required_role     TEXT NOT NULL DEFAULT '',
  required_tags     TEXT NOT NULL DEFAULT '[]',
  gpu_required      INTEGER NOT NULL DEFAULT 0,
  internet_required INTEGER NOT NULL DEFAULT 0,
  timeout_seconds   INTEGER NOT NULL,
  max_retries       INTEGER NOT NULL,
  metadata          TEXT NOT NULL DEFAULT '{}',
  node_id           INTEGER REFERENCES nodes(id) ON DELETE SET NULL,  -- assigned / last device
  attempt           INTEGER NOT NULL DEFAULT 0,
  retries           INTEGER NOT NULL DEFAULT 0,
  progress          REAL NOT NULL DEFAULT 0,
  progress_message  TEXT NOT NULL DEFAULT '',
  status_reason     TEXT NOT NULL DEFAULT '',
  cancel_requested  INTEGER NOT NULL DEFAULT 0,
  result            TEXT,                                -- JSON, stored once
  error             TEXT,
  exit_code         INTEGER,
  duration_ms       INTEGER,
  created_at        TEXT NOT NULL,
  assigned_at       TEXT,
  started_at        TEXT,
  completed_at      TEXT
);
CREATE INDEX tasks_by_status ON tasks(status, id);
CREATE INDEX tasks_by_node ON tasks(node_id, id);
CREATE INDEX tasks_by_type ON tasks(task_type, id);

-- Every placement of a task on a device and how it ended.
CREATE TABLE task_attempts (
  task_rowid        INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  attempt           INTEGER NOT NULL,
  node_id           INTEGER REFERENCES nodes(id) ON DELETE SET NULL,
  assigned_at       TEXT NOT NULL,
  ended_at          TEXT,
  outcome           TEXT,                                -- success/failed/timeout/cancelled/requeued
  reason            TEXT,
  PRIMARY KEY (task_rowid, attempt)
);

-- Admin API keys for the cluster API (X-API-Key); only SHA-256 of the key is kept.
CREATE TABLE api_keys (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  name              TEXT NOT NULL,
  key_hash          BLOB NOT NULL UNIQUE,
  role              TEXT NOT NULL,
  created_at        TEXT NOT NULL
);

-- Runtime settings changed through /api/v1/config; absent keys use defaults.
CREATE TABLE settings (
  key               TEXT PRIMARY KEY,
  value             INTEGER NOT NULL
);
)SQL"},
      {5, "network node: login keys, blacklist, peer reports, relay", R"SQL(
-- Keys an administrator registered for the Ed25519 challenge login
-- (lucidctl keys add). Node-owned keys are poot_keys (the agent registers one
-- key for PoOT signing and login); a key is looked up in both.
CREATE TABLE network_keys (
  public_key     BLOB PRIMARY KEY,  -- 32-byte Ed25519 public key
  peer_id        TEXT NOT NULL UNIQUE,
  role           TEXT NOT NULL CHECK (role IN ('user', 'node_operator', 'admin', 'super_admin')),
  label          TEXT NOT NULL DEFAULT '',
  created_at     TEXT NOT NULL
);
CREATE INDEX poot_keys_by_key ON poot_keys(public_key);

-- Blacklisted peers. node_id: the fleet node whose key had this peer id when
-- it was blacklisted (its agent is refused), NULL for other peers.
CREATE TABLE network_blacklist (
  peer_id         TEXT PRIMARY KEY,
  reason          TEXT NOT NULL,
  node_id         INTEGER REFERENCES nodes(id) ON DELETE SET NULL,
  blacklisted_at  TEXT NOT NULL
);

-- What each node's agent last reported about its network role and system.
CREATE TABLE network_reports (
  node_id             INTEGER PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
  is_relay            INTEGER NOT NULL DEFAULT 0,
  is_store            INTEGER NOT NULL DEFAULT 0,
  endpoint            TEXT NOT NULL DEFAULT '',
  latency_ms          INTEGER,                      -- measured by the agent to this server
  pricing_per_gb      REAL NOT NULL DEFAULT 0,
  capacity            INTEGER NOT NULL DEFAULT 0,
  is_behind_nat       INTEGER NOT NULL DEFAULT 0,
  nat_type            TEXT NOT NULL DEFAULT '',
  connected_relay_id  TEXT NOT NULL DEFAULT '',     -- peer id of the relay the node uses
  relay_ingress_bytes INTEGER NOT NULL DEFAULT 0,   -- through that relay, as reported
  relay_egress_bytes  INTEGER NOT NULL DEFAULT 0,
  capabilities        TEXT NOT NULL DEFAULT '',     -- JSON object, the document's system capabilities
  reported_at         TEXT NOT NULL
);

-- Relay sessions of this server (relay mode): a node whose agent reports this
-- server as its relay. Disconnected sessions are deleted.
CREATE TABLE relay_sessions (
  session_id      TEXT PRIMARY KEY,
  node_id         INTEGER NOT NULL UNIQUE REFERENCES nodes(id) ON DELETE CASCADE,
  start_time      INTEGER NOT NULL,                 -- Unix seconds
  last_keepalive  INTEGER NOT NULL,
  ingress_bytes   INTEGER NOT NULL DEFAULT 0,
  egress_bytes    INTEGER NOT NULL DEFAULT 0
);

-- This server's relay preference (NAT mode), one row.
CREATE TABLE relay_preference (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  peer_id  TEXT NOT NULL,
  set_at   TEXT NOT NULL
);
)SQL"},
      {6, "services, workflows, executions (lib/workflows)", R"SQL(
CREATE TABLE services (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  name              TEXT NOT NULL,
  description       TEXT NOT NULL DEFAULT '',
  service_type      TEXT NOT NULL CHECK (service_type IN ('DATA', 'DOCKER', 'STANDALONE', 'RELAY')),
  status            TEXT NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE')),
  endpoint          TEXT NOT NULL DEFAULT '',
  pricing_amount    REAL NOT NULL DEFAULT 0,
  pricing_type      TEXT NOT NULL DEFAULT 'FREE',
  pricing_interval  TEXT NOT NULL DEFAULT '',
  pricing_unit      TEXT NOT NULL DEFAULT '',
  capabilities      TEXT NOT NULL DEFAULT '{}',          -- JSON text
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL
);
CREATE TABLE service_interfaces (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  service_id        INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
  interface_type    TEXT NOT NULL CHECK (interface_type IN ('STDIN', 'STDOUT', 'STDERR', 'LOGS', 'MOUNT', 'ENV', 'ARG')),
  path              TEXT NOT NULL DEFAULT '',
  mount_function    TEXT NOT NULL DEFAULT '',
  description       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX service_interfaces_by_service ON service_interfaces(service_id, id);
CREATE TABLE standalone_details (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  service_id        INTEGER NOT NULL UNIQUE REFERENCES services(id) ON DELETE CASCADE,
  executable_path   TEXT NOT NULL,
  arguments         TEXT NOT NULL DEFAULT '[]',          -- JSON array of strings
  working_directory TEXT NOT NULL DEFAULT '',
  environment       TEXT NOT NULL DEFAULT '{}',          -- JSON object of strings
  timeout_seconds   INTEGER NOT NULL,
  run_as_user       TEXT NOT NULL DEFAULT '',
  source            TEXT NOT NULL
);
CREATE TABLE docker_details (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  service_id        INTEGER NOT NULL UNIQUE REFERENCES services(id) ON DELETE CASCADE,
  image_name        TEXT NOT NULL DEFAULT '',
  image_tag         TEXT NOT NULL DEFAULT 'latest',
  source            TEXT NOT NULL,
  compose_path      TEXT NOT NULL DEFAULT '',
  entrypoint        TEXT NOT NULL DEFAULT '',
  cmd               TEXT NOT NULL DEFAULT ''
);
-- The passphrase is sealed (crypto_secretbox, key derived from the server key):
-- the document's GET returns it, so it cannot be a one-way hash.
CREATE TABLE data_details (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  service_id        INTEGER NOT NULL UNIQUE REFERENCES services(id) ON DELETE CASCADE,
  file_path         TEXT NOT NULL,
  file_size         INTEGER NOT NULL,
  file_hash         TEXT NOT NULL,
  encryption_method TEXT NOT NULL,
  passphrase_sealed BLOB NOT NULL
);
CREATE TABLE workflows (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  name              TEXT NOT NULL,
  description       TEXT NOT NULL DEFAULT '',
  definition        TEXT NOT NULL DEFAULT '{}',
  ui_state          TEXT NOT NULL DEFAULT '{}',
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL
);
CREATE TABLE workflow_nodes (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  workflow_id       INTEGER NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
  node_type         TEXT NOT NULL,
  peer_id           TEXT NOT NULL DEFAULT '',
  service_id        INTEGER NOT NULL,                    -- may outlive its service: execution reports it
  config            TEXT NOT NULL DEFAULT '{}',
  gui_props         TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX workflow_nodes_by_workflow ON workflow_nodes(workflow_id, id);
-- Node ids are not foreign keys: a deleted node leaves its connections
-- dangling, and execution reports them (docs/workflows.md).
CREATE TABLE workflow_connections (
  id                  INTEGER PRIMARY KEY AUTOINCREMENT,
  workflow_id         INTEGER NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
  source_node_id      INTEGER NOT NULL,
  source_interface_id INTEGER,
  target_node_id      INTEGER NOT NULL,
  target_interface_id INTEGER
);
CREATE INDEX workflow_connections_by_workflow ON workflow_connections(workflow_id, id);
CREATE TABLE workflow_executions (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  workflow_id       INTEGER NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
  status            TEXT NOT NULL CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED')),
  started_at        TEXT NOT NULL,
  completed_at      TEXT,
  error             TEXT,
  jobs_total        INTEGER NOT NULL DEFAULT 0,
  jobs_done         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX workflow_executions_by_workflow ON workflow_executions(workflow_id, id);
CREATE INDEX workflow_executions_running ON workflow_executions(status) WHERE status = 'RUNNING';
CREATE TABLE job_executions (
  id                    INTEGER PRIMARY KEY AUTOINCREMENT,
  workflow_execution_id INTEGER NOT NULL REFERENCES workflow_executions(id) ON DELETE CASCADE,
  workflow_id           INTEGER NOT NULL,
  node_id               INTEGER NOT NULL,
  service_id            INTEGER NOT NULL,
  status                TEXT NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
  created_at            TEXT NOT NULL,
  started_at            TEXT,
  completed_at          TEXT,
  exit_code             INTEGER,
  error                 TEXT
);
CREATE INDEX job_executions_by_execution ON job_executions(workflow_execution_id, id);
CREATE INDEX job_executions_by_workflow ON job_executions(workflow_id, id);
CREATE TABLE job_execution_interfaces (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  job_execution_id  INTEGER NOT NULL REFERENCES job_executions(id) ON DELETE CASCADE,
  interface_type    TEXT NOT NULL CHECK (interface_type IN ('STDIN', 'STDOUT', 'STDERR')),
  value             BLOB NOT NULL
);
CREATE INDEX job_execution_interfaces_by_job ON job_execution_interfaces(job_execution_id, id);
)SQL"},
      {7, "gateway users, logins, sessions", R"SQL(
-- lib/auth/users.cpp. Secrets are stored only as HMAC-SHA-256 hashes keyed by
-- a key derived from the server's signing key; TOTP secrets (needed to compute
-- codes) are encrypted (XSalsa20-Poly1305, nonce || ciphertext).
CREATE TABLE users (
  id                TEXT PRIMARY KEY,                   -- UUID, lower-case
  email             TEXT NOT NULL UNIQUE,               -- lower-case
  username          TEXT NOT NULL UNIQUE,
  first_name        TEXT NOT NULL DEFAULT '',
  last_name         TEXT NOT NULL DEFAULT '',
  role              TEXT NOT NULL CHECK (role IN ('user', 'node_operator', 'admin', 'super_admin')),
  password_hash     TEXT NOT NULL,                      -- Argon2id (libsodium crypto_pwhash_str)
  hardware_wallet   INTEGER NOT NULL DEFAULT 0,
  totp_secret       BLOB,                               -- encrypted; active
  totp_pending      BLOB,                               -- encrypted; awaiting confirmation
  totp_last_step    INTEGER NOT NULL DEFAULT 0,         -- a TOTP step is accepted once
  failed_attempts   INTEGER NOT NULL DEFAULT 0,
  locked_until_us   INTEGER,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  last_login        TEXT
);
CREATE INDEX users_by_role ON users(role, created_at);

-- One pending login per user (a new login replaces the previous one).
CREATE TABLE login_attempts (
  user_id           TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  code_hash         BLOB NOT NULL,
  token_hash        BLOB NOT NULL UNIQUE,
  expires_at_us     INTEGER NOT NULL
);

-- A session is a refresh-token family; access tokens carry its id ("sid").
CREATE TABLE auth_sessions (
  id                TEXT PRIMARY KEY,                   -- UUID
  user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at_us     INTEGER NOT NULL,
  expires_at_us     INTEGER NOT NULL,
  revoked_at_us     INTEGER,
  revoke_reason     TEXT
);
CREATE INDEX auth_sessions_live ON auth_sessions(expires_at_us) WHERE revoked_at_us IS NULL;
CREATE INDEX auth_sessions_by_user ON auth_sessions(user_id);

CREATE TABLE refresh_tokens (
  token_hash        BLOB PRIMARY KEY,
  session_id        TEXT NOT NULL REFERENCES auth_sessions(id) ON DELETE CASCADE,
  expires_at_us     INTEGER NOT NULL,
  rotated_at_us     INTEGER                             -- set when exchanged; reuse revokes the session
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens(session_id);
)SQL"},
      // Migration 8: the gateway's sessions, chunks, manifests, trust policies
      // and wallets (lib/gateway). Owners are token subjects (user ids).
      {8, "gateway sessions, manifests, trust policies, wallets", R"SQL(
CREATE TABLE gw_sessions (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  uid               TEXT NOT NULL UNIQUE,               -- UUID
  user_id           TEXT NOT NULL,
  name              TEXT NOT NULL,
  description       TEXT NOT NULL DEFAULT '',
  status            TEXT NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'completed', 'failed', 'cancelled')),
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  started_at        TEXT NOT NULL,
  completed_at      TEXT,                               -- when it left 'active'
  size_bytes        INTEGER NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
  chunk_count       INTEGER NOT NULL DEFAULT 0 CHECK (chunk_count >= 0)
);
CREATE INDEX gw_sessions_by_user ON gw_sessions(user_id, id);

-- One row per stored chunk file (<data_dir>/sessions/<session uid>/<chunk uid>.chunk).
CREATE TABLE gw_chunks (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  uid               TEXT NOT NULL UNIQUE,
  session_id        INTEGER NOT NULL REFERENCES gw_sessions(id),
  idx               INTEGER NOT NULL CHECK (idx >= 0),
  size              INTEGER NOT NULL CHECK (size > 0),
  hash              BLOB NOT NULL,                      -- SHA-256 of the bytes
  created_at        TEXT NOT NULL,
  UNIQUE (session_id, idx)
);

CREATE TABLE gw_manifests (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  uid               TEXT NOT NULL UNIQUE,
  session_id        INTEGER NOT NULL UNIQUE REFERENCES gw_sessions(id),
  merkle_root       BLOB NOT NULL,                      -- docs/merkle.md, "Session manifests"
  chunk_count       INTEGER NOT NULL,
  total_size        INTEGER NOT NULL,
  created_at        TEXT NOT NULL
);

CREATE TABLE gw_trust_policies (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  uid               TEXT NOT NULL UNIQUE,
  user_id           TEXT NOT NULL,
  name              TEXT NOT NULL,
  description       TEXT NOT NULL DEFAULT '',
  rules             TEXT NOT NULL,                      -- JSON array of TrustRule
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL
);
CREATE INDEX gw_trust_by_user ON gw_trust_policies(user_id, id);

CREATE TABLE gw_wallets (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  uid               TEXT NOT NULL UNIQUE,
  user_id           TEXT NOT NULL,
  name              TEXT NOT NULL,
  address           TEXT NOT NULL,
  currency          TEXT NOT NULL CHECK (currency IN ('USDT', 'TRX')),
  network           TEXT NOT NULL DEFAULT 'TRON',
  -- Generated wallets: nonce || crypto_secretbox(private key) under the
  -- operator's wallet key. NULL: a registered (watch-only) address.
  sealed_key        BLOB,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  UNIQUE (address, currency)
);
CREATE INDEX gw_wallets_by_user ON gw_wallets(user_id, id);

-- Each row is also one ledger transaction (hash): the balance is computed
-- from these and the completed payouts to the wallet's address.
CREATE TABLE gw_wallet_transactions (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  tx_hash           BLOB NOT NULL UNIQUE REFERENCES ledger_transactions(hash),
  from_wallet       INTEGER NOT NULL REFERENCES gw_wallets(id),
  to_wallet         INTEGER REFERENCES gw_wallets(id),   -- NULL: leaves the server
  type              TEXT NOT NULL CHECK (type IN ('transfer', 'payment')),
  amount_micros     INTEGER NOT NULL CHECK (amount_micros > 0),
  currency          TEXT NOT NULL,
  recipient         TEXT NOT NULL,
  memo              TEXT NOT NULL DEFAULT '',
  created_at        TEXT NOT NULL
);
CREATE INDEX gw_wtx_from ON gw_wallet_transactions(from_wallet);
CREATE INDEX gw_wtx_to ON gw_wallet_transactions(to_wallet) WHERE to_wallet IS NOT NULL;
CREATE INDEX payouts_completed_by_wallet ON payouts(wallet_address, currency) WHERE status = 'completed';
)SQL"},
      // Migration 9 (issue 12, role model): the `viewer` role (admin-granted
      // fleet reads, between user and node_operator) in the CHECK constraints
      // of users and network_keys, and the submitter of each task (payloads
      // and results are shown to their submitter and to operators).
      // SQLite cannot alter a CHECK: the tables are rebuilt. Dropping `users`
      // with foreign keys on cascades into its sessions, so those rows are
      // kept aside and put back (foreign_keys cannot be switched off inside
      // the migration's transaction).
      {9, "viewer role; task submitter", R"SQL(
CREATE TEMP TABLE keep_login_attempts AS SELECT * FROM login_attempts;
CREATE TEMP TABLE keep_auth_sessions AS SELECT * FROM auth_sessions;
CREATE TEMP TABLE keep_refresh_tokens AS SELECT * FROM refresh_tokens;
CREATE TABLE users_new (
  id                TEXT PRIMARY KEY,                   -- UUID, lower-case
  email             TEXT NOT NULL UNIQUE,               -- lower-case
  username          TEXT NOT NULL UNIQUE,
  first_name        TEXT NOT NULL DEFAULT '',
  last_name         TEXT NOT NULL DEFAULT '',
  role              TEXT NOT NULL CHECK (role IN ('user', 'viewer', 'node_operator', 'admin', 'super_admin')),
  password_hash     TEXT NOT NULL,                      -- Argon2id (libsodium crypto_pwhash_str)
  hardware_wallet   INTEGER NOT NULL DEFAULT 0,
  totp_secret       BLOB,                               -- encrypted; active
  totp_pending      BLOB,                               -- encrypted; awaiting confirmation
  totp_last_step    INTEGER NOT NULL DEFAULT 0,         -- a TOTP step is accepted once
  failed_attempts   INTEGER NOT NULL DEFAULT 0,
  locked_until_us   INTEGER,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  last_login        TEXT
);
INSERT INTO users_new (id, email, username, first_name, last_name, role, password_hash, hardware_wallet, totp_secret, totp_pending, totp_last_step, failed_attempts, locked_until_us, created_at, updated_at, last_login)
  SELECT id, email, username, first_name, last_name, role, password_hash, hardware_wallet, totp_secret, totp_pending, totp_last_step, failed_attempts, locked_until_us, created_at, updated_at, last_login FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_by_role ON users(role, created_at);
INSERT INTO auth_sessions SELECT * FROM temp.keep_auth_sessions;
INSERT INTO refresh_tokens SELECT * FROM temp.keep_refresh_tokens;
INSERT INTO login_attempts SELECT * FROM temp.keep_login_attempts;
DROP TABLE temp.keep_login_attempts;
DROP TABLE temp.keep_auth_sessions;
DROP TABLE temp.keep_refresh_tokens;

CREATE TABLE network_keys_new (
  public_key     BLOB PRIMARY KEY,  -- 32-byte Ed25519 public key
  peer_id        TEXT NOT NULL UNIQUE,
  role           TEXT NOT NULL CHECK (role IN ('user', 'viewer', 'node_operator', 'admin', 'super_admin')),
  label          TEXT NOT NULL DEFAULT '',
  created_at     TEXT NOT NULL
);
INSERT INTO network_keys_new (public_key, peer_id, role, label, created_at)
  SELECT public_key, peer_id, role, label, created_at FROM network_keys;
DROP TABLE network_keys;
ALTER TABLE network_keys_new RENAME TO network_keys;

-- The token subject that submitted the task ('' for tasks submitted through
-- the library or before this migration: only operators see their payloads).
ALTER TABLE tasks ADD COLUMN submitter TEXT NOT NULL DEFAULT '';
)SQL"},
      {10, "join secrets and pending expiry (issue 12)", R"SQL(
-- SHA-256 of the join secret while a registration code is outstanding: the
-- code is re-issued, and the API key collected, only by its holder. The
-- secret itself is shown once and not stored.
ALTER TABLE nodes ADD COLUMN join_secret_hash BLOB;
-- Pending join requests expire (Options::pending_join_ttl): the sweep finds them by age.
CREATE INDEX nodes_pending_by_created ON nodes(created_at) WHERE status = 'pending';
)SQL"},
      {11, "node cordon and drain (issue 15)", R"SQL(
-- Cordoned: the scheduler places no new work on the node. Draining: cordoned
-- with a deadline (RFC 3339); tasks still on the node then are requeued.
-- Both survive a restart (the nodes cache loads them).
ALTER TABLE nodes ADD COLUMN cordoned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN drain_deadline TEXT;
)SQL"},
      {12, "revoked access tokens, token subjects of users (issue 15)", R"SQL(
-- Access tokens without a login session (lucidctl admin create-token)
-- revoked by POST /auth/logout: refused by their jti until they expire.
CREATE TABLE revoked_tokens (
  token_id       TEXT PRIMARY KEY,   -- the token's "jti"
  expires_at_us  INTEGER NOT NULL    -- its "exp": the row is pruned after it
);
-- A token subject that is not a user id ("admin", lucidctl's default) and the
-- user record it stands for: the bootstrap admin's, created on first start.
CREATE TABLE token_subjects (
  subject        TEXT PRIMARY KEY,
  user_id        TEXT NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE
);
)SQL"},
      {13, "workflow connections in the network node UI's shape (issue 18)", R"SQL(
-- The UI's connection {from_node_id|null, from_interface_type, to_node_id|null,
-- to_interface_type, destination_file_name}: a null end (this node's own
-- side: data from, or results to, the local peer) is stored as node id 0.
ALTER TABLE workflow_connections ADD COLUMN source_interface_type TEXT NOT NULL DEFAULT '';
ALTER TABLE workflow_connections ADD COLUMN target_interface_type TEXT NOT NULL DEFAULT '';
ALTER TABLE workflow_connections ADD COLUMN destination_file_name TEXT NOT NULL DEFAULT '';
)SQL"},
      {14, "the server that runs a workflow execution (issue 14, replicas)", R"SQL(
-- The instance id of the server process running the execution (0: unknown,
-- rows from before this migration). Another server fails the execution only
-- when that process is gone (ClusterCore::instance_alive), not merely because
-- it found the row RUNNING: on PostgreSQL several live servers share the table.
ALTER TABLE workflow_executions ADD COLUMN owner INTEGER NOT NULL DEFAULT 0;
-- A job dispatched to a fleet node: its task, cancelled when the execution is
-- failed by another server.
ALTER TABLE job_executions ADD COLUMN fleet_task TEXT;
)SQL"},
  };
  return all;
}

}  // namespace

const std::vector<Migration>& migrations_for(Dialect dialect) {
  switch (dialect) {
    case Dialect::sqlite:
      return sqlite_migrations();
    case Dialect::postgres:
      return postgres_migrations();
  }
  return sqlite_migrations();  // unreachable: every Dialect is handled above
}

}  // namespace lucid::detail
