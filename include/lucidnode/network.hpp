// The network-node view of the fleet (network-node.md): Ed25519 challenge
// login, peers, blacklist, relay bookkeeping and this machine's capabilities.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lucidnode/auth.hpp"
#include "lucidnode/clock.hpp"
#include "lucidnode/export.hpp"

namespace lucid {

namespace detail { class ClusterCore; struct NetworkState; }
LUCID_PUBLIC_BEGIN

// A peer id from a 32-byte Ed25519 public key, deterministically: the libp2p
// PeerID of that key, i.e. base58btc(identity-multihash(protobuf PublicKey
// {Type: Ed25519, Data: key})) = base58btc(00 24 08 01 12 20 || key), which
// always starts "12D3KooW". Throws Error(invalid_argument) unless 32 bytes.
std::string peer_id_from_public_key(std::string_view public_key_bytes);

struct Gpu {
  int index = 0;
  std::string name, vendor, uuid, driver_version;
  std::int64_t memory_mb = 0;
};

// The document's system capabilities object.
struct SystemCapabilities {
  std::string platform, architecture, kernel_version, cpu_model;
  int cpu_cores = 0, cpu_threads = 0;
  std::int64_t total_memory_mb = 0, available_memory_mb = 0, total_disk_mb = 0, available_disk_mb = 0;
  bool has_docker = false;  // a docker daemon answered on the docker socket
  std::string docker_version;
  bool has_python = false;
  std::string python_version;
  std::vector<Gpu> gpus;
};

// Measures this machine now: /proc, uname, statvfs(disk_path), the docker
// socket `docker_socket` (GET /version, 1 s timeout; empty: none), `python3 --version` (cached), GPUs from
// /proc/driver/nvidia and /sys/class/drm. Never throws for a missing source
// (that figure stays 0/empty/false). Thread-safe.
SystemCapabilities probe_system(const std::string& disk_path,
                                const std::string& docker_socket = "/var/run/docker.sock");
// The document's JSON object for `c` ({"platform", ..., "gpus": [...]}).
std::string capabilities_json(const SystemCapabilities& c);

struct Challenge {
  std::string challenge;  // 32 random bytes, lower-case hex
  std::chrono::seconds expires_in{300};
};

struct LoginResult {
  // JWT, 24 h, subject "peer:<peer_id>". An admin-registered key's token
  // carries that key's role; a node's own key gives a node token (role
  // "user", claim "nid" = node_id) that acts only as that node.
  std::string token;
  std::string peer_id;
  Role role = Role::user;
  std::int64_t node_id = 0;  // the node whose key logged in; 0 for an admin-registered key
};

struct NetworkKey {
  std::string public_key;  // 64 lower-case hex
  std::string peer_id;
  Role role = Role::user;
  std::string label;
  std::int64_t node_id = 0;  // node-owned keys (registered by the agent; role is then meaningless: a node principal); 0 for admin keys
  Timestamp created_at;
};

struct BlacklistEntry {
  std::string peer_id;
  std::string reason;
  Timestamp blacklisted_at;
};

// What a node's agent reports about its network role (PUT /api/agent/network).
struct AgentNetworkReport {
  bool is_relay = false;
  bool is_store = false;
  std::string endpoint;                 // "host:port", <= 255
  std::optional<std::int64_t> latency_ms;  // 0..600000
  double pricing_per_gb = 0;            // >= 0
  std::int64_t capacity = 0;            // 0..1000000
  bool is_behind_nat = false;
  std::string nat_type;                 // <= 32
  std::string connected_relay_id;       // peer id or "", <= 128
  std::int64_t relay_ingress_bytes = 0, relay_egress_bytes = 0;
  std::string capabilities_json;        // a JSON object (validated by the caller), <= 64 KiB
};

struct Peer {
  std::string peer_id;
  std::string dht_node_id;  // the node's uid ("node_...")
  std::int64_t node_id = 0;
  bool is_relay = false, is_store = false;
  std::int64_t files_count = 0, apps_count = 0;
  std::optional<Timestamp> last_seen;
  bool is_behind_nat = false;
  std::string nat_type;
  std::string connected_relay_id;
  std::string capabilities_json;  // "" when the agent reported none
};

struct RelaySession {
  std::string session_id;
  std::string client_node_id;  // the node's uid
  std::string client_peer_id;
  std::int64_t start_time = 0, last_keepalive = 0;  // Unix seconds
  std::int64_t ingress_bytes = 0, egress_bytes = 0;
  double earnings = 0;  // (ingress + egress) in GB * Options::network.relay_price_per_gb
};

struct RelayCandidate {
  std::string node_id;  // the node's uid
  std::string peer_id;
  std::string endpoint;
  std::optional<std::int64_t> latency_ms;
  double reputation_score = 0;  // the node's PoOT score / 100, 0 without one
  double pricing_per_gb = 0;
  std::int64_t capacity = 0;
  std::int64_t last_seen = 0;  // Unix seconds of the agent's last report
  bool is_connected = false;   // always false: this server does not connect to relays
  bool is_preferred = false;
  bool is_available = false;   // reported within Options::nodes.stale_after and the node is active
  std::string unavailable_msg;
};

struct NetworkStatus {
  std::string peer_id;      // this server's, from its signing key
  std::string dht_node_id;  // random per process start (the document: changes on restart)
  std::int64_t uptime_seconds = 0;
  std::int64_t known_peers = 0;
  bool relay_mode = false, nat_mode = false;
  std::string connected_relay;  // always "": no relay connection is made
};

// Thread-safe: every method may be called concurrently.
class Network {
 public:
  explicit Network(detail::ClusterCore& core);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // A fresh single-use challenge valid Options::network.challenge_ttl. At most
  // Options::network.max_challenges are outstanding: beyond it the oldest is dropped
  // (a flood cannot grow memory; expired ones are swept by the executor).
  // `client` names who asks (the server passes the client address): one
  // client holds at most Options::network.max_challenges_per_client; at that bound
  // its own oldest is dropped, not anyone else's. "" (unknown): no per-client
  // bound.
  Challenge issue_challenge(std::string_view client = {});
  // Verifies `signature_hex` (64 bytes) over the challenge's decoded bytes with
  // `public_key_hex` (32 bytes). The challenge is consumed by any attempt.
  // An empty public key means "the only registered key"; allowed only when
  // exactly one key is registered. Errors: unauthenticated "Invalid or
  // expired challenge" (unknown/used/expired/malformed challenge) or
  // "Authentication failed" (malformed hex, unknown key, bad signature,
  // blacklisted peer).
  LoginResult login(std::string_view challenge_hex, std::string_view signature_hex, std::string_view public_key_hex);
  // Verifies a bearer token: Auth::verify_token, whose principal check (set
  // by the cluster to principal_refusal) refuses a login token whose key is
  // gone or whose peer is blacklisted. Errors: unauthenticated.
  Claims verify_token(std::string_view token);
  // The principal check of a login token ("peer:<peer_id>" subject; nullptr
  // for any other subject): nullptr while it stands, else why not: the peer
  // is blacklisted, its key is no longer registered (removed, or its node is
  // not active), or an admin key's role differs from the token's. In memory:
  // a peer's key owner is read from the database at most once a second
  // (changes made by this process clear the cache at once; a change another
  // process commits, e.g. lucidctl keys remove, is seen within a second).
  // Never throws (a storage error refuses).
  const char* principal_refusal(const Claims& c);
  // principal_refusal as Error(unauthenticated, reason).
  void check_claims(const Claims& c);
  // Clears the principal cache: call after committing any change to which
  // keys may log in (node approval, key rotation, device removal). add_key
  // and remove_key call it themselves.
  void forget_principals();

  // Admin-registered login keys. Errors: invalid_argument (public_key, label
  // <= 128), conflict (already registered, here or by a node).
  NetworkKey add_key(std::string_view public_key_hex, Role role, std::string_view label);
  // Errors: not_found.
  void remove_key(std::string_view public_key_hex);
  // Admin keys and node keys.
  std::vector<NetworkKey> keys();

  std::vector<BlacklistEntry> blacklist();
  // Adds or updates (reason). Errors: invalid_argument (peer_id 1..128
  // printable, reason <= 512). Publishes BLACKLIST_UPDATED.
  BlacklistEntry add_to_blacklist(std::string_view peer_id, std::string_view reason);
  // Errors: not_found. Publishes BLACKLIST_UPDATED.
  void remove_from_blacklist(std::string_view peer_id);
  bool is_blacklisted(std::string_view peer_id);
  // True when the node's key's peer was blacklisted: its agent is refused.
  bool node_refused(std::int64_t node_id);

  // Nodes of the fleet that hold a key, with what their agents report.
  std::vector<Peer> peers();
  // Errors: not_found.
  Peer peer(std::string_view peer_id);
  // peer(), for a client reading the peer's capabilities: when the peer has
  // reported some, publishes PEER_CAPABILITIES_UPDATED {"peer_id",
  // "capabilities"} (network-node.md: sent when full data is available; at
  // most once a second per peer). report() publishes it too when an agent
  // reports capabilities. Errors: not_found.
  Peer peer_capabilities(std::string_view peer_id);

  // Stores the agent's report; in relay mode, opens/refreshes/closes the
  // node's relay session when it names (or stops naming) this server.
  // Errors: invalid_argument. Publishes PEER_UPDATED.
  void report(std::int64_t node_id, const AgentNetworkReport& r);

  // Relay mode only (Options::network.relay_mode) else permission_denied.
  std::vector<RelaySession> relay_sessions();
  // Errors: permission_denied, not_found.
  void disconnect_session(std::string_view session_id);
  void blacklist_session(std::string_view session_id);
  // NAT mode only (Options::network.nat_mode) else permission_denied.
  std::vector<RelayCandidate> relay_candidates();
  // Errors: permission_denied, invalid_argument, not_found (no such relay candidate).
  void prefer_relay(std::string_view peer_id);
  // Connecting to a relay needs NAT traversal, which this server does not
  // perform: permission_denied outside NAT mode, unavailable in it.
  [[noreturn]] void connect_relay(std::string_view peer_id);
  [[noreturn]] void disconnect_relay();

  NetworkStatus status();
  const std::string& self_peer_id() const;
  // True when a workflow node's peer_id names this server's own node
  // (docs/decisions.md "Issue 18: this node"): empty, kLocalPeerMarker, this
  // server's peer id, or the peer id of an admin-registered login key (an
  // operator logged in here: the web UI puts the login key's peer id on the
  // nodes it runs "here"). A fleet node's peer id is not. Storage errors
  // throw (Errc::storage).
  bool is_local_peer(std::string_view peer_id);
  static constexpr std::string_view kLocalPeerMarker = "local";

  // Drops expired challenges (the executor calls this every second).
  void sweep();
  // Clears outstanding challenges and the token cache and reloads the
  // blacklist from the database (part of Cluster::restart()).
  void reset();

 private:
  detail::ClusterCore& core_;
  std::unique_ptr<detail::NetworkState> st_;
};

LUCID_PUBLIC_END
}  // namespace lucid
